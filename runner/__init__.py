"""A declarative runner for Dataloop-style model adapters, with an embedded local platform."""

from __future__ import annotations

__version__ = "0.1.0"


def __getattr__(name: str):
    # dtlpy takes about a second to import: load it when the adapter class is first asked for
    if name in ("BaseModelAdapter", "bind_adapter_class"):
        from . import adapter

        return getattr(adapter, name)
    raise AttributeError(f"module 'runner' has no attribute {name!r}")


__all__ = ["BaseModelAdapter", "bind_adapter_class"]
