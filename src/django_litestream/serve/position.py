"""How far Litestream's local state covers a database: read from files, nothing asked.

Litestream 0.5 keeps, beside each database, the transactions it has read from the WAL as
level-0 LTX files; the newest one is its position, and its header records where in the WAL
it stopped reading (the WAL's salts and an offset). A transaction committed after that
position is a commit frame of the same WAL generation past that offset, or any commit
frame of a newer generation (the WAL restarted since). When there is none, the newest
txid covers every transaction the database holds: everything else was checkpointed into
the database file only after Litestream had read it, since its read transaction holds
SQLite's checkpoints back (serve never lets a ``litestream sync`` end that transaction;
see ``probe.py``).

Used twice by the supervisor, at times when nothing writes:

* at start, before Litestream runs: a database whose replica's newest txid is Litestream's
  position, with nothing past it, is exactly what its replica holds (the guard has shown
  that the files continue the replica's history);
* after Litestream has exited, its final sync done: the replica must hold the position,
  and nothing may be past it.

No Django here.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from .. import ltxfile, walfile


class Position(NamedTuple):
    txid: int  # Litestream's newest level-0 txid (0: no state)
    covered: bool  # no transaction in the WAL past it
    why: str = ""  # why not covered, in a few words

    def __bool__(self) -> bool:
        return self.covered


def local(path: str, meta_path: str) -> Position:
    """Litestream's position for the database at ``path``, and whether it covers it all."""
    files = ltxfile.level0(meta_path)
    if not files:
        return Position(0, False, "Litestream has no state for it")
    txid = files[-1].max_txid
    wal_path = f"{path}-wal"
    try:
        header = ltxfile.read_header(files[-1].path)
        wal = walfile.read_header(wal_path)
        if wal is None:
            if header.wal_end > walfile.WAL_HEADER_SIZE:
                return Position(txid, False, "its WAL is gone since Litestream read it")
            return Position(txid, True)
        if wal.page_size != header.page_size:
            return Position(txid, False, "its WAL does not match Litestream's state")
        start = walfile.WAL_HEADER_SIZE
        if (wal.salt1, wal.salt2) == (header.wal_salt1, header.wal_salt2):
            if os.path.getsize(wal_path) < header.wal_end:
                return Position(txid, False, "its WAL is shorter than Litestream's state")
            start = header.wal_end
        if walfile.commit_from(wal_path, wal, start):
            return Position(txid, False, f"its WAL holds a transaction after txid {txid}")
    except (OSError, ltxfile.LTXError):
        return Position(txid, False, "Litestream's state cannot be read")
    return Position(txid, True)
