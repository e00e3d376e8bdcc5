"""``manage.py litestream restore``: point-in-time restores for people under stress.

Before Litestream runs (docs/operations.rst, "Restore runbook"):

- ``-timestamp WHEN`` accepts what people type (:mod:`when`: ``-15m``, ``2 hours ago``,
  ``2026-11-25 10:00`` in local time, ISO 8601 with or without a zone) and becomes the RFC
  3339 time Litestream reads. The replica is listed and Litestream's own plan asked for
  (``restore -dry-run -json``), so that the line printed first says how the time was read
  and which transaction it lands on; a time after the newest backup says it restores the
  newest, and a time before the oldest stops (66) naming the oldest.
- It refuses (73, one line) to write over the database of a running ``serve`` (even with
  ``-force``: the live file would be replaced under Litestream, whose replication of it
  stays broken until serve restarts), and over any other existing database without
  Litestream's ``-force``.
No Django here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence

from ..config.types import Database
from ..errors import NoBackupError, ReplicaUnavailableError, RestoreRefusedError, UsageError
from ..litestream import subcommands
from ..litestream.process import run_bounded
from ..replica import listing, moments
from ..replica.listing import ReplicaUnreachable
from ..replica.ltx import txid_hex
from ..serve import state

LIST_TIMEOUT = 30.0
RUNBOOK = "docs/operations.rst, 'Restore runbook'"


def _flag(args: Sequence[str], name: str) -> tuple[int, str | None] | None:
    """(index, value) of ``-name VALUE`` / ``-name=VALUE`` among ``args`` (flags only)."""
    for i, arg in enumerate(args):
        if not arg.startswith("-"):
            continue
        key, eq, value = arg.lstrip("-").partition("=")
        if key == name:
            if eq:
                return i, value
            return i, args[i + 1] if i + 1 < len(args) else None
    return None


def _exists(path: str) -> bool:
    """As Litestream sees an output path: a non-empty file, or SQLite sidecar files."""
    try:
        if os.path.getsize(path) > 0:
            return True
    except OSError:
        pass
    return any(os.path.exists(path + s) for s in ("-wal", "-shm"))


def refuse_overwrite(output: str, flags: Sequence[str]) -> None:
    has = subcommands.has_flag
    if has(flags, "dry-run") or has(flags, "if-db-not-exists"):
        return  # writes nothing over an existing database
    running = state.running(output)
    if running is not None:
        raise RestoreRefusedError(
            f"{output} is the database of a running 'litestream serve' (PID "
            f"{running.pid or 'unknown'}); restoring over it would replace the live file "
            "under Litestream (even with -force). Restore next to it with -o "
            f"{output}.restored, then stop serve and swap the files ({RUNBOOK})."
        )
    if _exists(output) and not has(flags, "force"):
        raise RestoreRefusedError(
            f"{output} already exists and restore would overwrite it. Restore elsewhere "
            "with -o PATH, or add -force once nothing uses it (stop the application first)."
        )


def _plan(argv: Sequence[str], env: Mapping[str, str]) -> tuple[dict[str, object] | None, str]:
    """Litestream's restore plan for ``argv`` (a restore command line), or why not."""
    args = [a for a in argv[2:] if a not in ("-dry-run", "--dry-run", "-json", "--json")]
    code, output = run_bounded(
        [argv[0], "restore", "-dry-run", "-json", *args], env, timeout=LIST_TIMEOUT
    )
    start = output.find("{")
    if code == 0 and start >= 0:
        try:
            plan = json.loads(output[start:])
        except ValueError:
            plan = None
        if isinstance(plan, dict):
            return plan, ""
    lines = [line for line in output.splitlines() if line.strip()]
    return None, lines[-1] if lines else f"litestream restore exited {code}"


def configured(source: str, dbs: Sequence[Database]) -> None:
    """UsageError (2) unless ``source`` is a configured database, or a file in a ``dir``
    entry's directory: the same answer as ``status`` and ``verify`` give."""
    path = os.path.abspath(os.path.expanduser(source))
    for db in dbs:
        if "dir" in db.options:
            if path.startswith(db.path.rstrip(os.sep) + os.sep):
                return
        elif path == db.path:
            return
    known = ", ".join(db.alias or db.path for db in dbs if "dir" not in db.options) or "none"
    raise UsageError(
        f"restore: {source!r} is not a database in LITESTREAM['dbs'] (configured: {known}). "
        "Give a DATABASES alias, a path from that list, or a replica URL."
    )


def read_moment(value: str | None) -> moments.Moment:
    if value is None:
        raise UsageError(f"restore -timestamp needs a time: give {moments.FORMS}.")
    try:
        return moments.parse(value)
    except moments.WhenError as exc:
        raise UsageError(f"restore -timestamp: {exc}") from None


def point_in_time(
    argv: list[str],
    index: int,
    moment: moments.Moment | None,
    value: str,
    source: str,
    *,
    config_path: str | None,
    env: Mapping[str, str],
    say: Callable[[str], None],
) -> list[str] | None:
    """``argv`` with the -timestamp at ``index`` as Litestream reads it, after saying where
    it lands; NoBackupError when the replica holds nothing that old. None: nothing to run
    (an empty replica and ``-if-replica-exists``: a first boot, not a failure)."""
    moment = moment or read_moment(value)
    try:
        contents = listing.list_files(
            argv[0], source, config_path=config_path, env=env, timeout=LIST_TIMEOUT
        )
    except ReplicaUnreachable as exc:
        raise ReplicaUnavailableError(
            f"restore -timestamp: the replica of {source} could not be listed ({exc}). Check "
            "that it is reachable and its credentials are set."
        ) from None
    if contents.empty:
        if subcommands.has_flag(argv[2:], "if-replica-exists"):
            say(
                f"The replica of {source} holds no backup yet; nothing restored "
                "(-if-replica-exists)."
            )
            return None
        raise NoBackupError(f"The replica of {source} holds no backup to restore.")
    arg = argv[index]
    if "=" in arg:
        argv[index] = f"{arg.partition('=')[0]}={moment.rfc3339}"
    else:
        argv[index + 1] = moment.rfc3339
    oldest = moments.utc_text(contents.oldest_at) if contents.oldest_at else "?"
    plan, why = _plan(argv, env)
    if plan is None:
        if "no matching backup" in why or "not available" in why:
            raise NoBackupError(
                f"restore -timestamp {value!r}: {moment.description} is before the oldest "
                f"backup the replica holds (from {oldest}). Give a time at or after it; "
                "Litestream keeps history for snapshot.retention (24h by default)."
            )
        raise ReplicaUnavailableError(f"restore -timestamp {value!r}: {why}")
    lands = int(str(plan.get("max_txid") or "0"), 16)
    files = plan.get("files")
    stamp = ""
    if isinstance(files, list) and files and isinstance(files[-1], dict):
        stamp = str(files[-1].get("timestamp") or "").replace("T", " ").replace("Z", " UTC")
    if lands == contents.newest_txid:
        newest = moments.utc_text(contents.newest_at) if contents.newest_at else "?"
        say(
            f"Restoring as of {moment.description}: that is at or after the newest backup, "
            f"so this restores the newest: txid {txid_hex(lands)} (written {newest})."
        )
    else:
        say(
            f"Restoring as of {moment.description}: lands on txid {txid_hex(lands)} (written "
            f"{stamp or 'at an unknown time'}); the replica holds backups from {oldest}."
        )
    return argv


def prepare(
    argv: list[str],
    *,
    env: Mapping[str, str],
    say: Callable[[str], None],
    dbs: Sequence[Database] | None = None,
) -> list[str] | None:
    """Check and rewrite a ``litestream restore`` command line (``argv`` from build_argv).

    ``dbs``: the configured databases a database path must be one of (None when the
    configuration is the user's own ``-config``). None: nothing to run (see
    :func:`point_in_time`).
    """
    exe = argv[0]
    args = argv[2:]
    start = subcommands.positional_start(args, subcommands.flag_arity(exe, "restore"))
    flags, positionals = args[:start], args[start:]
    if not positionals:
        return argv  # Litestream says what is missing
    source = positionals[0]
    if dbs is not None and not subcommands.is_url(source):
        configured(source, dbs)
    found = _flag(flags, "timestamp")
    moment = read_moment(found[1]) if found is not None else None
    out = _flag(flags, "o")
    if out is not None and out[1] is not None and not out[1].strip():
        # Litestream reads an empty -o as "the database's own path": over the live file
        raise UsageError(
            f"restore -o needs a file path (it was {out[1]!r}). Give where to write the "
            "copy, e.g. -o /tmp/restored.sqlite3."
        )
    output = out[1] if out is not None else (None if subcommands.is_url(source) else source)
    if output:
        refuse_overwrite(os.path.abspath(os.path.expanduser(output)), flags)
    if found is None:
        return argv
    config = _flag(flags, "config")
    return point_in_time(
        argv,
        found[0] + 2,
        moment,
        found[1] or "",
        source,
        config_path=config[1] if config is not None and not subcommands.is_url(source) else None,
        env=env,
        say=say,
    )
