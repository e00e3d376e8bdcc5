"""How a ``serve`` run ended (the supervisor's record of it), as an exit code and a log line."""

from __future__ import annotations

import logging
import shlex
from typing import Any

from ..litestream.process import describe_status, exit_status
from . import exitcodes
from .plan import Plan

log = logging.getLogger("django_litestream.serve")

# Outcome kinds (the "outcome" key of the record).
EXITED = "exited"  # the server ran and exited: "status", "synced", "txids", "detail"
NOT_READY = "not_ready"  # Litestream never confirmed a sync: "detail"
PRE_FAILED = "pre_failed"  # a pre-serve command failed: "command", "status"
STOPPED = "stopped"  # a signal arrived before the server started: "signal"


# Litestream stalls ("LTX file is missing") when its local state no longer holds what the
# replica needs: a new, empty replica location after L0 retention pruned the state, or a
# database replaced by hand. "litestream reset" clears that state; Litestream then uploads a
# fresh snapshot.
STALE_STATE_HINT = (
    ". Litestream's local state (its LTX files) no longer covers what the replica needs, as "
    "after a move to a new replica location or a database replaced by hand: run "
    "'python manage.py litestream reset DB' for that database (neither the database nor the "
    "replica is changed; Litestream then uploads a fresh snapshot), then start serve again"
)


def exit_code(
    result: dict[str, Any] | None,
    plan: Plan,
    litestream_status: int | None,
    *,
    server_killed: bool = False,
) -> int:
    """``serve``'s exit code for what the supervisor recorded, logging why when it is not clean.

    ``server_killed``: serve itself killed the server (after --graceful-timeout, or on a
    fast stop), so a SIGKILL is no sign of the out-of-memory killer.
    """
    killed_by = "serve" if server_killed else ""
    if result is None:
        return exitcodes.LITESTREAM_DIED
    kind = result.get("outcome")
    if kind == NOT_READY:
        detail = str(result.get("detail"))
        log.error(
            "Litestream was not ready within --ready-timeout (%gs): %s%s",
            plan.ready_timeout,
            detail,
            STALE_STATE_HINT if "ltx file" in detail.lower() else "",
        )
        return exitcodes.NOT_READY
    if kind == PRE_FAILED:
        log.error(
            "Pre-serve command %s failed (%s)",
            shlex.join(result["command"]),
            describe_status(result["status"]),
        )
        return int(result["status"]) or 1
    if kind == STOPPED:
        return exit_status(-int(result["signal"]))
    status = int(result.get("status", 1))
    if not result.get("synced", False):
        log.error(
            "The server exited (%s) but the final sync was not confirmed: %s. The newest "
            "writes may be missing from the replica; they are in the local database, and "
            "the next start replicates them",
            describe_status(status, killed_by=killed_by),
            result.get("detail"),
        )
        return exitcodes.SYNC_UNCONFIRMED
    if litestream_status:
        log.warning("Litestream exited with status %s after the final sync", litestream_status)
    txids = result.get("txids") or {}
    held = ", ".join(f"{label} at txid {txid}" for label, txid in txids.items())
    log.info(
        "Server exited (%s); replica confirmed in sync%s",
        describe_status(status, killed_by=killed_by),
        f" ({held})" if held else "",
    )
    return status
