"""The final sync, confirmed after Litestream has exited: from the files and the replica.

When the server has exited, the supervisor lets Litestream's ``-exec`` child (the sleeper)
exit, and Litestream, seeing it gone, closes every database the way it always does: one
more sync of the WAL to its end, then the replica, retried for ``shutdown-sync-timeout``
(``DB.Close`` in ``db.go``). That is the plain recipe's own stop, with nothing waited for
in between. Once it has exited, nothing writes any more, and for each database:

1. Litestream's local state covers every transaction (``replica/position.py``): its newest level-0
   txid, and no commit in the WAL past the place that file records;
2. the replica holds that txid (``litestream ltx -json -level 0``, read from the storage:
   level-0 files are uploaded in txid order and the newest is never pruned). A ``file``
   replica's level-0 directory is read directly, as Litestream's file client lists it
   (``<path>/ltx/0/<min>-<max>.ltx``, written to a temporary name and renamed): the same
   answer without starting a Go process (about 20 ms of every stop).

Both hold only when every transaction the server committed is in the replica.

The ``-wal`` must still be there to read: SQLite deletes it when the last connection to the
database closes (after checkpointing it into the database file), and Litestream's own close
is often that last connection. Without the WAL, nothing shows what Litestream had read, and
the check would fail a stop that lost nothing ("its WAL is gone"; 1 in about 60 stops under
load on S3). So the supervisor holds one idle connection to each database (:func:`hold`)
from before Litestream starts until this check is done: an idle connection holds no read
transaction (checkpoints go on as with any idle application connection), but it keeps
anyone else's close from being the last. They are never closed: the supervisor ends with
``os._exit``, which closes no connection and so checkpoints nothing, and the ``-wal`` stays
as Litestream left it for the next start (a WAL holding writes the replica may lack, after
an unconfirmed final sync, is replicated from there). No Django.
"""

from __future__ import annotations

import contextlib
import sqlite3
import urllib.parse
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor

from ..replica import listing, position
from ..replica.ltx import default_meta_path
from .plan import Plan, PlanDB

LIST_TIMEOUT = 30.0  # seconds for one listing of a replica


def hold(paths: Iterable[str]) -> dict[str, sqlite3.Connection]:
    """One idle connection to each database that exists, by path, so that its ``-wal``
    outlives Litestream's close (see the module's docstring). Never creates a database."""
    held = {}
    for path in paths:
        with contextlib.suppress(sqlite3.Error):
            conn = sqlite3.connect(
                f"file:{urllib.parse.quote(path)}?mode=rw",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
            )
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opens the WAL
            except sqlite3.Error:
                conn.close()
                continue
            held[path] = conn
    return held


def confirm(plan: Plan, env: Mapping[str, str]) -> tuple[dict[str, int], str]:
    """({label: txid}, "") when every replica holds all its database's transactions;
    else ({}, why not)."""
    where = {
        db.path: position.coverage(db.path, db.meta_path or default_meta_path(db.path))
        for db in plan.dbs
    }
    for db in plan.dbs:
        if not where[db.path]:
            return {}, f"{db.label}: {where[db.path].why}"

    def held(db: PlanDB) -> int | str:
        if db.replica_dir:
            return listing.file_replica_txid(db.replica_dir)
        return listing.replica_txid(plan.binary, plan.config_path, db.path, LIST_TIMEOUT, env)

    with ThreadPoolExecutor(max_workers=max(1, len(plan.dbs))) as pool:
        found = list(pool.map(held, plan.dbs))
    for db, replica in zip(plan.dbs, found, strict=True):
        txid = where[db.path].txid
        if isinstance(replica, str):
            return {}, f"{db.label}: {replica}"
        if replica < txid:
            held_txid = f"the replica {db.replica} holds txid {replica}"
            return {}, f"{db.label}: {held_txid}, the database is at {txid}"
    return {db.label: where[db.path].txid for db in plan.dbs}, ""
