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
reads). Otherwise the server starts at the go, as always. Pre-serve commands (``migrate``)
run while the workers wait: the application is imported before them, which is why it must
not use the database while it is imported (nor cache what it read then).

The head start (:func:`head_start`): the Django side, once it has the plan and before it
``exec``\ s the supervisor, takes the databases' locks, starts the restores of databases
that have no file (``restore.start_early``) and boots the server, so that all of them also
overlap the ``exec`` and the supervisor's start (about 0.06 s), on every start. The
supervisor (the same PID: still their parent) adopts the locks, the restores and the
server (``process.Adopted``) and the gate's write end from the plan. The server boots only
when every missing database was found absent before it started: a database file that
appears later can only be the application's, and the restore refuses to replace it.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .gunicorn_gate import ENV
from .plan import Plan

CONFIG = "python:django_litestream.serve.gunicorn_gate"
# The head start's Popen objects, alive until the exec: a collected one would close its
# output pipe, or be reaped by subprocess's cleanup before the supervisor adopts it.
KEPT: list[Any] = []


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


def head_start(plan: Plan, env: Mapping[str, str], write_config: Callable[[], None]) -> Plan:
    """Before the ``exec``: take the locks, start the restores, boot gunicorn.

    ``env`` is the supervisor's (the configuration's secrets included: the restores need
    them); ``write_config`` writes the configuration file, which the restores read. A
    database that is missing but not simply absent (an empty file, a ``-wal`` or
    Litestream's state left behind) is the supervisor's to restore, and the server then
    boots at its go: every database the restore may create must have been decided absent
    before anything of the application runs. A lock held by another serve, or anything
    that fails here, leaves it all to the supervisor, which says what is wrong. Only what
    this needs is imported before the server is spawned (the restore machinery only when
    a database is missing).
    """
    from ..replica.dbfile import is_missing
    from .lock import DatabaseLock, LockHeld

    locks = [DatabaseLock(db.path) for db in plan.dbs]
    mask = os.umask(plan.umask)  # what it creates is serve's, as after the exec
    try:
        try:
            for lock in locks:
                lock.acquire(plan.lock_record())
        except (LockHeld, OSError):
            for lock in locks:
                lock.release()
            return plan
        restoring: list[tuple[str, int, int]] = []
        boot = plan.boot_early
        missing = [db for db in plan.dbs if is_missing(db.path)]
        if missing:
            from . import restore

            write_config()
        for db in missing:
            try:
                proc = restore.start_early(
                    db, binary=plan.binary, config_path=plan.config_path, env=env
                )
            except OSError:
                proc = None
            if proc is None:
                boot = False
                continue
            KEPT.append(proc)
            assert proc.stdout is not None
            restoring.append((db.path, proc.pid, proc.stdout.fileno()))
    finally:
        os.umask(mask)  # the server keeps the user's
    booted, gate_fd = 0, -1
    server_env = plan.server_environ(os.environ)
    if boot and not refusal(plan.command, server_env, os.getcwd(), sys.executable)[1]:
        from ..litestream.process import spawn

        gate = Gate(plan.go_path)
        try:
            KEPT.append(spawn(plan.command, gate.env(server_env), pass_fds=(gate.read_fd,)))
            booted, gate_fd = KEPT[-1].pid, gate.write_fd
        except OSError:
            os.close(gate.write_fd)
        finally:
            with contextlib.suppress(OSError):
                gate.spawned()
    fds = tuple(lock.fd for lock in locks if lock.fd is not None)
    for fd in (*fds, *(fd for _, _, fd in restoring), *([gate_fd] if booted else [])):
        os.set_inheritable(fd, True)
    return plan._replace(
        lock_fds=fds, restoring=tuple(restoring), booted_pid=booted, gate_fd=gate_fd
    )
