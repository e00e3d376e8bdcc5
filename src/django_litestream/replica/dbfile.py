"""Whether the file at a database's path can be served at all, and whether it is missing,
before anything opens it.

The Django side of ``serve`` asks before its exec, so this module imports nothing else of
serve's (the restore machinery is the supervisor's). No Django here.
"""

from __future__ import annotations

import os

SQLITE_HEADER = b"SQLite format 3\x00"


def unusable_database(path: str) -> str | None:
    """Why the file at a database's path can never be served, or None.

    Said before Litestream starts: a directory, or a non-empty file that does not begin
    with SQLite's header, would otherwise surface only as a readiness timeout.
    """
    if os.path.isdir(path):
        return (
            f"is a directory, not a SQLite database file. Point the setting at the database "
            f"file (e.g. {os.path.join(path, 'db.sqlite3')}), or remove the directory."
        )
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(SQLITE_HEADER))
    except OSError:
        return None  # missing, or its directory is: the lock and the restore say it
    if head and head != SQLITE_HEADER:
        return (
            "is not a SQLite database (the file does not begin with SQLite's header). Move "
            "it away to restore the database from its replica, or point the setting at "
            "the right file."
        )
    return None


def is_missing(path: str) -> bool:
    """As serve's restore sees it: no file, or an empty one with no WAL beside it."""
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        return True
    wal = f"{path}-wal"
    return size == 0 and not (os.path.exists(wal) and os.path.getsize(wal) > 0)
