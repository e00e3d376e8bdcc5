"""The health endpoint's verdict, from the state a running ``serve`` already keeps.

``LITESTREAM["health"]`` holds its options (:class:`HealthSettings`). For each configured
database the verdict reads the lock file beside it (which ``serve`` holds and which names
its state file) and that state file (``serve/state.py``): no Litestream process, no
network, a few small reads. A database is healthy while a ``serve`` replicates it, its
replica checks are current, and the oldest write its replica lacks is at most
``max_lag_seconds`` old. What the public sees is fixed wording; paths, replica locations
and error text are detail, shown only to staff or to a request with the token. Nothing
secret is ever in it. No Django here (``views.py`` is the Django side).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..config.types import Database
from ..errors import ConfigurationError
from ..serve import state
from ..text import did_you_mean

CHECK_ID = "django_litestream.E020"
DEFAULT_MAX_LAG = 60.0
KNOWN_KEYS = ("max_lag_seconds", "token")
MIN_TOKEN = 16

# Public wording per status: the same for everyone, never a path or an error text.
OK, BEHIND, LAGGING = "ok", "behind", "lagging"
NOT_SERVING, STARTING, UNCHECKED, STALE = "not_serving", "starting", "unchecked", "stale"
PUBLIC = {
    OK: "the replica holds every write",
    BEHIND: "the replica is behind, for less than max_lag_seconds",
    LAGGING: "the replica lacks writes older than max_lag_seconds",
    NOT_SERVING: "no 'litestream serve' is running for this database",
    STARTING: "serve has not finished its first replica check",
    UNCHECKED: "serve runs without replica checks (--replica-check-interval 0)",
    STALE: "serve's replica checks have stopped reporting",
}
HEALTHY = (OK, BEHIND)


class HealthSettingError(ConfigurationError):
    """``LITESTREAM["health"]`` is malformed (system check E020)."""

    def __init__(self, msg: str, hint: str) -> None:
        super().__init__(f"{msg} {hint}")
        self.msg = msg
        self.hint = hint


@dataclass(frozen=True)
class HealthSettings:
    max_lag_seconds: float = DEFAULT_MAX_LAG
    token: str = field(default="", repr=False)


def parse(value: Mapping[str, Any]) -> HealthSettings:
    """``LITESTREAM["health"]`` as :class:`HealthSettings`; HealthSettingError names the key."""
    unknown = sorted(str(k) for k in value if k not in KNOWN_KEYS)
    if unknown:
        raise HealthSettingError(
            f"LITESTREAM['health'] has the unknown key {unknown[0]!r}.",
            f"Hint: {did_you_mean(unknown[0], KNOWN_KEYS)}Known keys: {', '.join(KNOWN_KEYS)}.",
        )
    lag = value.get("max_lag_seconds", DEFAULT_MAX_LAG)
    if (
        isinstance(lag, bool)
        or not isinstance(lag, int | float)
        or not math.isfinite(lag)
        or lag <= 0
    ):
        raise HealthSettingError(
            f"LITESTREAM['health']['max_lag_seconds'] must be a positive number of seconds, "
            f"not {lag!r}.",
            "Hint: write e.g. 'max_lag_seconds': 60.",
        )
    token = value.get("token", "")
    if token is None:
        token = ""
    if not isinstance(token, str):
        raise HealthSettingError(
            f"LITESTREAM['health']['token'] must be a string, not {type(token).__name__}.",
            "Hint: read it from the environment, e.g. "
            "'token': os.environ.get('LITESTREAM_HEALTH_TOKEN', '').",
        )
    if token and (len(token) < MIN_TOKEN or token != token.strip()):
        raise HealthSettingError(
            f"LITESTREAM['health']['token'] is too short to keep the details private (it "
            f"must have at least {MIN_TOKEN} characters and no surrounding spaces).",
            "Hint: generate one with "
            "'python -c \"import secrets; print(secrets.token_urlsafe(32))\"'.",
        )
    return HealthSettings(float(lag), token)


@dataclass(frozen=True)
class DBHealth:
    status: str
    lag_seconds: float | None
    db: Database
    detail: dict[str, Any]

    @property
    def healthy(self) -> bool:
        return self.status in HEALTHY


@dataclass(frozen=True)
class Report:
    dbs: tuple[DBHealth, ...]
    max_lag_seconds: float

    @property
    def healthy(self) -> bool:
        return bool(self.dbs) and all(d.healthy for d in self.dbs)

    def as_json(self, *, detail: bool) -> dict[str, Any]:
        databases = []
        for found in self.dbs:
            item: dict[str, Any] = {
                "alias": found.db.alias,
                "status": found.status,
                "healthy": found.healthy,
                "lag_seconds": None if found.lag_seconds is None else round(found.lag_seconds, 1),
                "reason": PUBLIC[found.status],
            }
            if detail:
                item.update(found.detail)
            databases.append(item)
        out: dict[str, Any] = {
            "status": "ok" if self.healthy else "unhealthy",
            "max_lag_seconds": self.max_lag_seconds,
            "databases": databases,
        }
        if not self.dbs:
            out["reason"] = "LITESTREAM['dbs'] lists no database"
        return out


def _one(db: Database, options: HealthSettings, now: float, cache: dict[str, Any]) -> DBHealth:
    detail: dict[str, Any] = {"path": db.path}
    found = state.running(db.path, cache)
    if found is None:
        return DBHealth(NOT_SERVING, None, db, detail)
    detail["serve_pid"] = found.pid
    if found.state is None:
        return DBHealth(STARTING, None, db, detail)
    if not found.state.get("checks"):
        return DBHealth(UNCHECKED, None, db, detail)
    mine = found.db_state(db.path)
    if mine is None or mine.get("ok") is None:
        return DBHealth(STARTING, None, db, detail)
    for key in (
        "replica",
        "local_txid",
        "replica_txid",
        "since",
        "outage_since",
        "checked_at",
        "confirmed_at",
        "reason",
    ):
        detail[key] = mine.get(key)
    stale_after = found.state.get("stale_after")
    if isinstance(stale_after, int | float) and now > stale_after:
        return DBHealth(STALE, None, db, detail)
    if mine.get("ok"):
        return DBHealth(OK, 0.0, db, detail)
    began = mine.get("since") or mine.get("outage_since") or mine.get("checked_at") or now
    lag = max(0.0, now - float(began))
    return DBHealth(LAGGING if lag > options.max_lag_seconds else BEHIND, lag, db, detail)


def evaluate(dbs: Sequence[Database], options: HealthSettings, now: float) -> Report:
    """Every database's health (a ``dir`` entry is a directory, not a database: skipped)."""
    cache: dict[str, Any] = {}
    found = tuple(_one(db, options, now, cache) for db in dbs if "dir" not in db.options)
    return Report(found, options.max_lag_seconds)
