"""The freshness rule: may reads go to a Litestream VFS replica now, or to its primary?

:class:`Freshness` decides; both routers use it
(:class:`django_litestream.routers.VFSReplicaRouter`, for chosen models, and
:class:`django_litestream.db.routers.LitestreamRouter`, for every read). The rule, as
docs/vfs.rst states it:

- the replica must open (within ``open_timeout``); after a failure the primary serves
  reads for ``retry_after`` seconds before the replica is tried again;
- with ``max_lag_seconds`` set, what a replica read can miss must be younger than that.
  A read misses exactly the primary's transactions after the one the replica connection
  holds (``litestream_txid()``). When the primary is a SQLite file on this machine with
  Litestream's local state beside it (it is whenever a router falls back to a primary that
  this machine replicates), :func:`primary_changes` knows them: Litestream's local LTX
  files newer than that txid (captured, not yet uploaded or not yet polled: missing since
  the oldest one was written), and commits Litestream has not captured at all (the
  primary changed after its newest local LTX file and it has not caught up within
  :data:`CAPTURE_GRACE` seconds: missing since that file, as Litestream is not running or
  is stuck). Otherwise the rule falls back to the reader's own delay: the seconds since
  the connection last polled its storage successfully (``litestream_lag()``).

The verdict is cached for :attr:`Freshness.check_every` seconds, and each change of state
(replica -> primary and back) is logged once.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, cast

from django.db import DatabaseError, connections

from .. import conf
from ..config import effective, locations
from ..config.build import build
from ..replica.ltx import default_meta_path, parse_name
from . import ENGINE

if TYPE_CHECKING:
    from .backend import DatabaseWrapper

logger = logging.getLogger("django_litestream.routers")


def vfs_aliases() -> list[str]:
    """The aliases of ``DATABASES`` served by the Litestream VFS backend."""
    return [alias for alias in connections.settings if is_vfs(alias)]


def is_vfs(alias: str) -> bool:
    return bool(connections.settings[alias].get("ENGINE") == ENGINE)


def primary_for(alias: str) -> str:
    """The ``DATABASES`` alias that the replica ``alias`` copies.

    Its ``primary`` option; else the ``LITESTREAM["dbs"]`` entry that replicates to the
    replica's URL (the auto-generated replicas' paths included); else ``default``.
    """
    options = connections.settings[alias].get("OPTIONS", {})
    if options.get("primary"):
        return str(options["primary"])
    url = str(options.get("replica_url", ""))
    try:
        settings = conf.load()
    except Exception:  # a broken LITESTREAM is reported by the checks, not here
        return "default"
    if not url:
        return "default"
    wanted = locations.resolve({"url": url}, os.environ)
    generated = build(settings, os.environ)
    for db, entry in zip(settings.dbs, generated.data["dbs"], strict=True):
        if "dir" in db.options or not locations.resolve(entry["replica"], os.environ).same_place(
            wanted
        ):
            continue
        if db.alias:
            return db.alias
        for name, path in settings.aliases.items():
            if path == db.path:
                return name
    return "default"


# Litestream captures the WAL every second (monitor-interval); a change older than this
# that its local state does not show is taken as not captured.
CAPTURE_GRACE = 2.0


@dataclass(frozen=True)
class Changes:
    """What this machine knows of a primary's transactions: Litestream's local L0 files."""

    local: tuple[tuple[int, int, float], ...]  # (min txid, max txid, mtime) of each file
    changed_at: float  # mtime of the -wal file (or of the database, when there is none)
    held_open: bool  # a -wal file exists: something (Litestream, the app) holds it open

    def missing_since(self, txid: int, now: float) -> float | None:
        """When the oldest transaction after ``txid`` was made, if there is one."""
        captured = [mtime for low, high, mtime in self.local if high > txid]
        newest = max(mtime for _, _, mtime in self.local)
        slack = 0.05 if self.held_open else CAPTURE_GRACE
        uncaptured = self.changed_at > newest + slack and now - self.changed_at > CAPTURE_GRACE
        since = [*captured, *([newest] if uncaptured else [])]
        return min(since) if since else None


def _meta_path(db_path: str) -> str:
    """Where Litestream keeps the local state of the database at ``db_path``."""
    try:
        for db in conf.load().dbs:
            if db.path == db_path:
                return effective.meta_path(db_path, db.options)
    except Exception:  # a broken LITESTREAM is reported by the checks, not here
        pass
    return default_meta_path(db_path)


def primary_changes(alias: str) -> Changes | None:
    """Litestream's local state of the primary ``alias``; None when it is not here."""
    name = connections.settings.get(alias, {}).get("NAME")
    if not name or str(name).startswith(("file:", ":memory:")):
        return None
    path = os.path.abspath(os.fspath(name))
    local = []
    try:
        with os.scandir(os.path.join(_meta_path(path), "ltx", "0")) as entries:
            for entry in entries:
                txids = parse_name(entry.name)
                if txids is None:
                    continue
                try:
                    local.append((*txids, entry.stat().st_mtime))
                except OSError:
                    continue
    except OSError:
        return None
    if not local:
        return None
    try:
        changed_at, held = os.stat(f"{path}-wal").st_mtime, True
    except OSError:
        try:
            changed_at, held = os.stat(path).st_mtime, False
        except OSError:
            return None
    return Changes(tuple(local), changed_at, held)


def wal_mtime(alias: str) -> float | None:
    """When the primary ``alias``'s ``-wal`` file last changed, if it has one."""
    name = connections.settings.get(alias, {}).get("NAME")
    if not name or str(name).startswith(("file:", ":memory:")):
        return None
    try:
        return os.stat(f"{os.fspath(name)}-wal").st_mtime
    except OSError:
        return None


@dataclass(frozen=True)
class Decision:
    """Whether a replica may serve reads now, why, and until when the answer holds."""

    fresh: bool
    reason: str
    until: float  # monotonic time the verdict may be reused until


class Freshness:
    """Whether reads may go to a replica, by the rule in this module's docstring."""

    check_every = 1.0

    def __init__(self, retry_after: float = 30.0) -> None:
        self.retry_after = retry_after
        self._verdicts: dict[str, Decision] = {}
        self._state: dict[str, bool] = {}
        self._primaries: dict[str, str] = {}
        self._lock = threading.Lock()

    def primary(self, alias: str) -> str:
        if alias not in self._primaries:
            self._primaries[alias] = primary_for(alias)
        return self._primaries[alias]

    def fresh(self, alias: str, max_lag: float | None) -> bool:
        connection = cast("DatabaseWrapper", connections[alias])
        now = time.monotonic()
        cached = self._verdicts.get(alias)
        # A verdict is reused only where this thread already holds a replica connection;
        # a thread that has none opens it (bounded) and sees an outage itself.
        if (
            cached is not None
            and now < cached.until
            and (not cached.fresh or connection.connection is not None)
        ):
            return cached.fresh
        verdict = self._judge(alias, connection, max_lag, now)
        self._verdicts[alias] = verdict
        self._log_change(alias, verdict)
        return verdict.fresh

    def _judge(
        self, alias: str, connection: DatabaseWrapper, max_lag: float | None, now: float
    ) -> Decision:
        try:
            position = connection.position()
        except DatabaseError as exc:
            return Decision(False, f"it cannot be opened: {exc}", now + self.retry_after)
        until = now + self.check_every
        if max_lag is None or position is None:
            return Decision(True, "it opens", until)
        changes = primary_changes(self.primary(alias))
        if changes is not None:
            since = changes.missing_since(position.txid, time.time())
            if since is None:
                return Decision(True, "it holds every transaction of the primary", until)
            missing = time.time() - since
            return Decision(
                missing <= max_lag,
                f"it lacks the primary's transactions since {_utc(since)}, {missing:.0f}s ago "
                f"(max_lag_seconds={max_lag:g})",
                until,
            )
        behind = position.lag if position.lag is not None else position.age
        return Decision(
            behind <= max_lag,
            f"it last reached its storage {behind:.0f}s ago (max_lag_seconds={max_lag:g})",
            until,
        )

    def _log_change(self, alias: str, verdict: Decision) -> None:
        with self._lock:
            before = self._state.get(alias, True)
            self._state[alias] = verdict.fresh
        if before and not verdict.fresh:
            logger.warning(
                "Reading from the primary %r instead of the replica %r: %s.",
                self.primary(alias),
                alias,
                verdict.reason,
            )
        elif verdict.fresh and not before:
            logger.info("Reading from the replica %r again: %s.", alias, verdict.reason)


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
