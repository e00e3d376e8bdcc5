"""A gunicorn configuration module: each worker waits for serve's go before it accepts.

serve starts gunicorn while it restores the databases (``earlyboot.py``), with
``--config python:django_litestream.serve.gunicorn_gate`` in ``GUNICORN_CMD_ARGS``. gunicorn
binds its socket and its workers import the application as usual; then, in
``post_worker_init`` (after the import, before the first ``accept``), each worker waits
until serve creates the go file named in ``DJANGO_LITESTREAM_GATE``. Connections that
arrive meanwhile wait in the socket's backlog.

The wait ends without serving when the worker is told to stop, when its master is gone,
or when serve is gone: serve holds the only write end of a pipe whose read end the worker
inherited, and its end-of-file without the go file means serve exited without saying go.

The first worker past the gate writes where it accepts (``accepting`` beside the go file):
that, not the socket gunicorn bound long before the go, is when serve's start-up line says
the server listens (``startup.py``).

gunicorn reads every module-level name of a configuration module that matches one of its
settings: this module defines ``post_worker_init`` and nothing else by such a name.
"""

from __future__ import annotations

import os
import select
import time
from typing import Any

ENV = "DJANGO_LITESTREAM_GATE"
POLL = 0.25  # seconds: how soon a stop (or a dead master) is noticed while waiting
ACCEPTING = "accepting"  # beside the go file: the addresses the first worker past it accepts on


def parse(spec: str) -> tuple[int, str]:
    """``"<fd>:<inode>:<go file>"`` -> (the pipe's fd, or -1 when it is not that pipe, go)."""
    fd_text, _, rest = spec.partition(":")
    inode_text, _, go = rest.partition(":")
    try:
        fd, inode = int(fd_text), int(inode_text)
        if os.fstat(fd).st_ino != inode:
            fd = -1  # closed and reused by something else (a re-executed master)
    except (ValueError, OSError):
        fd = -1
    return fd, go


def wait_for_go(worker: Any, spec: str) -> None:
    fd, go = parse(spec)
    while not os.path.exists(go):
        if not worker.alive:
            return
        if os.getppid() != worker.ppid:
            worker.alive = False
            return
        if fd >= 0:
            readable, _, _ = select.select([fd], [], [], POLL)
        else:
            time.sleep(0.02)
            readable = []
        worker.notify()  # the master's timeout counts from the last notify
        if readable and not os.path.exists(go):
            worker.log.warning("serve exited before the server could accept requests")
            worker.alive = False
            return
    say_accepting(worker, go)


def accepting_path(go: str) -> str:
    return os.path.join(os.path.dirname(go), ACCEPTING)


def address(name: Any) -> str:
    """A socket's name as the start-up line shows it: ``host:port``, ``[::1]:port``, ``unix:``."""
    if isinstance(name, str | bytes):
        return f"unix:{os.fsdecode(name)}"
    host, port = name[0], name[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def say_accepting(worker: Any, go: str) -> None:
    """Once per serve: the first worker past the gate says where it accepts (a file renamed
    into place, so that serve never reads half of it). Nothing is lost if it cannot."""
    path = accepting_path(go)
    if os.path.exists(path):
        return
    part = f"{path}.{os.getpid()}"
    try:
        with open(part, "w") as handle:
            handle.write(", ".join(address(sock.getsockname()) for sock in worker.sockets))
        os.replace(part, path)
    except OSError:
        pass  # serve's private directory is gone: serve has exited


def post_worker_init(worker: Any) -> None:
    spec = os.environ.get(ENV)
    if spec:
        wait_for_go(worker, spec)
