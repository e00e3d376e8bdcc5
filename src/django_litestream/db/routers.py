"""``LitestreamRouter``: every read to a Litestream VFS replica, every write to the primary.

::

    DATABASE_ROUTERS = ["django_litestream.db.routers.LitestreamRouter"]
    MIDDLEWARE = [..., "django_litestream.middleware.ReadYourWritesMiddleware"]

- reads go to the read replica (the only VFS alias in ``DATABASES``, or
  ``LITESTREAM["vfs"]["read_replica"]``) while it is fresh enough (the rule of
  :class:`django_litestream.vfs.freshness.Freshness`; ``max_lag_seconds`` defaults to 60 here),
  else to the primary, the database the replica copies;
- after a write, the rest of the request reads the primary (read-your-writes, see
  :mod:`django_litestream.readwrite`);
- writes go to the primary, and nothing is migrated on a replica.

List it after routers that pin some models to other databases: it answers for every model.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from .. import readwrite, vfs
from ..vfs.freshness import Freshness, is_vfs, vfs_aliases


class LitestreamRouter:
    #: Seconds to read from the primary after the replica failed to open.
    retry_after: float = 30.0
    #: Used when the replica has no ``max_lag_seconds`` (the older release's default).
    default_max_lag_seconds: float | None = 60.0

    def __init__(self) -> None:
        self.freshness = Freshness(self.retry_after)
        self._settings: vfs.VFSSettings | None = None
        self._replica: str | None = None

    def settings(self) -> vfs.VFSSettings:
        if self._settings is None:
            from .. import conf

            self._settings = vfs.parse(conf.load().vfs)
        return self._settings

    def replica_alias(self) -> str:
        if self._replica is None:
            named = self.settings().read_replica
            aliases = vfs_aliases()
            if named is None and len(aliases) != 1:
                raise ImproperlyConfigured(
                    f"LitestreamRouter found {len(aliases)} Litestream VFS aliases in "
                    f"DATABASES ({', '.join(aliases) or 'none'}); name the one to read from "
                    "with LITESTREAM['vfs']['read_replica']."
                )
            self._replica = named or aliases[0]
        return self._replica

    def primary(self) -> str:
        return self.freshness.primary(self.replica_alias())

    def max_lag(self, alias: str) -> float | None:
        value = connections.settings[alias]["OPTIONS"].get("max_lag_seconds")
        return self.default_max_lag_seconds if value is None else float(value)

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        replica = self.replica_alias()
        if readwrite.reads_primary(self.settings().read_your_writes_seconds):
            return self.primary()
        if self.freshness.fresh(replica, self.max_lag(replica)):
            return replica
        return self.primary()

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        readwrite.note_write()
        return self.primary()

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        # A row read from the replica is the same row as on the primary.
        pair = {self.replica_alias(), self.primary()}
        if obj1._state.db in pair and obj2._state.db in pair:
            return True
        return None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        return False if db in connections.settings and is_vfs(db) else None
