"""django-litestream."""

from __future__ import annotations

from typing import Any

__all__ = ["LitestreamRouter", "get_vfs_databases", "get_vfs_status", "time_travel"]

# Imported on first use, so that the serve supervisor (which imports this package) stays
# small in memory: name -> module.
_LAZY = {
    "get_vfs_databases": "vfs",
    "time_travel": "vfs.timetravel",
    "get_vfs_status": "vfs.status",
    "LitestreamRouter": "db.routers",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
