"""``VFSReplicaRouter``: reads of chosen models go to a Litestream VFS replica while it is fresh.

The freshness rule is :class:`django_litestream.vfs.freshness.Freshness` (docs/vfs.rst);
:class:`django_litestream.db.routers.LitestreamRouter` routes every read by the same rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import connections

from .vfs.freshness import Freshness, is_vfs, vfs_aliases


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
        return False if db in connections.settings and is_vfs(db) else None
