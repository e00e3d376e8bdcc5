"""Read replicas through the Litestream VFS: the real thing, on file:// replicas.

Real SQLite databases replicated by the real ``litestream`` binary, read in a separate
Django project (``tests/vfs_site.py``) through the real extension. Skipped, with the
reason, only when the extension cannot be loaded on this machine at all.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.project import wait_for
from tests.support.vfs_site import Site, litestream_exe, ltx_range


def test_reads_each_replica_through_its_own_alias(site: Site):
    site.ask(("add", "default", 3), ("add", "other", 5))
    site.replicate()
    answers = site.ask(
        ("count", "replica_a", 0),
        ("count", "replica_b", 0),
        ("latest", "replica_b", 0),
        ("cursor", "replica_a", 0),
    )
    assert [a.get("count") for a in answers[:2]] == [3, 5]
    assert answers[2]["text"] == "note 4"
    assert answers[2]["created"].endswith("+00:00")  # an aware datetime, converted
    assert answers[3]["count"] == 3
    assert int(answers[3]["txid"], 16) >= 1


def test_new_rows_appear_within_the_poll_interval(site: Site):
    site.ask(("add", "default", 3))
    site.replicate()
    with site.reader() as ask:
        first = ask(("cursor", "replica_a", 0))
        assert first["count"] == 3
        site.ask(("add", "default", 4))
        site.replicate()
        latest = wait_for(
            lambda: (a := ask(("cursor", "replica_a", 0)))["count"] == 7 and a,
            timeout=15,
            what="the open replica connection to see the new rows",
        )
        # The same connection saw them: the VFS polled the replica, nothing reconnected.
        assert latest["conn"] == first["conn"]


def test_writes_fail_with_a_read_only_error(site: Site):
    site.ask(("add", "default", 1))
    site.replicate()
    write, count = site.ask(("write", "replica_a", 0), ("count", "replica_a", 0))
    assert write["error"] == "django.db.utils.OperationalError"
    assert write["message"] == (
        f"attempt to write a readonly database: 'replica_a' is a read-only Litestream VFS "
        f"replica of {site.url('default')}; send writes to the primary database."
    )
    assert count["count"] == 1


@pytest.mark.parametrize("alias", ["empty", "missing"])
def test_empty_or_missing_replica_fails_fast_instead_of_hanging(site: Site, alias: str):
    [answer] = site.ask(("count", alias, 0), timeout=60)
    url = (site.empty if alias == "empty" else site.empty.parent / "no_such_replica").as_uri()
    assert answer["error"] == "django.db.utils.OperationalError"
    assert answer["message"] == (
        f"Cannot open the Litestream VFS replica '{alias}' ({url}): the replica is empty or "
        "missing (no LTX files); run 'manage.py litestream replicate' on the primary first, "
        "and check the URL."
    )
    assert answer["seconds"] < 20


def test_a_replica_that_fills_later_opens_once_it_has_data(site: Site):
    """A failed check is not remembered: the next connection attempt checks again."""
    with site.reader() as ask:
        before = ask(("count", "replica_a", 0))
        assert "empty or missing" in before["message"]
        site.ask(("add", "default", 2))
        site.replicate()
        assert ask(("count", "replica_a", 0))["count"] == 2


def test_unreachable_replica_fails_after_open_timeout(site: Site):
    """A server that accepts and never answers: the check gives up at open_timeout."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
        url = f"sftp://user:secret@127.0.0.1:{port}/db"
        site.configure(stuck=url, open_timeout=2)
        [answer] = site.ask(("count", "stuck", 0), timeout=60)
    assert answer["error"] == "django.db.utils.OperationalError"
    assert answer["message"] == (
        f"Cannot open the Litestream VFS replica 'stuck' (sftp://user:***@127.0.0.1:{port}/db): "
        "the replica did not answer "
        "within 2s; is the storage reachable and are its credentials set? (raise "
        "LITESTREAM['vfs']['open_timeout'] for slow storage)."
    )
    assert 2 <= answer["seconds"] < 15


def test_vfs_logs_follow_the_environment_the_process_started_with(site: Site, tmp_path: Path):
    """The extension reads LITESTREAM_LOG_FILE from the startup environment only."""
    site.ask(("add", "default", 1))
    site.replicate()
    log = tmp_path / "vfs.log"
    debug = {"LITESTREAM_LOG_LEVEL": "DEBUG"}
    done = site.run(("count", "replica_a", 0), env={**debug, "LITESTREAM_LOG_FILE": str(log)})
    assert [json.loads(line)["count"] for line in done.stdout.splitlines()] == [1]
    assert "level=DEBUG" in log.read_text()
    # Unset, the extension logs to standard output (a documented limit, see docs/vfs.rst).
    env = {k: v for k, v in site.project.env.items() if k != "LITESTREAM_LOG_FILE"}
    site.project.env = env
    done = site.run(("count", "replica_a", 0), env=debug)
    assert "level=DEBUG" in done.stdout


DJANGO_TESTS = """\
from django.db import connections
from django.test import TestCase, TransactionTestCase
from notes.models import Note

class ReplicaAliasTests(TestCase):
    databases = {"default", "replica_a"}

    def test_is_a_plain_writable_test_database(self):
        self.assertFalse(connections["replica_a"].uses_vfs)
        Note.objects.using("replica_a").create(text="x")
        self.assertEqual(Note.objects.using("replica_a").count(), 1)
        self.assertEqual(Note.objects.count(), 0)

class MirrorTests(TransactionTestCase):
    databases = {"default", "replica_a"}

    def test_reads_the_default_test_database(self):
        Note.objects.create(text="y")
        self.assertEqual(Note.objects.using("replica_a").count(), 1)
"""


@pytest.mark.parametrize(
    ("extra", "case"),
    [
        ("", "ReplicaAliasTests"),
        ('DATABASES["replica_a"]["TEST"] = {"MIRROR": "default"}\n', "MirrorTests"),
    ],
)
def test_django_test_runner_never_reads_the_real_replica(site: Site, extra: str, case: str):
    (site.project.root / "notes" / "tests.py").write_text(DJANGO_TESTS)
    # Without 'dbs': under the test runner 'default' is in memory, which E004 refuses.
    site.configure(extra=extra, dbs=False)
    done = site.project.run("test", f"notes.tests.{case}", "-v", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Ran 1 test" in done.stderr


# -- every open is bounded ------------------------------------------------------------------


def test_reopening_a_removed_replica_is_bounded_and_recovers(site: Site):
    """The first open succeeded; the replica directory is then removed. The extension would
    wait for files without limit; the reopen fails within open_timeout instead, and once
    the replica is back the alias reads again."""
    site.configure(open_timeout=6)
    site.ask(("add", "default", 3))
    site.replicate()
    url = site.url("default")
    with site.reader() as ask:
        assert ask(("count", "replica_a", 0))["count"] == 3
        ask(("close", "replica_a", 0))
        shutil.rmtree(site.replicas["default"])
        gone = ask(("count", "replica_a", 0))
        assert gone["error"] == "django.db.utils.OperationalError"
        assert gone["message"] == (
            f"Cannot open the Litestream VFS replica 'replica_a' ({url}): the replica is "
            "empty or missing (no LTX files); run 'manage.py litestream replicate' on the "
            "primary first, and check the URL."
        )
        assert gone["seconds"] < 6
        again = ask(("count", "replica_a", 0))  # the earlier attempt is still waiting
        assert "empty or missing" in again["message"]
        assert again["seconds"] < 6
        site.ask(("add", "default", 2))
        shutil.rmtree(site.project.root / ".a.sqlite3-litestream")  # replicate afresh
        site.replicate()
        back = wait_for(
            lambda: (a := ask(("count", "replica_a", 0))).get("count") == 5 and a,
            timeout=30,
            what="the alias to read the replica again",
        )
        assert back["seconds"] < 6


# -- a connection that stops following its replica -------------------------------------------


def _l1_gap_replica(site: Site, target: Path) -> tuple[int, list[Path]]:
    """A stand-in for a replica a reader can no longer follow ('poll L1: non-contiguous').

    The real binary replicates three batches of rows to a staging replica, compacting to
    L1 every second, so that L1 holds three files. ``target`` gets the first batch only;
    the files returned (the later L0 files and the last L1 file, but not the middle L1
    file) are what a reader then finds: an L1 file that does not follow its own. How the
    field got there (a switch from serve to plain replicate) could not be reproduced on
    demand; the reader's failure is the extension's own.
    """
    staging = site.tmp / "staging"
    config = site.tmp / "staging.yml"
    config.write_text(
        "levels:\n- interval: 1s\n- interval: 1h\n- interval: 2h\n"
        f"dbs:\n- path: {site.paths['default']}\n  replica:\n    type: file\n"
        f"    path: {staging}\n"
    )

    def newest(level: int) -> int:
        files = list((staging / "ltx" / str(level)).glob("*.ltx"))
        return max((ltx_range(f)[1] for f in files), default=0)

    marks = []
    proc = subprocess.Popen(
        [litestream_exe(), "replicate", "-config", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=site.project.env,
    )
    try:
        for rows in (3, 4, 5):
            before = newest(0)
            site.ask(("add", "default", rows))
            wait_for(lambda b=before: newest(0) > b, 30, "an L0 file for the batch")
            wait_for(lambda: newest(1) >= newest(0), 30, "L1 to cover the batch")
            marks.append(newest(1))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    first, second, _ = marks
    later = []
    for level in (0, 1):
        (target / "ltx" / str(level)).mkdir(parents=True, exist_ok=True)
        for path in sorted((staging / "ltx" / str(level)).glob("*.ltx")):
            low, high = ltx_range(path)
            if high <= first:
                shutil.copy(path, target / "ltx" / str(level))
            elif level == 0 or low > second:
                later.append(path)
    return first, later


def test_a_connection_that_stopped_following_is_replaced_and_reported(site: Site):
    log = site.tmp / "vfs.log"
    site.configure(reconnect_after=2)
    _, later = _l1_gap_replica(site, site.replicas["default"])
    with site.reader(env={"LITESTREAM_LOG_FILE": str(log)}) as ask:
        first = ask(("cursor", "replica_a", 0))
        assert first["count"] == 3
        for path in later:
            shutil.copy(path, site.replicas["default"] / "ltx" / path.parent.name)
        wait_for(
            lambda: "poll L1: non-contiguous ltx file" in log.read_text(),
            timeout=30,
            what="the extension to fail its polls as in the field",
        )
        current = wait_for(
            lambda: (a := ask(("cursor", "replica_a", 0)))["count"] == 12 and a,
            timeout=30,
            what="the stuck connection to be replaced by one that reads all 12 rows",
        )
    assert current["reconnects"] == 1  # (a connection's id() may be reused: not compared)
    assert "Litestream VFS replica 'replica_a' (" in site.stderr
    assert "stopped following its replica: no successful poll for" in site.stderr
    assert site.stderr.count("stopped following its replica") == 1


def test_a_healthy_idle_connection_is_kept(site: Site):
    """No write for several reconnect_after periods: polls succeed, nothing is replaced."""
    site.configure(reconnect_after=2)
    site.ask(("add", "default", 2))
    site.replicate()
    with site.reader() as ask:
        first = ask(("cursor", "replica_a", 0))
        deadline = time.monotonic() + 5
        wait_for(lambda: time.monotonic() > deadline, 10, "5 idle seconds")
        later = ask(("cursor", "replica_a", 0))
    assert (later["conn"], later["reconnects"]) == (first["conn"], 0)
    assert "stopped following" not in site.stderr
