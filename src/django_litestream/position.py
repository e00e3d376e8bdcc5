"""How far a replica is behind its database: Litestream's local state against the replica.

Litestream copies each sync of the WAL into a level-0 LTX file in its local state
directory (``<meta>/ltx/0/<min>-<max>.ltx``) before it uploads it, and deletes a local
file only once the replica holds it and has compacted it. So the local files the replica
lacks are exactly the writes that exist only on this disk, and the header timestamp of the
oldest of them (when Litestream copied it, in milliseconds) is how long that has been so.
Read-only, a few directory entries and one 100-byte header. No Django here.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from . import ltxfile, walfile


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


def created(file: ltxfile.LocalFile) -> float:
    """When Litestream wrote ``file`` (its header timestamp; the file's mtime otherwise)."""
    try:
        stamp = ltxfile.read_header(file.path).timestamp_ms
    except (OSError, ltxfile.LTXError):
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
    files = ltxfile.level0(meta_path)
    header = walfile.read_header(f"{db_path}-wal")
    if header is None:
        return 0
    start = walfile.WAL_HEADER_SIZE
    if files:
        try:
            ltx = ltxfile.read_header(files[-1].path)
        except (OSError, ltxfile.LTXError):
            return 0
        if (ltx.wal_salt1, ltx.wal_salt2) == (header.salt1, header.salt2):
            start = max(start, ltx.wal_end)
    try:
        return sum(
            1 for f in walfile.frames(f"{db_path}-wal", header) if f.offset >= start and f.commit
        )
    except OSError:
        return 0


def local_txid(meta_path: str) -> int | None:
    files = ltxfile.level0(meta_path)
    return files[-1].max_txid if files else None


def lag(meta_path: str, replica_txid: int | None) -> Lag:
    """The database's position (from ``meta_path``) against ``replica_txid``."""
    files = ltxfile.level0(meta_path)
    newest = files[-1].max_txid if files else None
    since = None
    if replica_txid is not None:
        missing = [f for f in files if f.max_txid > replica_txid]
        if missing:
            since = created(missing[0])
    return Lag(newest, replica_txid, since)
