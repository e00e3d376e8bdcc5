"""The supervisor: one loop that owns every signal, child and deadline of ``serve``.

Signal handlers only enqueue the signal number; the loop in :meth:`Supervisor.run` blocks
on that queue, dispatches through an explicit map, and on every tick reaps children and
checks deadlines (the gunicorn 24 arbiter's shape). Waits that take time (the guard, the
restore, Litestream's readiness, the replica after pre-serve commands) run in threads
that wake the loop when done; every child is started and reaped by the loop itself.

The order of a run: locks, guard, restore (a gunicorn server booted by the Django side,
and the locks it took, are adopted: ``earlyboot.py``); then a read transaction on every database
(``readhold.py``), Litestream (``replicate -exec <sleeper>``, ``sleeper.py``), and at once
the pre-serve commands and the server when the replica already holds every database (else
after Litestream's first sync has reached the replica); the read transactions end when
Litestream's monitor holds its own. At the stop: the server, then the sleeper (Litestream's
final sync), then the proof from the files (``finalsync.py``). This module never imports
Django.
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
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ..litestream.process import (
    THREAD_CHILDREN,
    Adopted,
    describe_status,
    exit_status,
    signame,
    spawn,
)
from ..replica.dbfile import is_missing
from . import (
    configverdict,
    continuity,
    earlysignals,
    exitcodes,
    finalsync,
    logs,
    readhold,
    restore,
    result,
    servergroup,
    startup,
)
from .lock import DatabaseLock, LockHeld, lock_path
from .plan import Plan, write_json_atomic
from .readiness import Readiness
from .sleeper import Sleeper

log = logging.getLogger("django_litestream.serve")


class Child(Protocol):
    """A pre-serve command or the server: a Popen, or (booted early) process.Adopted."""

    pid: int
    returncode: int | None

    def poll(self) -> int | None: ...


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

# What the supervisor is doing with the server's side of the run.
WAITING = "waiting"  # for readiness
PRE = "pre"  # running a pre-serve command
SYNCING = "syncing"  # --wait-for-replica: the replica must hold what they wrote
SERVING = "serving"
DONE = "done"  # the outcome is known; Litestream runs its final sync


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
        self.sleeper: Sleeper | None = None
        self.stopping: int | None = None  # the signal that began the stop
        self.server_deadline: float | None = None
        self.litestream_deadline: float | None = None
        self.server_killed = False
        self.group_deadline: float | None = None  # the exited master's workers must be gone
        self.litestream_lost = False
        self.fast = False  # a second stop signal came after the server had exited
        self.litestream_killed = False  # its final sync outlasted its deadline
        self.in_replica: set[str] = set()  # databases the replica holds exactly, at start
        self.held: dict[str, Any] = {}  # idle connections keeping each -wal (finalsync.hold)
        self.reading: dict[str, Any] = {}  # read transactions until Litestream holds its own
        self.readiness: Readiness | None = None
        self.stage = WAITING
        self.child: Child | None = None  # the running pre command or server
        self.pre_done = 0
        self.forwarded = False  # the stop signal reached the running child once
        self.server: Child | None = None
        self.booting: Child | None = None  # the server, booted early, until its go
        self.gate: Any = None  # earlyboot.Gate: that go
        if plan.booted_pid:  # booted by the Django side before the exec (a head start)
            from .earlyboot import Gate

            self.booting = Adopted(plan.booted_pid)
            self.gate = Gate(plan.go_path, plan.gate_fd)
        self.server_started_at = 0.0
        self.watch: Any = None
        self.checkpoints: Any = None  # an application's blocking checkpoint (checkpoints.py)
        self.outcome_found: dict[str, Any] | None = None
        self.timeline = startup.Timeline()
        self.env = plan.server_environ(os.environ)
        self.dispatch: dict[int, Callable[[int], None]] = {
            signal.SIGTERM: self.on_stop,
            signal.SIGINT: self.on_stop,
            signal.SIGQUIT: self.on_quit,
            signal.SIGCHLD: lambda _sig: self.reap(),
            WAKE: lambda _sig: self.advance(),
            **{sig: self.on_relay for sig in RELAYED},
        }

    # -- signal plumbing --------------------------------------------------------------
    def handler(self, signum: int, _frame: object) -> None:
        self.events.put_nowait(signum)

    def wake(self) -> None:
        self.events.put_nowait(WAKE)

    def install_handlers(self) -> None:
        for sig in HANDLED:
            signal.signal(sig, self.handler)
        earlysignals.take_over()  # a stop noted before the exec arrives now (earlysignals.py)

    # -- server process -----------------------------------------------------------------
    def server_pid(self) -> int | None:
        """The server's PID while it runs; None before it starts and once it is reaped (so no
        later signal reaches a process that reuses the PID)."""
        if self.server is None or self.server.returncode is not None:
            return None
        return int(self.server.pid)

    def server_alive(self) -> bool:
        return self.server_pid() is not None

    def server_started(self) -> bool:
        """True once the server has been started (it stays true after the exit)."""
        return self.server is not None

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
        if self.child is None:
            self.cancel.set()  # ends every wait (guard, restore, readiness)
        # (Once a pre-serve command or the server has run, the wait for Litestream's read
        # lock goes on: it must hold the databases before its final sync.) Never a signal
        # to Litestream: its -exec child exiting is what starts that final sync, after the
        # server has exited (a second INT/TERM would make it skip it).
        self.forward_stop()
        self.advance()

    def forward_stop(self) -> None:
        """The stop signal, once, to the running pre-serve command or server."""
        if self.stopping is None or self.forwarded or self.child is None:
            return
        if self.child.returncode is None:
            self.forwarded = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.child.pid, self.stopping)

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
        """Collect Litestream, the pre-serve command or server, and orphans re-parented to
        serve. Children of the waiting threads (``litestream ltx``) reap themselves."""
        if self.litestream is not None and self.litestream_status is None:
            code = self.litestream.poll()
            if code is not None:
                self.litestream_status = exit_status(code)
        running = self.child is not None and self.child.returncode is None
        # (a server's exited master stays unreaped while its group is being stopped)
        if running and not (self.child is self.server and self.server_group_left()):
            assert self.child is not None
            code = self.child.poll()
            if code is not None:
                self.child_exited(exit_status(code))
        self.reap_orphans()

    def server_group_left(self) -> bool:
        """True while processes of an exited master's group run; they are stopped first, and
        the master is reaped (the final sync released) once none is left (servergroup.py)."""
        pid = int(self.child.pid) if self.child is not None else 0
        info = servergroup.master_exited(pid)
        if info is None:
            return False
        left = servergroup.left_in_group(pid)
        if not left:
            return False
        if self.group_deadline is None:
            log.warning(
                "The server's master exited (%s) while %d process%s of its group still "
                "run; stopping them before the final sync, so that no write lands after it",
                servergroup.describe(info),
                len(left),
                "" if len(left) == 1 else "es",
            )
            self.group_deadline = self.clock() + self.plan.graceful_timeout
            servergroup.stop(pid, signal.SIGKILL if self.server_killed else signal.SIGTERM)
        elif self.clock() > self.group_deadline:
            self.kill_server("The server's processes did not exit within --graceful-timeout")
        return True

    def reap_orphans(self) -> None:
        """Reap exited processes re-parented to serve (it is their subreaper, or PID 1).

        ``waitid(WNOWAIT)`` names a waitable child without reaping it, so a child that a
        waiting thread started is left to that thread (the rest wait for the next look).
        """
        if not hasattr(os, "waitid"):  # not Linux: no subreaper, so no orphans come here
            return
        mine = {p.pid for p in (self.litestream, self.child, self.booting) if p is not None}
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None or info.si_pid in mine or info.si_pid in THREAD_CHILDREN:
                return
            with contextlib.suppress(ChildProcessError):
                os.waitpid(info.si_pid, os.WNOHANG)

    def start_child(self, argv: Sequence[str], *, is_server: bool) -> bool:
        try:
            # Its own process group; TERM if serve dies (a SIGKILL of serve does not leave
            # the server running unreplicated). From this (the main) thread, so that the
            # "parent death" is serve's own exit.
            umask = {} if self.plan.server_umask is None else {"umask": self.plan.server_umask}
            child = spawn(argv, self.env, **umask)
        except OSError as exc:
            log.error("Cannot start %s: %s", argv[0], exc.strerror or exc)
            status = 127 if isinstance(exc, FileNotFoundError) else 126
            if is_server:
                self.finish({"outcome": result.EXITED, "status": status, "signal": None})
            else:
                self.finish({"outcome": result.PRE_FAILED, "command": list(argv), "status": status})
            return False
        self.adopt(child, is_server=is_server)
        return True

    def adopt(self, child: Child, *, is_server: bool) -> None:
        """``child`` runs (started now, or booted early and now told to go)."""
        self.child = child
        self.forwarded = False
        if is_server:
            self.server = child
            self.server_started_at = time.monotonic()
            write_json_atomic(self.plan.server_pid_path, {"pid": child.pid})
        self.forward_stop()

    def child_exited(self, status: int) -> None:
        if self.child is self.server:
            # no later signal may reach a process that reuses the PID
            write_json_atomic(self.plan.server_pid_path, {"exited": status})
            self.finish(
                {
                    "outcome": result.EXITED,
                    "status": status,
                    "signal": self.stopping,
                    "seconds": time.monotonic() - self.server_started_at,
                }
            )
            return
        command = self.plan.pre[self.pre_done]
        self.pre_done += 1
        if self.stopping is not None:
            self.finish({"outcome": result.STOPPED, "signal": self.stopping})
        elif status != 0:
            self.finish({"outcome": result.PRE_FAILED, "command": list(command), "status": status})
        else:
            self.advance()

    # -- the run's stages -------------------------------------------------------------------
    def advance(self) -> None:
        """Take the run as far as the readiness threads allow (called from the loop only)."""
        ready = self.readiness
        if ready is None:
            return
        if self.stage == DONE:
            self.release_litestream()
            return
        if self.reading and ready.locked:
            readhold.release(self.reading)
        self.start_watch()
        if ready.failure is not None:
            self.not_ready(ready.failure)
            return
        if self.child is not None and self.child.returncode is None:
            return  # a pre-serve command or the server runs
        if self.stopping is not None:
            self.finish({"outcome": result.STOPPED, "signal": self.stopping})
            return
        if self.stage == WAITING and ready.ready:
            self.timeline.mark("ready")
            self.stage = PRE
        if self.stage == PRE and self.pre_done < len(self.plan.pre):
            command = self.plan.pre[self.pre_done]
            log.info("Running pre-serve command: %s", " ".join(command))
            self.start_child(command, is_server=False)
            return
        if self.stage == PRE:
            if self.plan.pre and self.plan.wait_for_replica:
                self.stage = SYNCING
                ready.start_synced()
                return
            self.start_server()
        elif self.stage == SYNCING and ready.synced is not None:
            if ready.synced:
                self.not_ready(ready.synced)
            else:
                self.start_server()

    def start_server(self) -> None:
        self.stage = SERVING
        log.info("%s", logs.starting(self.plan.command, len(self.plan.dbs)))
        self.timeline.mark("server")
        if self.booting is not None:
            booted, self.booting = self.booting, None
            self.gate.open()
            self.adopt(booted, is_server=True)
            self.reap()  # it may have exited while it booted (its SIGCHLD came during the restore)
            self.start_watch()
        elif self.start_child(self.plan.command, is_server=True):
            self.start_watch()

    def say_boot(self) -> None:
        """Before a restore: whether the server boots meanwhile (``earlyboot.py``)."""
        if not any(is_missing(db.path) for db in self.plan.dbs):
            return
        if self.booting is not None:
            log.info("Booting the server during the restore; it accepts requests only after it")
            return
        if not self.plan.boot_early:
            return
        from . import earlyboot

        gunicorn, why = earlyboot.refusal(self.plan.command, self.env, os.getcwd(), sys.executable)
        if gunicorn and why:
            log.info("gunicorn boots after the restore: %s", why)

    def start_watch(self) -> None:
        """The replica checks, once the server runs and Litestream holds every database."""
        ready = self.readiness
        if self.watch is not None or self.stage != SERVING or ready is None or not ready.locked:
            return
        from .watch import ReplicaWatch

        self.watch = ReplicaWatch(self.plan)
        self.watch.start()
        from .checkpoints import CheckpointWatch

        pid = self.litestream.pid if self.litestream is not None else None
        dbs = [(db.path, db.label) for db in self.plan.dbs]
        self.checkpoints = CheckpointWatch(dbs, lambda: pid).start()

    def not_ready(self, reason: str) -> None:
        if not reason:  # interrupted by a stop: the running child's exit decides
            if self.child is None or self.child.returncode is not None:
                self.finish({"outcome": result.STOPPED, "signal": self.stopping or signal.SIGTERM})
            return
        outcome = {"outcome": result.NOT_READY, "detail": reason}
        if self.child is not None and self.child.returncode is None:
            # The server started while Litestream was starting, and Litestream never took
            # the databases over: stop the server (its writes are on the local disk, and
            # the next start replicates them).
            if self.outcome_found is None:
                self.outcome_found = outcome
                self.stopping = self.stopping or signal.SIGTERM
                self.server_deadline = self.clock() + self.plan.graceful_timeout
                self.forward_stop()
            return
        self.finish(outcome)

    def finish(self, outcome: dict[str, Any]) -> None:
        """The run's outcome is known: let Litestream run its final sync and exit."""
        if self.stage == DONE:
            return
        self.stage = DONE
        if self.outcome_found is not None:  # not ready after an early start: say that
            outcome = {**outcome, **self.outcome_found}
        self.outcome_found = outcome
        if self.watch is not None:
            self.watch.close()
        if self.checkpoints is not None:
            self.checkpoints.close()
        self.release_litestream()

    def release_litestream(self) -> None:
        """Once the outcome is known and Litestream holds every database (so that its
        final sync covers them): end the read transactions and let the sleeper exit."""
        ready = self.readiness
        if self.sleeper is None or self.sleeper.fd is None:
            return
        waiting = ready is not None and not ready.locked and ready.failure is None
        if self.child is not None and waiting:
            return  # something wrote; the readiness thread wakes the loop when it knows
        self.cancel.set()
        readhold.release(self.reading)
        self.sleeper.release()
        if self.litestream_status is None and self.litestream_deadline is None:
            # Litestream's final sync gets its own timeout, not forever.
            self.litestream_deadline = self.clock() + self.plan.shutdown_sync_timeout + 10

    def tick(self) -> None:
        self.reap()
        now = self.clock()
        if self.litestream_status is not None:
            self.cancel.set()  # no wait for Litestream can end well now
        if (
            self.litestream_status is not None
            and not self.litestream_lost
            and self.stage != DONE
            and self.litestream is not None
        ):
            self.litestream_lost = True
            if self.signal_server(signal.SIGTERM):
                log.error(
                    "Litestream exited (%s) while the server was running; stopping the "
                    "server so it does not serve unreplicated",
                    describe_status(self.litestream_status),
                )
                self.stopping = self.stopping or signal.SIGTERM
                self.forwarded = True
                self.server_deadline = now + self.plan.graceful_timeout
            else:
                log.error(
                    "Litestream exited (%s) before the server started; its log above says why",
                    describe_status(self.litestream_status),
                )
                if self.child is not None and self.child.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(self.child.pid, signal.SIGTERM)
                else:
                    self.finish({"outcome": result.STOPPED, "signal": signal.SIGTERM})
        if self.server_deadline is not None and now > self.server_deadline:
            self.server_deadline = None
            self.kill_server(
                f"The server did not exit within --graceful-timeout "
                f"({self.plan.graceful_timeout:g}s)"
            )
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
        return self.child is None or self.child.returncode is not None

    # -- phases ---------------------------------------------------------------------------
    def acquire_locks(self) -> int | None:
        if self.plan.lock_fds:  # taken before the exec (earlyboot.head_start)
            for lock, fd in zip(self.locks, self.plan.lock_fds, strict=True):
                lock.adopt(fd)
            return None
        info = self.plan.lock_record()
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
        # First attempts the Django side started before the exec (earlyboot.head_start):
        # reaped by the restore threads, never by reap_orphans.
        started = {path: Adopted(pid, fd) for path, pid, fd in self.plan.restoring}
        THREAD_CHILDREN.update(p.pid for p in started.values())

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
                        started=started,
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
        THREAD_CHILDREN.difference_update(p.pid for p in started.values())
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
        if during_restore and signum in (WAKE, signal.SIGCHLD):
            return  # restore threads reap their own children
        handler = self.dispatch.get(signum)
        if handler is not None:
            handler(signum)

    def start_litestream(self) -> None:
        """Hold every database, start Litestream, and the server at once if it may."""
        self.timeline.mark("restore")
        log.info("%s", logs.replicating(self.plan.dbs))
        self.held = finalsync.hold(db.path for db in self.plan.dbs)
        self.reading = readhold.begin(self.held)
        early = set() if self.plan.wait_for_replica else self.in_replica & set(self.reading)
        self.sleeper = Sleeper(self.plan.runtime_dir)
        argv = [
            self.plan.binary,
            "replicate",
            "-config",
            self.plan.config_path,
            "-exec",
            shlex.join(self.sleeper.argv()),
        ]
        self.litestream = spawn(argv, os.environ)
        self.readiness = Readiness(self.plan, early, self.cancel, self.wake)
        self.readiness.start()
        self.advance()

    def outcome(self) -> int:
        if self.litestream_lost:
            return exitcodes.LITESTREAM_DIED
        found = self.outcome_found
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

    def config_refused(self) -> int | None:
        """The binary's verdict on the configuration (``configverdict.py``), said as the
        Django side would have said it; exit code 78 when it refuses."""
        if not self.plan.config_check_pid:
            return None
        lines, error = configverdict.wait(self.plan.config_check_pid, self.plan.runtime_dir)
        for line in lines:
            print(line, file=sys.stderr)
        if error:
            print(f"{self.plan.error_prefix}{error}", file=sys.stderr)
            return exitcodes.CONFIG
        return None

    def run(self) -> int:
        become_subreaper()
        self.install_handlers()
        try:
            code = self.config_refused() or self.acquire_locks() or self.guard()
            self.timeline.mark("guard")
            if code is None:
                self.say_boot()
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
            if self.booting is not None:  # never told to go
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.booting.pid, signal.SIGTERM)
            self.stop_leftovers()
            for lock in self.locks:
                lock.release()
            shutil.rmtree(self.plan.runtime_dir, ignore_errors=True)

    def stop_leftovers(self, timeout: float = 5.0) -> None:
        """No process outlives serve: TERM, then KILL, whatever children remain."""
        import psutil

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
