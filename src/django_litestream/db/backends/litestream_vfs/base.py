"""A read-only SQLite backend that reads a Litestream replica through the Litestream VFS.

Django's SQLite backend, with three changes:

- connections are opened with ``file:NAME?vfs=litestream&replica_url=URL&poll_interval=..``
  through a DB-API binding that can load the VFS extension (the standard library's
  ``sqlite3`` when it can, else ``sqlean.py`` or ``pysqlite3-binary``; see
  :func:`django_litestream.vfs.find_binding`);
- before the first connection to a replica, the replica is checked to hold data, with a
  deadline: the extension blocks forever on an empty or missing replica;
- every connection runs ``PRAGMA query_only = ON``, and a write fails with an
  ``OperationalError`` that names the alias and the replica.

When ``NAME`` is an in-memory database (Django's test runner gives every alias one) or the
alias is a test mirror, the connection is plain SQLite, exactly as Django's own backend.
"""

from __future__ import annotations

import datetime
import decimal
import re
import sqlite3
import time
from collections.abc import Mapping
from itertools import tee
from types import ModuleType
from typing import Any
from urllib.parse import quote

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.sqlite3 import base as sqlite_base
from django.db.backends.sqlite3._functions import register as register_functions
from django.utils.asyncio import async_unsafe
from django.utils.dateparse import parse_date, parse_datetime, parse_time

from .... import vfs

# Keys of OPTIONS that this backend reads; they never reach connect().
VFS_OPTIONS = ("replica_url", "poll_interval", "open_timeout", "max_lag_seconds", "bin_path")
_FORMAT_QMARK = re.compile(r"(?<!%)%s")

try:
    _binding: ModuleType | None = vfs.find_binding()
    _binding_error: vfs.VFSUnavailableError | None = None
except vfs.VFSUnavailableError as exc:
    _binding, _binding_error = None, exc


def _register_types(module: ModuleType) -> None:
    """Django registers its converters and adapters on the standard library's sqlite3 only."""

    def decoder(conv: Any) -> Any:
        return lambda s: conv(s.decode())

    module.register_converter("bool", b"1".__eq__)
    module.register_converter("date", decoder(parse_date))
    module.register_converter("time", decoder(parse_time))
    module.register_converter("datetime", decoder(parse_datetime))
    module.register_converter("timestamp", decoder(parse_datetime))
    module.register_adapter(decimal.Decimal, str)
    module.register_adapter(datetime.date, lambda v: v.isoformat())
    module.register_adapter(datetime.datetime, lambda v: v.isoformat(" "))


if _binding is not None and _binding is not sqlite3:
    _register_types(_binding)


def _convert_query(query: str, param_names: list[str] | None) -> str:
    """Django's "format"/"pyformat" placeholders to sqlite's "qmark"/"named" ones."""
    if param_names is None:
        return _FORMAT_QMARK.sub("?", query).replace("%%", "%")
    return query % {name: f":{name}" for name in param_names}


def _cursor_class(module: ModuleType, readonly_message: str) -> type:
    """A cursor of ``module`` that converts placeholders and explains read-only errors."""
    base = module.Cursor

    def explain(exc: Exception) -> Exception:
        if "readonly database" in str(exc):
            error: Exception = module.OperationalError(readonly_message)
            return error
        return exc

    class VFSCursorWrapper(base):  # type: ignore[misc, valid-type]
        def execute(self, query: str, params: Any = None) -> Any:
            try:
                if params is None:
                    return base.execute(self, query)
                names = list(params) if isinstance(params, Mapping) else None
                return base.execute(self, _convert_query(query, names), params)
            except module.OperationalError as exc:
                raise explain(exc) from exc

        def executemany(self, query: str, param_list: Any) -> Any:
            peek, param_list = tee(iter(param_list))
            first = next(peek, None)
            names = list(first) if isinstance(first, Mapping) else None
            try:
                return base.executemany(self, _convert_query(query, names), param_list)
            except module.OperationalError as exc:
                raise explain(exc) from exc

    return VFSCursorWrapper


class DatabaseWrapper(sqlite_base.DatabaseWrapper):
    display_name = "SQLite (Litestream VFS replica)"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.vfs_options: dict[str, Any] = {}
        self._vfs_cursor: type | None = None
        self._opened_at = 0.0

    # -- which mode -----------------------------------------------------------------
    @property
    def uses_vfs(self) -> bool:
        """False for Django's in-memory test database and for test mirrors."""
        name = self.settings_dict["NAME"]
        return "replica_url" in self.settings_dict["OPTIONS"] and not (
            self.creation.is_in_memory_db(name)
        )

    @property
    def Database(self) -> ModuleType:  # type: ignore[override]  # noqa: N802 (Django's name)
        if self.uses_vfs and _binding is not None:
            return _binding
        return sqlite3

    # -- connections ----------------------------------------------------------------
    def get_connection_params(self) -> dict[str, Any]:
        kwargs = super().get_connection_params()
        self.vfs_options = {key: kwargs.pop(key) for key in VFS_OPTIONS if key in kwargs}
        return kwargs

    def vfs_uri(self) -> str:
        """``file:NAME?vfs=litestream&replica_url=..&poll_interval=..`` for this alias."""
        name = quote(str(self.settings_dict["NAME"]), safe="")
        url = quote(self.vfs_options["replica_url"], safe="")
        poll = quote(str(self.vfs_options.get("poll_interval", vfs.DEFAULT_POLL_INTERVAL)))
        return f"file:{name}?vfs=litestream&replica_url={url}&poll_interval={poll}"

    @async_unsafe
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        if not self.uses_vfs:
            return super().get_new_connection(conn_params)
        if _binding is None:
            assert _binding_error is not None
            raise ImproperlyConfigured(f"DATABASES['{self.alias}']: {_binding_error}")
        module = _binding
        try:
            vfs.load_extension(module)
        except vfs.VFSUnavailableError as exc:
            raise ImproperlyConfigured(f"DATABASES['{self.alias}']: {exc}") from None
        url = self.vfs_options["replica_url"]
        timeout = float(self.vfs_options.get("open_timeout", vfs.DEFAULT_OPEN_TIMEOUT))
        try:
            vfs.probe_replica(url, bin_path=self.vfs_options.get("bin_path"), timeout=timeout)
        except vfs.ReplicaUnavailableError as exc:
            raise module.OperationalError(
                f"Cannot open the Litestream VFS replica '{self.alias}' ({vfs.display_url(url)}): "
                f"{str(exc).rstrip('.')}."
            ) from None
        params = {**conn_params, "database": self.vfs_uri(), "uri": True}
        conn = module.connect(**params)
        self._opened_at = time.monotonic()
        try:
            register_functions(conn)
            conn.execute("PRAGMA query_only = ON")
            conn.execute("PRAGMA foreign_keys = ON")
            for init_command in getattr(self, "init_commands", ()):  # Django >= 5.1
                if init_command := init_command.strip():
                    conn.execute(init_command)
        except BaseException:
            conn.close()
            raise
        self._vfs_cursor = _cursor_class(
            module,
            f"attempt to write a readonly database: '{self.alias}' is a read-only "
            f"Litestream VFS replica of {vfs.display_url(url)}; send writes to the primary "
            "database.",
        )
        return conn

    def create_cursor(self, name: str | None = None) -> Any:
        if self.uses_vfs and self._vfs_cursor is not None:
            return self.connection.cursor(factory=self._vfs_cursor)
        return super().create_cursor(name)

    def lag(self) -> int:
        """``litestream_lag()``: seconds since this connection last polled the replica
        successfully, or -1 before its first poll."""
        with self.cursor() as cursor:
            cursor.execute("SELECT litestream_lag()")
            return int(cursor.fetchone()[0])

    def staleness(self) -> float:
        """Seconds since this connection last reached the replica storage.

        Before the first successful poll, the time since the connection opened (it read
        the storage then); 0 for a plain SQLite connection (tests).
        """
        if not self.uses_vfs:
            return 0.0
        self.ensure_connection()
        lag = self.lag()
        return float(lag) if lag >= 0 else time.monotonic() - self._opened_at
