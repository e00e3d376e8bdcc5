"""Durations as Litestream reads them: Go duration strings (``1s``, ``1m30s``, ``500ms``).

A bare number in Litestream's configuration is nanoseconds (``sync-interval: 10`` syncs
every 10 ns), so numbers never pass for durations here; :func:`go` writes a number of
seconds as Go would read it. No Django here.
"""

from __future__ import annotations

import datetime
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


def of_timedelta(value: datetime.timedelta) -> str:
    """A ``datetime.timedelta`` as a Go duration string Litestream reads exactly.

    ``timedelta(seconds=10)`` is ``10s``, ``timedelta(minutes=90)`` is ``1h30m``, 1.5 s is
    ``1s500ms``: whole units from the integer microseconds, never an exponent (Go's
    ``ParseDuration`` has none). A negative one stays negative (Litestream refuses it,
    naming the key).
    """
    micros = (value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds
    if micros == 0:
        return "0s"
    sign, micros = ("-", -micros) if micros < 0 else ("", micros)
    parts = []
    for unit, size in (("h", 3_600_000_000), ("m", 60_000_000), ("s", 1_000_000), ("ms", 1000)):
        count, micros = divmod(micros, size)
        if count:
            parts.append(f"{count}{unit}")
    if micros:
        parts.append(f"{micros}us")
    return sign + "".join(parts)
