"""Routing reads to Litestream VFS replicas: the freshness rule, and a router for chosen models.

:class:`Freshness` decides whether a replica may serve reads; both routers use it
(:class:`VFSReplicaRouter` here, for chosen models, and
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
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, cast

from django.db import DatabaseError, connections

from . import vfs
from .vfs import ENGINE

if TYPE_CHECKING:
    from .db.backends.litestream_vfs.base import DatabaseWrapper

logger = logging.getLogger(__name__)


def vfs_aliases() -> list[str]:
    """The aliases of ``DATABASES`` served by the Litestream VFS backend."""
    return [alias for alias in connections.settings if _is_vfs(alias)]


def _is_vfs(alias: str) -> bool:
    return bool(connections.settings[alias].get("ENGINE") == ENGINE)


def primary_for(alias: str) -> str:
    """The ``DATABASES`` alias that the replica ``alias`` copies.

    Its ``primary`` option; else the ``LITESTREAM["dbs"]`` entry that replicates to the
    replica's URL; else ``default``.
    """
    options = connections.settings[alias].get("OPTIONS", {})
    if options.get("primary"):
        return str(options["primary"])
    url = str(options.get("replica_url", ""))
    try:
        from . import conf

        settings = conf.load()
    except Exception:  # a broken LITESTREAM is reported by the checks, not here
        return "default"
    for db in settings.dbs:
        location = vfs.replica_location(db.replica, db.path, settings.path_prefix, os.environ)
        if vfs.copies(url, location):
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


def _meta_path(alias: str, db_path: str) -> str:
    try:
        from . import conf

        for db in conf.load().dbs:
            if db.path == db_path and db.options.get("meta-path"):
                return os.path.abspath(os.path.expanduser(str(db.options["meta-path"])))
    except Exception:  # a broken LITESTREAM is reported by the checks, not here
        pass
    head, name = os.path.split(db_path)
    return os.path.join(head, f".{name}-litestream")


def primary_changes(alias: str) -> Changes | None:
    """Litestream's local state of the primary ``alias``; None when it is not here."""
    name = connections.settings.get(alias, {}).get("NAME")
    if not name or str(name).startswith(("file:", ":memory:")):
        return None
    path = os.path.abspath(os.fspath(name))
    local = []
    try:
        with os.scandir(os.path.join(_meta_path(alias, path), "ltx", "0")) as entries:
            for entry in entries:
                low, _, high = entry.name.removesuffix(".ltx").partition("-")
                try:
                    local.append((int(low, 16), int(high, 16), entry.stat().st_mtime))
                except (ValueError, OSError):
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
class Verdict:
    fresh: bool
    reason: str
    until: float  # monotonic time the verdict may be reused until


class Freshness:
    """Whether reads may go to a replica, by the rule in this module's docstring."""

    check_every = 1.0

    def __init__(self, retry_after: float = 30.0) -> None:
        self.retry_after = retry_after
        self._verdicts: dict[str, Verdict] = {}
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
    ) -> Verdict:
        try:
            position = connection.position()
        except DatabaseError as exc:
            return Verdict(False, f"it cannot be opened: {exc}", now + self.retry_after)
        until = now + self.check_every
        if max_lag is None or position is None:
            return Verdict(True, "it opens", until)
        changes = primary_changes(self.primary(alias))
        if changes is not None:
            since = changes.missing_since(position.txid, time.time())
            if since is None:
                return Verdict(True, "it holds every transaction of the primary", until)
            missing = time.time() - since
            return Verdict(
                missing <= max_lag,
                f"it lacks the primary's transactions since {_utc(since)}, {missing:.0f}s ago "
                f"(max_lag_seconds={max_lag:g})",
                until,
            )
        behind = position.lag if position.lag is not None else position.age
        return Verdict(
            behind <= max_lag,
            f"it last reached its storage {behind:.0f}s ago (max_lag_seconds={max_lag:g})",
            until,
        )

    def _log_change(self, alias: str, verdict: Verdict) -> None:
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


class VFSReplicaRouter:
    """Send reads of chosen models to a Litestream VFS replica.

    Subclass it, name the replica alias and the models, and list it in
    ``DATABASE_ROUTERS``::

        class ReportsRouter(VFSReplicaRouter):
            replica = "prod_replica"
            models = ["reports", "shop.Order"]  # an app label, or app_label.ModelName

    Reads of those models go to the replica while :class:`Freshness` allows, else to the
    database the replica copies; their writes go to that database; nothing is migrated on a
    replica.
    """

    #: The replica alias; None means the only VFS alias in DATABASES.
    replica: str | None = None
    #: App labels or "app_label.ModelName" whose reads go to the replica.
    models: Iterable[str] = ()
    #: Seconds to read from the primary after the replica failed to open.
    retry_after: float = 30.0
    #: Used when the replica has no ``max_lag_seconds``; None: no limit.
    default_max_lag_seconds: float | None = None

    def __init__(self) -> None:
        self.freshness = Freshness(self.retry_after)

    def replica_alias(self) -> str:
        if self.replica is not None:
            return self.replica
        aliases = vfs_aliases()
        if len(aliases) != 1:
            raise LookupError(
                f"{type(self).__name__}.replica is not set and DATABASES has "
                f"{len(aliases)} Litestream VFS aliases ({', '.join(aliases) or 'none'}); "
                "set replica = 'ALIAS' on the router."
            )
        return aliases[0]

    def max_lag(self, alias: str) -> float | None:
        value = connections.settings[alias]["OPTIONS"].get("max_lag_seconds")
        return self.default_max_lag_seconds if value is None else float(value)

    def routes(self, model: Any) -> bool:
        meta = model._meta
        wanted = set(self.models)
        return meta.app_label in wanted or meta.label in wanted

    def fresh(self, alias: str) -> bool:
        return self.freshness.fresh(alias, self.max_lag(alias))

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        if not self.routes(model):
            return None
        alias = self.replica_alias()
        return alias if self.fresh(alias) else self.freshness.primary(alias)

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        if not self.routes(model):
            return None
        return self.freshness.primary(self.replica_alias())

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        # A row read from the replica is the same row as on the primary.
        return True if self.routes(type(obj1)) or self.routes(type(obj2)) else None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        return False if db in connections.settings and _is_vfs(db) else None
