r"""Boot gunicorn while the databases are restored; it accepts requests only after.

On a cold start the restore and the server's boot (its interpreter, its imports, the
application in every worker: about 0.15 s for a small Django project) can overlap: the
server may not *accept* before the databases are in place, but nothing stops it from
getting ready to. gunicorn has a hook between its workers' import of the application and
their first ``accept`` (``post_worker_init``); ``gunicorn_gate.py`` is a configuration
module with only that hook, which waits for serve's go. serve says go (``Gate.open``)
exactly where it would otherwise have started the server, so what the server may see and
when is unchanged; only its boot has moved earlier.

Only when that is certain to work: the server command is gunicorn of serve's own Python
environment (its script or ``python -m gunicorn``), gunicorn reads no configuration file
of its own (``-c``/``--config`` on its command line or in ``GUNICORN_CMD_ARGS``, a
``gunicorn.conf.py`` in the working directory: one configuration file is all gunicorn
reads), and there are no pre-serve commands (what they change must be in place before the
application is imported). Otherwise the server starts after the restore, as always.

The head start (:func:`head_start`): the Django side, once it has the plan and before it
``exec``\ s the supervisor, takes the databases' locks and boots the server, so that the
server's boot also overlaps the ``exec``, the supervisor's start and the guard (about
0.06 s), on every start. The supervisor (the same PID: still the server's parent) adopts
the locks, the server (:class:`Booted`) and the gate's write end from the plan.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import sys
import time
from collections.abc import Mapping, Sequence

from .gunicorn_gate import ENV
from .plan import Plan

CONFIG = "python:django_litestream.serve.gunicorn_gate"


def own_config(args: Sequence[str]) -> bool:
    """Do gunicorn arguments name a configuration file (abbreviations included)?"""
    for arg in args:
        if arg.startswith("--"):
            name = arg[2:].split("=", 1)[0]
            if len(name) >= 2 and "config".startswith(name):
                return True
        elif arg.startswith("-") and "c" in arg[1:]:  # -c FILE, -cFILE, -Dc FILE (or a value)
            return True
    return False


def _interpreter(script: str) -> str | None:
    """The interpreter a script's ``#!`` line names (None when it names none directly)."""
    try:
        with open(script, "rb") as handle:
            line = handle.readline(4096)
    except OSError:
        return None
    if not line.startswith(b"#!"):
        return None
    words = line[2:].decode(errors="replace").split()
    if not words or os.path.basename(words[0]) == "env":
        return None
    return words[0]


def _same_environment(interpreter: str | None, python: str) -> bool:
    if not interpreter:
        return False
    here = os.path.dirname(os.path.abspath(python))
    return os.path.dirname(os.path.abspath(interpreter)) == here


def refusal(
    command: Sequence[str], env: Mapping[str, str], cwd: str, python: str
) -> tuple[bool, str]:
    """(is gunicorn, why it cannot boot early); an empty reason: it can."""
    if not command:
        return False, "no command"
    head = command[0]
    found = head if "/" in head else shutil.which(head, path=env.get("PATH"))
    if os.path.basename(head) == "gunicorn":
        args = command[1:]
        same = bool(found) and _same_environment(_interpreter(found or ""), python)
    elif os.path.basename(head).startswith("python") and list(command[1:3]) == ["-m", "gunicorn"]:
        args = command[3:]
        same = _same_environment(found, python)
    else:
        return False, "not gunicorn"
    if not same:
        return True, "gunicorn is not of serve's own Python environment"
    if own_config(args) or own_config(shlex.split(env.get("GUNICORN_CMD_ARGS", ""))):
        return True, "gunicorn is given a configuration file"
    if os.path.exists(os.path.join(cwd, "gunicorn.conf.py")):
        return True, "gunicorn reads gunicorn.conf.py from the working directory"
    return True, ""


class Gate:
    """The server's go: a file in serve's private directory, and a pipe to wake the wait."""

    def __init__(self, go: str, write_fd: int | None = None) -> None:
        self.go = go
        if write_fd is None:
            self.read_fd, self.write_fd = os.pipe()  # neither inherited unless passed
        else:  # adopted after the exec: the server has the read end
            self.read_fd, self.write_fd = -1, write_fd
            os.set_inheritable(write_fd, False)
        self.opened = False

    def env(self, base: Mapping[str, str]) -> dict[str, str]:
        env = dict(base)
        inode = os.fstat(self.read_fd).st_ino
        env[ENV] = f"{self.read_fd}:{inode}:{self.go}"
        extra = env.get("GUNICORN_CMD_ARGS", "")
        env["GUNICORN_CMD_ARGS"] = f"{extra} --config {CONFIG}".strip()
        return env

    def spawned(self) -> None:
        """The server has the read end now; serve keeps only the write end."""
        os.close(self.read_fd)
        self.read_fd = -1

    def open(self) -> None:
        """Go: the file first, then end-of-file on the pipe (which wakes every worker)."""
        if self.opened:
            return
        self.opened = True
        fd = os.open(self.go, os.O_WRONLY | os.O_CREAT, 0o600)
        os.close(fd)
        os.close(self.write_fd)


class Booted:
    """The server the Django side started before its ``exec``: this process's child, with
    no Popen here. Just what the supervisor asks of a child (``pid``, ``returncode``,
    ``poll``, ``wait``)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: its status is lost
                self.returncode = 255
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"process {self.pid} is still running")
            time.sleep(0.01)
        assert self.returncode is not None
        return self.returncode


def head_start(plan: Plan) -> Plan:
    """Before the ``exec``: take the locks and boot gunicorn, when it may boot early.

    Anything that does not go as planned (a lock held by another serve, a server that
    cannot be started) leaves it all to the supervisor, which says what is wrong.
    """
    if not plan.boot_early:
        return plan
    env = plan.server_environ(os.environ)
    _, why = refusal(plan.command, env, os.getcwd(), sys.executable)
    if why:
        return plan
    from ..runner import spawn
    from .lock import DatabaseLock, LockHeld

    locks = [DatabaseLock(db.path) for db in plan.dbs]
    record = plan.lock_record()
    mask = os.umask(plan.umask)  # a database directory it creates is serve's, as after the exec
    try:
        for lock in locks:
            lock.acquire(record)
    except (LockHeld, OSError):
        for lock in locks:
            lock.release()
        return plan
    finally:
        os.umask(mask)  # the server keeps the user's
    gate = Gate(plan.go_path)
    try:
        server = spawn(plan.command, gate.env(env), pass_fds=(gate.read_fd,))
    except OSError:
        os.close(gate.write_fd)
        for lock in locks:
            lock.release()
        return plan
    finally:
        with contextlib.suppress(OSError):
            gate.spawned()
    fds = tuple(lock.fd for lock in locks if lock.fd is not None)
    for fd in (*fds, gate.write_fd):
        os.set_inheritable(fd, True)
    plan = plan._replace(lock_fds=fds, booted_pid=server.pid, gate_fd=gate.write_fd)
    plan.save()
    return plan
