"""Read-your-writes for :class:`~django_litestream.db.routers.LitestreamRouter`.

How the router learns "this request wrote": a context variable holds the current *scope*
(one per request, opened by :class:`ReadYourWritesMiddleware`, or by a
``with read_your_writes():`` block around a task). A write marks the scope in two ways:

- the router's ``db_for_write()`` (every ORM write that lets the routers choose);
- an execute wrapper the middleware installs on each primary connection, which sees every
  SQL statement, so ``.using("default")`` writes and raw SQL count too.

Once marked, the scope's reads go to the primary. With
``LITESTREAM["vfs"]["read_your_writes_seconds"] = N`` the middleware also sets a cookie so
that the same browser's next requests read the primary for N seconds (a redirect after a
POST sees its write), and, outside any scope (management commands, tasks), a write sends
the same context's reads to the primary for N seconds.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

COOKIE = "litestream_read_primary"
_WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER)\b", re.IGNORECASE)


@dataclass
class Scope:
    wrote: bool = False  # a write happened in this scope
    sticky: bool = False  # reads go to the primary anyway (a recent write, by cookie)


_scope: ContextVar[Scope | None] = ContextVar("litestream_read_your_writes", default=None)
_last_write: ContextVar[float] = ContextVar("litestream_last_write", default=float("-inf"))


def note_write() -> None:
    """Record that the current request (or context) wrote to a primary."""
    scope = _scope.get()
    if scope is not None:
        scope.wrote = True
    _last_write.set(time.monotonic())


def reads_primary(window: float) -> bool:
    """Should reads go to the primary: this scope wrote, or this context within ``window``."""
    scope = _scope.get()
    if scope is not None and (scope.wrote or scope.sticky):
        return True
    return window > 0 and time.monotonic() - _last_write.get() < window


@contextlib.contextmanager
def read_your_writes(*, sticky: bool = False) -> Iterator[Scope]:
    """A scope: after a write inside it (or from the start, if ``sticky``), its reads go to
    the primary."""
    scope = Scope(sticky=sticky)
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)


def is_write(sql: str) -> bool:
    return bool(_WRITE.match(sql))


def mark_writes(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
) -> Any:
    """A Django execute wrapper that notes writes before they run."""
    if is_write(sql):
        note_write()
    return execute(sql, params, many, context)
