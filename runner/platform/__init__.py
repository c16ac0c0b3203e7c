"""Platforms the runner runs against, and how an entity leads back to its platform."""

from __future__ import annotations

from ..errors import UnsupportedOperation
from .base import Platform


def platform_of(entity) -> Platform:
    """The platform that holds ``entity`` (a dtlpy entity)."""
    platform = getattr(getattr(entity, "_client_api", None), "platform", None)
    if isinstance(platform, Platform):
        return platform
    raise UnsupportedOperation(
        f"{type(entity).__name__} {getattr(entity, 'id', '')} does not belong to a platform this runner serves",
        fix="create entities through LocalPlatform (runner.platform.local) so the wrapper functions can reach them")


__all__ = ["Platform", "platform_of"]
