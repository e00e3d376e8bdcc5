"""``manage.py litestream status``: Litestream's own columns, plus where each replica is.

Litestream 0.5.17's ``status`` shows only the local side (status, local txid, WAL size).
This adds, per database, the replica's newest txid read from the storage itself
(``litestream ltx``, bounded), how far behind it is (transactions, and the age of the
oldest write it lacks: ``position.py``), when it last received a file, whether it could be
reached, the sizes of the database and its WAL, and what a running ``serve``'s replica
checks last found (its state file; serve is never asked to do anything). Nothing here
writes. An unreachable replica is a value in the output and exit code 69.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

from .. import text
from ..config import effective, locations, secrets
from ..config.types import Database, Settings
from ..errors import UsageError, UsageParser
from ..litestream.process import run_bounded
from ..replica import listing, ltx, position
from ..replica.ltx import txid_hex
from ..serve import state
from . import invocation, passthrough

EXIT_UNREACHABLE = 69
# The keys of each object of ``status -json``: stable, documented in docs/operations.rst.
JSON_KEYS = (
    "database",  # Litestream's own keys first (database, status, local_txid, wal_size)
    "alias",
    "path",
    "replica",
    "status",
    "local_txid",
    "replica_txid",
    "lag_txids",
    "lag_seconds",
    "pending_commits",
    "last_replicated_at",
    "replica_reachable",
    "db_bytes",
    "wal_bytes",
    "wal_size",
    "error",
    "serve",
)
DEFAULT_TIMEOUT = 10.0

HELP = """usage: manage.py litestream status [ALIAS_OR_PATH ...] [-json] [-timeout SECONDS]

Litestream's status of each configured database (status, local txid, WAL size), and where
its replica is: the replica's newest txid (read from the storage), the lag in transactions
and in seconds (the age of the oldest write the replica lacks; 0 when it lacks none), when
the replica last received a file, whether it could be reached, the database's size, and
what a running 'serve' last found. Nothing is written anywhere.

  ALIAS_OR_PATH     only these databases (DATABASES aliases or paths from LITESTREAM['dbs'])
  -json             one JSON list, one object per database (keys: docs/operations.rst)
  -timeout SECONDS  how long to wait for each replica's storage (default 10)
  -config PATH, -no-expand-env
                    Litestream's own 'status' runs instead, as given

Exit status: 0; 69 when a replica could not be reached; 2 for a bad argument.
"""


def _parser() -> argparse.ArgumentParser:
    p = UsageParser("status")
    p.add_argument("names", nargs="*")
    p.add_argument("-json", "--json", dest="json", action="store_true")
    p.add_argument("-timeout", "--timeout", dest="timeout", type=float, default=DEFAULT_TIMEOUT)
    p.add_argument("-h", "-help", "--help", dest="help", action="store_true")
    return p


def _hex(txid: int | None) -> str | None:
    return None if txid is None else txid_hex(txid)


def _iso(moment: datetime | float | None) -> str | None:
    if moment is None:
        return None
    if isinstance(moment, int | float):
        moment = datetime.fromtimestamp(moment, timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


def _size(path: str) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def litestream_status(prepared: invocation.Prepared) -> dict[str, dict[str, Any]]:
    """Litestream's own ``status -json``, by database path ({} when it cannot be read)."""
    argv = [prepared.exe, "status", "-json", "-config", prepared.config_path]
    code, output = run_bounded(argv, prepared.env, timeout=DEFAULT_TIMEOUT)
    start = output.find("[")
    if code != 0 or start < 0:
        return {}
    try:
        rows = json.loads(output[start:])
    except ValueError:
        return {}
    return {str(r.get("database")): r for r in rows if isinstance(r, dict)}


def serve_summary(db: Database) -> dict[str, Any] | None:
    """What a running serve's replica checks last found about ``db`` (None: no serve)."""
    found = state.running(db.path)
    if found is None:
        return None
    mine = found.db_state(db.path) or {}
    return {
        "pid": found.pid,
        "checks": bool((found.state or {}).get("checks")),
        "checked_at": _iso(mine.get("checked_at")),
        "in_sync": mine.get("ok"),
        "outage_since": _iso(mine.get("outage_since")),
        "reason": mine.get("reason"),
    }


def row(
    db: Database,
    entry: Mapping[str, Any],
    prepared: invocation.Prepared,
    own: Mapping[str, Any],
    timeout: float,
) -> dict[str, Any]:
    meta = effective.meta_path(db.path, entry)
    out: dict[str, Any] = {
        "database": db.path,
        "alias": db.alias,
        "path": db.path,
        "replica": locations.describe(entry["replica"], os.environ),
        "status": own.get("status", "unknown"),
        "local_txid": None,
        "replica_txid": None,
        "lag_txids": None,
        "lag_seconds": None,
        "pending_commits": None,
        "last_replicated_at": None,
        "replica_reachable": False,
        "db_bytes": _size(db.path),
        "wal_bytes": _size(f"{db.path}-wal") or 0,
        "wal_size": own.get("wal_size"),
        "error": None,
        "serve": serve_summary(db),
    }
    try:
        contents = listing.list_files(
            prepared.exe,
            db.path,
            config_path=prepared.config_path,
            env=prepared.env,
            timeout=timeout,
        )
    except listing.ReplicaUnreachable as exc:
        out["error"] = secrets.scrub(str(exc), secrets.secret_values(prepared.env))
        lag = position.lag(meta, None)
        out["local_txid"] = _hex(lag.local_txid)
        return out
    lag = position.lag(meta, contents.newest_txid or 0)
    pending = position.pending_commits(db.path, meta)
    now = time.time()
    seconds = lag.seconds(now)
    if pending and lag.since is None and lag.local_txid is not None:
        # Writes Litestream has not copied: made after its newest local LTX file.
        newest = ltx.level0(meta)[-1]
        seconds = max(0.0, now - position.created(newest))
    out.update(
        local_txid=_hex(lag.local_txid),
        replica_txid=_hex(contents.newest_txid),
        lag_txids=None if lag.txids is None else lag.txids + (1 if pending else 0),
        lag_seconds=None if seconds is None else round(seconds, 1),
        pending_commits=pending,
        last_replicated_at=_iso(contents.newest_at),
        replica_reachable=True,
    )
    return out


def _human_bytes(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def table(rows: Sequence[dict[str, Any]]) -> str:
    head = (
        "database",
        "status",
        "local txid",
        "wal size",
        "replica txid",
        "lag",
        "lag (s)",
        "last file (UTC)",
        "db size",
    )
    lines = [head]
    for r in rows:
        last = r["last_replicated_at"]
        lines.append(
            (
                r["path"],
                r["status"],
                r["local_txid"] or "-",
                r["wal_size"] or _human_bytes(r["wal_bytes"]),
                r["replica_txid"] or ("unreachable" if not r["replica_reachable"] else "-"),
                "-" if r["lag_txids"] is None else str(r["lag_txids"]),
                "-" if r["lag_seconds"] is None else f"{r['lag_seconds']:.0f}",
                datetime.fromisoformat(last).strftime("%Y-%m-%d %H:%M:%S") if last else "-",
                _human_bytes(r["db_bytes"]),
            )
        )
    out = text.align(lines)
    for r in rows:
        name = r["alias"] or r["path"]
        if r["error"]:
            out.append(f"{name}: the replica {r['replica']} could not be reached: {r['error']}")
        serve = r["serve"]
        if serve and serve["checks"] and serve["in_sync"] is False:
            out.append(
                f"{name}: serve (PID {serve['pid']}) finds the replica not keeping up since "
                f"{serve['outage_since']}: {serve['reason']}"
            )
        elif serve:
            checked = f", last checked {serve['checked_at']}" if serve["checked_at"] else ""
            out.append(f"{name}: served by serve (PID {serve['pid']}){checked}")
    return "\n".join(out) + "\n"


def run(settings: Settings, args: Sequence[str], write: Callable[[str], Any]) -> int:
    """``manage.py litestream status``; see :data:`HELP`."""
    own_flags = ("-config", "--config", "-no-expand-env", "--no-expand-env")
    if any(a.split("=", 1)[0] in own_flags for a in args):
        return passthrough.run_litestream(settings, "status", args)  # Litestream's own status
    options = _parser().parse_args(list(args))
    if options.help:
        write(HELP)
        return 0
    if not (0 < options.timeout <= 600):
        raise UsageError(
            f"status: -timeout must be between 0 and 600 seconds, not {options.timeout:g}."
        )
    dbs = invocation.selected_dbs(settings, options.names, "status")
    with invocation.prepared(settings) as prepared:
        entries = invocation.entries(settings, prepared.generated)
        own = litestream_status(prepared)
        with ThreadPoolExecutor(max_workers=len(dbs)) as pool:
            rows = list(
                pool.map(
                    lambda db: row(
                        db, entries[db.path], prepared, own.get(db.path, {}), options.timeout
                    ),
                    dbs,
                )
            )
    write(json.dumps(rows, indent=2) + "\n" if options.json else table(rows))
    return EXIT_UNREACHABLE if any(not r["replica_reachable"] for r in rows) else 0
