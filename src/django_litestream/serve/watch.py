"""While the server runs: does every replica still confirm syncs?

Litestream keeps running when its replica stops accepting uploads (storage down,
credentials revoked, bucket deleted) and logs nothing about it at INFO level, so new
writes would exist only on the local disk without anyone knowing.
"""

from __future__ import annotations

import logging
import threading
import time

from . import hints, probe
from .plan import Plan

log = logging.getLogger("django_litestream.serve")


class ReplicaWatch:
    """A thread that, every ``interval`` seconds, forces a sync of each database and waits
    for its replica (``litestream sync -wait``).

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
        self.thread = threading.Thread(target=self.run, name="replica-watch", daemon=True)

    def start(self) -> None:
        if self.interval > 0:
            self.thread.start()

    def close(self) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            for db in self.plan.dbs:
                reason = probe.confirm_sync(
                    self.plan.binary,
                    self.plan.socket_path,
                    db.path,
                    self.timeout,
                    cancel=self.stop,
                )
                if self.stop.is_set():
                    return
                self.record(db.path, db.label, db.replica, reason)

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
