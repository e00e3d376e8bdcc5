"""``manage.py litestream verify``: prove that each replica restores to what the database holds.

Per database (docs/operations.rst, "verify"):

1. **Make the replica current**, never by asking Litestream to sync (``litestream/probe.py``
   says why that loses writes). With a ``serve`` running on the database (its lock file
   names its control socket), wait until Litestream's own monitor has finished a clean
   sync that began after now (``litestream/probe.py``'s ``Settle``), then until the replica
   holds that txid. With no Litestream running, check first that the database continues
   what the replica holds (``guard.py``; a database that does not is ``failed`` and is never
   synced, since that sync would replace the backup), then run one ``litestream replicate
   -once`` for this database alone. A Litestream running outside ``serve`` is used through
   its control socket when ``LITESTREAM["socket"]`` enables one, and never doubled.
2. **Read the live database** in one read-only transaction: schema, and per table its row
   count and a checksum of its rows (:mod:`digest`; ``--quick``: counts only).
3. **Restore the replica at that txid** into a private temporary directory, run SQLite's
   integrity check on the copy and read it the same way.
4. **Compare.** Equal: ``passed``. Different while the live database provably stayed at
   that txid: ``failed``, naming what differs. Different because the live database moved on
   meanwhile: the copy must then equal, page for page, a state the live files still hold
   (``wal.equal_at_some_commit``), else the attempt is repeated; when no attempt
   settles, ``inconclusive``.

Nothing is left behind: the temporary directory is removed (on Ctrl-C too), the live
database is only read, and the replica changes only by the one sync asked for.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psutil

from ..config import effective, locations, secrets
from ..config.types import Database, Settings
from ..errors import UsageError, UsageParser
from ..litestream import probe
from ..litestream.process import run_bounded
from ..replica import guard, listing, position, preflight, wal
from ..replica.listing import ReplicaUnreachable
from ..replica.ltx import txid_hex
from ..serve import state
from . import digest, invocation

PASSED, FAILED, INCONCLUSIVE = "passed", "failed", "inconclusive"
EXIT_FAILED = 65  # EX_DATAERR: the backup does not hold what the database holds
EXIT_INCONCLUSIVE = 75  # EX_TEMPFAIL: no conclusion this time; run it again
ATTEMPTS = 3
DEFAULT_TIMEOUT = 300.0
SETTLE_TIMEOUT = 30.0  # seconds for Litestream's monitor to finish a sync that began now
POLL = 0.1
# The keys of each object of ``verify --json`` (docs/operations.rst).
JSON_KEYS = (
    "alias",
    "path",
    "replica",
    "outcome",
    "reason",
    "txid",
    "tables",
    "rows",
    "via",
    "quick",
    "seconds",
    "differences",
)

HELP = """usage: manage.py litestream verify [ALIAS_OR_PATH ...] [--quick] [--json]
                                     [--timeout SECONDS]

Prove, for each configured database (or the ones named), that its replica restores to a
healthy database holding what the live database holds: the replica is made current first
(through a running 'serve', never with 'litestream sync'; with one 'replicate -once' when
no Litestream runs, and only for a database that continues its replica), then restored
at that transaction into a private temporary directory, integrity-checked and compared
table by table (row counts and a checksum of the rows) with the live database, which is
only read. Nothing is left behind.

  ALIAS_OR_PATH      only these databases (DATABASES aliases or paths from LITESTREAM['dbs'])
  --quick            row counts only, and SQLite's quick_check (for very large databases)
  --json             one JSON list, one object per database
  --timeout SECONDS  at most this long per database (default 300)

One line per database: passed, failed (what differs, or why the restore failed) or
inconclusive (the live database kept moving on). Exit status: 0 when every database
passed, 65 when one failed, 75 when none failed but one was inconclusive, 2 for a bad
argument, 130/143 when interrupted.
"""


class Cancelled(Exception):
    """SIGINT or SIGTERM: stop, clean up, exit 128+N."""


@dataclass
class Result:
    db: Database
    replica: str
    outcome: str = INCONCLUSIVE
    reason: str = ""
    txid: int | None = None
    tables: int | None = None
    rows: int | None = None
    via: str = ""
    seconds: float = 0.0
    quick: bool = False
    differences: list[str] = field(default_factory=list)

    def line(self) -> str:
        return f"{self.db.label}: {self.outcome}: {self.reason}"

    def as_json(self) -> dict[str, Any]:
        return {
            "alias": self.db.alias,
            "path": self.db.path,
            "replica": self.replica,
            "outcome": self.outcome,
            "reason": self.reason,
            "txid": None if self.txid is None else txid_hex(self.txid),
            "tables": self.tables,
            "rows": self.rows,
            "via": self.via,
            "quick": self.quick,
            "seconds": round(self.seconds, 2),
            "differences": self.differences,
        }


class Concluded(Exception):
    """Ends the verification of one database with an outcome."""

    def __init__(self, outcome: str, reason: str, differences: Sequence[str] = ()) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason
        self.differences = list(differences)


@dataclass
class Target:
    """One database and everything needed to verify it."""

    db: Database
    entry: Mapping[str, Any]
    prepared: invocation.Prepared
    settings: Settings
    quick: bool
    deadline: float
    cancel: threading.Event

    @property
    def meta_path(self) -> str:
        return effective.meta_path(self.db.path, self.entry)

    @property
    def replica(self) -> str:
        return locations.describe(self.entry["replica"], os.environ)

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled

    def pause(self, seconds: float) -> None:
        if self.cancel.wait(seconds):
            raise Cancelled


# -- making the replica current ----------------------------------------------------------------


@dataclass
class Source:
    """How the replica was made current, and how to tell whether the database moved on."""

    via: str
    txid: int
    moved: Callable[[], str | None]  # after the live read began: how it moved on, else None


def settle(target: Target, socket: str) -> int:
    """The txid of a clean sync of Litestream's own monitor that began after this call."""
    db = target.db
    deadline = time.monotonic() + min(SETTLE_TIMEOUT, max(1.0, target.left()))
    now = time.time()
    begun: probe.Settle | None = None
    last = ""
    while True:
        found = probe.read_syncs(socket)
        if isinstance(found, str):
            last = found
        elif db.path not in found:
            last = f"Litestream's control socket {socket} does not list {db.path}"
        elif begun is None:
            begun = probe.Settle.begin(
                found[db.path],
                now=now,
                wal_bytes=_size(f"{db.path}-wal"),
                max_sync_wal_bytes=effective.max_sync_wal_bytes(
                    target.entry.get("max-sync-wal-bytes")
                ),
            )
        else:
            txid = begun.update(found[db.path])
            if txid is not None:
                return txid
            last = "Litestream's monitor did not finish a clean sync"
        if time.monotonic() > deadline:
            raise Concluded(INCONCLUSIVE, f"{last} within {SETTLE_TIMEOUT:g}s; try again")
        target.pause(POLL)


def replica_holds(target: Target, txid: int) -> None:
    """Wait until the replica holds ``txid``; failed when it does not in time."""
    budget = min(SETTLE_TIMEOUT, max(1.0, target.left()))
    deadline = time.monotonic() + budget
    while True:
        held = listing.replica_txid(
            target.prepared.exe,
            target.prepared.config_path,
            target.db.path,
            max(1.0, deadline - time.monotonic()),
            target.prepared.env,
            target.cancel.is_set,
        )
        target.check_cancel()
        if isinstance(held, int) and held >= txid:
            return
        if time.monotonic() > deadline:
            if isinstance(held, str):
                raise Concluded(FAILED, f"the replica could not be read: {held}")
            raise Concluded(
                FAILED,
                f"the replica holds txid {txid_hex(held)} and did not receive txid "
                f"{txid_hex(txid)} within {budget:g}s; writes up to that one exist only on "
                "this disk",
            )
        target.pause(0.2)


def through_daemon(target: Target, socket: str, via: str) -> Source:
    txid = settle(target, socket)
    replica_holds(target, txid)

    def moved() -> str | None:
        later = settle(target, socket)
        return f"to txid {txid_hex(later)}" if later != txid else None

    return Source(via, txid, moved)


def other_litestream(path: str) -> int | None:
    """The PID of a Litestream process that has the database open, if any."""
    wanted = {path, f"{path}-wal"}
    for proc in psutil.process_iter(["name"]):
        if proc.info.get("name") != "litestream":
            continue
        try:
            if any(f.path in wanted for f in proc.open_files()):
                return int(proc.pid)
        except psutil.Error:
            continue
    return None


def once_config(target: Target) -> str:
    """A configuration with only this database, and nothing that listens."""
    data = {
        k: v
        for k, v in target.prepared.generated.data.items()
        if k not in ("addr", "mcp-addr", "socket", "exec")
    }
    data["dbs"] = [target.entry]
    once = dataclasses.replace(target.prepared.generated, data=data)
    path = os.path.join(target.prepared.private_dir, f"once-{os.urandom(4).hex()}.yml")
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        handle.write(once.render())
    return path


def files_state(path: str) -> tuple[tuple[int, int], ...]:
    """The database file's and its WAL's size and modification time (a commit changes them)."""
    found = []
    for name in (path, f"{path}-wal"):
        try:
            info = os.stat(name)
            found.append((info.st_size, info.st_mtime_ns))
        except OSError:
            found.append((-1, -1))
    return tuple(found)


def through_once(target: Target) -> Source:
    """No Litestream runs: the guard first, then one ``replicate -once``."""
    db, prepared = target.db, target.prepared
    try:
        verdict = preflight.check_one(
            preflight.Subject(db.path, db.label, target.replica, target.meta_path),
            binary=prepared.exe,
            config_path=prepared.config_path,
            env=prepared.env,
            timeout=min(30.0, max(1.0, target.left())),
        )
    except ReplicaUnreachable as exc:
        raise Concluded(FAILED, f"the replica could not be read: {exc}") from None
    target.check_cancel()
    if verdict.kind == guard.REPLICA_EMPTY:
        raise Concluded(FAILED, f"the replica {target.replica} holds no backup yet")
    if verdict.kind == guard.MISSING:
        raise Concluded(FAILED, f"{verdict.reason}; restore it first")
    if not verdict.proceed:
        raise Concluded(
            FAILED,
            f"{verdict.reason}; verify does not sync it, since that would replace the backup",
        )
    argv = [prepared.exe, "replicate", "-once", "-config", once_config(target)]
    code, output = run_bounded(
        argv, prepared.env, timeout=max(1.0, target.left()), cancel=target.cancel
    )
    target.check_cancel()
    txid = position.local_txid(target.meta_path)
    if code is None or txid is None:
        raise Concluded(
            FAILED,
            "the one-shot sync (litestream replicate -once) did not finish"
            + (f": {_last_line(output)}" if output else ""),
        )
    try:
        replica_holds(target, txid)
    except Concluded as exc:
        errors = [line for line in output.splitlines() if "level=ERROR" in line or "Error" in line]
        if errors:
            exc.reason += f" (replicate -once: {_last_line(errors[-1])})"
        raise
    after = files_state(db.path)

    def moved() -> str | None:
        return None if files_state(db.path) == after else "its files changed"

    return Source("one 'litestream replicate -once'", txid, moved)


def make_current(target: Target) -> Source:
    db = target.db
    running = state.running(db.path)
    if running is not None:
        if not running.socket:
            raise Concluded(
                INCONCLUSIVE,
                f"'serve' (PID {running.pid}) holds it but its lock file names no control "
                "socket (an older serve); restart serve, or stop it and verify again",
            )
        return through_daemon(target, running.socket, f"the running serve (PID {running.pid})")
    pid = other_litestream(db.path)
    if pid is not None:
        socket = effective.configured_socket(target.settings)
        if not socket:
            raise Concluded(
                INCONCLUSIVE,
                f"Litestream (PID {pid}) replicates it outside 'serve', and verify will not "
                "start a second one on the same database; enable its control socket "
                "(LITESTREAM['socket'] = {'enabled': True, 'path': '/run/app/litestream.sock'}) "
                "so that verify can read how far it got, or run it under serve",
            )
        return through_daemon(target, socket, f"the running Litestream (PID {pid})")
    return through_once(target)


# -- comparing --------------------------------------------------------------------------------


@contextlib.contextmanager
def live_snapshot(path: str) -> Iterator[sqlite3.Connection]:
    """One read-only transaction on the live database, begun by its first read."""
    conn = digest.connect_readonly(path)
    try:
        conn.execute("BEGIN")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the snapshot starts
        yield conn
    finally:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("COMMIT")
        conn.close()


def restore_copy(target: Target, txid: int, folder: str) -> str:
    out = os.path.join(folder, os.path.basename(target.db.path))
    prepared = target.prepared
    argv = [
        prepared.exe,
        "restore",
        "-config",
        prepared.config_path,
        "-txid",
        txid_hex(txid),
        "-o",
        out,
        target.db.path,
    ]
    code, output = run_bounded(
        argv, prepared.env, timeout=max(1.0, target.left()), cancel=target.cancel
    )
    target.check_cancel()
    if code is None:
        raise Concluded(FAILED, "restore error: the restore did not finish in time")
    if code != 0 or not os.path.exists(out):
        raise Concluded(
            FAILED, f"restore error: {_last_line(output) or f'litestream exited {code}'}"
        )
    return out


def attempt(target: Target, result: Result, folder: str) -> Result | None:
    """One try: the outcome, or None when the live database moved on and it must be repeated."""
    source = make_current(target)
    result.via, result.txid = source.via, source.txid
    with live_snapshot(target.db.path) as conn:
        live = digest.read(conn, quick=target.quick)
    copy_path = restore_copy(target, source.txid, folder)
    try:
        problem = digest.integrity_error(copy_path, quick=target.quick)
        if problem:
            raise Concluded(FAILED, f"the restored copy fails SQLite's integrity check: {problem}")
        conn = digest.connect_readonly(copy_path)
        try:
            copy = digest.read(conn, quick=target.quick)
        finally:
            conn.close()
        found = digest.differences(copy, live)
        result.tables, result.rows = len(copy.tables), copy.rows
        check = "quick_check" if target.quick else "integrity_check"
        what = "row counts" if target.quick else "rows and checksums"
        summary = (
            f"txid {txid_hex(source.txid)}: {check} ok; {_count(len(copy.tables), 'table')}, "
            f"{_count(copy.rows, 'row')}; {what} equal to the live database's"
        )
        if not found:
            result.outcome, result.reason = PASSED, f"{summary} (via {source.via})"
            return result
        # Asked only now: a sync that begins after the snapshot began and finds nothing new
        # proves that nothing was committed between the txid and the snapshot.
        moved = source.moved()
        if moved is None:
            raise Concluded(
                FAILED,
                f"the restored copy at txid {txid_hex(source.txid)} differs from the live "
                f"database: {'; '.join(found)}",
                found,
            )
        if not target.quick and wal.equal_at_some_commit(target.db.path, copy_path):
            result.outcome = PASSED
            result.reason = (
                f"txid {txid_hex(source.txid)}: the restored copy ("
                f"{_count(len(copy.tables), 'table')}, {_count(copy.rows, 'row')}) equals, "
                "page for page, the live database at a commit its files still hold; it "
                f"moved on meanwhile ({moved}; via {source.via})"
            )
            return result
        result.differences = found
        result.reason = (
            f"the live database moved on during the check (from txid "
            f"{txid_hex(source.txid)}, {moved})"
        )
        return None
    finally:
        for suffix in ("", "-wal", "-shm", "-txid"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(copy_path + suffix)


def verify_one(target: Target) -> Result:
    started = time.monotonic()
    result = Result(target.db, target.replica, quick=target.quick)
    hidden = secrets.secret_values(target.prepared.env)
    try:
        if not os.path.exists(target.db.path):
            raise Concluded(
                FAILED,
                f"the database does not exist here; 'python manage.py litestream restore "
                f"{target.db.alias or target.db.path}' brings it back",
            )
        folder = os.path.join(target.prepared.private_dir, f"copy-{os.urandom(4).hex()}")
        os.mkdir(folder, 0o700)
        try:
            for number in range(1, ATTEMPTS + 1):
                if attempt(target, result, folder) is not None:
                    break
                if number == ATTEMPTS or target.left() <= 0:
                    result.outcome = INCONCLUSIVE
                    result.reason += (
                        f"; {number} attempts did not settle: run verify again at a quieter moment"
                    )
                    break
        finally:
            with contextlib.suppress(OSError):
                os.rmdir(folder)
    except Concluded as verdict:
        result.outcome, result.reason = verdict.outcome, verdict.reason
        result.differences = verdict.differences or result.differences
    result.reason = secrets.scrub(result.reason, hidden)
    result.seconds = time.monotonic() - started
    return result


# -- the command ------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = UsageParser("verify")
    p.add_argument("names", nargs="*")
    p.add_argument("--quick", "-quick", dest="quick", action="store_true")
    p.add_argument("--json", "-json", dest="json", action="store_true")
    p.add_argument("--timeout", "-timeout", dest="timeout", type=float, default=DEFAULT_TIMEOUT)
    p.add_argument("-h", "-help", "--help", dest="help", action="store_true")
    return p


@contextlib.contextmanager
def interruptible() -> Iterator[tuple[threading.Event, list[int]]]:
    """SIGINT/SIGTERM set an event (the work stops and cleans up) instead of raising."""
    cancel = threading.Event()
    received: list[int] = []

    def handler(signum: int, _frame: object) -> None:
        received.append(signum)
        cancel.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield cancel, received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def exit_code(results: Sequence[Result]) -> int:
    if any(r.outcome == FAILED for r in results):
        return EXIT_FAILED
    if any(r.outcome == INCONCLUSIVE for r in results):
        return EXIT_INCONCLUSIVE
    return 0


def run(settings: Settings, args: Sequence[str], write: Callable[[str], Any]) -> int:
    """``manage.py litestream verify``; see :data:`HELP`."""
    options = _parser().parse_args(list(args))
    if options.help:
        write(HELP)
        return 0
    if not (0 < options.timeout <= 86400):
        raise UsageError(
            f"verify: --timeout must be a number of seconds between 0 and 86400, not "
            f"{options.timeout:g}."
        )
    dbs = invocation.selected_dbs(settings, options.names, "verify")
    results: list[Result] = []
    with interruptible() as (cancel, received), invocation.prepared(settings) as prepared:
        entries = invocation.entries(settings, prepared.generated)
        for db in dbs:
            target = Target(
                db,
                entries[db.path],
                prepared,
                settings,
                options.quick,
                time.monotonic() + options.timeout,
                cancel,
            )
            try:
                result = verify_one(target)
            except Cancelled:
                break
            results.append(result)
            if not options.json:
                write(result.line() + "\n")
    if received:
        return 128 + received[0]
    if options.json:
        write(json.dumps([r.as_json() for r in results], indent=2) + "\n")
    return exit_code(results)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
