"""What a SQLite database holds, table by table, to compare a restored copy with the original.

For every table: its schema, its row count and (unless ``quick``) a checksum of its rows in
key order; plus the schema of every index, view and trigger. Litestream's own bookkeeping
tables (``_litestream_seq``, ``_litestream_lock``) are left out: Litestream rewrites them
itself. The caller holds one read transaction around :func:`read`, so that every table is
read at the same moment. Nothing here writes. No Django here.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import urllib.parse
from dataclasses import dataclass

BATCH = 2048
_OWN = "_litestream_"


@dataclass(frozen=True)
class Table:
    name: str
    rows: int
    checksum: str | None  # None in quick mode, and for virtual tables


@dataclass(frozen=True)
class Digest:
    schema: dict[tuple[str, str], str]  # (type, name) -> sql
    tables: dict[str, Table]

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables.values())


def connect_readonly(path: str) -> sqlite3.Connection:
    """A connection that can never write ``path`` (nor checkpoint it on close)."""
    uri = f"file:{urllib.parse.quote(os.path.abspath(path))}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=10, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _has_rowid(conn: sqlite3.Connection, table: str) -> bool:
    try:
        conn.execute(f"SELECT rowid FROM {_quote(table)} LIMIT 0")
    except sqlite3.OperationalError:
        return False
    return True


def _table(conn: sqlite3.Connection, name: str, *, virtual: bool, quick: bool) -> Table:
    quoted = _quote(name)
    if quick or virtual:
        (rows,) = conn.execute(f"SELECT count(*) FROM {quoted}").fetchone()
        return Table(name, int(rows), None)
    query = (
        f"SELECT rowid, * FROM {quoted} ORDER BY rowid"
        if _has_rowid(conn, name)
        else f"SELECT * FROM {quoted}"  # WITHOUT ROWID: scanned in primary-key order
    )
    digest = hashlib.blake2b(digest_size=16)
    rows = 0
    cursor = conn.execute(query)
    while True:
        batch = cursor.fetchmany(BATCH)
        if not batch:
            break
        rows += len(batch)
        digest.update(repr(batch).encode())
    return Table(name, rows, digest.hexdigest())


def read(conn: sqlite3.Connection, *, quick: bool = False) -> Digest:
    """The digest of the database ``conn`` is connected to (inside the caller's transaction)."""
    schema: dict[tuple[str, str], str] = {}
    tables: dict[str, Table] = {}
    entries = conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE '\\_litestream\\_%' "
        "ESCAPE '\\' AND tbl_name NOT LIKE '\\_litestream\\_%' ESCAPE '\\' ORDER BY type, name"
    ).fetchall()
    for kind, name, sql in entries:
        schema[(kind, name)] = sql or ""
        if kind == "table":
            virtual = (sql or "").upper().startswith("CREATE VIRTUAL TABLE")
            tables[name] = _table(conn, name, virtual=virtual, quick=quick)
    return Digest(schema, tables)


def differences(copy: Digest, live: Digest, limit: int = 5) -> list[str]:
    """What differs between the restored copy and the live database, in a few words each."""
    found: list[str] = []
    for name in sorted(live.tables.keys() - copy.tables.keys()):
        found.append(f"table {name} is missing from the restored copy")
    for name in sorted(copy.tables.keys() - live.tables.keys()):
        found.append(f"table {name} is only in the restored copy")
    for name in sorted(live.tables.keys() & copy.tables.keys()):
        a, b = copy.tables[name], live.tables[name]
        if a.rows != b.rows:
            found.append(f"{name} has {a.rows} rows in the restored copy, {b.rows} live")
        elif a.checksum != b.checksum:
            found.append(f"{name} has the same {a.rows} rows, but their contents differ")
    for key in sorted(live.schema.keys() | copy.schema.keys()):
        kind, name = key
        if kind == "table" and (name not in copy.tables or name not in live.tables):
            continue
        if live.schema.get(key) != copy.schema.get(key):
            found.append(f"the schema of {kind} {name} differs")
    if len(found) > limit:
        found = [*found[:limit], f"and {len(found) - limit} more"]
    return found


def integrity_error(path: str, *, quick: bool = False) -> str | None:
    """None when ``path`` passes SQLite's integrity check (``quick_check`` if ``quick``)."""
    try:
        conn = connect_readonly(path)
    except sqlite3.Error as exc:
        return str(exc)
    try:
        pragma = "quick_check" if quick else "integrity_check"
        rows = [r[0] for r in conn.execute(f"PRAGMA {pragma}")]
    except sqlite3.DatabaseError as exc:
        return str(exc)
    finally:
        conn.close()
    return None if rows == ["ok"] else "; ".join(rows[:3])
