"""Where a database stands: Litestream's local state against the WAL, and against the replica.

Litestream 0.5 copies each sync of the WAL into a level-0 LTX file in its local state
directory (``<meta>/ltx/0/<min>-<max>.ltx``) before it uploads it; the newest one is its
position, and its header records where in the WAL it stopped reading (the WAL's salts and
an offset). Two questions are answered from those files alone, nothing asked:

* **coverage** (:func:`coverage`): does that position cover every transaction the database
  holds? A transaction committed after it is a commit frame of the same WAL generation past
  that offset, or any commit frame of a newer generation (the WAL restarted since). When
  there is none, the newest txid covers everything: all else was checkpointed into the
  database file only after Litestream had read it, since its read transaction holds
  SQLite's checkpoints back. serve asks this at start, before Litestream runs (a database
  whose replica's newest txid is the position, with nothing past it, is exactly what its
  replica holds), and after Litestream has exited, its final sync done.
* **lag** (:func:`lag`): Litestream deletes a local file only once the replica holds it
  and has compacted it, so the local files the replica lacks are exactly the writes that
  exist only on this disk, and the header timestamp of the oldest of them (when Litestream
  copied it, in milliseconds) is how long that has been so.

Read-only: a few directory entries and 100-byte headers. No Django here.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from . import ltx, wal


class Lag(NamedTuple):
    """A database's position against its replica's."""

    local_txid: int | None  # Litestream's newest local txid (None: no local state)
    replica_txid: int | None  # the replica's newest txid (None: unknown)
    since: float | None  # epoch seconds of the oldest write the replica lacks; None: none

    @property
    def txids(self) -> int | None:
        """Transactions the replica lacks (0 when it holds everything known locally)."""
        if self.local_txid is None or self.replica_txid is None:
            return None
        return max(0, self.local_txid - self.replica_txid)

    def seconds(self, now: float) -> float | None:
        """Age of the oldest write the replica lacks: 0 when it lacks none."""
        if self.replica_txid is None or self.local_txid is None:
            return None
        return 0.0 if self.since is None else max(0.0, now - self.since)


def created(file: ltx.LocalFile) -> float:
    """When Litestream wrote ``file`` (its header timestamp; the file's mtime otherwise)."""
    try:
        stamp = ltx.read_header(file.path).timestamp_ms
    except (OSError, ltx.LTXError):
        stamp = 0
    if stamp > 0:
        return stamp / 1000.0
    try:
        return os.path.getmtime(file.path)
    except OSError:
        return 0.0


def pending_commits(db_path: str, meta_path: str) -> int:
    """SQLite commits in the ``-wal`` that Litestream has not copied into an LTX file yet.

    Litestream's newest local LTX file records where in the WAL it stopped reading (its WAL
    offset and size) and the WAL's salts then. Commit frames after that point, or every
    commit frame of a WAL restarted since (other salts), are writes it has not seen: none
    while it runs (it copies them every ``monitor-interval``), the unreplicated writes when
    it does not. Writes already checkpointed out of the WAL cannot be counted this way.
    """
    files = ltx.level0(meta_path)
    header = wal.read_header(f"{db_path}-wal")
    if header is None:
        return 0
    start = wal.WAL_HEADER_SIZE
    if files:
        try:
            newest = ltx.read_header(files[-1].path)
        except (OSError, ltx.LTXError):
            return 0
        if (newest.wal_salt1, newest.wal_salt2) == (header.salt1, header.salt2):
            start = max(start, newest.wal_end)
    try:
        return sum(
            1 for f in wal.frames(f"{db_path}-wal", header) if f.offset >= start and f.commit
        )
    except OSError:
        return 0


def local_txid(meta_path: str) -> int | None:
    files = ltx.level0(meta_path)
    return files[-1].max_txid if files else None


def lag(meta_path: str, replica_txid: int | None) -> Lag:
    """The database's position (from ``meta_path``) against ``replica_txid``."""
    files = ltx.level0(meta_path)
    newest = files[-1].max_txid if files else None
    since = None
    if replica_txid is not None:
        missing = [f for f in files if f.max_txid > replica_txid]
        if missing:
            since = created(missing[0])
    return Lag(newest, replica_txid, since)


class Coverage(NamedTuple):
    """How far Litestream's local state covers a database (see :func:`coverage`)."""

    txid: int  # Litestream's newest level-0 txid (0: no state)
    covered: bool  # no transaction in the WAL past it
    why: str = ""  # why not covered, in a few words

    def __bool__(self) -> bool:
        return self.covered


def coverage(path: str, meta_path: str) -> Coverage:
    """Litestream's position for the database at ``path``, and whether it covers it all."""
    files = ltx.level0(meta_path)
    if not files:
        return Coverage(0, False, "Litestream has no state for it")
    txid = files[-1].max_txid
    wal_path = f"{path}-wal"
    try:
        header = ltx.read_header(files[-1].path)
        found = wal.read_header(wal_path)
        if found is None:
            if header.wal_end > wal.WAL_HEADER_SIZE:
                return Coverage(txid, False, "its WAL is gone since Litestream read it")
            return Coverage(txid, True)
        if found.page_size != header.page_size:
            return Coverage(txid, False, "its WAL does not match Litestream's state")
        start = wal.WAL_HEADER_SIZE
        if (found.salt1, found.salt2) == (header.wal_salt1, header.wal_salt2):
            if os.path.getsize(wal_path) < header.wal_end:
                return Coverage(txid, False, "its WAL is shorter than Litestream's state")
            start = header.wal_end
        if wal.commit_from(wal_path, found, start):
            return Coverage(txid, False, f"its WAL holds a transaction after txid {txid}")
    except (OSError, ltx.LTXError):
        return Coverage(txid, False, "Litestream's state cannot be read")
    return Coverage(txid, True)
