"""One log format for every process of ``serve``, so one alert rule matches them all.

A normal start says what matters in a few lines of serve's own: which databases replicate
where, and that the server starts once every replica is in sync. Litestream's routine INFO
lines are left out unless asked for (see ``serve.command.litestream_logging``).
"""

from __future__ import annotations

import logging
import shlex
import sys
from collections.abc import Sequence

from .plan import PlanDB

FORMAT = "%(asctime)s [django-litestream] %(levelname)s %(message)s"


def configure() -> None:
    """Log INFO and above to stderr (stdout stays the server's); keep httpx quiet."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format=FORMAT)


def replicating(dbs: Sequence[PlanDB]) -> str:
    """The start-up summary: ``Replicating 'default' (/srv/db.sqlite3) to s3://b/db.sqlite3``."""
    each = [f"{db.label} to {db.replica}" for db in dbs]
    if len(each) == 1:
        return f"Replicating {each[0]}"
    return f"Replicating {len(each)} databases: {'; '.join(each)}"


def starting(command: Sequence[str], databases: int) -> str:
    """The line before the server starts, once every replica has confirmed a sync."""
    synced = "Replica in sync" if databases == 1 else f"All {databases} replicas in sync"
    return f"{synced}; starting the server: {shlex.join(command)}"
