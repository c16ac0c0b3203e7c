from .platform import LocalPlatform

__all__ = ["LocalPlatform"]
