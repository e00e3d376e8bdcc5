"""Never replicate the wrong database: is the local file the replica's continuation?

Litestream 0.5.17 takes any local database as the truth. A database it has no state for
(``migrate`` created it on a fresh disk) or whose state does not describe it (the file was
replaced by hand) is "behind the replica", and Litestream uploads it as the new latest
state, so the next restore gives the wrong database. :func:`check` decides, before
Litestream starts, whether the local database provably continues the replica's history.

The proof, cheapest first:

1. **Litestream's own continuation test** (reads a few KB; the normal warm restart and a
   restart after SIGKILL mid-write). The state directory's newest level-0 LTX file is
   Litestream's position; the replica agrees when its newest txid is that one (or an
   earlier one the state still holds, when a crash came before the upload) and its LTX file
   for that txid has the local file's size. The WAL continues that position when its header
   carries the salts recorded in the LTX header, it is at least ``WALOffset + WALSize``
   long, and the last frame Litestream read (just before that offset) still holds the page
   the LTX file holds. These are the checks of ``DB.verify`` in Litestream's ``db.go``
   (salts, size, ``lastPageMatch``); when they pass, Litestream continues incrementally
   from that frame and never uploads the local file as a new snapshot. Frames past the
   offset are transactions made after it.
2. **A restored copy** (reads the whole database and downloads the replica's newest state;
   a WAL checkpointed away by another connection, a deleted state directory). The LTX
   files of Litestream 0.5.17 carry no database checksum (``HeaderFlagNoChecksum``: the
   trailer's post-apply checksum is zero), so the replica's state cannot be checked against
   a number. Instead the replica's newest state is restored into a temporary file beside
   the database and compared page by page with each state the local files hold (the main
   file alone, then with the WAL applied up to each commit).

A database without Litestream's ``_litestream_seq`` table was never replicated (Litestream
creates it before its first upload), so it is refused without the costly step.

What cannot be proven is refused: writes made while Litestream was not running are
accepted as long as they are in the WAL (step 1), but once another connection has
checkpointed them out of it, the database is "the replica's state plus unknown changes",
exactly what an older copy with some other changes is. (``_litestream_seq`` is no marker
for this: Litestream rewrites it only at its own checkpoints, so an old copy usually
carries the same page.) ``--adopt-local`` is the way out. The check takes a database file
and the ``-wal`` beside it as one database, as SQLite does. No Django here.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import urllib.parse
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import NamedTuple

from ..litestream.process import run_bounded
from . import listing, ltx, wal
from .dbfile import is_missing
from .listing import Contents, ReplicaUnreachable
from .ltx import txid_hex

CONTINUES = "continues"
REPLICA_EMPTY = "replica-empty"
JUST_RESTORED = "just-restored"
MISSING = "missing"
NOT_CONTINUATION = "not-continuation"

# Tables that ``migrate`` fills by itself: rows there are not the user's.
_MIGRATE_ROWS = frozenset(
    {"django_migrations", "django_content_type", "auth_permission", "django_site"}
)


class Local(NamedTuple):
    """What the local database file is."""

    exists: bool
    size: int = 0
    mtime: datetime | None = None
    state_txid: int | None = None  # Litestream's local position (its newest level-0 file)
    replicated: bool | None = None  # has Litestream's _litestream_seq table; None: unknown
    fresh_migrate: bool = False  # schema from migrate only, no user rows, no state


class Continuity(NamedTuple):
    """What the guard found about one database, and how (:func:`check`)."""

    kind: str
    path: str
    label: str
    replica: str  # a description, never credentials
    local: Local
    contents: Contents | None = None
    proof: str = ""  # how a continuation was proven: "wal" or "restored copy"
    why: str = ""  # why it is not a continuation, in a few words

    @property
    def proceed(self) -> bool:
        return self.kind in (CONTINUES, REPLICA_EMPTY, JUST_RESTORED)

    @property
    def replica_txid(self) -> int | None:
        return self.contents.newest_txid if self.contents else None

    def replica_position(self) -> str:
        if not self.contents or self.contents.empty:
            return "nothing"
        when = self.contents.newest_at
        at = when.strftime("%Y-%m-%d %H:%M:%S UTC") if when else "an unknown time"
        return f"txid {txid_hex(self.contents.newest_txid or 0)} (written {at})"

    def local_position(self) -> str:
        local = self.local
        if not local.exists:
            return "no local file"
        mtime = local.mtime.strftime("%Y-%m-%d %H:%M:%S UTC") if local.mtime else "?"
        facts = f"{local.size} bytes, modified {mtime}"
        if self.kind == CONTINUES:
            where = f"txid {txid_hex(local.state_txid)}" if local.state_txid else "the replica's"
            return f"{where} ({facts})"
        return f"not known to this replica ({facts})"

    @property
    def reason(self) -> str:
        """One line: what was found."""
        if self.kind == CONTINUES:
            how = "Litestream's state and WAL" if self.proof == "wal" else "a restored copy"
            return f"{self.label} continues its replica {self.replica} (proven by {how})"
        if self.kind == REPLICA_EMPTY:
            return (
                f"The replica {self.replica} of {self.label} holds nothing yet; the database "
                "becomes its first backup"
            )
        if self.kind == JUST_RESTORED:
            return f"{self.label} was just restored from its replica {self.replica}"
        if self.kind == MISSING:
            return (
                f"{self.label} does not exist, but its replica {self.replica} holds "
                f"{self.replica_position()}"
            )
        if self.local.fresh_migrate:
            return (
                f"{self.label} was just created by migrate (schema only, no rows, no "
                f"Litestream state), but its replica {self.replica} holds "
                f"{self.replica_position()}"
            )
        return (
            f"{self.label} is not a continuation of its replica {self.replica}: the replica "
            f"holds {self.replica_position()}, the local file is {self.local_position()}"
            + (f"; {self.why}" if self.why else "")
        )


def describe_local(path: str, meta_path: str) -> Local:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return Local(exists=False)
    files = ltx.level0(meta_path)
    state_txid = files[-1].max_txid if files else None
    replicated, fresh = _tables(path, has_state=bool(files))
    return Local(
        exists=True,
        size=stat.st_size,
        mtime=datetime.fromtimestamp(stat.st_mtime, timezone.utc),
        state_txid=state_txid,
        replicated=replicated,
        fresh_migrate=fresh,
    )


def _tables(path: str, *, has_state: bool) -> tuple[bool | None, bool]:
    """(has _litestream_seq, looks freshly migrated); read-only, so nothing checkpoints."""
    uri = f"file:{urllib.parse.quote(os.path.abspath(path))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=5)
    except sqlite3.Error:
        return None, False
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        replicated = "_litestream_seq" in names
        fresh = False
        if not replicated and not has_state and "django_migrations" in names:
            fresh = not any(
                conn.execute(f'SELECT EXISTS (SELECT 1 FROM "{name}")').fetchone()[0]
                for name in names
                if name not in _MIGRATE_ROWS and not name.startswith("sqlite_")
            )
        return replicated, fresh
    except sqlite3.Error:
        return None, False
    finally:
        conn.close()


def state_agrees(meta_path: str, contents: Contents) -> tuple[list[ltx.LocalFile], str]:
    """Litestream's level-0 files when its state agrees with the replica; else ([], why)."""
    files = ltx.level0(meta_path)
    if not files:
        return [], "there is no Litestream state beside it"
    target = contents.newest_txid or 0
    if target > files[-1].max_txid:
        return [], "the replica is ahead of Litestream's state beside it"
    held = [f for f in files if f.max_txid == target]
    if not held:
        return [], "Litestream's state beside it does not hold the replica's newest txid"
    remote = [
        f
        for f in contents.files
        if f.level == 0 and (f.min_txid, f.max_txid) == (held[-1].min_txid, target)
    ]
    try:
        if remote and remote[0].size != held[-1].size:
            return [], "Litestream's state beside it describes another history"
    except OSError:
        return [], "Litestream's state beside it cannot be read"
    return files, ""


def wal_continues(path: str, files: list[ltx.LocalFile]) -> tuple[bool, str]:
    """Litestream's own continuation test (see the module docstring); (proven, why not)."""
    newest = files[-1]
    try:
        header = ltx.read_header(newest.path)
        wal_path = f"{path}-wal"
        found = wal.read_header(wal_path)
        if found is None or found.page_size != header.page_size:
            return False, "its WAL does not continue Litestream's state"
        if (found.salt1, found.salt2) != (header.wal_salt1, header.wal_salt2):
            return False, "its WAL does not continue Litestream's state"
        if header.wal_end <= wal.WAL_HEADER_SIZE:
            return True, ""
        if os.path.getsize(wal_path) < header.wal_end:
            return False, "its WAL is shorter than Litestream's state"
        offset = header.wal_end - wal.FRAME_HEADER_SIZE - header.page_size
        frame = wal.read_frame(wal_path, offset, header.page_size)
        salts = wal.frame_salts(wal_path, offset)
        if frame is None or salts != (header.wal_salt1, header.wal_salt2):
            return False, "its WAL does not continue Litestream's state"
        if ltx.page(newest.path, frame.pgno) != frame.data:
            return False, "its WAL was overwritten since Litestream read it"
    except (OSError, ltx.LTXError):
        return False, "Litestream's state beside it cannot be read"
    return True, ""


def restore_copy(
    binary: str,
    source: str,
    out: str,
    *,
    config_path: str | None,
    env: Mapping[str, str] | None,
    timeout: float,
) -> None:
    """Restore the replica's newest state into ``out``; ReplicaUnreachable on failure."""
    argv = [binary, "restore", *(["-config", config_path] if config_path else [])]
    code, output = run_bounded([*argv, "-o", out, source], env, timeout=timeout)
    if code is None:
        raise ReplicaUnreachable(f"restoring a copy to compare did not finish within {timeout:g}s")
    if code != 0:
        lines = output.splitlines()
        raise ReplicaUnreachable(lines[-1] if lines else f"litestream restore exited {code}")


def equals_replica(
    path: str,
    binary: str,
    source: str,
    *,
    config_path: str | None,
    env: Mapping[str, str] | None,
    timeout: float,
) -> bool:
    """Restore the replica's newest state beside ``path`` and compare (then remove it)."""
    import tempfile  # rare: not at the top, where every serve start pays for it

    head, name = os.path.split(os.path.abspath(path))
    folder = tempfile.mkdtemp(prefix=f".{name}.guard-", dir=head)
    out = os.path.join(folder, name)
    try:
        restore_copy(binary, source, out, config_path=config_path, env=env, timeout=timeout)
        return wal.equal_at_some_commit(path, out)
    finally:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(out + suffix)
        with contextlib.suppress(OSError):
            os.rmdir(folder)


def check(
    path: str,
    *,
    label: str,
    replica_description: str,
    meta_path: str,
    binary: str,
    source: str | None = None,
    config_path: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    restore_timeout: float = 300.0,
    restored: bool = False,
    replica_dir: str = "",
) -> Continuity:
    """Is the database at ``path`` its replica's continuation? Raises ReplicaUnreachable.

    ``source`` is what Litestream's ``ltx`` and ``restore`` are given: the database path
    (looked up in ``config_path``, the default) or a replica URL. ``replica_dir``: a
    ``file`` replica's directory, listed directly (:func:`replica.list_directory`).
    """
    source = source or path
    verdict = Continuity(JUST_RESTORED, path, label, replica_description, Local(exists=True))
    if restored:
        return verdict
    if replica_dir:
        contents = listing.list_directory(replica_dir)
    else:
        contents = listing.list_files(
            binary, source, config_path=config_path, env=env, timeout=timeout
        )
    local = describe_local(path, meta_path)
    verdict = Continuity(REPLICA_EMPTY, path, label, replica_description, local, contents)
    if contents.empty:
        return verdict
    if is_missing(path):
        return _with(verdict, MISSING)
    if local.replicated is False:
        return _with(verdict, NOT_CONTINUATION, why="Litestream never replicated it")
    files, why = state_agrees(meta_path, contents)
    if files:
        proven, why = wal_continues(path, files)
        if proven:
            return _with(verdict, CONTINUES, proof="wal")
        why = (
            f"{why}, so it cannot be shown to hold the replica's history (writes made while "
            "Litestream was not running, once checkpointed, look the same as an older copy)"
        )
    same = equals_replica(
        path, binary, source, config_path=config_path, env=env, timeout=restore_timeout
    )
    if same:
        return _with(verdict, CONTINUES, proof="restored copy")
    return _with(verdict, NOT_CONTINUATION, why=why)


def _with(verdict: Continuity, kind: str, **changes: str) -> Continuity:
    return verdict._replace(kind=kind, **changes)  # type: ignore[arg-type]
