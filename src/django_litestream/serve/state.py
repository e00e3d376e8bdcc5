"""serve's replica checks as a file others can read: ``status`` and the health endpoint.

The replica checks (``watch.py``) rewrite ``state.json`` in serve's private runtime
directory (0700; the file 0600, replaced atomically) after every check, and the lock file
beside each database names it, so that a reader finds it from the database's path alone.
Reading it costs one ``open`` of the lock file, one ``flock`` and one small JSON file: no
Litestream process, no network. Nothing secret is in it (replica descriptions never carry
credentials; reasons are scrubbed). No Django here.

The file::

    {"version": 1, "pid": 123, "checks": true, "interval": 30.0, "updated_at": 1764392261.5,
     "stale_after": 1764392306.5,
     "dbs": {"/srv/db.sqlite3": {"path": ..., "alias": "default", "label": ...,
             "replica": "s3://bucket/db", "ok": true, "local_txid": 18, "replica_txid": 18,
             "since": null, "outage_since": null, "checked_at": ..., "confirmed_at": ...,
             "reason": null}}}

``since``: when Litestream copied the oldest write the replica lacks (null: none lacking);
``outage_since``: when the current outage began (null: none).
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

from .lock import holder
from .plan import read_json, write_json_atomic

VERSION = 1


def write(path: str, data: dict[str, Any]) -> None:
    write_json_atomic(path, {"version": VERSION, **data})


class Running(NamedTuple):
    """A running serve of one database, as its lock file and state file describe it."""

    pid: int | None
    socket: str | None
    metrics: str | None
    state_path: str | None
    state: dict[str, Any] | None  # the whole state file, None when not (yet) written

    def db_state(self, path: str) -> dict[str, Any] | None:
        dbs = (self.state or {}).get("dbs")
        found = dbs.get(path) if isinstance(dbs, dict) else None
        return found if isinstance(found, dict) else None


def running(db: str, cache: dict[str, dict[str, Any] | None] | None = None) -> Running | None:
    """The serve holding ``db``'s lock, or None. ``cache`` shares state files between dbs."""
    record = holder(db)
    if record is None:
        return None
    state_path = record.get("state")
    state = None
    if isinstance(state_path, str) and os.path.isabs(state_path):
        if cache is not None and state_path in cache:
            state = cache[state_path]
        else:
            state = read_json(state_path)
            if cache is not None:
                cache[state_path] = state
    pid = record.get("pid")
    return Running(
        pid if isinstance(pid, int) else None,
        _text(record.get("socket")),
        _text(record.get("metrics")),
        state_path if isinstance(state_path, str) else None,
        state,
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
