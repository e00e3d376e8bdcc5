"""The -exec child of ``litestream replicate``: the gate between Litestream and the server.

Litestream starts its -exec child before anything is replicated and loses the child's exit
status. So the child is this gate: it waits until Litestream's own monitor has opened and
synced every database and each replica holds that (``confirm.py``), runs the pre-serve
commands, starts the server in its own process group, relays the stop signal, and once the
server has exited waits until Litestream has synced everything the server wrote and the
replica holds it, all while Litestream runs normally. It writes the outcome where the
supervisor reads it and exits 0. Litestream, seeing its child exit by itself, runs its own
final sync and exits 0.

Stop signals reach the gate from the supervisor (and, when a whole process group or
cgroup is signalled, from the kernel and from Litestream too): all of them are one stop.
A fast stop (a second stop signal to ``serve``) arrives as the file ``plan.fast_path``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from ..config import SECRET_ENV_PREFIX
from ..runner import exit_status
from . import logs, result
from .confirm import Confirm, Interrupted
from .plan import Plan, write_json_atomic
from .watch import ReplicaWatch

log = logging.getLogger("django_litestream.serve")
EXIT = "exit"
FAST_REASON = "not waited for: a second stop signal asked serve to stop at once"


class Gate:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.events: queue.SimpleQueue[tuple[str, int]] = queue.SimpleQueue()
        self.signal: int | None = None
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(SECRET_ENV_PREFIX)}
        self.env.update(plan.server_env)
        # Before the server runs, a stop signal ends every wait; after it ran, only a fast
        # stop ends the wait for the replica.
        self.confirm = Confirm(plan, self.wait_stoppable, self.stop_pending)
        self.final = Confirm(plan, self.wait_fast, self.fast)

    def child_setup(self) -> None:
        """In a child before exec: its own process group, and serve's original umask."""
        os.setpgrp()
        if self.plan.server_umask is not None:
            os.umask(self.plan.server_umask)

    def on_signal(self, signum: int, _frame: object) -> None:
        self.events.put_nowait(("signal", signum))

    def pause(self, seconds: float) -> None:
        """Wait up to ``seconds``, returning early (and remembering it) on a signal."""
        try:
            kind, value = self.events.get(timeout=seconds)
        except queue.Empty:
            return
        if kind == "signal" and self.signal is None:
            self.signal = value

    def stop_pending(self) -> bool:
        return self.signal is not None or not self.events.empty()

    def wait_stoppable(self, seconds: float) -> bool:
        if self.signal is None:
            self.pause(seconds)
        return self.signal is not None

    def fast(self) -> bool:
        return os.path.exists(self.plan.fast_path)

    def wait_fast(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while not self.fast():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.pause(min(left, 0.05))
        return True

    # -- readiness ------------------------------------------------------------------
    def wait_ready(self) -> dict[str, Any] | None:
        # Litestream's own monitor must open each database: a first sync run through the
        # control socket would tie Litestream's read transaction to that HTTP request, and
        # writes would then slip past it (probe.py has the details). So: wait, never prod.
        clock = time.monotonic
        deadline = clock() + self.plan.ready_timeout
        try:
            txids = self.confirm.opened(deadline, clock)
            if isinstance(txids, str):
                return self.not_ready(txids)
            reason = self.confirm.replicas_hold(txids, deadline, clock)
        except Interrupted:
            return self.not_ready("")
        return self.not_ready(reason) if reason else None

    def not_ready(self, reason: str) -> dict[str, Any]:
        if self.signal:
            return {"outcome": result.STOPPED, "signal": self.signal}
        return {"outcome": result.NOT_READY, "detail": reason}

    def synced(self, confirm: Confirm) -> tuple[dict[str, int], str]:
        """After the writers stopped: the txid of each database the replica holds, or why not.

        Runs while Litestream runs normally (its -exec child, this gate, is still alive).
        """
        clock = time.monotonic
        deadline = clock() + self.plan.confirm_timeout
        try:
            txids = confirm.settled(deadline, clock)
            if isinstance(txids, str):
                return {}, txids
            reason = confirm.replicas_hold(txids, deadline, clock)
        except Interrupted:
            return {}, FAST_REASON if self.fast() else "interrupted"
        if reason:
            return {}, reason
        return {db.label: txids[db.path] for db in self.plan.dbs}, ""

    # -- children ---------------------------------------------------------------------
    def run_child(self, argv: Sequence[str], *, is_server: bool) -> int:
        try:
            proc = subprocess.Popen(list(argv), env=self.env, preexec_fn=self.child_setup)
        except OSError as exc:
            log.error("Cannot start %s: %s", argv[0], exc.strerror or exc)
            return 127 if isinstance(exc, FileNotFoundError) else 126
        if is_server:
            write_json_atomic(self.plan.server_pid_path, {"pid": proc.pid})
        threading.Thread(
            target=lambda: self.events.put_nowait((EXIT, proc.wait())), daemon=True
        ).start()
        forwarded = False
        while True:
            if self.signal and not forwarded:
                forwarded = True  # once: the same stop may reach the gate from 3 senders
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, self.signal)
            kind, value = self.events.get()
            if kind == EXIT:
                if is_server:  # no later signal may reach a process that reuses the PID
                    write_json_atomic(self.plan.server_pid_path, {"exited": exit_status(value)})
                return exit_status(value)
            if self.signal is None:
                self.signal = value

    def run(self) -> dict[str, Any]:
        failed = self.wait_ready()
        if failed:
            return failed
        for command in self.plan.pre:
            log.info("Running pre-serve command: %s", " ".join(command))
            status = self.run_child(command, is_server=False)
            if self.signal:
                return {"outcome": result.STOPPED, "signal": self.signal}
            if status != 0:
                return {"outcome": result.PRE_FAILED, "command": list(command), "status": status}
        if self.plan.pre:
            _, reason = self.synced(self.confirm)
            if reason:
                return self.not_ready(reason)
        log.info("%s", logs.starting(self.plan.command, len(self.plan.dbs)))
        started = time.monotonic()
        watch = ReplicaWatch(self.plan)
        watch.start()
        try:
            status = self.run_child(self.plan.command, is_server=True)
        finally:
            watch.close()
        txids, reason = self.synced(self.final)
        return {
            "outcome": result.EXITED,
            "status": status,
            "signal": self.signal,
            "synced": not reason,
            "txids": txids,
            "detail": reason,
            "seconds": time.monotonic() - started,
        }


def main(argv: Sequence[str]) -> int:
    logs.configure()
    plan = Plan.load(argv[1])
    gate = Gate(plan)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, gate.on_signal)
    write_json_atomic(plan.gate_pid_path, {"pid": os.getpid()})
    write_json_atomic(plan.result_path, gate.run())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
