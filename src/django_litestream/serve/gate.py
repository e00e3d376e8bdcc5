"""The -exec child of ``litestream replicate``: the gate between Litestream and the server.

Litestream starts its -exec child before anything is replicated and loses the child's exit
status. So the child is this gate: it waits until Litestream's own monitor holds its read
lock on every database and each replica holds what its database held at start
(``confirm.py``), runs the pre-serve commands, starts the server in its own process group,
relays the stop signal, and records how the server ended where the supervisor reads it.
Then it exits 0 at once: Litestream, seeing its child exit by itself, runs its own final
sync (WAL to the end, then the replica, retried for ``shutdown-sync-timeout``) and exits,
and the supervisor checks from the files that the replica holds everything
(``position.py``).

Stop signals reach the gate from the supervisor (and, when a whole process group or
cgroup is signalled, from the kernel and from Litestream too): all of them are one stop.

The gate stays small in memory: the standard library's ``socket`` and ``subprocess``, and
the few modules of this package it needs.
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

from ..runner import SECRET_ENV_PREFIX, exit_status
from . import logs, result
from .confirm import Confirm, Interrupted
from .plan import Plan, read_json, write_json_atomic
from .watch import ReplicaWatch

log = logging.getLogger("django_litestream.serve")
EXIT = "exit"


class Gate:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.events: queue.SimpleQueue[tuple[str, int]] = queue.SimpleQueue()
        self.signal: int | None = None
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(SECRET_ENV_PREFIX)}
        self.env.update(plan.server_env)
        # Before the server runs, a stop signal ends every wait.
        self.confirm = Confirm(plan, self.wait_stoppable, self.stop_pending)
        self.phases: dict[str, float] = {}

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

    # -- readiness ------------------------------------------------------------------
    def wait_ready(self) -> dict[str, Any] | None:
        """None once the server may start; else the outcome to record.

        Litestream's own monitor must open each database: a first sync run through the
        control socket would tie Litestream's read transaction to that HTTP request, and
        writes would then slip past it (probe.py has the details). So: wait, never prod.
        A database the supervisor found the replica to hold already (the guard's proof,
        or its own restore) needs nothing more; any other waits until the replica holds
        Litestream's first txid, as every database does with --wait-for-replica.
        """
        clock = time.monotonic
        deadline = clock() + self.plan.ready_timeout
        trusted = set((read_json(self.plan.trust_path) or {}).get("trusted", ()))
        if self.plan.wait_for_replica:
            trusted = set()
        unknown = [db for db in self.plan.dbs if db.path not in trusted]
        try:
            reason = self.confirm.locked(deadline, clock)
            if not reason and unknown:
                txids = self.confirm.opened(deadline, clock, unknown)
                if isinstance(txids, str):
                    return self.not_ready(txids)
                reason = self.confirm.replicas_hold(txids, deadline, clock, unknown)
        except Interrupted:
            return self.not_ready("")
        return self.not_ready(reason) if reason else None

    def not_ready(self, reason: str) -> dict[str, Any]:
        if self.signal:
            return {"outcome": result.STOPPED, "signal": self.signal}
        return {"outcome": result.NOT_READY, "detail": reason}

    def synced(self) -> str:
        """After the pre-serve commands: why the replica does not hold their writes, or ""."""
        clock = time.monotonic
        deadline = clock() + self.plan.confirm_timeout
        try:
            txids = self.confirm.settled(deadline, clock)
            if isinstance(txids, str):
                return txids
            return self.confirm.replicas_hold(txids, deadline, clock) or ""
        except Interrupted:
            return "interrupted"

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

    def mark(self, phase: str) -> None:
        """Record when a phase ended (wall clock: the supervisor logs the durations)."""
        self.phases[phase] = time.time()
        write_json_atomic(self.plan.phases_path, self.phases)

    def run(self) -> dict[str, Any]:
        failed = self.wait_ready()
        if failed:
            return failed
        self.mark("ready")
        for command in self.plan.pre:
            log.info("Running pre-serve command: %s", " ".join(command))
            status = self.run_child(command, is_server=False)
            if self.signal:
                return {"outcome": result.STOPPED, "signal": self.signal}
            if status != 0:
                return {"outcome": result.PRE_FAILED, "command": list(command), "status": status}
        if self.plan.pre and self.plan.wait_for_replica:
            reason = self.synced()
            if reason:
                return self.not_ready(reason)
        log.info("%s", logs.starting(self.plan.command, len(self.plan.dbs)))
        self.mark("server")
        started = time.monotonic()
        watch = ReplicaWatch(self.plan)
        watch.start()
        try:
            status = self.run_child(self.plan.command, is_server=True)
        finally:
            watch.close()
        return {
            "outcome": result.EXITED,
            "status": status,
            "signal": self.signal,
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


def leave(code: int) -> None:
    """Exit without the interpreter's teardown: Litestream starts its final sync when the
    gate is gone, so every millisecond here is one more of every stop."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    leave(main(sys.argv))
