"""Moments in time as a person writes them under stress, for point-in-time restores and reads.

Accepted (``parse``):

- a :class:`~datetime.datetime` (naive: local time);
- ISO 8601 with a zone (``2026-11-25T10:00:00Z``, ``2026-11-25T10:00+01:00``);
- ISO 8601 or ``YYYY-MM-DD HH:MM[:SS]`` or ``YYYY-MM-DD`` without a zone: local time;
- relative: ``-15m``, ``-2h``, ``-1d``, ``-90s``, ``-1w``, or ``15 minutes ago``,
  ``1 hour ago``, ``an hour ago``, ``2 days ago``;
- ``now``.

The result says how the input was read (which zone was used), so that a restore can print
it before it overwrites anything. No Django here: callers pass their zone when they want
one other than the machine's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo

FORMS = (
    "an ISO 8601 time ('2026-11-25T10:00:00Z', '2026-11-25 10:00' for local time), "
    "a relative one ('-15m', '-2h', '-1d', '15 minutes ago', '1 hour ago') or 'now'"
)

_UNITS = {
    "s": 1,
    "sec": 1,
    "secs": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "mins": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hr": 3600,
    "hrs": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 604800,
    "week": 604800,
    "weeks": 604800,
}
_NUMBER = r"(\d+(?:\.\d+)?|an?)"
_MINUS = re.compile(rf"^-\s*{_NUMBER}\s*([a-z]+)$")
_AGO = re.compile(rf"^{_NUMBER}\s*([a-z]+)\s+ago$")
_FRACTION = re.compile(r"\.(\d+)(?=[+-]|$)")


class WhenError(ValueError):
    """A moment that cannot be read; the message names the accepted forms."""


@dataclass(frozen=True)
class Moment:
    at: datetime  # aware, in UTC
    description: str  # how the input was read, for the user

    @property
    def rfc3339(self) -> str:
        """The form Litestream's ``-timestamp`` reads."""
        text = self.at.astimezone(timezone.utc).isoformat(timespec="microseconds")
        return text.replace(".000000", "").replace("+00:00", "Z")


def utc_text(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _zone_text(moment: datetime) -> str:
    offset = moment.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{moment.tzname()}, UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _localize(naive: datetime, zone: tzinfo | None) -> datetime:
    # Without a zone, astimezone() reads a naive time with the machine's own rules (DST too).
    return naive.astimezone() if zone is None else naive.replace(tzinfo=zone)


def _relative(text: str, now: datetime) -> Moment | None:
    match = _MINUS.match(text) or _AGO.match(text)
    if match is None:
        return None
    number, unit = match.groups()
    if unit not in _UNITS:
        raise WhenError(f"Unknown unit {unit!r} in {text!r}; use s, m, h, d or w (or words).")
    amount = 1.0 if number in ("a", "an") else float(number)
    try:
        at = now - timedelta(seconds=amount * _UNITS[unit])
    except OverflowError:
        raise WhenError(f"{text!r} is too far in the past.") from None
    return Moment(at, f"{text!r} = {utc_text(at)}")


def parse(
    value: str | datetime, *, now: datetime | None = None, zone: tzinfo | None = None
) -> Moment:
    """Read ``value`` as a moment; ``zone`` is used for times without one (default: local)."""
    now = now or datetime.now(timezone.utc)
    if isinstance(value, datetime):
        aware = value if value.tzinfo else _localize(value, zone)
        return Moment(aware.astimezone(timezone.utc), utc_text(aware))
    text = " ".join(str(value).strip().lower().split())
    if not text:
        raise WhenError(f"No time given; give {FORMS}.")
    if text == "now":
        return Moment(now.astimezone(timezone.utc), f"now = {utc_text(now)}")
    relative = _relative(text, now)
    if relative is not None:
        return relative
    iso = text.upper()
    if iso.endswith("Z"):
        iso = iso[:-1] + "+00:00"
    # Python 3.10's fromisoformat takes only 3 or 6 digits of a fraction of a second.
    iso = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], iso)
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        raise WhenError(f"Cannot read {str(value)!r} as a time; give {FORMS}.") from None
    if parsed.tzinfo is not None:
        return Moment(parsed.astimezone(timezone.utc), utc_text(parsed))
    aware = _localize(parsed, zone)
    return Moment(
        aware.astimezone(timezone.utc),
        f"{str(value).strip()!r} read as local time ({_zone_text(aware)}) = {utc_text(aware)}",
    )
