"""django-litestream."""

from __future__ import annotations

from typing import Any

__all__ = ["get_vfs_databases"]


def __getattr__(name: str) -> Any:
    # Imported on first use, so that the serve supervisor (which imports this package)
    # stays small in memory.
    if name == "get_vfs_databases":
        from .vfs import get_vfs_databases

        return get_vfs_databases
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
