"""Read what Litestream has done, without ever asking it to do anything.

Three read-only sources, all of them safe while the server writes:

* the metrics address: per database, the local txid (``litestream_txid``), how many
  syncs of the WAL Litestream's own monitor has finished (``litestream_sync_count``) and
  how many failed (``litestream_sync_error_count``), and where in the WAL the last one
  ended (``litestream_wal_size``);
* ``litestream ltx -json`` against the configuration: the LTX files the *replica* holds,
  read from the storage itself (the newest level-0 file is never pruned, so the highest
  level-0 txid is how far the replica has got);
* ``GET /debug/sync-status`` on the control socket: whether a sync is running right now,
  and the error of the last one.

Never ``litestream sync`` (``POST /sync`` on the control socket), with or without
``-wait``. In Litestream 0.5.17 it runs the sync in the HTTP request's context
(``Server.handleSync`` -> ``Store.SyncDB`` -> ``DB.SyncAndWait`` -> ``DB.Sync``). When that
sync is the one that opens the database (``DB.init`` -> ``acquireReadLock``) or runs a
checkpoint (``checkpointIfNeeded`` -> ``execCheckpoint`` -> ``acquireReadLock``), Litestream's
long read transaction is begun with ``BeginTx(ctx)`` on the request's context, and Go's
``database/sql`` rolls a transaction back when its context ends: the moment the response is
sent. From then on nothing holds SQLite back from checkpointing the WAL into the database
and restarting it while Litestream has not read the last frames: the application's own
automatic checkpoint does exactly that every ~1000 pages, and the transactions in between
never reach any LTX file (holes in the replica, ``integrity_check`` still ``ok``), or
Litestream notices the overwrite and uploads a full copy of the database. It lasts until
Litestream's next checkpoint of its own re-acquires the lock. See docs/serve.rst,
"Why serve never calls litestream sync".
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

_SAMPLE = re.compile(r'^(litestream_[a-z_]+)\{db="((?:[^"\\]|\\.)*)"\} (\S+)$', re.MULTILINE)
_FIELDS = {
    "litestream_txid": "txid",
    "litestream_sync_count": "syncs",
    "litestream_sync_error_count": "errors",
    "litestream_wal_size": "wal_size",
}


@dataclass(frozen=True)
class DBMetrics:
    """One database's figures from Litestream's metrics address."""

    txid: int = 0  # the newest local LTX file's txid (0: never synced yet)
    syncs: int = 0  # WAL syncs finished, failed ones included
    errors: int = 0  # WAL syncs that failed
    wal_size: int = 0  # where in the WAL the last successful sync ended


def _number(text: str) -> int:
    value = float(text)
    return int(value) if math.isfinite(value) else 0


def read_metrics(addr: str, timeout: float = 2.0) -> dict[str, DBMetrics] | str:
    """Every database's figures by path, or why they could not be read."""
    try:
        response = httpx.get(f"http://{addr}/metrics", timeout=timeout)
    except httpx.HTTPError as exc:
        return f"metrics address {addr} did not answer ({exc.__class__.__name__})"
    if response.status_code != 200 or "litestream_" not in response.text:
        return f"metrics address {addr} answered HTTP {response.status_code}, not Litestream"
    found: dict[str, dict[str, int]] = {}
    for name, db, value in _SAMPLE.findall(response.text):
        if name in _FIELDS:
            path = db.replace('\\"', '"').replace("\\\\", "\\")
            found.setdefault(path, {})[_FIELDS[name]] = _number(value)
    return {path: DBMetrics(**fields) for path, fields in found.items()}


def metrics_answer(addr: str, timeout: float = 1.0) -> str | None:
    """None when the metrics endpoint answers like Litestream; else why not."""
    found = read_metrics(addr, timeout)
    return found if isinstance(found, str) else None


def replica_txid(
    binary: str,
    config_path: str,
    db: str,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> int | str:
    """The highest txid the replica of ``db`` holds (0: none), or why it could not be read."""
    argv = [binary, "ltx", "-config", config_path, "-json", "-level", "0", db]
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=None if env is None else dict(env),
    )
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                stdout, stderr = proc.communicate(timeout=0.05)
                break
            except subprocess.TimeoutExpired:
                if cancelled():
                    return "cancelled"
                if time.monotonic() > deadline:
                    return f"listing the replica of {db} took more than {timeout:g}s"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    if proc.returncode != 0:
        lines = (stderr or stdout).strip().splitlines()
        return lines[-1] if lines else f"litestream ltx exited {proc.returncode}"
    try:
        files = json.loads(stdout)
        return max((int(f["max_txid"], 16) for f in files), default=0)
    except (ValueError, KeyError, TypeError):
        return f"unexpected answer from litestream ltx: {stdout.strip()[:200]}"


def sync_status(socket_path: str, db: str, timeout: float = 2.0) -> dict[str, Any]:
    """Litestream's report on its current or last sync of ``db`` ({} when unavailable).

    ``active`` is true while a sync (or checkpoint) runs; ``error`` is the last one's error.
    """
    try:
        with httpx.Client(transport=httpx.HTTPTransport(uds=socket_path), timeout=timeout) as c:
            data = c.get("http://litestream/debug/sync-status", params={"path": db}).json()
        status = data["databases"][0]
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError):
        return {}
    return status if isinstance(status, dict) else {}
