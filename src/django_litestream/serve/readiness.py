"""The waits before and around the server's start, in a thread that wakes the supervisor.

* **Locked**: Litestream's own monitor holds its read transaction on every database
  (``confirm.py``). Until then the supervisor's read transactions (``readhold.py``) keep
  SQLite from checkpointing; once it holds, they end.
* **Ready**: a database the replica already holds (the guard proved it, or serve just
  restored it) and that the supervisor holds is ready at once, so the server may start
  while Litestream starts. Any other database (a first backup, writes Litestream has not
  uploaded yet, a database not in WAL mode, every database with ``--wait-for-replica``)
  is ready once Litestream holds it, has synced it once, and the replica holds that txid.
* **Synced** (``--wait-for-replica`` with pre-serve commands): the replica holds what they
  wrote, as in the final sync.

The supervisor reads the attributes after each wake-up; a stop sets ``cancel`` and ends
every wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection

from .confirm import LOCK_POLL, Confirm, Interrupted
from .plan import Plan

# Between looks at Litestream while the server boots: nothing waits for the answer but the
# end of serve's read transactions, and every look costs Litestream (and the booting
# server, on a small machine) a little CPU.
EARLY_POLL = 0.05


class Readiness:
    def __init__(
        self, plan: Plan, early: Collection[str], cancel: threading.Event, wake: Callable[[], None]
    ) -> None:
        self.plan = plan
        self.cancel = cancel
        self.wake = wake
        self.unknown = [db for db in plan.dbs if db.path not in early]
        self.confirm = Confirm(plan, cancel.wait, cancel.is_set)
        self.locked = False
        self.ready = not self.unknown  # the server may start now
        self.failure: str | None = None  # why readiness failed ("" when interrupted)
        self.synced: str | None = None  # after pre-serve commands: "" or why not

    def start(self) -> None:
        threading.Thread(target=self.run, name="readiness", daemon=True).start()

    def run(self) -> None:
        clock = time.monotonic
        deadline = clock() + self.plan.ready_timeout
        try:
            poll = EARLY_POLL if self.ready else LOCK_POLL
            reason = self.confirm.locked(deadline, clock, poll=poll)
            if reason:
                self.failure = reason
                return
            self.locked = True
            if self.unknown:
                self.wake()
                txids = self.confirm.opened(deadline, clock, self.unknown)
                if isinstance(txids, str):
                    self.failure = txids
                    return
                reason = self.confirm.replicas_hold(txids, deadline, clock, self.unknown)
                if reason:
                    self.failure = reason
                    return
                self.ready = True
        except Interrupted:
            self.failure = ""
        finally:
            self.wake()

    def start_synced(self) -> None:
        threading.Thread(target=self.run_synced, name="synced", daemon=True).start()

    def run_synced(self) -> None:
        """After the pre-serve commands: does the replica hold what they wrote?"""
        clock = time.monotonic
        deadline = clock() + self.plan.confirm_timeout
        try:
            txids = self.confirm.settled(deadline, clock)
            if isinstance(txids, str):
                self.synced = txids
            else:
                self.synced = self.confirm.replicas_hold(txids, deadline, clock) or ""
        except Interrupted:
            self.synced = "interrupted"
        finally:
            self.wake()
