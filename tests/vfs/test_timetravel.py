"""time_travel(): a VFS replica as it was at a moment, on a connection of its own."""

from __future__ import annotations

import shutil
import time
from datetime import datetime, timezone

import pytest

from tests.support.project import wait_for
from tests.support.vfs_site import Site


def _tick() -> None:
    """Let the wall clock pass a whole second (Litestream stamps files by the second)."""
    deadline = time.time() + 1.2
    wait_for(lambda: time.time() > deadline, 10, "the clock to move on")


@pytest.fixture
def history(site: Site) -> tuple[Site, datetime]:
    """3 rows, then a recorded moment, then 4 more rows, all replicated."""
    site.ask(("add", "default", 3))
    site.replicate()
    _tick()
    moment = datetime.now(timezone.utc)
    _tick()
    site.ask(("add", "default", 4))
    site.replicate()
    return site, moment


def test_reads_the_past_then_the_present(history):
    site, moment = history
    local = moment.astimezone().replace(tzinfo=None).isoformat(sep=" ")
    past, naive, now = site.ask(
        ("travel", "replica_a", 0, moment.isoformat().replace("+00:00", "Z")),
        ("travel", "replica_a", 0, local),  # no zone: local time
        ("travel", "replica_a", 0, "now"),
    )
    assert (past["count"], past["bound"], past["after"], past["gone"]) == (3, None, 7, True)
    assert past["db"].startswith("replica_a@")
    assert (naive["count"], naive["bound"]) == (3, None)
    assert (now["count"], now["bound"]) == (7, "newest")
    assert now["txid"] > past["txid"]
    assert "is at or after the replica's newest transaction" in site.stderr


def test_threads_do_not_see_each_others_time(history):
    site, moment = history
    [answer] = site.ask(("travel_threads", "replica_a", 0, [moment.isoformat(), "now"]))
    assert answer["counts"] == [[3], [7]]


@pytest.mark.parametrize(
    ("alias", "when", "message"),
    [
        (
            "replica_a",
            "banana",
            "time_travel('replica_a', 'banana'): Cannot read 'banana' as a time; give an ISO "
            "8601 time ('2026-11-25T10:00:00Z', '2026-11-25 10:00' for local time), a relative "
            "one ('-15m', '-2h', '-1d', '15 minutes ago', '1 hour ago') or 'now'.",
        ),
        (
            "nope",
            "now",
            "time_travel('nope', ...): 'nope' is not in DATABASES; the Litestream VFS aliases "
            "are: 'replica_a', 'replica_b', 'empty', 'missing'.",
        ),
        (
            "default",
            "now",
            "time_travel('default', ...): 'default' is not a Litestream VFS replica; time travel "
            "reads a replica (an alias from get_vfs_databases()).",
        ),
    ],
)
def test_mistakes_are_one_line(history, alias, when, message):
    site, _ = history
    [answer] = site.ask(("travel", alias, 0, when))
    assert answer["error"] == "django_litestream.vfs.timetravel.TimeTravelError"
    assert answer["message"] == message


def test_a_moment_before_the_oldest_state_names_the_bound(history):
    site, _ = history
    [answer] = site.ask(("travel", "replica_a", 0, "2001-01-01T00:00:00Z"))
    assert answer["error"] == "django_litestream.vfs.timetravel.TimeTravelError"
    assert answer["message"].startswith(
        "time_travel('replica_a', ...): 2001-01-01 00:00:00 UTC is before the oldest state "
        "the replica holds. The oldest state it holds is from 20"
    )
    assert answer["message"].endswith(
        " UTC. Litestream keeps history for snapshot.retention (24h by default)."
    )


def test_a_moment_in_the_future_is_refused(history):
    site, _ = history
    [answer] = site.ask(("travel", "replica_a", 0, "2999-01-01T00:00:00Z"))
    assert "is in the future (now is " in answer["message"]
    assert answer["message"].endswith("time travel reads the past.")


def test_a_replica_that_is_gone(history):
    site, moment = history
    site.configure(open_timeout=4)
    shutil.rmtree(site.replicas["default"])
    [answer] = site.ask(("travel", "replica_a", 0, moment.isoformat()))
    assert answer["error"] == "django_litestream.vfs.timetravel.TimeTravelError"
    assert answer["message"] == (
        f"time_travel('replica_a', {moment.isoformat()!r}): Cannot open the Litestream VFS "
        f"replica 'replica_a' ({site.url('default')}): the replica is empty or missing (no LTX "
        "files); run 'manage.py litestream replicate' on the primary first, and check the URL."
    )
    assert answer["seconds"] < 4
