"""``time_travel()``: read a VFS replica as it was at a moment, on a connection of its own.

::

    from django_litestream import time_travel

    with time_travel("prod_replica", "1 hour ago") as db:
        User.objects.using(db).count()

``db`` is a database alias of its own (a ``str``), registered for the block and removed
after it: the replica's own alias, and every other thread, keep reading the present. The
moment is read by :func:`django_litestream.replica.moments.parse` (the same forms as a point-in-time
restore). ``db`` also says what was read: ``db.moment`` (the moment asked for),
``db.txid`` (the replica transaction read), ``db.bound`` (``"newest"`` when the moment
is at or after the replica's newest transaction, which is then what is read; else None).
A moment before the oldest state the replica holds, or in the future, raises
:class:`TimeTravelError`, naming the bound.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

from django.db import DatabaseError, connections

from .. import vfs
from ..errors import LitestreamError
from ..litestream import binary
from ..replica import listing, moments

logger = logging.getLogger("django_litestream.vfs")
_counter = itertools.count(1)


class TimeTravelError(LitestreamError):
    """The alias, the moment, or the replica does not allow this time travel."""


class TimeTravelAlias(str):
    """The alias to pass to ``.using()``, with what was read."""

    moment: moments.Moment
    txid: int
    bound: str | None
    replica: str


def _check_alias(alias: str) -> dict[str, Any]:
    if alias not in connections.settings:
        known = [a for a, s in connections.settings.items() if s.get("ENGINE") == vfs.ENGINE]
        raise TimeTravelError(
            f"time_travel({alias!r}, ...): {alias!r} is not in DATABASES; the Litestream "
            f"VFS aliases are: {', '.join(repr(a) for a in known) or 'none'}."
        )
    settings = connections.settings[alias]
    if settings.get("ENGINE") != vfs.ENGINE or "replica_url" not in settings.get("OPTIONS", {}):
        raise TimeTravelError(
            f"time_travel({alias!r}, ...): {alias!r} is not a Litestream VFS replica; time "
            "travel reads a replica (an alias from get_vfs_databases())."
        )
    return dict(settings)


def _moment(alias: str, value: str | datetime) -> moments.Moment:
    try:
        moment = moments.parse(value)
    except moments.WhenError as exc:
        raise TimeTravelError(f"time_travel({alias!r}, {value!r}): {exc}") from None
    now = datetime.now(timezone.utc)
    if moment.at > now + timedelta(seconds=1):
        raise TimeTravelError(
            f"time_travel({alias!r}, {value!r}): {moment.description} is in the future "
            f"(now is {moments.utc_text(now)}); time travel reads the past."
        )
    return moment


def _before_oldest(alias: str, settings: dict[str, Any], moment: moments.Moment) -> str:
    """The message for a moment the replica no longer (or never) held."""
    options = settings["OPTIONS"]
    exe = binary.find(options.get("bin_path"))
    oldest = ""
    if exe is not None:
        try:
            contents = listing.list_files(exe, options["replica_url"], timeout=10.0)
        except listing.ReplicaUnreachable:
            contents = None
        if contents is not None and contents.oldest_at is not None:
            oldest = f" The oldest state it holds is from {moments.utc_text(contents.oldest_at)}."
    return (
        f"time_travel({alias!r}, ...): {moment.description} is before the oldest state "
        f"the replica holds.{oldest} Litestream keeps history for snapshot.retention "
        "(24h by default)."
    )


@contextlib.contextmanager
def time_travel(alias: str, moment: str | datetime) -> Iterator[TimeTravelAlias]:
    """Read the VFS replica ``alias`` as of ``moment`` inside the block (see module doc)."""
    settings = _check_alias(alias)
    parsed = _moment(alias, moment)
    name = TimeTravelAlias(f"{alias}@{parsed.rfc3339}#{next(_counter)}")
    travel_settings = copy.deepcopy(settings)
    travel_settings["OPTIONS"]["time_travel"] = parsed.rfc3339
    travel_settings["CONN_MAX_AGE"] = None  # the block decides when it closes
    connections.settings[name] = travel_settings
    try:
        connection = connections[name]
        try:
            connection.ensure_connection()
        except DatabaseError as exc:
            if "transaction not available" in str(exc):
                raise TimeTravelError(_before_oldest(alias, settings, parsed)) from None
            detail = str(exc).replace(f"'{name}'", f"'{alias}'")
            raise TimeTravelError(f"time_travel({alias!r}, {moment!r}): {detail}") from None
        travel = getattr(connection, "travel", None)
        if travel is None:
            raise TimeTravelError(
                f"time_travel({alias!r}, ...): {alias!r} is a plain SQLite database here "
                "(Django's test runner replaces every alias); time travel needs the replica."
            )
        name.moment, name.replica = parsed, alias
        name.txid = travel.txid
        name.bound = "newest" if travel.txid == travel.latest_txid else None
        if name.bound:
            logger.info(
                "time_travel(%r): %s is at or after the replica's newest transaction "
                "(txid %x, %s); reading that.",
                alias,
                parsed.description,
                travel.latest_txid,
                moments.utc_text(travel.latest_time) if travel.latest_time else "time unknown",
            )
        yield name
    finally:
        if name in connections.settings:
            with contextlib.suppress(Exception):
                connections[name].close()
            with contextlib.suppress(Exception):
                del connections[name]
            connections.settings.pop(name, None)
