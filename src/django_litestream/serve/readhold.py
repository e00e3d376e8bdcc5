"""Read transactions that keep SQLite from checkpointing until Litestream holds its own.

Litestream reads new transactions from the WAL. What it must never miss is a checkpoint
that copies frames it has not read into the database and lets the WAL restart over them:
those transactions would be in no LTX file. Its own defence is a long read transaction
(``DB.acquireReadLock``, begun when its monitor first opens the database, one
``monitor-interval`` after it starts). While any read transaction is open, SQLite's
checkpoint stops at that reader's snapshot (a reader of the database file alone blocks it
entirely), so the WAL cannot restart past it.

So the supervisor begins one read transaction on each database (on the idle connection it
holds anyway, ``finalsync.hold``) before anything may write, and ends it once Litestream's
monitor holds its own (``/debug/sync-status``). In between, the server may start and write:
every frame stays in the WAL for Litestream's first sync, exactly as if Litestream had held
the database from the start. Only a database in WAL mode is held (a reader in rollback
mode would block every writer); any other waits for Litestream before the server starts.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Mapping


def begin(conns: Mapping[str, sqlite3.Connection]) -> dict[str, sqlite3.Connection]:
    """Begin a read transaction on each connection; the ones now held, by path."""
    held: dict[str, sqlite3.Connection] = {}
    for path, conn in conns.items():
        try:
            mode = conn.execute("PRAGMA journal_mode").fetchone()
            if not mode or str(mode[0]).lower() != "wal":
                continue
            conn.execute("BEGIN")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the snapshot
        except sqlite3.Error:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            continue
        held[path] = conn
    return held


def release(held: dict[str, sqlite3.Connection]) -> None:
    """End every read transaction begun by :func:`begin` (the connections stay open)."""
    for conn in held.values():
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
    held.clear()
