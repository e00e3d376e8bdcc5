"""Durations as Litestream reads them: Go duration strings (``1s``, ``1m30s``, ``500ms``).

A bare number in Litestream's configuration is nanoseconds (``sync-interval: 10`` syncs
every 10 ns), so numbers never pass for durations here; :func:`go` writes a number of
seconds as Go would read it. No Django here.
"""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def seconds(value: object) -> float | None:
    """Seconds in a Go duration string such as '1m30s'; None when it is not one."""
    if not isinstance(value, str):
        return None
    parts = _PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return None
    return sum(float(n) * _UNITS[u] for n, u in parts)


def go(value: float) -> str:
    """A number of seconds as a Go duration string: ``1.5`` is ``1.5s``."""
    return f"{value:.6f}".rstrip("0").rstrip(".") + "s"
