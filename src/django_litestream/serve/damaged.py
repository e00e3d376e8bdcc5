"""A restore that fails the same way while the replica answers: a damaged backup, not an
outage.

A cold start retries a failed restore until ``--restore-timeout``, as for a replica that
cannot be reached. But when the replica answers its listing and the restore fails twice
with the same error (a newest LTX file whose pages do not decode, say), waiting changes
nothing: the run stops at once and says what to do instead (restore an earlier point).
A damaged file whose header cannot be read makes the listing fail too: that case is still
retried as an outage. No Django here.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from ..replica.listing import ReplicaUnreachable, list_files

DAMAGED = "the replica answers, but its backup cannot be restored: "
LIST_TIMEOUT = 10.0


def replica_answers(
    binary: str, config_path: str, db: str, env: Mapping[str, str], deadline: float
) -> bool:
    """Whether the replica of ``db`` lists its files (bounded by ``deadline``)."""
    timeout = min(LIST_TIMEOUT, deadline - time.monotonic())
    if timeout <= 0:
        return False
    try:
        list_files(binary, db, config_path=config_path, env=env, timeout=timeout)
    except ReplicaUnreachable:
        return False
    return True


def hint() -> str:
    return (
        "A file in the replica is damaged (this is not an outage): restore an earlier point "
        "into place with python manage.py litestream restore -txid TXID DB, a TXID from "
        "python manage.py litestream ltx DB (docs/operations.rst, 'Restore runbook'), then "
        "start serve again"
    )
