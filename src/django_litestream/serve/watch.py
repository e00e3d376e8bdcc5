"""While the server runs: does every replica still keep up with its database?

Litestream keeps running when its replica stops accepting uploads (storage down,
credentials revoked, bucket deleted) and logs nothing about it at INFO level, so new
writes would exist only on the local disk without anyone knowing.

Each check compares Litestream's local state (the level-0 LTX files it has copied from the
WAL, ``position.py``) with the replica's newest txid, listed from the storage itself. The
replica is failing when it lacks a write that Litestream copied more than two
``sync-interval`` ago (Litestream uploads every ``sync-interval``; a write reaches the
replica within about that), or when its storage cannot be listed within that window. So
an outage that begins right after a check is noticed by the next one: within
``--replica-check-interval`` + 2 x ``sync-interval`` of the first write it holds back (or of
the storage going silent). It never asks Litestream to sync: see ``probe.py`` for why that
would lose writes.

The findings go to the log (one warning when an outage begins, one line when it ends,
saying for how long and how far behind), to ``state.json`` (``state.py``, read by
``status`` and the health endpoint) and, when configured, to the alert webhook.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, NamedTuple

from ..config import secrets
from ..litestream import probe
from ..replica import listing, ltx, position
from ..text import duration_words
from . import hints, state
from .alerts import Webhook
from .confirm import REPLICA_POLL, Interrupted
from .plan import Plan, PlanDB

log = logging.getLogger("django_litestream.serve")

RECHECK = 5.0  # seconds between checks during an outage (never more than the interval)
STALE_GRACE = 10.0  # the state file is stale this long after its next check was due
SYNCS_FAIL = "Litestream's syncs of the database fail"  # a full local disk, say
WEBHOOK_FLUSH = 1.0  # seconds an alert still being sent may delay serve's stop
# The keys of the webhook's JSON events (docs/operations.rst); the end event adds the last two.
EVENT_KEYS = (
    "event",
    "database",
    "alias",
    "path",
    "replica",
    "host",
    "since",
    "lag_txids",
    "lag_seconds",
    "reason",
    "sent_at",
    "ended_at",
    "duration_seconds",
)


class Observation(NamedTuple):
    """One check of one database."""

    ok: bool
    started: float  # epoch seconds
    local_txid: int | None
    replica_txid: int | None  # the newest known (from an earlier listing when this one failed)
    since: float | None  # when Litestream copied the oldest write the replica lacks
    reason: str | None = None

    @property
    def behind(self) -> int:
        if self.local_txid is None or self.replica_txid is None:
            return 0
        return max(0, self.local_txid - self.replica_txid)


class Tracked:
    """What the checks know about one database across checks."""

    def __init__(self, db: PlanDB) -> None:
        self.db = db
        self.confirmed_at: float | None = None  # the last time the replica held everything
        self.replica_txid: int | None = None  # from the last listing that worked
        self.outage_since: float | None = None
        self.max_behind = 0
        self.last: Observation | None = None
        self.sync: probe.SyncView | None = None  # Litestream's latest sync at the last check


def utc(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, timezone.utc).isoformat(timespec="seconds")


def clock_text(moment: float) -> str:
    return time.strftime("%H:%M:%S UTC", time.gmtime(moment))


_FRACTION = re.compile(r"(\.\d{6})\d+")


def last_upload(socket_path: str, db: str, timeout: float = 1.0) -> float | None:
    """When Litestream last finished a replica sync of ``db`` (epoch seconds), or None.

    ``GET /list`` on the control socket (read-only; it never syncs) reports each database's
    ``last_sync_at``, set when a replica sync has uploaded everything it had.
    """
    found = probe.diagnostics(socket_path, "/list", timeout).get(db)
    if not found:
        return None
    try:
        text = _FRACTION.sub(r"\1", str(found["last_sync_at"]).replace("Z", "+00:00"))
        return datetime.fromisoformat(text).timestamp()
    except (ValueError, KeyError, TypeError):
        return None


class ReplicaWatch:
    """A thread that checks every replica every ``interval`` seconds (see the module doc).

    The first check runs at once. During an outage the checks come every few seconds, so
    that its end, and with it the outage's length, is seen promptly. It never stops the
    server: alert on the warning, the health endpoint or the webhook.
    """

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.interval = plan.replica_check_interval
        self.stop = threading.Event()
        self.tracked = {db.path: Tracked(db) for db in plan.dbs}
        self.secrets = secrets.secret_values(os.environ)
        self.host = socket.gethostname()
        self.webhook = (
            Webhook(plan.alert_webhook) if plan.alert_webhook and self.interval > 0 else None
        )
        self.thread = threading.Thread(target=self.run, name="replica-watch", daemon=True)

    @staticmethod
    def window(db: PlanDB) -> float:
        """How long a write may be missing from the replica before it is an outage."""
        return 2 * db.sync_interval

    def start(self) -> None:
        self.write_state(next_at=time.monotonic())
        if self.interval > 0:
            self.thread.start()

    def close(self) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()
        if self.webhook is not None:
            self.webhook.close(wait=WEBHOOK_FLUSH)

    # -- the loop -------------------------------------------------------------------------
    def run(self) -> None:
        next_at = time.monotonic()
        workers = (
            ThreadPoolExecutor(max_workers=len(self.plan.dbs)) if len(self.plan.dbs) > 1 else None
        )
        try:
            while not self.stop.wait(max(0.0, next_at - time.monotonic())):
                started = time.monotonic()
                try:
                    if workers is None:
                        found = [self.check(db) for db in self.plan.dbs]
                    else:
                        found = list(workers.map(self.check, self.plan.dbs))
                except Interrupted:
                    return
                for db, observation in zip(self.plan.dbs, found, strict=True):
                    self.record(self.tracked[db.path], observation)
                failing = any(t.outage_since is not None for t in self.tracked.values())
                next_at = started + (min(self.interval, RECHECK) if failing else self.interval)
                self.write_state(next_at=max(next_at, time.monotonic()))
        finally:
            if workers is not None:
                workers.shutdown(wait=False, cancel_futures=True)

    def check(self, db: PlanDB) -> Observation:
        """Does the replica hold everything Litestream had copied when the check began?"""
        started = time.time()
        tracked = self.tracked[db.path]
        local = position.local_txid(db.meta_path)
        failing = self.syncs_failing(db, tracked)
        if failing is not None:
            return Observation(False, started, local, tracked.replica_txid, None, failing)
        window = self.window(db)
        deadline = time.monotonic() + window
        while True:
            held = listing.replica_txid(
                self.plan.binary,
                self.plan.config_path,
                db.path,
                max(0.5, deadline - time.monotonic()),
                cancelled=self.stop.is_set,
            )
            if self.stop.is_set():
                raise Interrupted
            if isinstance(held, int):
                tracked.replica_txid = held
                if local is None or held >= local:
                    return Observation(True, started, local, held, None)
                lag = position.lag(db.meta_path, held)
                if lag.since is not None and time.time() - lag.since > window:
                    return Observation(False, started, local, held, lag.since, self.behind(db, lag))
                reason = None
            else:
                reason = (
                    f"the storage did not answer within {window:g}s"
                    if held.startswith("listing the replica")
                    else f"listing the storage failed: {held}"
                )
            if time.monotonic() >= deadline:
                known = tracked.replica_txid
                if reason is None:  # listed just now: exactly what the replica lacks
                    lag = position.lag(db.meta_path, known)
                    return Observation(
                        False, started, local, known, lag.since, self.behind(db, lag)
                    )
                # The storage is silent: uploads stopped after Litestream's last successful
                # replica sync (an earlier listing would date the outage a whole interval
                # too early).
                since = last_upload(self.plan.socket_path, db.path) or tracked.confirmed_at
                return Observation(False, started, local, known, since, reason)
            if self.stop.wait(min(REPLICA_POLL, max(0.0, deadline - time.monotonic()))):
                raise Interrupted

    def syncs_failing(self, db: PlanDB, tracked: Tracked) -> str | None:
        """Why Litestream cannot copy the WAL at all, when its latest sync failed and it is
        a new attempt since the last check: a full local disk, say. Its txid then stands
        still while the application's writes pile up in the WAL, so the replica holding that
        txid would prove nothing. Once so, it stays so until a sync succeeds: Litestream
        retries a failing sync with a growing pause (up to 5 minutes), so a check may see
        no new attempt at all, which is no recovery."""
        found = probe.read_syncs(self.plan.socket_path)
        now = found.get(db.path) if isinstance(found, dict) else None
        before, tracked.sync = tracked.sync, now
        if now is None:
            return None
        new_attempt = before is None or now.started_at != before.started_at
        last = tracked.last
        in_outage = last is not None and (last.reason or "").startswith(SYNCS_FAIL)
        if now.complete or not ((now.failed and new_attempt) or in_outage):
            return None
        error = now.error or (before.error if before else "")
        return f"{SYNCS_FAIL} ({error or 'no error reported'})"

    @staticmethod
    def behind(db: PlanDB, lag: position.Lag) -> str:
        held = lag.replica_txid or 0
        text = f"it holds txid {held}, Litestream has copied up to {lag.local_txid}"
        if lag.since is not None:
            text += f"; the oldest write it lacks was copied {time.time() - lag.since:.0f}s ago"
        files = [f for f in ltx.level0(db.meta_path) if f.max_txid > held]
        if db.meta_path and files and files[0].min_txid > held + 1:
            text += (
                f", and the LTX file for txid {held + 1} is missing from Litestream's local state"
            )
        return text

    # -- what a check found ---------------------------------------------------------------
    def record(self, tracked: Tracked, observation: Observation) -> None:
        now = time.time()
        db = tracked.db
        tracked.last = observation
        if observation.ok:
            if tracked.outage_since is not None:
                since = tracked.outage_since
                log.info(
                    "The replica %s of %s confirms syncs again: the outage lasted about %s "
                    "(from %s to %s) and the replica was at most %d transaction%s behind",
                    db.replica,
                    db.label,
                    duration_words(now - since),
                    clock_text(since),
                    clock_text(now),
                    tracked.max_behind,
                    "" if tracked.max_behind == 1 else "s",
                )
                self.alert("replica_outage_ended", tracked, observation, now)
                tracked.outage_since = None
                tracked.max_behind = 0
            tracked.confirmed_at = now
            return
        tracked.max_behind = max(tracked.max_behind, observation.behind)
        if tracked.outage_since is not None:
            return
        tracked.outage_since = min(observation.since or observation.started, observation.started)
        reason = secrets.scrub(observation.reason or "", self.secrets)
        if reason.startswith(SYNCS_FAIL):
            at_risk = "the writes Litestream cannot copy exist only on this disk"
        elif observation.since is not None and self.waiting(db, observation.since):
            at_risk = f"writes since {clock_text(observation.since)} exist only on this disk"
        else:
            at_risk = "no write is waiting for it yet, but new ones will exist only on this disk"
        log.warning(
            "The replica %s of %s did not confirm a sync (%s): %s. serve keeps serving and "
            "checks again every %gs; %s.",
            db.replica,
            db.label,
            reason,
            at_risk,
            min(self.interval, RECHECK),
            hints.storage_hint(reason),
        )
        self.alert("replica_outage_started", tracked, observation, now)

    @staticmethod
    def waiting(db: PlanDB, since: float) -> bool:
        """Has Litestream copied a write after ``since`` (one the replica may lack)?"""
        files = ltx.level0(db.meta_path)
        return bool(files) and position.created(files[-1]) > since

    def alert(self, kind: str, tracked: Tracked, observation: Observation, now: float) -> None:
        if self.webhook is None:
            return
        db = tracked.db
        since = tracked.outage_since
        event: dict[str, Any] = {
            "event": kind,
            "database": db.alias or db.path,
            "alias": db.alias,
            "path": db.path,
            "replica": db.replica,
            "host": self.host,
            "since": utc(since),
            "lag_txids": observation.behind if kind.endswith("started") else tracked.max_behind,
            "lag_seconds": None if since is None else round(now - since, 1),
            "reason": secrets.scrub(observation.reason or "", self.secrets) or None,
            "sent_at": utc(now),
        }
        if kind.endswith("ended"):
            event.update(ended_at=utc(now), duration_seconds=round(now - (since or now), 1))
        self.webhook.send(event)

    # -- the state file -------------------------------------------------------------------
    def write_state(self, *, next_at: float) -> None:
        now = time.time()
        checks = self.interval > 0
        window = max((self.window(db) for db in self.plan.dbs), default=2.0)
        stale_after = now + max(0.0, next_at - time.monotonic()) + window + STALE_GRACE
        dbs = {}
        for tracked in self.tracked.values():
            db, last = tracked.db, tracked.last
            dbs[db.path] = {
                "path": db.path,
                "alias": db.alias,
                "label": db.label,
                "replica": db.replica,
                "ok": None if last is None else last.ok,
                "local_txid": None if last is None else last.local_txid,
                "replica_txid": None if last is None else last.replica_txid,
                "since": None if last is None else last.since,
                "outage_since": tracked.outage_since,
                "checked_at": None if last is None else last.started,
                "confirmed_at": tracked.confirmed_at,
                "window": self.window(db),
                "reason": None
                if last is None or last.reason is None
                else secrets.scrub(last.reason, self.secrets),
            }
        try:
            state.write(
                self.plan.state_path,
                {
                    "pid": os.getpid(),
                    "checks": checks,
                    "interval": self.interval,
                    "updated_at": now,
                    "stale_after": stale_after if checks else None,
                    "dbs": dbs,
                },
            )
        except OSError as exc:  # the runtime directory is gone: serve is stopping
            log.debug("Cannot write %s: %s", self.plan.state_path, exc)
