"""``ReadYourWritesMiddleware``: after a write, the rest of the request reads the primary.

Add it to ``MIDDLEWARE`` with :class:`~django_litestream.db.routers.LitestreamRouter`
(anywhere before the middleware and views that write). Each request gets a scope of
:mod:`django_litestream.readwrite`; each primary connection gets an execute wrapper that
marks the scope on the first write, whatever issued it. With
``LITESTREAM["vfs"]["read_your_writes_seconds"] = N`` a request that wrote also sets the
cookie ``litestream_read_primary``, and the same browser's requests read the primary for
the next N seconds (a redirect after a POST sees its own write).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from typing import Any

from django.db import connections

from . import readwrite, vfs
from .vfs.freshness import primary_for, vfs_aliases


class ReadYourWritesMiddleware:
    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        from . import conf

        self.get_response = get_response
        self.window = vfs.parse(conf.load().vfs).read_your_writes_seconds
        self.primaries = sorted({primary_for(alias) for alias in vfs_aliases()})

    def __call__(self, request: Any) -> Any:
        remembered = _cookie_until(request) > time.time()
        with readwrite.read_your_writes(sticky=remembered) as scope, contextlib.ExitStack() as s:
            for alias in self.primaries:
                s.enter_context(connections[alias].execute_wrapper(readwrite.mark_writes))
            response = self.get_response(request)
        if scope.wrote and self.window > 0:
            response.set_cookie(
                readwrite.COOKIE,
                str(int(time.time() + self.window)),
                max_age=math.ceil(self.window),
                httponly=True,
                samesite="Lax",
            )
        return response


def _cookie_until(request: Any) -> float:
    try:
        return float(request.COOKIES.get(readwrite.COOKIE, "0"))
    except ValueError:
        return 0.0
