"""A database router that sends reads of chosen models to a Litestream VFS replica.

Subclass it, name the replica alias and the models, and list it in ``DATABASE_ROUTERS``::

    class ReportsRouter(VFSReplicaRouter):
        replica = "prod_replica"
        models = ["reports", "shop.Order"]  # an app label, or app_label.ModelName

Writes are never routed (they go where the other routers or ``default`` say), and nothing
is migrated on a replica. With ``LITESTREAM["vfs"]["max_lag_seconds"]`` set, a read goes to
the replica only while the replica connection has reached the storage within that many
seconds; otherwise, and when the replica cannot be opened, the router steps aside and the
read goes to the primary.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from django.db import DatabaseError, connections

from .vfs import ENGINE

if TYPE_CHECKING:
    from .db.backends.litestream_vfs.base import DatabaseWrapper

logger = logging.getLogger(__name__)


def vfs_aliases() -> list[str]:
    """The aliases of ``DATABASES`` served by the Litestream VFS backend."""
    return [alias for alias in connections.settings if _is_vfs(alias)]


def _is_vfs(alias: str) -> bool:
    return bool(connections.settings[alias].get("ENGINE") == ENGINE)


class VFSReplicaRouter:
    #: The replica alias; None means the only VFS alias in DATABASES.
    replica: str | None = None
    #: App labels or "app_label.ModelName" whose reads go to the replica.
    models: Iterable[str] = ()
    #: Seconds to read from the primary after the replica failed to open.
    retry_after: float = 30.0

    def __init__(self) -> None:
        self._down_until: dict[str, float] = {}

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

    def routes(self, model: Any) -> bool:
        meta = model._meta
        wanted = set(self.models)
        return meta.app_label in wanted or meta.label in wanted

    def fresh(self, alias: str) -> bool:
        """Can serve reads: it opens, and is within ``max_lag_seconds`` when that is set.

        A replica that failed to open is skipped for ``retry_after`` seconds, so that a
        storage outage costs one ``open_timeout``, not one per query.
        """
        if time.monotonic() < self._down_until.get(alias, 0.0):
            return False
        limit = connections.settings[alias]["OPTIONS"].get("max_lag_seconds")
        try:
            connection = cast("DatabaseWrapper", connections[alias])
            connection.ensure_connection()
            staleness = connection.staleness() if limit is not None else 0.0
        except DatabaseError as exc:
            logger.warning("Reading from the primary for %ss: %s", f"{self.retry_after:g}", exc)
            self._down_until[alias] = time.monotonic() + self.retry_after
            return False
        if limit is not None and staleness > limit:
            logger.info(
                "Reading from the primary: replica %r last reached its storage %.0fs ago "
                "(max_lag_seconds=%s).",
                alias,
                staleness,
                limit,
            )
            return False
        return True

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        if not self.routes(model):
            return None
        alias = self.replica_alias()
        return alias if self.fresh(alias) else None

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return None

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        # A row read from the replica is the same row as on the primary.
        return True if self.routes(type(obj1)) or self.routes(type(obj2)) else None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        return False if db in connections.settings and _is_vfs(db) else None
