"""While the server runs: does every replica still keep up with its database?

Litestream keeps running when its replica stops accepting uploads (storage down,
credentials revoked, bucket deleted) and logs nothing about it at INFO level, so new
writes would exist only on the local disk without anyone knowing.

Each check reads the database's txid from Litestream's metrics and then waits for the
replica (listed from the storage) to hold it. It never asks Litestream to sync: see
``probe.py`` for why that would lose writes.
"""

from __future__ import annotations

import logging
import threading
import time

from . import hints, probe
from .confirm import Confirm, Interrupted
from .plan import Plan, PlanDB

log = logging.getLogger("django_litestream.serve")


class ReplicaWatch:
    """A thread that, every ``interval`` seconds, reads each database's txid and waits (up
    to ``timeout``) for its replica to hold it: the replica confirms the database's state
    as of the check.

    A database's first failed check is one warning naming the time of its last confirmation;
    its recovery is logged too. It never stops the server: alert on the warning.
    """

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.interval = plan.replica_check_interval
        self.timeout = min(max(self.interval, 5.0), 15.0)
        self.stop = threading.Event()
        self.confirmed_at = {db.path: time.time() for db in plan.dbs}
        self.failing: set[str] = set()
        self.samples: dict[str, probe.DBMetrics] = {}  # each database's metrics at its last check
        self.thread = threading.Thread(target=self.run, name="replica-watch", daemon=True)
        self.confirm = Confirm(plan, self.stop.wait, self.stop.is_set)

    def start(self) -> None:
        if self.interval > 0:
            self.thread.start()

    def close(self) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            found = probe.read_metrics(self.plan.metrics_addr)
            for db in self.plan.dbs:
                try:
                    reason = self.check(db, found)
                except Interrupted:
                    return
                self.record(db.path, db.label, db.replica, reason)

    def check(self, db: PlanDB, found: dict[str, probe.DBMetrics] | str) -> str | None:
        if isinstance(found, str):
            return found
        txid = found[db.path].txid if db.path in found else 0
        if not txid:
            return self.confirm.why_not_synced(db, found)
        # The replica holding Litestream's txid proves nothing when Litestream cannot turn the
        # WAL into LTX files at all (a full local disk): its txid then stands still while the
        # application's writes pile up in the WAL. Every sync since the last check failing
        # (none succeeded, some failed) is that case.
        now, before = found[db.path], self.samples.get(db.path)
        self.samples[db.path] = now
        if (
            before
            and now.errors > before.errors
            and (now.syncs - now.errors <= before.syncs - before.errors)
        ):
            error = probe.sync_status(self.plan.socket_path, db.path).get("error")
            return f"Litestream's syncs of the database fail ({error or 'no error reported'})"
        deadline = time.monotonic() + self.timeout
        reason = self.confirm.replica_holds(db, txid, deadline, time.monotonic)
        return reason.partition(": ")[2] if reason else None

    def record(self, path: str, label: str, replica: str, reason: str | None) -> None:
        now = time.time()
        if reason is None:
            if path in self.failing:
                self.failing.discard(path)
                log.info(
                    "The replica %s of %s confirms syncs again (it did not for %.0fs)",
                    replica,
                    label,
                    now - self.confirmed_at[path],
                )
            self.confirmed_at[path] = now
        elif path not in self.failing:
            self.failing.add(path)
            since = time.strftime("%H:%M:%S UTC", time.gmtime(self.confirmed_at[path]))
            log.warning(
                "The replica %s of %s did not confirm a sync (%s): writes since its last "
                "confirmation at %s exist only on this disk. serve keeps serving and checks "
                "again every %gs; %s.",
                replica,
                label,
                reason,
                since,
                self.interval,
                hints.storage_hint(reason),
            )
