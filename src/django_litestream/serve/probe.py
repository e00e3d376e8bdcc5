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
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from ..runner import THREAD_CHILDREN

_SAMPLE = re.compile(r'^(litestream_[a-z_]+)\{db="((?:[^"\\]|\\.)*)"\} (\S+)$', re.MULTILINE)
_FIELDS = {
    "litestream_txid": "txid",
    "litestream_sync_count": "syncs",
    "litestream_sync_error_count": "errors",
    "litestream_wal_size": "wal_size",
}
# Phases of a sync that has opened the database (``DB.init`` returned, the read lock held):
# every phase except the first. ``starting`` is set before ``newSyncExecutor`` -> ``init``.
_BEFORE_INIT = frozenset({"", "starting"})


class DBMetrics(NamedTuple):
    """One database's figures from Litestream's metrics address."""

    txid: int = 0  # the newest local LTX file's txid (0: never synced yet)
    syncs: int = 0  # WAL syncs finished, failed ones included
    errors: int = 0  # WAL syncs that failed
    wal_size: int = 0  # where in the WAL the last successful sync ended


class HTTPFailure(Exception):
    """No HTTP answer (refused, timed out, not HTTP)."""


def http_get(target: tuple[str, int] | str, path: str, timeout: float) -> tuple[int, str]:
    """(status, body) of ``GET path`` over TCP (``(host, port)``) or a Unix socket (a path).

    HTTP/1.0 over a plain socket: the standard library's ``http.client`` would pull ``ssl``
    and ``email`` into the supervisor (about 6 MB of memory) for two local, read-only requests.
    """
    family = socket.AF_UNIX if isinstance(target, str) else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(target)
            sock.sendall(f"GET {path} HTTP/1.0\r\nHost: litestream\r\n\r\n".encode())
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    except OSError as exc:
        raise HTTPFailure(exc.__class__.__name__) from None
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split()
    if len(status) < 2 or not status[0].startswith(b"HTTP/") or not status[1].isdigit():
        raise HTTPFailure("not HTTP")
    return int(status[1]), body.decode("utf-8", "replace")


def _host_port(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def _number(text: str) -> int:
    value = float(text)
    return int(value) if math.isfinite(value) else 0


def read_metrics(addr: str, timeout: float = 2.0) -> dict[str, DBMetrics] | str:
    """Every database's figures by path, or why they could not be read."""
    try:
        status, text = http_get(_host_port(addr), "/metrics", timeout)
    except (HTTPFailure, ValueError) as exc:
        return f"metrics address {addr} did not answer ({exc})"
    if status != 200 or "litestream_" not in text:
        return f"metrics address {addr} answered HTTP {status}, not Litestream"
    found: dict[str, dict[str, int]] = {}
    for name, db, value in _SAMPLE.findall(text):
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
    THREAD_CHILDREN.add(proc.pid)
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
        THREAD_CHILDREN.discard(proc.pid)
    if proc.returncode != 0:
        lines = (stderr or stdout).strip().splitlines()
        return lines[-1] if lines else f"litestream ltx exited {proc.returncode}"
    try:
        files = json.loads(stdout)
        return max((int(f["max_txid"], 16) for f in files), default=0)
    except (ValueError, KeyError, TypeError):
        return f"unexpected answer from litestream ltx: {stdout.strip()[:200]}"


def sync_statuses(socket_path: str, timeout: float = 2.0) -> dict[str, dict[str, Any]]:
    """Litestream's report on the current or last sync of every database, by path.

    ``active`` is true while a sync (or checkpoint) runs; ``phase`` is where it is;
    ``error`` is the last one's error. Empty when the socket does not answer.
    """
    return diagnostics(socket_path, "/debug/sync-status", timeout)


def sync_status(socket_path: str, db: str, timeout: float = 2.0) -> dict[str, Any]:
    """Litestream's report on its current or last sync of ``db`` ({} when unavailable)."""
    from urllib.parse import quote

    found = diagnostics(socket_path, f"/debug/sync-status?path={quote(db)}", timeout)
    return next(iter(found.values()), {})


def diagnostics(socket_path: str, path: str, timeout: float) -> dict[str, dict[str, Any]]:
    try:
        status, body = http_get(socket_path, path, timeout)
        if status != 200:
            return {}
        found = json.loads(body)["databases"]
        return {d["path"]: d for d in found if isinstance(d, dict) and "path" in d}
    except (HTTPFailure, ValueError, KeyError, TypeError):
        return {}


def holds_read_lock(status: Mapping[str, Any], metrics: DBMetrics | None = None) -> bool:
    """Has Litestream's monitor opened the database, its long read transaction in place?

    Either a sync has finished (``litestream_txid`` > 0) or one is past its first phase:
    ``DB.init`` (which begins the read transaction, ``acquireReadLock``) runs in
    ``newSyncExecutor`` before a sync leaves ``starting``, and a failed ``init`` releases
    the lock and ends the sync there. Nothing but Litestream's own monitor syncs here
    (serve never calls ``litestream sync``), so the transaction lives in the monitor's
    context, as long as the database is open.
    """
    if metrics is not None and metrics.txid > 0:
        return True
    return bool(status.get("active")) and status.get("phase", "") not in _BEFORE_INIT
