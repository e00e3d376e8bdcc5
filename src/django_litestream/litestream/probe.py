"""Read what a running Litestream has done, without ever asking it to do anything.

The control socket (a Unix socket in serve's private directory: only its user can
connect) is what serve and ``verify`` read, safe while the server writes (what the replica
itself holds is read from the storage: ``replica/listing.py``): ``GET /debug/sync-status``
reports, per database, Litestream's latest sync of the WAL: when it started, whether it
runs, its phase, the txid it reached, where in the WAL it ended, and its error
(:func:`read_syncs`). A metrics address (``addr``) serves the same figures as counters,
but over TCP to every local user, with Go's profiling and debug pages beside them: serve
opens none (a user's own ``addr`` stays theirs).

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
import re
import socket
from typing import Any, NamedTuple

# Phases of a sync that has opened the database (``DB.init`` returned, the read lock held):
# every phase except the first. ``starting`` is set before ``newSyncExecutor`` -> ``init``.
_BEFORE_INIT = frozenset({"", "starting"})


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


def diagnostics(socket_path: str, path: str, timeout: float) -> dict[str, dict[str, Any]]:
    try:
        status, body = http_get(socket_path, path, timeout)
        if status != 200:
            return {}
        found = json.loads(body)["databases"]
        return {d["path"]: d for d in found if isinstance(d, dict) and "path" in d}
    except (HTTPFailure, ValueError, KeyError, TypeError):
        return {}


def holds_read_lock(view: SyncView) -> bool:
    """Has Litestream's monitor opened the database, its long read transaction in place?

    A sync (running or finished) is past its first phase: ``DB.init`` (which begins the read
    transaction, ``acquireReadLock``) runs in ``newSyncExecutor`` before a sync leaves
    ``starting``, and a failed ``init`` releases the lock and ends the sync there. Nothing
    but Litestream's own monitor syncs here (serve never calls ``litestream sync``), so the
    transaction lives in the monitor's context, as long as the database is open. (The next
    sync reads ``starting`` for a moment: callers remember a database once seen locked.)
    """
    return view.phase not in _BEFORE_INIT


class SyncView(NamedTuple):
    """Litestream's latest sync of one database, as ``/debug/sync-status`` reports it.

    Each sync of Litestream's monitor (every ``monitor-interval``) replaces the report:
    ``started_at`` tells one sync from the next.
    """

    active: bool = False  # running right now
    operation: str = ""  # "sync" (the monitor's), or "checkpoint"
    phase: str = ""  # where it is (or where it ended)
    started_at: float | None = None  # epoch seconds
    txid: int = 0  # the txid it reached (a finished, clean sync: the local txid)
    wal_offset: int = 0  # where in the WAL the last successful sync ended
    error: str = ""  # why it failed

    @property
    def complete(self) -> bool:
        """A sync that finished without error, through its last phase."""
        return (
            not self.active
            and self.operation == "sync"
            and not self.error
            and self.phase == _LAST_PHASE
        )

    @property
    def failed(self) -> bool:
        return not self.active and bool(self.error)


# The last phase of a sync that went through (``DB.syncLocked``: after it, the metrics).
_LAST_PHASE = "update_metrics"
_NANOS = re.compile(r"(\.\d{6})\d+")


def go_time(text: Any) -> float | None:
    """Epoch seconds of a Go ``time.Time`` in JSON (RFC 3339, nanoseconds), or None."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(
            _NANOS.sub(r"\1", str(text).replace("Z", "+00:00"))
        ).timestamp()
    except (TypeError, ValueError):
        return None


def read_syncs(socket_path: str, timeout: float = 2.0) -> dict[str, SyncView] | str:
    """Every database's latest sync by path (control socket), or why it could not be read."""
    try:
        status, body = http_get(socket_path, "/debug/sync-status", timeout)
        if status != 200:
            return f"Litestream's control socket answered HTTP {status}"
        found = json.loads(body)["databases"]
    except HTTPFailure as exc:
        return f"Litestream's control socket did not answer ({exc})"
    except (ValueError, KeyError, TypeError):
        return "Litestream's control socket did not answer like Litestream"
    views: dict[str, SyncView] = {}
    for d in found if isinstance(found, list) else ():
        if isinstance(d, dict) and "path" in d:
            views[str(d["path"])] = SyncView(
                active=bool(d.get("active")),
                operation=str(d.get("operation") or ""),
                phase=str(d.get("phase") or ""),
                started_at=go_time(d["started_at"]) if d.get("started_at") else None,
                txid=_whole(d.get("txid")),
                wal_offset=_whole(d.get("last_synced_wal_offset")),
                error=str(d.get("error") or ""),
            )
    return views


def _whole(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class Settle:
    """Has Litestream's monitor finished a clean sync that began after ``since``?

    A sync that started after the writers stopped (its ``started_at`` is later than the
    moment this began), finished without error, read the WAL to its end, unless more than
    ``max-sync-wal-bytes`` were waiting: then Litestream works in chunks, and only a
    complete sync that found nothing new (the txid did not move) proves the end was
    reached. Its txid then covers every transaction the writers committed.
    """

    def __init__(self, since: float, bounded: bool, txid: int | None = None) -> None:
        self.since = since  # a sync must start after this (epoch seconds)
        self.bounded = bounded  # the backlog fit in one sync (``max-sync-wal-bytes``)
        self.txid = txid  # the last clean sync's txid, when known (for a chunked backlog)

    @classmethod
    def begin(
        cls, start: SyncView | None, *, now: float, wal_bytes: int, max_sync_wal_bytes: int
    ) -> Settle:
        """From the report read when the writers had stopped, at ``now`` (epoch seconds)."""
        start = start or SyncView()
        backlog = wal_bytes - start.wal_offset
        bounded = max_sync_wal_bytes <= 0 or backlog < max_sync_wal_bytes
        return cls(now, bounded, start.txid if start.complete else None)

    def update(self, now: SyncView) -> int | None:
        """The txid that covers every earlier write, once known; else None."""
        if now.active or now.started_at is None or now.started_at <= self.since:
            return None  # not yet a sync that began after the writers stopped
        if now.failed:
            self.since, self.txid = now.started_at, None  # only a clean one after it counts
            return None
        if not now.complete or now.txid <= 0:
            return None
        if self.bounded or now.txid == self.txid:
            return now.txid
        self.since, self.txid = now.started_at, now.txid  # a chunk: wait for a quiet one
        return None
