"""Does the replica hold everything? Decided by watching Litestream, never by prodding it.

``serve`` never asks Litestream to sync (``probe.py`` says why: in Litestream 0.5.17 that
loses its read lock and with it whole ranges of transactions). It waits for Litestream's
own monitor instead, which syncs the WAL every ``monitor-interval`` (1s) in a context that
lives as long as the database is open, then reads how far the replica got from the storage.

* **Locked** (before pre-serve commands and the server): the monitor has opened every
  database (a sync of its own is past its first phase, or has finished): its long read
  transaction is in place, so from now on no write can slip past it.
* **Ready**, for a database the replica is not yet known to hold (and for every database
  with ``--wait-for-replica``): the monitor has synced it to the end at least once (its
  report shows a complete sync) and the replica holds that txid.
* **Settled** (after the writers stopped): a sync that *started after they stopped* (its
  ``started_at``) has finished without error. That sync read the WAL to its end, unless
  more than ``max-sync-wal-bytes`` were waiting: then Litestream works in chunks, and only
  a complete sync that found nothing new (the txid did not move) proves the end was
  reached. The txid then covers every transaction the writers committed. Then the replica
  must hold it.

All of it is read from Litestream's control socket (``/debug/sync-status``), in serve's
private directory: serve opens no metrics address (see ``litestream/probe.py``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence

from ..litestream import probe
from ..replica import listing
from ..replica.ltx import file_name
from .plan import Plan, PlanDB

# Wait up to the given seconds; True when the caller should stop waiting (a signal, or a
# second signal asking for a fast stop).
Wait = Callable[[float], bool]
POLL = 0.1  # between reads of the control socket while waiting for a sync to finish
LOCK_POLL = 0.01  # between reads of the control socket while waiting for the read lock
FIRST_POLL = 0.02  # between reads of the control socket while waiting for a first sync
REPLICA_POLL = 0.1  # between listings of a replica


class Interrupted(Exception):
    """The caller asked to stop waiting."""


def wal_bytes(db: PlanDB) -> int:
    try:
        return os.path.getsize(f"{db.path}-wal")
    except OSError:
        return 0


class Confirm:
    """Readiness and settled-ness of every database of ``plan``, then the replicas."""

    def __init__(
        self,
        plan: Plan,
        wait: Wait,
        cancelled: Callable[[], bool] = lambda: False,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.plan = plan
        self.wait = wait
        self.cancelled = cancelled  # checked while a listing of a replica runs
        self.env = env

    def pause(self, seconds: float) -> None:
        if self.wait(seconds):
            raise Interrupted

    def syncs(self, timeout: float = 2.0) -> dict[str, probe.SyncView] | str:
        return probe.read_syncs(self.plan.socket_path, timeout)

    def why_not_synced(self, db: PlanDB, found: dict[str, probe.SyncView] | str) -> str:
        if isinstance(found, str):
            return found
        if db.path not in found:
            return f"Litestream's control socket does not list {db.path}"
        error = found[db.path].error
        return f"Litestream has not synced it yet{f' ({error})' if error else ''}"

    # -- the local side -----------------------------------------------------------------
    def locked(
        self,
        deadline: float,
        clock: Callable[[], float],
        dbs: Sequence[PlanDB] | None = None,
        poll: float = LOCK_POLL,
    ) -> str | None:
        """None once Litestream's monitor holds its read lock on every database of ``dbs``
        (default: all); else why not by ``deadline``. ``poll``: seconds between looks."""
        waiting = list(self.plan.dbs if dbs is None else dbs)
        while True:
            found = self.syncs(timeout=1.0)
            if not isinstance(found, str):  # once locked, locked (the next sync reads
                waiting = [  # "starting" for a moment)
                    db
                    for db in waiting
                    if not probe.holds_read_lock(found.get(db.path, probe.SyncView()))
                ]
            if not waiting:
                return None
            if clock() > deadline:
                return f"{waiting[0].label}: {self.why_not_synced(waiting[0], found)}"
            self.pause(poll)

    def opened(
        self, deadline: float, clock: Callable[[], float], dbs: Sequence[PlanDB] | None = None
    ) -> dict[str, int] | str:
        """Every database's txid once Litestream's monitor has synced each; else why not."""
        waiting = list(self.plan.dbs if dbs is None else dbs)
        txids: dict[str, int] = {}
        while True:
            found = self.syncs()
            if not isinstance(found, str):
                for db in waiting:
                    view = found.get(db.path)
                    if view is not None and view.complete and view.txid > 0:
                        txids[db.path] = view.txid
                waiting = [db for db in waiting if db.path not in txids]
            if not waiting:
                return txids
            if clock() > deadline:
                return f"{waiting[0].label}: {self.why_not_synced(waiting[0], found)}"
            self.pause(FIRST_POLL)

    def settled(self, deadline: float, clock: Callable[[], float]) -> dict[str, int] | str:
        """Every database's txid covering all writes made before this call; else why not."""
        now = time.time()
        start = self.syncs()
        if isinstance(start, str):
            return start
        settles: dict[str, probe.Settle] = {}
        for db in self.plan.dbs:
            if db.path not in start:
                return f"{db.label}: Litestream's control socket does not list {db.path}"
            settles[db.path] = probe.Settle.begin(
                start[db.path],
                now=now,
                wal_bytes=wal_bytes(db),
                max_sync_wal_bytes=db.max_sync_wal_bytes,
            )
        done: dict[str, int] = {}
        while True:
            self.pause(POLL)
            found = self.syncs()
            if not isinstance(found, str):
                for path, settle in settles.items():
                    if path not in done and path in found:
                        txid = settle.update(found[path])
                        if txid is not None:
                            done[path] = txid
                if len(done) == len(settles):
                    return done
            if clock() > deadline:
                db = next(d for d in self.plan.dbs if d.path not in done)
                if isinstance(found, str):
                    return found
                error = found[db.path].error if db.path in found else ""
                return (
                    f"{db.label}: Litestream did not finish a clean sync of it in time"
                    f"{f' ({error})' if error else ''}"
                )

    # -- the replica side ----------------------------------------------------------------
    def replica_holds(
        self, db: PlanDB, txid: int, deadline: float, clock: Callable[[], float]
    ) -> str | None:
        """None once the replica of ``db`` holds ``txid``; else why not by ``deadline``."""
        while True:
            left = max(1.0, deadline - clock())
            held = listing.replica_txid(
                self.plan.binary,
                self.plan.config_path,
                db.path,
                min(left, 30.0),
                self.env,
                self.cancelled,
            )
            if self.cancelled():
                raise Interrupted
            if isinstance(held, int) and held >= txid:
                return None
            if clock() > deadline:
                if isinstance(held, str):
                    return f"{db.label}: {held}"
                return f"{db.label}: {self.behind(db, held, txid)}"
            self.pause(REPLICA_POLL)

    def behind(self, db: PlanDB, held: int, txid: int) -> str:
        text = f"the replica {db.replica} holds txid {held}, the database is at {txid}"
        needed = os.path.join(db.meta_path, "ltx", "0", file_name(held + 1, held + 1))
        if db.meta_path and not os.path.exists(needed):
            text += (
                f" and the LTX file for txid {held + 1} is missing from Litestream's local state"
            )
        return text

    def replicas_hold(
        self,
        txids: dict[str, int],
        deadline: float,
        clock: Callable[[], float],
        dbs: Sequence[PlanDB] | None = None,
    ) -> str | None:
        for db in self.plan.dbs if dbs is None else dbs:
            reason = self.replica_holds(db, txids[db.path], deadline, clock)
            if reason:
                return reason
        return None
