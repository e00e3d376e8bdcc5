"""A read-only SQLite backend that reads a Litestream replica through the Litestream VFS.

Django's SQLite backend, with these changes:

- connections are opened with ``file:NAME?vfs=litestream&replica_url=URL&poll_interval=..``
  through a SQLite binding of their own (``sqlean.py`` or ``pysqlite3-binary``; see
  :mod:`django_litestream.vfs.extension`), never the standard library's ``sqlite3``, whose
  other connections the extension would break;
- every open is bounded by ``open_timeout`` (:mod:`django_litestream.vfs.connect`): the
  extension itself waits without limit on an empty, missing or silent replica;
- a persistent connection that stops following its replica (no successful poll for
  ``reconnect_after`` seconds, for example after ``poll L1: non-contiguous ltx file``) is
  noticed on its next use, logged and replaced by a fresh one;
- every connection runs ``PRAGMA query_only = ON``, and a write fails with an
  ``OperationalError`` that names the alias and the replica;
- with ``OPTIONS["time_travel"]`` (set by :func:`django_litestream.time_travel`) a new
  connection reads the replica as of that moment.

When ``NAME`` is an in-memory database (Django's test runner gives every alias one) or the
alias is a test mirror, the connection is plain SQLite, exactly as Django's own backend.
"""

from __future__ import annotations

import datetime
import decimal
import logging
import re
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import tee
from types import ModuleType
from typing import Any
from urllib.parse import quote

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.sqlite3 import base as sqlite_base
from django.db.backends.sqlite3._functions import register as register_functions
from django.utils.asyncio import async_unsafe
from django.utils.dateparse import parse_date, parse_datetime, parse_time

from .. import vfs
from ..config import durations
from ..config.secrets import mask_url
from . import connect, extension

logger = logging.getLogger("django_litestream.vfs")

# Keys of OPTIONS that this backend reads; they never reach connect().
VFS_OPTIONS = (
    "replica_url",
    "poll_interval",
    "open_timeout",
    "max_lag_seconds",
    "cache_size",
    "reconnect_after",
    "primary",
    "bin_path",
    "extension_path",
    "time_travel",
)
# A persistent connection is checked for being stuck at most this often.
CHECK_EVERY = 1.0
_FORMAT_QMARK = re.compile(r"(?<!%)%s")

try:
    _binding: ModuleType | None = extension.find_binding()
    _binding_error: extension.VFSUnavailableError | None = None
except extension.VFSUnavailableError as exc:
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


if _binding is not None:
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


def parse_vfs_time(text: Any) -> datetime.datetime | None:
    """``litestream_time()`` (RFC 3339, up to nanoseconds) as an aware datetime."""
    if not isinstance(text, str) or not text[:1].isdigit():
        return None
    text = text.strip().replace("Z", "+00:00")
    match = re.match(r"^(.*?\d\d:\d\d:\d\d)(\.\d+)?(.*)$", text)
    if match is None:
        return None
    head, fraction, zone = match.groups()
    fraction = (fraction or "")[:7]  # at most microseconds
    try:
        return datetime.datetime.fromisoformat(head + fraction + (zone or "+00:00"))
    except ValueError:
        return None


@dataclass(frozen=True)
class Position:
    """Where a replica connection is: what ``litestream_txid/time/lag()`` say."""

    txid: int
    time: datetime.datetime | None  # of the newest transaction the connection holds
    lag: float | None  # seconds since its last successful poll; None before the first
    age: float  # seconds since the connection opened


@dataclass(frozen=True)
class Travel:
    """What a time-travel connection found when it opened."""

    latest_txid: int
    latest_time: datetime.datetime | None
    txid: int
    time: datetime.datetime | None


class DatabaseWrapper(sqlite_base.DatabaseWrapper):
    display_name = "SQLite (Litestream VFS replica)"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.vfs_options: dict[str, Any] = {}
        self._vfs_cursor: type | None = None
        self._opened_at = 0.0
        self._next_check = 0.0
        #: How many times a connection that stopped following was replaced.
        self.vfs_reconnects = 0
        self.travel: Travel | None = None

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

    @property
    def replica_url(self) -> str:
        return str(self.settings_dict["OPTIONS"].get("replica_url", ""))

    def option(self, key: str, default: Any = None) -> Any:
        return self.settings_dict["OPTIONS"].get(key, default)

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
        uri = f"file:{name}?vfs=litestream&replica_url={url}&poll_interval={poll}"
        if self.vfs_options.get("cache_size"):
            uri += f"&cache_size={int(self.vfs_options['cache_size'])}"
        return uri

    def _cannot_open(self, problem: str) -> str:
        url = mask_url(self.vfs_options["replica_url"])
        return (
            f"Cannot open the Litestream VFS replica '{self.alias}' ({url}): {problem.rstrip('.')}."
        )

    def _diagnose(self, seconds: float) -> str | None:
        return connect.diagnose(
            self.vfs_options["replica_url"],
            bin_path=self.vfs_options.get("bin_path"),
            timeout=seconds,
        )

    @async_unsafe
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        if not self.uses_vfs:
            return super().get_new_connection(conn_params)
        if _binding is None:
            assert _binding_error is not None
            raise ImproperlyConfigured(f"DATABASES['{self.alias}']: {_binding_error}")
        module = _binding
        try:
            extension.load_extension(module, self.vfs_options.get("extension_path"))
        except extension.VFSUnavailableError as exc:
            raise ImproperlyConfigured(f"DATABASES['{self.alias}']: {exc}") from None
        timeout = float(self.vfs_options.get("open_timeout", vfs.DEFAULT_OPEN_TIMEOUT))
        params = {**conn_params, "database": self.vfs_uri(), "uri": True}
        try:
            conn = connect.open_bounded(
                params["database"],
                lambda: module.connect(**params),
                close=lambda c: c.close(),
                timeout=timeout,
                diagnose=self._diagnose,
            )
        except connect.ReplicaUnavailableError as exc:
            raise module.OperationalError(self._cannot_open(str(exc))) from None
        except module.Error as exc:
            # The extension refused at once ("SQL logic error"): ask the binary why.
            problem = self._diagnose(min(timeout, 10.0))
            raise module.OperationalError(
                self._cannot_open(f"{exc}; {problem}" if problem else str(exc))
            ) from None
        self._opened_at = time.monotonic()
        self._next_check = self._opened_at + CHECK_EVERY
        try:
            register_functions(conn)
            conn.execute("PRAGMA query_only = ON")
            conn.execute("PRAGMA foreign_keys = ON")
            for init_command in getattr(self, "init_commands", ()):  # Django >= 5.1
                if init_command := init_command.strip():
                    conn.execute(init_command)
            self.travel = None
            if self.vfs_options.get("time_travel"):
                self.travel = self._travel(conn, self.vfs_options["time_travel"])
        except BaseException:
            conn.close()
            raise
        self._vfs_cursor = _cursor_class(
            module,
            f"attempt to write a readonly database: '{self.alias}' is a read-only "
            f"Litestream VFS replica of {mask_url(self.vfs_options['replica_url'])}; "
            "send writes to the primary database.",
        )
        return conn

    def _travel(self, conn: Any, moment: str) -> Travel:
        latest_txid, latest_time = conn.execute(
            "SELECT litestream_txid(), litestream_time()"
        ).fetchone()
        conn.execute("SELECT litestream_set_time(?)", (moment,)).fetchone()
        txid, _ = conn.execute("SELECT litestream_txid(), litestream_time()").fetchone()
        # litestream_time() now echoes the target; the transaction's own time is the
        # latest one's when nothing newer was skipped.
        return Travel(
            latest_txid=int(latest_txid, 16),
            latest_time=parse_vfs_time(latest_time),
            txid=int(txid, 16),
            time=parse_vfs_time(latest_time) if txid == latest_txid else None,
        )

    def create_cursor(self, name: str | None = None) -> Any:
        if self.uses_vfs and self._vfs_cursor is not None:
            return self.connection.cursor(factory=self._vfs_cursor)
        return super().create_cursor(name)

    # -- following the replica ---------------------------------------------------------
    @async_unsafe
    def ensure_connection(self) -> None:
        super().ensure_connection()
        if (
            self.uses_vfs
            and not self.in_atomic_block
            and time.monotonic() >= self._next_check
            and self.vfs_options.get("reconnect_after") is not None
            and not self.vfs_options.get("time_travel")
        ):
            self._replace_if_stuck()

    def reconnect_threshold(self) -> float:
        """Seconds without a successful poll after which the connection is replaced.

        ``reconnect_after``, but never less than three poll intervals and a second.
        """
        poll = durations.seconds(str(self.vfs_options.get("poll_interval", "1s")))
        return max(float(self.vfs_options["reconnect_after"]), 3 * (poll or 1.0) + 1.0)

    def _replace_if_stuck(self) -> None:
        now = time.monotonic()
        self._next_check = now + CHECK_EVERY
        try:
            txid, lag = self.connection.execute(
                "SELECT litestream_txid(), litestream_lag()"
            ).fetchone()
            behind = float(lag) if int(lag) >= 0 else now - self._opened_at
        except self.Database.Error:
            txid, behind = "?", float("inf")
        limit = self.reconnect_threshold()
        if behind <= limit:
            return
        logger.warning(
            "Litestream VFS replica %r (%s) stopped following its replica: no successful "
            "poll for %.0fs, still at txid %s. Opening a new connection. The extension's "
            "log (LITESTREAM_LOG_FILE, else standard output) says why, e.g. 'poll L1: "
            "non-contiguous ltx file'.",
            self.alias,
            mask_url(self.replica_url),
            behind,
            txid,
        )
        self.vfs_reconnects += 1
        self.close()
        super().ensure_connection()

    def position(self) -> Position | None:
        """The replica position of this thread's connection (opened if need be).

        None for a plain SQLite connection (Django's test databases).
        """
        if not self.uses_vfs:
            return None
        self.ensure_connection()
        with self.wrap_database_errors:
            txid, when, lag = self.connection.execute(
                "SELECT litestream_txid(), litestream_time(), litestream_lag()"
            ).fetchone()
        return Position(
            txid=int(txid, 16),
            time=parse_vfs_time(when),
            lag=float(lag) if int(lag) >= 0 else None,
            age=time.monotonic() - self._opened_at,
        )

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
        position = self.position()
        if position is None:
            return 0.0
        return position.lag if position.lag is not None else position.age
