"""An application's blocking checkpoint, named in the log while it stalls every write.

``PRAGMA wal_checkpoint(FULL)`` (``RESTART``, ``TRUNCATE``) takes SQLite's WAL write lock
and its checkpoint lock, then waits (up to the busy timeout) until every reader has left
the WAL. Litestream keeps a read transaction open while it replicates, so such a
checkpoint waits the whole timeout, holding the write lock: every write of the
application waits behind it, or fails with "database is locked"; the checkpoint itself
returns ``busy`` without an error, so the application does not notice. serve cannot
prevent it; it can see it and say who does it.

SQLite's locks on the ``-shm`` file are POSIX record locks at fixed offsets (the write lock
at byte 120, the checkpoint lock at 121); ``F_GETLK`` asks, without taking anything, which
process holds one. Both held by the same process that is not Litestream, at two looks a
second apart, is a blocking checkpoint (a passive one, SQLite's automatic checkpoint, takes
the checkpoint lock only; a long write transaction the write lock only). One warning per
database and process. Linux only. No Django here.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import struct
import sys
import threading
from collections.abc import Callable, Sequence

log = logging.getLogger("django_litestream.serve")

WRITE_LOCK = 120  # SQLite's WAL_WRITE_LOCK in the -shm file (unix VFS: UNIX_SHM_BASE + 0)
CKPT_LOCK = 121  # WAL_CKPT_LOCK
INTERVAL = 1.0  # seconds between looks
_FLOCK = "hhqqi"  # struct flock on Linux: l_type, l_whence, l_start, l_len, l_pid


def holder(fd: int, offset: int) -> int | None:
    """The PID holding an exclusive lock on byte ``offset`` of ``fd``'s file, or None."""
    query = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, offset, 1, 0)
    try:
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, query)
    except OSError:
        return None
    kind, _whence, _start, _len, pid = struct.unpack(_FLOCK, answer[: struct.calcsize(_FLOCK)])
    return pid if kind == fcntl.F_WRLCK and pid > 0 else None


def checkpointer(shm: str) -> int | None:
    """The process holding both the write and the checkpoint lock of a database, if one."""
    try:
        fd = os.open(shm, os.O_RDONLY)
    except OSError:
        return None
    try:
        writer = holder(fd, WRITE_LOCK)
        return writer if writer is not None and holder(fd, CKPT_LOCK) == writer else None
    finally:
        os.close(fd)


def describe(pid: int) -> str:
    """``PID 12790 (gunicorn: worker [app.wsgi])``, as far as the process can be read."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            command = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        command = ""
    return f"PID {pid}" + (f" ({command[:80]})" if command else "")


class CheckpointWatch:
    """A thread that looks at each database's locks every :data:`INTERVAL` seconds."""

    def __init__(
        self, dbs: Sequence[tuple[str, str]], litestream_pid: Callable[[], int | None]
    ) -> None:
        self.dbs = list(dbs)  # (path, label)
        self.litestream_pid = litestream_pid
        self.stop = threading.Event()
        self.seen: dict[str, int] = {}  # database -> the process seen at the last look
        self.said: set[tuple[str, int]] = set()
        self.thread = threading.Thread(target=self.run, name="checkpoints", daemon=True)

    def start(self) -> CheckpointWatch:
        if sys.platform.startswith("linux"):
            self.thread.start()
        return self

    def close(self) -> None:
        self.stop.set()

    def run(self) -> None:
        while not self.stop.wait(INTERVAL):
            for path, label in self.dbs:
                with contextlib.suppress(Exception):  # a look that fails is no finding
                    self.look(path, label)

    def look(self, path: str, label: str) -> None:
        pid = checkpointer(f"{path}-shm")
        before = self.seen.pop(path, None)
        if pid is None or pid == self.litestream_pid():
            return
        self.seen[path] = pid
        if pid != before or (path, pid) in self.said:
            return
        self.said.add((path, pid))
        log.warning(
            "%s is running a blocking checkpoint (PRAGMA wal_checkpoint(FULL), RESTART or "
            "TRUNCATE) on %s: it waits for Litestream's read transaction, which lasts while "
            "Litestream replicates, and holds the write lock meanwhile, so every write waits "
            "(up to the busy timeout) or fails with 'database is locked'. Remove it: "
            "Litestream checkpoints the WAL itself (docs/serve.rst, 'Checkpoints')",
            describe(pid),
            label,
        )
