"""Read what a running Litestream has done, without ever asking it to do anything.

Two read-only sources, both safe while the server writes (what the replica itself holds is
read from the storage: ``replica/listing.py``):

* the metrics address: per database, the local txid (``litestream_txid``), how many
  syncs of the WAL Litestream's own monitor has finished (``litestream_sync_count``) and
  how many failed (``litestream_sync_error_count``), and where in the WAL the last one
  ended (``litestream_wal_size``);
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
from collections.abc import Mapping
from typing import Any, NamedTuple

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


class Settle:
    """Has Litestream's monitor finished a clean sync that began after ``start`` was read?

    A sync that started after the writers stopped, finished without error
    (``litestream_sync_count`` moved past it, ``sync_error_count`` did not), read the WAL to
    its end, unless more than ``max-sync-wal-bytes`` were waiting: then Litestream works in
    chunks, and only a complete sync that found nothing new (the txid did not move) proves
    the end was reached. Its txid then covers every transaction the writers committed.
    """

    def __init__(self, ref: DBMetrics, need: int, bounded: bool) -> None:
        self.ref = ref
        # finished syncs after ``ref`` that prove one began after it: 1 if none ran
        self.need = need
        self.bounded = bounded  # the backlog fit in one sync (``max-sync-wal-bytes``)

    @classmethod
    def begin(
        cls, start: DBMetrics, *, idle: bool, wal_bytes: int, max_sync_wal_bytes: int
    ) -> Settle:
        backlog = wal_bytes - start.wal_size
        bounded = max_sync_wal_bytes <= 0 or backlog < max_sync_wal_bytes
        return cls(start, 1 if idle else 2, bounded)

    def update(self, now: DBMetrics) -> int | None:
        """The txid that covers every earlier write, once known; else None."""
        if now.errors != self.ref.errors or (not self.bounded and now.txid != self.ref.txid):
            self.ref, self.need = now, 2  # only a clean (and, if chunked, quiet) sync counts
            return None
        if now.syncs >= self.ref.syncs + self.need and now.txid > 0:
            return now.txid
        return None
