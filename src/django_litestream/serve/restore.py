"""Restore missing databases on cold start, concurrently, into place only when intact.

"Missing" means no file, or a zero-length file with no WAL beside it. Each restore writes
to a temporary file in the database's directory, passes ``PRAGMA integrity_check``, and is
then renamed into place, so a crash mid-restore never leaves a half database behind.

What a missing database left behind (a ``-wal`` or ``-journal``, Litestream's local state
directory) belongs to a database that no longer exists: SQLite would replay that WAL into
the new file, and Litestream would try to continue from LTX files that do not match it and
stall ("LTX file is missing"). Such leftovers are moved into one ``<db>.stale-<time>``
directory before the restore, never deleted, since they may hold the only copy of a last
transaction.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

from ..litestream.process import Adopted, bounded, run_bounded, start_bounded
from ..replica.dbfile import is_missing
from . import damaged, exitcodes, hints
from .plan import PlanDB

log = logging.getLogger("django_litestream.serve")

RESTORED, EMPTY, PRESENT, FAILED, CANCELLED = "restored", "empty", "present", "failed", "cancelled"


class Outcome(NamedTuple):
    db: PlanDB
    state: str
    detail: str = ""
    seconds: float = 0.0
    local: bool = False  # FAILED on this machine (a path or permission), not at the replica
    leftovers: str = ""  # where what a missing database left behind was moved to


def _remove(path: str, suffixes: Sequence[str] = ("", "-wal", "-shm", "-journal")) -> None:
    """Remove a database file and its sidecars (or only the given ``suffixes``)."""
    for suffix in suffixes:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path + suffix)


def set_aside_leftovers(db: PlanDB) -> str | None:
    """Move what a missing database left behind out of the way; where to, or None.

    An empty ``-wal``/``-journal`` and the ``-shm`` hold nothing and are removed.
    """
    keep = []
    for suffix in ("-wal", "-journal", "-shm"):
        path = db.path + suffix
        with contextlib.suppress(FileNotFoundError):
            if suffix != "-shm" and os.path.getsize(path) > 0:
                keep.append(path)
            else:
                os.unlink(path)
    if db.meta_path and os.path.isdir(db.meta_path):
        keep.append(db.meta_path)
    if not keep:
        return None
    import tempfile  # rare: not at the top, where every serve start pays for it

    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    head, name = os.path.split(db.path)
    stale = tempfile.mkdtemp(prefix=f"{name}.stale-{stamp}-", dir=head)  # 0700, unique
    for path in keep:
        shutil.move(path, os.path.join(stale, os.path.basename(path)))
    log.warning(
        "%s is missing but left %s behind; moved to %s so that neither SQLite nor Litestream "
        "mistakes it for part of the new database. Delete that directory once you know you do "
        "not need it.",
        db.label,
        " and ".join(os.path.basename(p) for p in keep),
        stale,
    )
    return stale


def integrity_error(path: str) -> str | None:
    """None when ``path`` passes ``PRAGMA integrity_check``; else what is wrong.

    The connection is read-write so that closing it, as the last connection, folds any
    WAL back into the file and removes the -wal/-shm files before the rename.
    """
    conn = sqlite3.connect(path)
    try:
        rows = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.DatabaseError as exc:
        return str(exc)
    finally:
        conn.close()
    for suffix in ("-wal", "-shm"):
        leftover = path + suffix
        if os.path.exists(leftover) and suffix == "-wal" and os.path.getsize(leftover):
            return "its write-ahead log could not be checkpointed"
    _remove(path, ("-wal", "-shm"))
    return None if rows == ["ok"] else "; ".join(rows[:3])


def _run(
    argv: Sequence[str], env: Mapping[str, str], cancel: threading.Event, deadline: float
) -> tuple[int | None, str]:
    """Run one restore attempt; None as the code when it was cut off at ``deadline``.

    The attempt's whole process group is killed at the deadline, and its output is not
    waited for beyond it, so a program that leaves a child holding the pipe cannot hang
    the restore.
    """
    return run_bounded(argv, env, timeout=max(0.0, deadline - time.monotonic()), cancel=cancel)


def restore_one(
    db: PlanDB,
    *,
    binary: str,
    config_path: str,
    env: Mapping[str, str],
    timeout: float,
    cancel: threading.Event,
    first: Adopted | None = None,
) -> Outcome:
    """Restore ``db`` if it is missing; a local error (a path, a permission) is an outcome.

    With ``first`` (started before the ``exec``, when ``db`` had no file and left nothing
    behind) that was decided then: a file there now was created meanwhile, and the restored
    copy will not replace it (``put_in_place``).
    """
    if first is None and not is_missing(db.path):
        return Outcome(db, PRESENT)
    try:
        stale = "" if first is not None else set_aside_leftovers(db) or ""
        outcome = _restore(
            db,
            binary=binary,
            config_path=config_path,
            env=env,
            timeout=timeout,
            cancel=cancel,
            first=first,
        )
        return outcome._replace(leftovers=stale)
    except (OSError, sqlite3.Error) as exc:
        with contextlib.suppress(OSError):
            _remove(f"{db.path}.restoring")
        if isinstance(exc, OSError):
            return Outcome(db, FAILED, describe_error(exc), local=True)
        # sqlite3.Error: the restored copy cannot even be opened
        return Outcome(db, FAILED, f"the restored copy cannot be opened: {exc}")


APPEARED = (
    "the database file was created by another process while it was being restored, so the "
    "restored copy was not put in its place (that process would have kept writing to a "
    "file nobody reads). Is the application opening the database while it is imported "
    "(at module level, or in an AppConfig.ready())? Move that query into a request or a "
    "command, or start serve with --boot-after-restore so that the server starts only "
    "after the restore"
)


def put_in_place(tmp: str, path: str) -> bool:
    """Move ``tmp`` to ``path`` unless something created ``path`` meanwhile; False if so.

    A hard link never replaces an existing file (a rename would, under a connection that
    already has the old file open). Where links are not supported, a rename after a look.
    """
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    except OSError:
        if os.path.lexists(path):
            return False
        os.replace(tmp, path)
        return True
    os.unlink(tmp)
    return True


# Said after every local failure to write beside a database.
WRITE_HINT = (
    "Check that its directory exists (or can be created) and that this user may write there."
)


def local_hint(outcome: Outcome) -> str:
    """The next step after a failure to write beside a database."""
    if outcome.detail == APPEARED:
        return "Nothing was lost: the replica is unchanged."
    if hints.is_disk_full(outcome.detail):
        hint = hints.storage_hint(outcome.detail)
        return f"{hint[0].upper()}{hint[1:]}."
    return WRITE_HINT


def describe_error(exc: Exception) -> str:
    """An OSError as "reason (path)"; anything else as its text."""
    if not isinstance(exc, OSError):
        return str(exc)
    where = f" ({exc.filename})" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"


def restore_argv(db: PlanDB, binary: str, config_path: str) -> list[str]:
    """One restore attempt of ``db``, into ``<db>.restoring``."""
    tmp = f"{db.path}.restoring"
    return [binary, "restore", "-config", config_path, "-if-replica-exists", "-o", tmp, db.path]


def start_early(db: PlanDB, *, binary: str, config_path: str, env: Mapping[str, str]) -> Any:
    """The first restore attempt of a database that has no file and left nothing behind,
    started by the Django side before its ``exec`` (``earlyboot.head_start``); else None
    (an empty file, a ``-wal`` or Litestream's state: the supervisor deals with those)."""
    sidecars = [db.path + suffix for suffix in ("", "-wal", "-journal", "-shm")]
    if any(os.path.lexists(p) for p in (*sidecars, db.meta_path or db.path)):
        return None
    os.makedirs(os.path.dirname(db.path), exist_ok=True)
    _remove(f"{db.path}.restoring")
    return start_bounded(restore_argv(db, binary, config_path), env)


def _restore(
    db: PlanDB,
    *,
    binary: str,
    config_path: str,
    env: Mapping[str, str],
    timeout: float,
    cancel: threading.Event,
    first: Adopted | None = None,
) -> Outcome:
    started = time.monotonic()
    os.makedirs(os.path.dirname(db.path), exist_ok=True)
    if first is None:
        _remove(db.path)  # an empty file counts as missing; the copy will replace no file
    tmp = f"{db.path}.restoring"
    deadline = started + timeout
    delay = 0.5
    attempt = 0
    previous = ""  # the last attempt's error: the same twice may be a damaged backup
    while True:
        attempt += 1
        if first is not None and attempt == 1:  # started before the exec
            code, output = bounded(
                first, timeout=max(0.0, deadline - time.monotonic()), cancel=cancel
            )
        else:
            _remove(tmp)
            code, output = _run(restore_argv(db, binary, config_path), env, cancel, deadline)
        if cancel.is_set():
            _remove(tmp)
            return Outcome(db, CANCELLED)
        if code == 0:
            if not os.path.exists(tmp):
                return Outcome(db, EMPTY, seconds=time.monotonic() - started)
            problem = integrity_error(tmp)
            if problem:
                _remove(tmp)
                return Outcome(
                    db, FAILED, f"the restored copy failed its integrity check: {problem}"
                )
            if not put_in_place(tmp, db.path):
                _remove(tmp)
                return Outcome(db, FAILED, APPEARED, local=True)
            return Outcome(db, RESTORED, seconds=time.monotonic() - started)
        if code is None:
            last = "no answer from the replica"
        else:
            last = output.splitlines()[-1] if output else f"litestream restore exited {code}"
            if hints.is_disk_full(last):  # retrying within seconds will not free space
                _remove(tmp)
                return Outcome(db, FAILED, last, local=True)
            if last == previous and damaged.replica_answers(
                binary, config_path, db.path, env, deadline
            ):
                _remove(tmp)
                return Outcome(db, FAILED, damaged.DAMAGED + last)
            previous = last
        if time.monotonic() + delay > deadline:
            _remove(tmp)
            tries = f"{attempt} attempt{'s' if attempt > 1 else ''}"
            return Outcome(db, FAILED, f"{last} ({tries} in {timeout:g}s)")
        log.warning(
            "Restoring %s from %s failed (%s); retrying in %.1fs", db.label, db.replica, last, delay
        )
        if cancel.wait(delay):
            return Outcome(db, CANCELLED)
        delay = min(delay * 2, 8.0)


def restore_missing(
    dbs: Sequence[PlanDB],
    *,
    binary: str,
    config_path: str,
    env: Mapping[str, str],
    timeout: float,
    cancel: threading.Event,
    started: Mapping[str, Adopted] | None = None,
) -> list[Outcome]:
    """Restore every missing database concurrently; one outcome per database. ``started``:
    first attempts already running (``start_early``), by database path."""
    started = started or {}
    missing = [db for db in dbs if db.path in started or is_missing(db.path)]
    for db in missing:
        log.info("%s is missing; restoring it from %s", db.label, db.replica)
    with ThreadPoolExecutor(max_workers=max(1, len(missing))) as pool:
        futures = {
            db.path: pool.submit(
                restore_one,
                db,
                binary=binary,
                config_path=config_path,
                env=env,
                timeout=timeout,
                cancel=cancel,
                first=started.get(db.path),
            )
            for db in missing
        }
        return [
            futures[db.path].result() if db.path in futures else Outcome(db, PRESENT) for db in dbs
        ]


def create_empty(path: str) -> None:
    """Create a fresh WAL-mode database so Litestream has something to replicate at once."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()


def report(outcomes: Sequence[Outcome], *, require_replica: bool) -> int | None:
    """Log what the restore did; the exit code when serve must stop, else None.

    On success every database whose replica was empty is created empty, so that Litestream
    can confirm a first sync before the server starts.
    """
    code = None
    for outcome in outcomes:
        db = outcome.db
        if outcome.state == RESTORED:
            log.info("Restored %s from %s in %.1fs", db.label, db.replica, outcome.seconds)
        elif outcome.state == EMPTY and require_replica:
            log.error(
                "%s is missing and its replica %s holds no backup; refusing to start fresh "
                "because --require-replica is set. Check the replica's bucket and path.",
                db.label,
                db.replica,
            )
            code = code or exitcodes.REPLICA_EMPTY
        elif outcome.state == EMPTY and outcome.leftovers:
            # A database was here before (it left files behind), yet its replica is empty.
            log.warning(
                "%s is missing and its replica %s holds no backup, although a database was "
                "here before: starting with an empty database. If you expected data, check "
                "the replica's bucket and path (a typo looks exactly like this).",
                db.label,
                db.replica,
            )
        elif outcome.state == EMPTY:
            log.info(
                "No backup in %s yet: %s starts as a new, empty database. (If this machine "
                "should have restored data, check the replica's bucket and path; "
                "--require-replica makes this an error.)",
                db.replica,
                db.label,
            )
        elif outcome.state == FAILED and outcome.local:
            log.error("Cannot restore %s: %s. %s", db.label, outcome.detail, local_hint(outcome))
            code = exitcodes.RESTORE_FAILED
        elif outcome.state == FAILED and outcome.detail.startswith(damaged.DAMAGED):
            log.error(
                "Cannot restore %s from %s: %s. %s",
                db.label,
                db.replica,
                outcome.detail,
                damaged.hint(),
            )
            code = exitcodes.RESTORE_FAILED
        elif outcome.state == FAILED:
            log.error(
                "Cannot restore %s from %s: %s. Check that the replica is reachable and its "
                "credentials are set, or raise --restore-timeout.",
                db.label,
                db.replica,
                outcome.detail,
            )
            code = exitcodes.RESTORE_FAILED
    if code is None:
        # Only a database whose replica was found empty starts fresh; never one that has no
        # outcome (so a failure that escaped the restore can never become an empty start).
        for db in (o.db for o in outcomes if o.state == EMPTY):
            if is_missing(db.path):
                try:
                    create_empty(db.path)
                except (OSError, sqlite3.Error) as exc:
                    log.error(
                        "Cannot create the empty database %s: %s. %s",
                        db.label,
                        describe_error(exc),
                        local_hint(Outcome(db, FAILED, describe_error(exc), local=True)),
                    )
                    code = exitcodes.RESTORE_FAILED
    return code
