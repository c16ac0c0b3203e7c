from .platform import LocalPlatform, temporary_platform

__all__ = ["LocalPlatform", "temporary_platform"]
