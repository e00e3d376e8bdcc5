"""One ``serve`` per database: an advisory lock file beside each database.

The lock is ``flock`` on ``<db>.serve-lock``; the kernel drops it when the holder dies,
so a crash never leaves a stale lock. The file records the holder's PID and its control
socket, so a second instance can name the holder and other commands can find the socket.
"""

from __future__ import annotations

import fcntl
import json
import os
from typing import Any


class LockHeld(Exception):
    def __init__(self, db: str, holder: dict[str, Any]) -> None:
        self.db = db
        self.pid = holder.get("pid")
        super().__init__(
            f"Another 'litestream serve' (PID {self.pid or 'unknown'}) is already serving "
            f"{db}. Stop it first; two Litestream processes on one database would both "
            "write to the replica."
        )


def lock_path(db: str) -> str:
    return f"{db}.serve-lock"


class DatabaseLock:
    def __init__(self, db: str) -> None:
        self.db = db
        self.fd: int | None = None

    def acquire(self, info: dict[str, Any]) -> None:
        os.makedirs(os.path.dirname(self.db) or ".", exist_ok=True)
        fd = os.open(lock_path(self.db), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise LockHeld(self.db, holder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self.fd = fd

    def adopt(self, fd: int) -> None:
        """Hold the lock this process took before its ``exec`` (``earlyboot.head_start``)."""
        os.set_inheritable(fd, False)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            os.close(self.fd)
            self.fd = None


def _read(fd: int) -> dict[str, Any]:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def holder(db: str) -> dict[str, Any] | None:
    """The running serve's record for ``db``, or None when no serve holds it."""
    try:
        fd = os.open(lock_path(db), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
