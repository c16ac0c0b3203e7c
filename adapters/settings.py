"""Configuration values the shipped adapters read, checked as they are read: a mistyped one
(``grayscale=no``, ``image_size=8.7``) is a ValueError naming the key, not a silent ``bool('no')``."""

from __future__ import annotations


def flag(configuration, key: str, default: bool) -> bool:
    value = configuration.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"model configuration {key!r} must be true or false, got {value!r}")
    return value


def whole(configuration, key: str, default: int, minimum: int = 1) -> int:
    value = configuration.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"model configuration {key!r} must be an integer >= {minimum}, got {value!r}")
    return value
