"""The supervisor: one loop that owns every signal, child and deadline of ``serve``.

Signal handlers only enqueue the signal number; the loop in :meth:`Supervisor.run` blocks
on that queue, dispatches through an explicit map, and on every tick reaps children and
checks deadlines (the gunicorn 24 arbiter's shape). This module never imports Django.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import queue
import shlex
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil

from ..runner import describe_status, exit_status, signame, spawn
from . import continuity, exitcodes, finalsync, logs, restore, result, startup
from .lock import DatabaseLock, LockHeld, lock_path
from .plan import Plan, read_json, write_json_atomic

log = logging.getLogger("django_litestream.serve")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
RELAYED = (
    signal.SIGHUP,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGWINCH,
)
HANDLED = (*STOP_SIGNALS, signal.SIGQUIT, *RELAYED, signal.SIGCHLD)
_PR_SET_CHILD_SUBREAPER = 36
TICK = 0.25
WAKE = 0  # not a signal: a thread's "I am done" on the events queue
FAST_REASON = "not waited for: a second stop signal asked serve to stop at once"


def become_subreaper() -> None:
    """Orphaned grandchildren are re-parented to us (and reaped), as if we were PID 1."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


class Supervisor:
    def __init__(self, plan: Plan, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.plan = plan
        self.clock = clock
        self.events: queue.SimpleQueue[int] = queue.SimpleQueue()
        self.locks = [DatabaseLock(db.path) for db in plan.dbs]
        self.cancel = threading.Event()
        self.litestream: Any = None
        self.litestream_status: int | None = None
        self.stopping: int | None = None  # the signal that began the stop
        self.server_deadline: float | None = None
        self.litestream_deadline: float | None = None
        self.server_killed = False
        self.litestream_lost = False
        self.fast = False  # a second stop signal came after the server had exited
        self.lost_in_final_sync = False
        self.litestream_killed = False  # its final sync outlasted its deadline
        self.in_replica: set[str] = set()  # databases the replica holds exactly, at start
        self.held: list[Any] = []  # idle connections keeping each -wal (finalsync.hold)
        self.timeline = startup.Timeline()
        self.dispatch: dict[int, Callable[[int], None]] = {
            signal.SIGTERM: self.on_stop,
            signal.SIGINT: self.on_stop,
            signal.SIGQUIT: self.on_quit,
            signal.SIGCHLD: lambda _sig: self.reap(),
            **{sig: self.on_relay for sig in RELAYED},
        }

    # -- signal plumbing --------------------------------------------------------------
    def handler(self, signum: int, _frame: object) -> None:
        self.events.put_nowait(signum)

    def install_handlers(self) -> None:
        for sig in HANDLED:
            signal.signal(sig, self.handler)

    # -- server process -----------------------------------------------------------------
    def server_pid(self) -> int | None:
        data = read_json(self.plan.server_pid_path)
        pid = data.get("pid") if data else None
        return pid if isinstance(pid, int) else None

    def server_alive(self) -> bool:
        """True while the server runs (a zombie waiting for the gate to reap it is not)."""
        pid = self.server_pid()
        if pid is None:
            return False
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    def server_started(self) -> bool:
        """True once the gate has started the server (it stays true after the exit)."""
        return os.path.exists(self.plan.server_pid_path)

    def server_exited(self) -> bool:
        """True once the gate has seen the server exit (it records the status)."""
        data = read_json(self.plan.server_pid_path)
        return data is not None and "exited" in data

    def signal_server(self, signum: int, *, group: bool = False) -> bool:
        pid = self.server_pid()
        if pid is None:
            return False
        try:
            (os.killpg if group else os.kill)(pid, signum)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def kill_server(self, why: str) -> None:
        if not self.server_killed and self.server_alive():
            log.warning("%s; killing the server's process group", why)
            self.signal_server(signal.SIGKILL, group=True)
        self.server_killed = True

    # -- dispatch ---------------------------------------------------------------------------
    def on_stop(self, signum: int) -> None:
        if self.stopping is None:
            self.begin_stop(signum)
        elif self.server_alive():
            log.warning("Second %s: stopping the server now", signame(signum))
            self.kill_server("Fast shutdown requested")
        elif self.server_started():
            self.fast_stop(signum)
        # else the server never started: the first signal already ends serve promptly

    def begin_stop(self, signum: int, *, announce: bool = True) -> None:
        if announce:
            log.info(
                "%s received: stopping the server gracefully, then a final sync", signame(signum)
            )
        self.stopping = signum
        self.server_deadline = self.clock() + self.plan.graceful_timeout
        if self.litestream is None or self.litestream_status is not None:
            self.cancel.set()
        elif (gate := self.gate_pid()) is not None:
            # Never to Litestream: its -exec child exiting by itself is what keeps it running
            # normally until the gate has confirmed the final sync (it syncs once more and
            # exits 0 after that), and a second INT/TERM would make it skip its own final sync.
            with contextlib.suppress(ProcessLookupError):
                os.kill(gate, signum)
        else:  # the gate has not started yet: Litestream passes the signal on to it
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.litestream.pid, signum)

    def fast_stop(self, signum: int) -> None:
        """A second stop signal after the server exited: stop waiting for the replica."""
        if self.fast:
            return
        self.fast = True
        log.warning(
            "Second %s during the final sync: not waiting for the replica; the newest writes "
            "may be missing from it (they are in the local database, and the next start "
            "replicates them)",
            signame(signum),
        )
        # Litestream's own final sync is what is being waited for: it ends now. (On this
        # path it reads no INT or TERM, and a kill loses nothing local.)
        if self.litestream is not None and self.litestream_status is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.litestream.pid, signal.SIGKILL)

    def gate_pid(self) -> int | None:
        """The gate's PID once it runs as Litestream's child (never a recycled PID)."""
        data = read_json(self.plan.gate_pid_path)
        pid = data.get("pid") if data else None
        if not isinstance(pid, int):
            return None
        try:
            return pid if psutil.Process(pid).ppid() == self.litestream.pid else None
        except psutil.Error:
            return None

    def on_quit(self, signum: int) -> None:
        log.warning("%s received: stopping the server now, then a final sync", signame(signum))
        if self.stopping is None:
            self.begin_stop(signal.SIGTERM, announce=False)
        if self.server_alive():
            self.kill_server("Fast shutdown requested")
        elif self.server_started():
            self.fast_stop(signum)

    def on_relay(self, signum: int) -> None:
        if self.signal_server(signum):
            log.info("Passed %s to the server", signame(signum))
        else:
            log.info("Ignored %s: the server is not running yet", signame(signum))

    # -- children -------------------------------------------------------------------------
    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.litestream is not None and pid == self.litestream.pid:
                self.litestream.returncode = os.waitstatus_to_exitcode(status)
                self.litestream_status = exit_status(self.litestream.returncode)

    def tick(self) -> None:
        self.reap()
        now = self.clock()
        if (
            self.litestream_status is not None
            and not self.litestream_lost
            and read_json(self.plan.result_path) is None
            and not (self.stopping is not None and not self.server_started())
        ):
            self.litestream_lost = True
            if self.server_exited():
                self.lost_in_final_sync = True
                if not self.fast:
                    log.error(
                        "Litestream exited (%s) before the final sync was confirmed",
                        describe_status(self.litestream_status),
                    )
            elif self.signal_server(signal.SIGTERM):
                log.error(
                    "Litestream exited (%s) while the server was running; stopping the "
                    "server so it does not serve unreplicated",
                    describe_status(self.litestream_status),
                )
            else:
                self.server_killed = True
                log.error(
                    "Litestream exited (%s) before the server started; its log above says why",
                    describe_status(self.litestream_status),
                )
            self.server_deadline = now + self.plan.graceful_timeout
        if (
            self.litestream_status is None
            and self.litestream_deadline is None
            and os.path.exists(self.plan.result_path)
        ):
            # The server is done; Litestream's final sync gets its own timeout, not forever.
            self.litestream_deadline = now + self.plan.shutdown_sync_timeout + 10
        if self.server_deadline is not None and now > self.server_deadline:
            self.server_deadline = None
            self.kill_server(
                f"The server did not exit within --graceful-timeout "
                f"({self.plan.graceful_timeout:g}s)"
            )
            if self.litestream_deadline is None:  # the gate exits, then Litestream's own
                self.litestream_deadline = now + self.plan.shutdown_sync_timeout + 10
        if (
            self.litestream_deadline is not None
            and now > self.litestream_deadline
            and self.litestream_status is None
        ):
            log.error("Litestream did not finish its final sync in time; killing it")
            self.litestream_killed = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.litestream.pid, signal.SIGKILL)
            self.litestream_deadline = None

    def finished(self) -> bool:
        if self.litestream_status is None:
            return False
        return not self.litestream_lost or not self.server_alive()

    # -- phases ---------------------------------------------------------------------------
    def acquire_locks(self) -> int | None:
        info = {
            "pid": os.getpid(),
            "socket": self.plan.socket_path,
            "metrics": self.plan.metrics_addr,  # read-only figures (verify, status)
            "state": self.plan.state_path,  # the replica checks' findings (serve/state.py)
        }
        for lock in self.locks:
            try:
                lock.acquire(info)
            except LockHeld as exc:
                log.error("%s", exc)
                return exitcodes.LOCKED
            except OSError as exc:
                log.error(
                    "Cannot create the lock file %s: %s. Check that the database's directory "
                    "exists (or can be created) and that this user may write there.",
                    lock_path(lock.db),
                    restore.describe_error(exc),
                )
                return exitcodes.LOCKED
        return None

    def guard(self) -> int | None:
        """Never replicate a database that is not its replica's continuation (see continuity).

        In a thread, as the restore, so that TERM/INT during a long check still stop serve.
        """
        codes: list[int | None] = []

        def work() -> None:
            try:
                codes.append(continuity.check(self.plan, os.environ, self.cancel, self.in_replica))
            except Exception as exc:  # a bug: never let it turn into an unchecked start
                log.error("The check against the replica failed unexpectedly (%r); a bug", exc)
            finally:
                self.events.put_nowait(WAKE)

        worker = threading.Thread(target=work)
        worker.start()
        while worker.is_alive():
            self.wait_event(TICK, during_restore=True)
        if self.stopping is not None:
            return exit_status(-self.stopping)
        return codes[0] if codes else exitcodes.RESTORE_FAILED

    def restore(self) -> int | None:
        outcomes: list[restore.Outcome] = []

        def work() -> None:
            try:
                outcomes.extend(
                    restore.restore_missing(
                        self.plan.dbs,
                        binary=self.plan.binary,
                        config_path=self.plan.config_path,
                        env=os.environ,
                        timeout=self.plan.restore_timeout,
                        cancel=self.cancel,
                    )
                )
            except Exception as exc:  # a bug: never let it turn into a fresh, empty start
                log.error(
                    "The restore failed unexpectedly (%r); this is a bug, please report it", exc
                )
            finally:
                self.events.put_nowait(WAKE)  # the loop notices at once, not on its next tick

        worker = threading.Thread(target=work)
        worker.start()
        while worker.is_alive():
            self.wait_event(TICK, during_restore=True)
            worker.join(0)
        if self.stopping is not None:
            return exit_status(-self.stopping)
        if len(outcomes) != len(self.plan.dbs):
            return exitcodes.RESTORE_FAILED
        # What serve itself restored is, by construction, exactly what the replica holds.
        self.in_replica.update(o.db.path for o in outcomes if o.state == restore.RESTORED)
        return restore.report(outcomes, require_replica=self.plan.require_replica)

    def wait_event(self, timeout: float, *, during_restore: bool = False) -> None:
        try:
            signum = self.events.get(timeout=timeout)
        except queue.Empty:
            return
        if during_restore and signum in (*STOP_SIGNALS, signal.SIGQUIT):
            if self.stopping is None:
                log.info("%s received during restore: stopping", signame(signum))
            self.stopping = signum
            self.cancel.set()
            return
        if signum == WAKE or (during_restore and signum == signal.SIGCHLD):
            return  # restore threads reap their own children
        handler = self.dispatch.get(signum)
        if handler is not None:
            handler(signum)

    def start_litestream(self) -> None:
        gate = shlex.join(
            [
                sys.executable,
                "-m",
                "django_litestream.serve.gate",
                self.plan.path,
            ]
        )
        argv = [self.plan.binary, "replicate", "-config", self.plan.config_path, "-exec", gate]
        log.info("%s", logs.replicating(self.plan.dbs))
        write_json_atomic(self.plan.trust_path, {"trusted": sorted(self.in_replica)})
        self.timeline.mark("restore")
        self.held = finalsync.hold(db.path for db in self.plan.dbs)
        self.litestream = spawn(argv, os.environ)

    def outcome(self) -> int:
        if self.lost_in_final_sync:
            return exitcodes.SYNC_UNCONFIRMED
        if self.litestream_lost:
            return exitcodes.LITESTREAM_DIED
        found = read_json(self.plan.result_path)
        if found is None and self.stopping is not None:
            return exit_status(-self.stopping)  # stopped before the server ever started
        if found is not None and found.get("outcome") == result.EXITED:
            found.update(self.final_sync())
        return result.exit_code(
            found, self.plan, self.litestream_status, server_killed=self.server_killed
        )

    def final_sync(self) -> dict[str, Any]:
        """Litestream has exited after the server: does the replica hold everything?"""
        if self.fast:
            reason = FAST_REASON
        elif self.litestream_killed:
            reason = (
                "Litestream did not finish its final sync within shutdown-sync-timeout "
                f"({self.plan.shutdown_sync_timeout:g}s) and was stopped"
            )
        else:
            txids, reason = finalsync.confirm(self.plan, os.environ)
            if not reason:
                return {"synced": True, "txids": txids, "detail": ""}
        return {"synced": False, "txids": {}, "detail": reason}

    def run(self) -> int:
        become_subreaper()
        self.install_handlers()
        try:
            code = self.acquire_locks() or self.guard()
            self.timeline.mark("guard")
            code = code or self.restore()
            if code is not None:
                return code
            self.start_litestream()
            startup.Listening(self.plan, self.timeline).start()
            while not self.finished():
                self.wait_event(TICK)
                self.tick()
            return self.outcome()
        finally:
            self.stop_leftovers()
            for lock in self.locks:
                lock.release()
            shutil.rmtree(self.plan.runtime_dir, ignore_errors=True)

    def stop_leftovers(self, timeout: float = 5.0) -> None:
        """No process outlives serve: TERM, then KILL, whatever children remain."""
        children = psutil.Process().children(recursive=True)
        for child in children:
            with contextlib.suppress(psutil.Error):
                child.terminate()
        _, alive = psutil.wait_procs(children, timeout=timeout)
        for child in alive:
            with contextlib.suppress(psutil.Error):
                child.kill()
        self.reap()


def main(argv: list[str]) -> int:
    logs.configure()
    return Supervisor(Plan.load(argv[1])).run()


if __name__ == "__main__":
    code = main(sys.argv)
    # Everything is stopped, reaped and removed: skip the interpreter's teardown.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
