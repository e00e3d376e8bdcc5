"""Routing reads to VFS replicas: VFSReplicaRouter, LitestreamRouter, read-your-writes,
and the freshness rule, against real replicas and the real binary."""

from __future__ import annotations

from tests.support.project import wait_for
from tests.support.vfs_site import Site

NOTES = ("notes.routers.NotesRouter",)
OTHER = ("notes.routers.OtherNotesRouter",)
QUICK = ("notes.routers.QuickRouter",)
RYW = ("django_litestream.middleware.ReadYourWritesMiddleware",)


# -- VFSReplicaRouter ---------------------------------------------------------------------


def test_router_reads_from_the_replica_and_falls_back_to_the_primary(site: Site):
    site.configure(routers=NOTES)
    site.ask(("add", "default", 2))
    # The replica does not exist yet: reads go to the primary, writes always do.
    [before] = site.ask(("routed", "", 0))
    assert (before["db"], before["write_db"], before["count"]) == ("default", "default", 2)
    site.replicate()
    site.ask(("add", "default", 1))  # on the primary only
    [after] = site.ask(("routed", "", 0))
    assert (after["db"], after["write_db"], after["count"]) == ("replica_a", "default", 2)


def test_the_fallback_is_the_database_the_replica_copies(site: Site):
    """replica_b copies 'other' (5 rows), not 'default' (20): found from LITESTREAM['dbs']."""
    site.ask(("add", "default", 20), ("add", "other", 5))
    site.configure(routers=OTHER)
    [down] = site.ask(("routed", "", 0))  # replica_b not replicated yet
    assert (down["db"], down["write_db"], down["count"]) == ("other", "other", 5)
    site.replicate()
    [up] = site.ask(("routed", "", 0))
    assert (up["db"], up["count"]) == ("replica_b", 5)


def test_the_primary_option_names_the_database_the_replica_copies(site: Site):
    site.ask(("add", "default", 20), ("add", "other", 5))
    site.configure(
        routers=OTHER, dbs=False, replica_b={"url": site.url("other"), "primary": "other"}
    )
    [down] = site.ask(("routed", "", 0))
    assert (down["db"], down["write_db"], down["count"]) == ("other", "other", 5)


def test_max_lag_seconds_bounds_what_a_read_can_miss(site: Site):
    site.configure(routers=NOTES, max_lag_seconds=1)
    with site.replicating(), site.reader() as ask:
        ask(("add", "default", 2))
        # Litestream runs and the reader keeps up: nothing is missing, any limit passes.
        complete = wait_for(
            lambda: (a := ask(("routed", "", 0)))["db"] == "replica_a" and a["count"] == 2,
            30,
            "the replica to hold every transaction",
        )
    assert complete
    with site.reader() as ask:  # Litestream stopped: a commit it never captures
        ask(("add", "default", 1))
        missing = wait_for(
            lambda: (a := ask(("routed", "", 0)))["db"] == "default" and a,
            30,
            "the fallback once the missing commit is older than max_lag_seconds",
        )
        assert missing["count"] == 3
    assert "Reading from the primary 'default' instead of the replica 'replica_a': it lacks " in (
        site.stderr
    )
    site.configure(routers=NOTES, max_lag_seconds=600)
    [tolerated] = site.ask(("routed", "", 0))
    assert (tolerated["db"], tolerated["count"]) == ("replica_a", 2)


def test_a_change_of_state_is_logged_once(site: Site):
    site.configure(routers=NOTES, max_lag_seconds=1)
    site.ask(("add", "default", 2))
    site.replicate()
    with site.reader() as ask:
        ask(("add", "default", 1))
        stale = wait_for(
            lambda: (a := ask(("routed", "", 0)))["db"] == "default" and a, 30, "a stale verdict"
        )
        assert stale["count"] == 3
        for _ in range(30):
            assert ask(("routed", "", 0))["db"] == "default"
        with site.replicating():
            # Back to the replica once what it lacks is younger than max_lag_seconds...
            wait_for(lambda: ask(("routed", "", 0))["db"] == "replica_a", 30, "the replica again")
            # ... and it catches up.
            wait_for(lambda: ask(("routed", "", 0))["count"] == 3, 30, "the replica to catch up")
            for _ in range(10):
                answer = ask(("routed", "", 0))
                assert (answer["db"], answer["count"]) == ("replica_a", 3)
    assert site.stderr.count("Reading from the primary 'default' instead of") == 1
    assert site.stderr.count("Reading from the replica 'replica_a' again") == 1


# -- LitestreamRouter ---------------------------------------------------------------------


def test_litestream_router_reads_the_replica_and_writes_the_primary(site: Site):
    site.configure(routers=QUICK, middleware=RYW, read_replica="replica_a")
    site.ask(("add", "default", 3))
    site.replicate()
    site.ask(("add", "default", 1))  # not replicated: a replica read does not see it
    [read] = site.ask(("routed", "", 0))
    assert (read["db"], read["write_db"], read["count"]) == ("replica_a", "default", 3)
    [created, primary] = site.ask(("write", "", 0), ("count", "default", 0))
    assert created == {"wrote": True, "seconds": created["seconds"]}
    assert primary["count"] == 5  # create() landed on the primary


def test_migrate_never_touches_the_replica(site: Site):
    site.configure(routers=QUICK, middleware=RYW, read_replica="replica_a")
    site.ask(("add", "default", 1))
    site.replicate()
    done = site.manage("migrate", "--database", "replica_a", "-v", "1")
    assert done.returncode == 0, done.stderr
    done = site.manage("migrate", "-v", "1")
    assert done.returncode == 0, done.stderr
    assert "readonly" not in done.stdout + done.stderr


def test_read_your_writes_in_the_request(site: Site):
    site.configure(routers=QUICK, middleware=RYW, read_replica="replica_a")
    site.ask(("add", "default", 3))
    site.replicate()
    post, later, raw = site.ask(
        ("http", "", 0, ["post", "/add"]),
        ("http", "", 0, ["get", "/count"]),
        ("http", "", 0, ["post", "/raw_add"]),
    )
    # Before the write the request read the replica; after it, the primary (4 rows).
    assert (post["db_before"], post["db"], post["count"]) == ("replica_a", "default", 4)
    assert not post["cookie"]
    # The next request reads the replica again (no window): it lacks the new row.
    assert (later["db"], later["count"]) == ("replica_a", 3)
    # A raw SQL write on the primary's connection counts as a write too.
    assert (raw["db"], raw["count"]) == ("default", 5)


def test_read_your_writes_for_a_few_seconds_of_the_session(site: Site):
    site.configure(
        routers=QUICK, middleware=RYW, read_replica="replica_a", read_your_writes_seconds=30
    )
    site.ask(("add", "default", 3))
    site.replicate()
    post, later = site.ask(("http", "", 0, ["post", "/add"]), ("http", "", 0, ["get", "/count"]))
    assert post["cookie"]
    assert (later["db"], later["count"]) == ("default", 4)
    # Another client (no cookie) reads the replica.
    [other] = site.ask(("http", "", 0, ["get", "/count"]))
    assert (other["db"], other["count"]) == ("replica_a", 3)


def test_litestream_router_falls_back_while_replication_is_stopped(site: Site):
    site.configure(routers=QUICK, middleware=RYW, read_replica="replica_a", max_lag_seconds=2)
    site.ask(("add", "default", 3))
    with site.replicating(), site.reader() as ask:
        wait_for(
            lambda: (a := ask(("routed", "", 0)))["db"] == "replica_a" and a["count"] == 3,
            30,
            "reads from the replica",
        )
    # Replication stopped; the primary keeps writing.
    with site.reader() as ask:
        ask(("add", "default", 2))
        stale = wait_for(
            lambda: (a := ask(("routed", "", 0)))["db"] == "default" and a, 30, "the fallback"
        )
        assert stale["count"] == 5
        with site.replicating():
            back = wait_for(
                lambda: (a := ask(("routed", "", 0)))["db"] == "replica_a" and a["count"] == 5,
                30,
                "the replica again, with every row, once replication runs",
            )
        assert back
    assert "it lacks the primary's transactions since" in site.stderr
    assert "Reading from the replica 'replica_a' again" in site.stderr


def test_litestream_router_falls_back_while_the_replica_cannot_be_opened(site: Site):
    site.configure(routers=QUICK, middleware=RYW, read_replica="replica_a", open_timeout=3)
    site.ask(("add", "default", 3))
    with site.reader() as ask:
        down = ask(("routed", "", 0))  # nothing replicated: the replica is missing
        assert (down["db"], down["count"]) == ("default", 3)
        site.replicate()
        up = wait_for(
            lambda: (a := ask(("routed", "", 0)))["db"] == "replica_a" and a,
            30,
            "the replica after retry_after",
        )
        assert up["count"] == 3
    assert "it cannot be opened: Cannot open the Litestream VFS replica 'replica_a'" in (
        site.stderr
    )
