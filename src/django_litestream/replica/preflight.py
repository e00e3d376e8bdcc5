"""The guard applied before replication starts: check every database, say what to do.

Shared by ``serve`` and ``manage.py litestream replicate``: both call :func:`check_all`,
then refuse (:data:`EXIT_NOT_CONTINUATION`), adopt (log both positions), or, in ``serve``,
move the local files aside with :func:`set_aside` and restore. No Django here.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from . import guard
from .listing import ReplicaUnreachable

EXIT_NOT_CONTINUATION = 65  # EX_DATAERR: the local data is not what the replica continues
EXIT_UNREACHABLE = 69  # EX_UNAVAILABLE
PRE_MIGRATE = 'python manage.py litestream serve --pre "python manage.py migrate --noinput"'


class Subject(NamedTuple):
    """One database to check, as serve's plan or the replicate command knows it."""

    path: str
    label: str
    replica: str  # a description for messages, never credentials
    meta_path: str
    source: str = ""  # what ltx/restore are given; default: the database path
    replica_dir: str = ""  # a file replica's directory, listed without the binary


def check_one(
    target: Subject,
    *,
    binary: str,
    config_path: str | None,
    env: Mapping[str, str] | None,
    timeout: float,
    retry_for: float = 0.0,
    cancel: threading.Event | None = None,
) -> guard.Continuity:
    """:func:`guard.check`, retrying an unreachable replica with backoff for ``retry_for``."""
    deadline = time.monotonic() + retry_for
    delay = 0.5
    while True:
        try:
            return guard.check(
                target.path,
                label=target.label,
                replica_description=target.replica,
                meta_path=target.meta_path,
                binary=binary,
                source=target.source or None,
                config_path=config_path,
                env=env,
                timeout=timeout,
                restore_timeout=max(timeout, retry_for),
                replica_dir=target.replica_dir,
            )
        except ReplicaUnreachable:
            if time.monotonic() + delay > deadline:
                raise
            if (cancel or threading.Event()).wait(delay):
                raise
            delay = min(delay * 2, 8.0)


def check_all(
    targets: Sequence[Subject],
    *,
    binary: str,
    config_path: str | None,
    env: Mapping[str, str] | None,
    timeout: float = 30.0,
    retry_for: float = 0.0,
    cancel: threading.Event | None = None,
) -> list[guard.Continuity | ReplicaUnreachable]:
    """One verdict (or the reason the replica could not be read) per target, in order."""

    def one(target: Subject) -> guard.Continuity | ReplicaUnreachable:
        try:
            return check_one(
                target,
                binary=binary,
                config_path=config_path,
                env=env,
                timeout=timeout,
                retry_for=retry_for,
                cancel=cancel,
            )
        except ReplicaUnreachable as exc:
            return exc

    if len(targets) <= 1:
        return [one(t) for t in targets]
    with ThreadPoolExecutor(max_workers=len(targets)) as pool:
        return list(pool.map(one, targets))


def refusal(verdict: guard.Continuity, *, command: str) -> str:
    """The one line that refuses ``verdict``, with the ways out for ``command``."""
    name = os.path.basename(verdict.path)
    if verdict.kind == guard.MISSING:
        return (
            f"{verdict.reason}. Litestream would start a new history over the backup once the "
            f"file appears. Restore it first ('python manage.py litestream restore "
            f"{verdict.path}'), or add -restore-if-db-not-exists."
        )
    if command == "serve":
        ways = (
            f"Restore the replica's database: move {name} aside and start again, or run serve "
            f"with --restore-over-local (moves it to {name}.replaced-<time> and restores). Or "
            "keep the local file as the new truth: --adopt-local."
        )
    else:
        ways = (
            f"Restore the replica's database: move {name} aside and run 'python manage.py "
            f"litestream restore {verdict.path}'. Or keep the local file as the new truth: "
            "'python manage.py litestream replicate --adopt-local'."
        )
    if verdict.local.fresh_migrate:
        return (
            f"{verdict.reason}; replicating it would replace the backup with an empty "
            f"database. Run migrate after the restore instead: {PRE_MIGRATE}. {ways}"
        )
    return f"{verdict.reason}; Litestream would replace the backup with it. {ways}"


def adoption(verdict: guard.Continuity, *, flag: str) -> str:
    """The line that puts an adoption on record, with both positions."""
    return (
        f"Adopting {verdict.label} as the new truth ({flag}): its replica {verdict.replica} "
        f"holds {verdict.replica_position()}, the local file is {verdict.local_position()}; "
        "Litestream will upload the local file as the replica's newest state."
    )


def set_aside(path: str, meta_path: str) -> str:
    """Move the database, its -wal/-shm/-journal and Litestream's state into one folder.

    The folder is ``<db>.replaced-<UTC time>`` beside the database; nothing is deleted.
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    folder = f"{path}.replaced-{stamp}"
    n = 1
    while os.path.exists(folder):
        n += 1
        folder = f"{path}.replaced-{stamp}-{n}"
    os.mkdir(folder, 0o700)
    for item in (path, f"{path}-wal", f"{path}-shm", f"{path}-journal", meta_path):
        if os.path.lexists(item):
            shutil.move(item, os.path.join(folder, os.path.basename(item)))
    return folder
