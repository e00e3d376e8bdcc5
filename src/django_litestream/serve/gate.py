"""The -exec child of ``litestream replicate``: the gate between Litestream and the server.

Litestream starts its -exec child before anything is replicated, loses the child's exit
status, and skips its final sync when the child exits non-zero after a signal. So the child
is this gate: it waits until Litestream is ready, runs the pre-serve commands, starts the
server in its own process group, relays the one signal Litestream forwards, confirms a
final sync, writes the server's real status where the supervisor reads it, and exits 0 so
Litestream always runs its own final sync too.
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
from . import logs, probe, result
from .plan import Plan, write_json_atomic
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

    # -- readiness ------------------------------------------------------------------
    def wait_ready(self) -> dict[str, Any] | None:
        plan = self.plan
        deadline = time.monotonic() + plan.ready_timeout
        while (reason := probe.metrics_answer(plan.metrics_addr)) is not None:
            if self.signal or time.monotonic() > deadline:
                return self.not_ready(reason)
            self.pause(0.05)
        for db in plan.dbs:
            while True:
                remaining = max(1.0, min(10.0, deadline - time.monotonic()))
                reason = probe.confirm_sync(plan.binary, plan.socket_path, db.path, remaining)
                if reason is None:
                    break
                if self.signal or time.monotonic() > deadline:
                    return self.not_ready(f"{db.label}: {reason}")
                self.pause(0.2)
        return None

    def not_ready(self, reason: str) -> dict[str, Any]:
        if self.signal:
            return {"outcome": result.STOPPED, "signal": self.signal}
        return {"outcome": result.NOT_READY, "detail": reason}

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
                forwarded = True
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, self.signal)
            kind, value = self.events.get()
            if kind == EXIT:
                if is_server:  # no later signal may reach a process that reuses the PID
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self.plan.server_pid_path)
                return exit_status(value)
            if self.signal is None:
                self.signal = value

    def final_sync(self) -> str | None:
        for db in self.plan.dbs:
            reason = probe.confirm_sync(
                self.plan.binary, self.plan.socket_path, db.path, self.plan.shutdown_sync_timeout
            )
            if reason:
                return f"{db.label}: {reason}"
        return None

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
        if self.plan.pre and (reason := self.final_sync()):
            return self.not_ready(reason)
        log.info("%s", logs.starting(self.plan.command, len(self.plan.dbs)))
        started = time.monotonic()
        watch = ReplicaWatch(self.plan)
        watch.start()
        try:
            status = self.run_child(self.plan.command, is_server=True)
        finally:
            watch.close()
        reason = self.final_sync()
        return {
            "outcome": result.EXITED,
            "status": status,
            "signal": self.signal,
            "synced": reason is None,
            "detail": reason or "",
            "seconds": time.monotonic() - started,
        }


def main(argv: Sequence[str]) -> int:
    logs.configure()
    plan = Plan.load(argv[1])
    gate = Gate(plan)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, gate.on_signal)
    write_json_atomic(plan.result_path, gate.run())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
