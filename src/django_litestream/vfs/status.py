"""Where each read replica is: ``manage.py litestream vfs`` and ``get_vfs_status()``.

For each VFS alias, both parts of what a replica read can miss, where they are known:

- the reader's part: the replica transaction its connection holds (txid, and the time
  that transaction reached the storage) and the seconds since it last polled its storage
  (``litestream_lag()``); the storage's newest transaction (``litestream ltx``), so that a
  reader that stopped following shows;
- the primary's part, when the primary and Litestream's local state are on this machine:
  its newest transaction, and since when the replica lacks any
  (:meth:`django_litestream.routers.Changes.missing_since`).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, cast

from django.db import DatabaseError, connections

from .. import text
from ..config.secrets import mask_url
from ..config.types import Settings
from ..errors import UsageError
from ..litestream import binary
from ..replica import listing
from ..replica.ltx import txid_hex
from .freshness import primary_changes, primary_for, vfs_aliases

if TYPE_CHECKING:
    from .backend import DatabaseWrapper


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(timezone.utc).isoformat()


def status(alias: str, *, storage: bool = True) -> dict[str, Any]:
    """What is known about the read replica ``alias``, as a dict of plain values."""
    settings = connections.settings[alias]
    options = settings["OPTIONS"]
    connection = cast("DatabaseWrapper", connections[alias])
    primary = primary_for(alias)
    out: dict[str, Any] = {
        "alias": alias,
        "is_vfs": True,
        "replica_url": mask_url(str(options.get("replica_url", ""))),
        "primary": primary,
        "txid": None,
        "time": None,
        "lag_seconds": None,
        "reconnects": connection.vfs_reconnects,
        "error": None,
    }
    try:
        position = connection.position()
    except DatabaseError as exc:
        out["error"] = str(exc)
        position = None
    if position is not None:
        out.update(
            txid=txid_hex(position.txid),
            lag_seconds=position.lag,
            connection_age_seconds=round(position.age, 3),
        )
    if storage:
        out.update(_storage(options, None if position is None else position.txid))
    changes = primary_changes(primary)
    out["primary_txid"] = None
    out["missing_since"] = None
    out["primary_known"] = changes is not None
    if changes is not None:
        out["primary_txid"] = txid_hex(max(high for _, high, _ in changes.local))
        if position is not None:
            since = changes.missing_since(position.txid, time.time())
            if since is not None:
                out["missing_since"] = _iso(datetime.fromtimestamp(since, timezone.utc))
    return out


def _storage(options: dict[str, Any], txid: int | None) -> dict[str, Any]:
    exe = binary.find(options.get("bin_path"))
    if exe is None:
        return {"storage_txid": None, "storage_time": None, "storage_error": "no litestream"}
    try:
        timeout = min(float(options.get("open_timeout", 30)), 30.0)
        contents = listing.list_files(exe, str(options["replica_url"]), timeout=timeout)
    except listing.ReplicaUnreachable as exc:
        return {"storage_txid": None, "storage_time": None, "storage_error": str(exc)}
    newest = contents.newest_txid
    held = [
        f.created for f in contents.files if txid is not None and f.min_txid <= txid <= f.max_txid
    ]
    return {
        "storage_txid": None if newest is None else txid_hex(newest),
        "storage_time": _iso(contents.newest_at),
        "storage_error": None,
        "time": _iso(min(held)) if held else None,
    }


def get_vfs_status(alias: str) -> dict[str, Any]:
    """The older release's name: :func:`status` of ``alias`` (the storage is not listed)."""
    if alias not in vfs_aliases():
        raise UsageError(
            f"{alias!r} is not a Litestream VFS alias; the VFS aliases are: "
            f"{', '.join(repr(a) for a in vfs_aliases()) or 'none'}."
        )
    return status(alias, storage=False)


def _missing(row: dict[str, Any]) -> str:
    if row["txid"] is None:
        return "-"
    if not row["primary_known"]:
        return "unknown"
    if row["missing_since"] is None:
        return "nothing"
    since = datetime.fromisoformat(row["missing_since"])
    age = time.time() - since.timestamp()
    return f"since {since:%H:%M:%S} ({age:.0f}s)"


def _lag(row: dict[str, Any]) -> str:
    if row["lag_seconds"] is not None:
        return f"{row['lag_seconds']:.0f}s"
    return "-" if row["txid"] is None else "not yet"


def _hms(text: str | None) -> str:
    return "-" if not text else datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M:%S")


def _table(rows: list[dict[str, Any]]) -> str:
    head = (
        "ALIAS",
        "TXID",
        "TIME (UTC)",
        "LAG",
        "STORAGE TXID",
        "PRIMARY",
        "PRIMARY TXID",
        "MISSING",
    )
    lines = [head]
    for row in rows:
        lines.append(
            (
                row["alias"],
                row["txid"] or "-",
                _hms(row["time"]),
                _lag(row),
                row.get("storage_txid") or "-",
                row["primary"],
                row["primary_txid"] or "-",
                _missing(row),
            )
        )
    out = text.align(lines)
    for row in rows:
        if row["error"]:
            out.append(f"{row['alias']}: {row['error']}")
        elif row.get("storage_error"):
            out.append(f"{row['alias']}: listing the storage failed: {row['storage_error']}")
        if row["reconnects"]:
            out.append(f"{row['alias']}: replaced {row['reconnects']} stuck connection(s)")
    return "\n".join(out) + "\n"


def run(settings: Settings, args: Sequence[str], write: Callable[[str], Any]) -> int:
    """``manage.py litestream vfs [--json] [--no-storage] [ALIAS ...]``; see docs/commands.rst."""
    parser = argparse.ArgumentParser(
        prog="manage.py litestream vfs",
        description="Show where each Litestream VFS read replica is and what it may miss.",
    )
    parser.add_argument("aliases", nargs="*", metavar="ALIAS", help="only these aliases")
    parser.add_argument("--json", action="store_true", help="one JSON document")
    parser.add_argument("--no-storage", action="store_true", help="do not list the replica storage")
    try:
        options = parser.parse_args(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    known = vfs_aliases()
    unknown = [a for a in options.aliases if a not in known]
    if unknown:
        raise UsageError(
            f"Not a Litestream VFS alias: {', '.join(unknown)}. The VFS aliases are: "
            f"{', '.join(known) or 'none'} (see LITESTREAM['vfs'])."
        )
    if not known:
        write("No Litestream VFS aliases in DATABASES (see LITESTREAM['vfs']).\n")
        return 0
    rows = [status(a, storage=not options.no_storage) for a in options.aliases or known]
    write(json.dumps(rows, indent=2) + "\n" if options.json else _table(rows))
    failed = any(r["error"] or r.get("storage_error") for r in rows)
    return 1 if failed else 0
