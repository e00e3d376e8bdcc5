"""serve's guard: before the restore, every existing database must continue its replica.

Databases that are missing are restored from the replica next, so they are the replica's
by construction; every other one is checked with :mod:`django_litestream.guard`. A
database that is not a continuation stops serve (exit 65), is adopted (``--adopt-local``),
or is moved aside so that the restore that follows brings the replica's database back
(``--restore-over-local``). Checking before the restore, not after, lets that restore be
the ordinary one. No Django here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

from ..replica import guard, position, preflight
from ..replica.dbfile import is_missing
from ..replica.listing import ReplicaUnreachable
from ..replica.ltx import default_meta_path
from . import exitcodes
from .plan import Plan

log = logging.getLogger("django_litestream.serve")


def check(
    plan: Plan,
    env: Mapping[str, str],
    cancel: threading.Event | None = None,
    in_replica: set[str] | None = None,
) -> int | None:
    """Log each database's verdict; the exit code when serve must stop, else None.

    ``cancel`` (set when serve is told to stop) ends the retries of an unreachable replica.
    ``in_replica`` receives the path of every database its replica holds exactly: a
    continuation whose replica's newest txid is Litestream's position, with no transaction
    past it (:func:`held_by_replica`).
    """
    targets = [
        preflight.Subject(
            db.path,
            db.label,
            db.replica,
            db.meta_path or default_meta_path(db.path),
            replica_dir=db.replica_dir,
        )
        for db in plan.dbs
        if not is_missing(db.path)
    ]
    if not targets:
        return None
    results = preflight.check_all(
        targets,
        binary=plan.binary,
        config_path=plan.config_path,
        env=env,
        timeout=min(30.0, plan.restore_timeout),
        retry_for=0.0 if plan.adopt_local else plan.restore_timeout,
        cancel=cancel,
    )
    if cancel is not None and cancel.is_set():
        return None  # the supervisor exits for the signal
    code = None
    for target, result in zip(targets, results, strict=True):
        if isinstance(result, ReplicaUnreachable):
            if plan.adopt_local:
                log.warning(
                    "Adopting %s without comparing it (--adopt-local): its replica %s cannot "
                    "be read (%s)",
                    target.label,
                    target.replica,
                    result,
                )
                continue
            log.error(
                "Cannot check %s against its replica %s: %s. Check that the replica is "
                "reachable and its credentials are set, or raise --restore-timeout.",
                target.label,
                target.replica,
                result,
            )
            code = code or exitcodes.RESTORE_FAILED
        elif result.proceed:
            log.info("%s", result.reason)
            if in_replica is not None and held_by_replica(result, target.meta_path):
                in_replica.add(target.path)
        elif plan.adopt_local:
            log.warning("%s", preflight.adoption(result, flag="--adopt-local"))
        elif plan.restore_over_local:
            try:
                folder = preflight.set_aside(target.path, target.meta_path)
            except OSError as exc:
                log.error("Cannot move %s aside: %s", target.label, exc)
                return exitcodes.RESTORE_FAILED
            log.warning(
                "%s; moved it aside to %s (--restore-over-local); restoring the replica's database",
                result.reason,
                folder,
            )
        else:
            log.error("%s", preflight.refusal(result, command="serve"))
            code = exitcodes.NOT_CONTINUATION
    return code


def held_by_replica(verdict: guard.Continuity, meta_path: str) -> bool:
    """Does the replica hold exactly what this database holds (nothing is still to upload)?"""
    if verdict.kind != guard.CONTINUES or verdict.replica_txid is None:
        return False
    here = position.coverage(verdict.path, meta_path)
    return here.covered and here.txid == verdict.replica_txid
