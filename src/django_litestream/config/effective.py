"""The configuration as Litestream will read it: the values it falls back to when unset.

A database entry of the generated configuration says what the user wrote; what Litestream
does with it (where it keeps its state, how often it syncs, how much WAL one sync reads,
how long its final sync may take, where its control socket and metrics are) is read here,
once, for ``serve``, ``status``, ``verify`` and the read replicas' router. No Django here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..replica.ltx import default_meta_path
from . import durations
from .types import Settings

# Litestream 0.5.17's own defaults, where the setting leaves a value out.
SHUTDOWN_SYNC_TIMEOUT = 30.0
MAX_SYNC_WAL_BYTES = 64 << 20


def meta_path(db_path: str, entry: Mapping[str, Any]) -> str:
    """Where Litestream keeps the database's local state (``meta-path``, else its default)."""
    return os.path.abspath(
        os.path.expanduser(str(entry.get("meta-path") or default_meta_path(db_path)))
    )


def sync_interval(entry: Mapping[str, Any], data: Mapping[str, Any]) -> float:
    """A replica's ``sync-interval`` in seconds (its own, else the top-level default, else 1)."""
    replica = entry.get("replica")
    own = replica.get("sync-interval") if isinstance(replica, Mapping) else None
    return durations.seconds(own or data.get("sync-interval")) or 1.0


def monitor_interval(entry: Mapping[str, Any]) -> float:
    """A database's ``monitor-interval`` in seconds (1 unless set)."""
    return durations.seconds(entry.get("monitor-interval")) or 1.0


def max_sync_wal_bytes(value: Any) -> int:
    """Litestream's ``max-sync-wal-bytes`` for one database (64 MiB unless set; 0: no limit)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return MAX_SYNC_WAL_BYTES


def shutdown_sync_timeout(value: Any) -> float:
    """Litestream's final-sync budget in seconds (its default is 30s)."""
    seconds = durations.seconds(value)
    return SHUTDOWN_SYNC_TIMEOUT if seconds is None else seconds


def probe_addr(addr: str) -> str:
    """Where to reach a metrics address from this machine (a wildcard host is loopback)."""
    host, _, port = addr.rpartition(":")
    return f"127.0.0.1:{port}" if host in ("", "0.0.0.0", "[::]", "::") else addr


def configured_socket(settings: Settings) -> str | None:
    """The control socket the settings enable, if any."""
    sock = settings.options.get("socket")
    if isinstance(sock, Mapping) and sock.get("enabled") and sock.get("path"):
        return str(sock["path"])
    return None
