"""How fast serve starts and stops, and what it proves while doing so (issue 10).

* Readiness: the server starts at once (while Litestream starts, serve holding a read
  transaction on every database until Litestream holds its own) when each replica already
  holds what its database held: proven by the guard
  (``replica/position.py``: Litestream's position is the replica's newest txid, with nothing
  past it in the WAL) or by serve's own restore. What Litestream uploads after that (the
  fresh copy after a restore) finishes while the server runs; ``--wait-for-replica`` waits
  for it first.
* The final sync is confirmed after Litestream's own (``serve/finalsync.py``).
* One line says where the start-up's time went.

Real processes, the real binary, real storage (a file replica, moto for S3).
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from django_litestream.config.locations import file_directory as file_replica_dir
from django_litestream.replica import listing, position
from django_litestream.replica.listing import file_replica_txid, replica_txid
from django_litestream.serve import exitcodes
from django_litestream.serve.launch import MONITOR_INTERVAL
from tests.support import procs
from tests.support.project import Project, count_rows, wait_for, write_rows
from tests.support.serving import (
    DEBUG,
    LITESTREAM,
    SERVING,
    SNAPSHOT_UPLOADED,
    Served,
    big_database,
    fresh_machine,
    log_times,
    meta,
    restored_rows,
)
from tests.support.storage import free_port


def test_position_covers_a_replicated_database(
    served: Project, file_replica: dict[str, str]
) -> None:
    write_rows(served.db, 3)
    assert served.run("litestream", "replicate", "-once").returncode == 0
    here = position.coverage(str(served.db), meta(served))
    assert here.covered, here
    assert here.txid == file_replica_txid(file_replica["path"]) > 0


def test_position_sees_a_transaction_litestream_has_not_read(served: Project) -> None:
    write_rows(served.db, 3)
    assert served.run("litestream", "replicate", "-once").returncode == 0
    before = position.coverage(str(served.db), meta(served))
    conn = sqlite3.connect(served.db)  # kept open: its WAL stays as it is
    try:
        with conn:
            conn.execute("INSERT INTO rows (v) VALUES ('late')")
        late = position.coverage(str(served.db), meta(served))
        assert not late.covered
        assert late.txid == before.txid
        assert late.why == f"its WAL holds a transaction after txid {before.txid}"
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the frames Litestream read go too
        gone = position.coverage(str(served.db), meta(served))
        assert not gone.covered
        assert gone.why == "its WAL is gone since Litestream read it"
    finally:
        conn.close()


def test_position_without_state(served: Project) -> None:
    write_rows(served.db, 1)
    here = position.coverage(str(served.db), meta(served))
    assert (here.txid, here.covered) == (0, False)
    assert here.why == "Litestream has no state for it"


# -- the final sync's reading of a file replica ------------------------------------------------


def test_a_file_replica_is_read_as_litestream_ltx_reads_it(
    served: Project, file_replica: dict[str, str]
) -> None:
    assert file_replica_txid(file_replica["path"]) == 0  # nothing there yet
    for rows in (3, 2):
        write_rows(served.db, rows)
        result = served.run("litestream", "serve", "--adopt-local", "--", sys.executable, "-c", "")
        assert result.returncode == 0, result.stderr
        config = served.root / "ltx.yml"
        config.write_text(json.dumps({"dbs": [{"path": str(served.db), "replica": file_replica}]}))
        held = replica_txid(LITESTREAM, str(config), str(served.db), 30)
        assert isinstance(held, int) and held > 0
        assert file_replica_txid(file_replica["path"]) == held


def test_a_file_replica_is_listed_as_litestream_ltx_lists_it(
    served: Project, file_replica: dict[str, str], tmp_path: Path
) -> None:
    """The guard reads a file replica's directory itself: the same files, levels, sizes and
    times as ``litestream ltx -json -level all`` (compaction into level 1 every second)."""
    served.configure(
        {"dbs": [{"path": "default", "replica": file_replica}], "levels": [{"interval": "1s"}]}
    )
    write_rows(served.db, 3)
    run = Served(served, tmp_path, "--db", str(served.db), opts=("--adopt-local",))
    run.wait_ready()
    level1 = Path(file_replica["path"], "ltx", "1")
    wait_for(lambda: level1.exists() and any(level1.iterdir()), 30, "a compaction into level 1")
    assert run.stop() == 0, run.stderr()
    config = served.root / "ltx.yml"
    config.write_text(json.dumps({"dbs": [{"path": str(served.db), "replica": file_replica}]}))
    listed = listing.list_files(LITESTREAM, str(served.db), config_path=str(config))
    direct = listing.list_directory(file_replica["path"])
    assert {f.level for f in listed.files} >= {0, 1}
    assert sorted(direct.files) == sorted(listed.files)


def test_held_connection_keeps_the_wal_past_the_last_close(tmp_path: Path) -> None:
    """The final sync's proof reads the -wal; SQLite deletes it when the last connection
    closes (Litestream's, often). The supervisor's idle connection keeps it."""
    from django_litestream.serve.finalsync import hold

    db, missing = tmp_path / "db.sqlite3", tmp_path / "missing.sqlite3"

    def write_and_close(value: int) -> None:
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA journal_mode=WAL")
        with conn:
            conn.execute("CREATE TABLE IF NOT EXISTS t (x)")
            conn.execute("INSERT INTO t VALUES (?)", (value,))
        conn.close()

    write_and_close(1)
    assert not Path(f"{db}-wal").exists()  # without a held connection: gone at the close
    held = hold([str(db), str(missing)])
    try:
        assert len(held) == 1 and not missing.exists()  # a missing database is not created
        write_and_close(2)
        assert Path(f"{db}-wal").stat().st_size > 0
    finally:
        for conn in held.values():
            conn.close()


@pytest.mark.parametrize(
    ("replica", "expected"),
    [
        ({"type": "file", "path": "/srv/replica"}, "/srv/replica"),
        ({"url": "file:///srv/replica"}, "/srv/replica"),
        ({"type": "file", "path": "relative/r"}, os.path.abspath("relative/r")),
        ({"type": "file", "path": "~/r"}, os.path.expanduser("~/r")),
        ({"type": "file", "path": "$REPLICA_DIR/r"}, ""),  # Litestream expands it, not us
        ({"type": "s3", "bucket": "b", "path": "db"}, ""),
        ({"url": "s3://b/db"}, ""),
    ],
)
def test_file_replica_dir(replica: dict[str, str], expected: str) -> None:
    assert file_replica_dir(replica) == expected


# -- what serve gives Litestream ----------------------------------------------------------------

SHOW_CONFIG = (
    "import json, os, sys; lock = json.load(open(sys.argv[1]));"
    "print(open(os.path.join(os.path.dirname(lock['socket']), 'litestream.yml')).read())"
)


@pytest.mark.parametrize("configured", [None, "2s"])
def test_monitor_interval_is_short_unless_set(
    project: Project, file_replica: dict[str, str], configured: str | None
) -> None:
    entry = {"path": "default", "replica": file_replica}
    if configured:
        entry["monitor-interval"] = configured
    project.configure({"dbs": [entry]})
    lock = f"{project.db}.serve-lock"
    result = project.run("litestream", "serve", "--", sys.executable, "-c", SHOW_CONFIG, lock)
    assert result.returncode == 0, result.stderr
    assert f"monitor-interval: {configured or MONITOR_INTERVAL}\n" in result.stdout, result.stdout


# -- readiness ------------------------------------------------------------------------------------


def test_restored_database_serves_before_its_fresh_copy_is_uploaded_and_loses_nothing(
    project: Project, tmp_path: Path
) -> None:
    """After a restore Litestream uploads a fresh full copy (0.5.17); the server need not
    wait for it: the replica holds what serve restored. A SIGTERM while that upload is held
    up (the storage stopped) still ends with every row in the replica."""
    from tests.support.storage import MotoS3

    moto = MotoS3().start()
    try:
        project.configure(
            {"dbs": [{"path": "default", "replica": moto.replica("db")}], "logging": DEBUG}
        )
        big_database(project.db, 30)
        assert project.run("litestream", "replicate", "-once").returncode == 0
        fresh_machine(project)
        run = Served(project, tmp_path, "--db", str(project.db)).wait_ready(60)
        os.kill(moto.proc.pid, signal.SIGSTOP)
        try:
            server = run.server()
            wait_for(lambda: count_rows(project.db) > 20, 30, "rows to be written")
            run.proc.send_signal(signal.SIGTERM)
            wait_for(lambda: not procs.alive(server), 30, "the server to exit")
        finally:
            os.kill(moto.proc.pid, signal.SIGCONT)
        assert run.wait(120) == 0, run.stderr()
        err = run.stderr()
        assert "replica confirmed in sync" in err
        (started,) = log_times(err, "starting the server")
        uploaded = log_times(err, SNAPSHOT_UPLOADED)
        assert uploaded and started < uploaded[0], err  # the server did not wait for it
        acknowledged = int(Path(f"{run.log}.count").read_text())
        assert restored_rows(project, tmp_path) >= acknowledged > 20
    finally:
        moto.stop()


def test_wait_for_replica_waits_for_the_fresh_copy(
    served: Project, file_replica: dict[str, str], tmp_path: Path
) -> None:
    served.configure({"dbs": [{"path": "default", "replica": file_replica}], "logging": DEBUG})
    big_database(served.db, 4)
    assert served.run("litestream", "replicate", "-once").returncode == 0
    fresh_machine(served)
    run = Served(served, tmp_path, opts=("--wait-for-replica",)).wait_ready()
    assert run.stop() == 0, run.stderr()
    err = run.stderr()
    (started,) = log_times(err, "starting the server")
    uploaded = log_times(err, SNAPSHOT_UPLOADED)
    assert uploaded and uploaded[0] <= started, err


def test_wait_for_replica_covers_pre_serve_commands(served: Project, tmp_path: Path) -> None:
    """With the option, what --pre wrote is in the replica before the server starts."""
    write_rows(served.db, 1)
    assert served.run("litestream", "replicate", "-once").returncode == 0
    check = (
        "import json, subprocess, sys; "
        f"out = subprocess.run([{LITESTREAM!r}, 'restore', '-o', sys.argv[1], sys.argv[2]], "
        "capture_output=True); assert out.returncode == 0, out.stderr; "
        "import sqlite3; n = sqlite3.connect(sys.argv[1]).execute('select count(*) from rows')"
        ".fetchone()[0]; assert n == 6, n"
    )
    replica = f"file://{served.root.parent / 'replica'}"
    result = served.run(
        "litestream",
        "serve",
        "--wait-for-replica",
        "--pre",
        f"{sys.executable} manage.py write_rows 5",
        "--",
        sys.executable,
        "-c",
        check,
        str(tmp_path / "copy.db"),
        replica,
    )
    assert result.returncode == 0, result.stderr


def test_a_first_backup_still_waits_for_the_replica(
    served: Project, file_replica: dict[str, str], tmp_path: Path
) -> None:
    """Nothing proves the replica holds a database it has never seen: its first upload is
    waited for, as --wait-for-replica would."""
    served.configure({"dbs": [{"path": "default", "replica": file_replica}], "logging": DEBUG})
    big_database(served.db, 4)
    run = Served(served, tmp_path).wait_ready()
    assert run.stop() == 0, run.stderr()
    err = run.stderr()
    assert "holds nothing yet; the database becomes its first backup" in err
    (started,) = log_times(err, "starting the server")
    uploaded = log_times(err, SNAPSHOT_UPLOADED)
    assert uploaded and uploaded[0] <= started, err


def test_the_server_starts_before_litestream_holds_the_database_and_loses_nothing(
    project: Project, file_replica: dict[str, str], tmp_path: Path
) -> None:
    """A database the replica holds: the server starts while Litestream starts (its
    monitor opens the database only after ``monitor-interval``, 2s here). Until then
    serve's read transaction keeps SQLite from checkpointing past it: a checkpoint asked
    for in that window stops short of the server's writes (so the WAL cannot restart over
    them), and Litestream's first sync reads them all. Every acknowledged id is in a fresh
    restore."""
    entry = {"path": "default", "replica": file_replica, "monitor-interval": "2s"}
    project.configure({"dbs": [entry], "logging": DEBUG})
    write_rows(project.db, 1)
    assert project.run("litestream", "replicate", "-once").returncode == 0
    run = Served(project, tmp_path, "--db", str(project.db), "--write-every", "0").wait_ready()
    # The server writes; Litestream's monitor has not opened the database yet.
    wait_for(lambda: Path(f"{run.log}.count").exists(), 10, "the first write")
    conn = sqlite3.connect(project.db, timeout=10)
    try:
        busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    finally:
        conn.close()
    assert 0 <= copied < frames, (busy, frames, copied)
    wait_for(lambda: int(Path(f"{run.log}.count").read_text()) > 3000, 60, "3000 writes")
    assert run.stop() == 0, run.stderr()
    err = run.stderr()
    assert "replica confirmed in sync" in err
    (started,) = log_times(err, "starting the server")
    synced = log_times(err, r'msg="db sync"')  # Litestream's monitor, DEBUG
    assert synced and started < synced[0], err
    acknowledged = int(Path(f"{run.log}.count").read_text())
    out = tmp_path / "restored.db"
    assert project.run("litestream", "restore", "-o", str(out), "default").returncode == 0
    conn = sqlite3.connect(out)
    try:
        ids = {row[0] for row in conn.execute("SELECT id FROM rows")}
    finally:
        conn.close()
    assert set(range(1, acknowledged + 1)) <= ids, acknowledged


def test_an_early_server_is_stopped_when_litestream_never_takes_over_and_nothing_is_lost(
    project: Project, file_replica: dict[str, str], tmp_path: Path
) -> None:
    """The server started while Litestream started, and Litestream did not open the
    database within --ready-timeout (its monitor ticks every 10 s here): serve stops the
    server and exits 75. What it wrote is in the local database only; the next start sees
    writes the replica lacks, waits for Litestream's first upload, and loses none."""
    entry = {"path": "default", "replica": file_replica, "monitor-interval": "10s"}
    project.configure({"dbs": [entry]})
    write_rows(project.db, 1)
    assert project.run("litestream", "replicate", "-once").returncode == 0
    run = Served(project, tmp_path, "--db", str(project.db), opts=("--ready-timeout", "1"))
    run.wait_ready()
    assert run.wait(60) == exitcodes.NOT_READY, run.stderr()
    assert "SIGTERM" in run.signals()
    assert "not ready within --ready-timeout (1s)" in run.stderr()
    acknowledged = int(Path(f"{run.log}.count").read_text())
    assert acknowledged > 0
    project.configure({"dbs": [{"path": "default", "replica": file_replica}]})
    again = Served(project, tmp_path).wait_ready()
    assert again.stop() == 0, again.stderr()
    assert "replica confirmed in sync" in again.stderr()
    assert restored_rows(project, tmp_path) >= acknowledged + 1


# -- the start-up line ---------------------------------------------------------------------------


def test_one_line_says_where_the_start_up_went(served: Project, tmp_path: Path) -> None:
    write_rows(served.db, 1)
    assert served.run("litestream", "replicate", "-once").returncode == 0
    port = free_port()
    server = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
    run = Served(served, tmp_path, command=server)
    match = wait_for(lambda: SERVING.search(run.stderr()), 60, "the start-up line")
    assert run.stop() in (0, 143), run.stderr()
    total, *phases, listening = match.groups()
    assert int(listening) == port
    assert 0 < float(total) < 60
    # The phases follow one another: together they are the whole start, to rounding.
    assert abs(sum(map(float, phases)) - float(total)) <= 0.05, match.group(0)
    assert run.stderr().count("after start (") == 1


def test_no_start_up_line_for_a_job_that_never_listens(served: Project) -> None:
    result = served.run("litestream", "serve", "--", sys.executable, "-c", "pass")
    assert result.returncode == 0, result.stderr
    assert "after start (" not in result.stderr


# -- the final sync, after Litestream's own -------------------------------------------------------


def test_final_sync_that_cannot_reach_the_replica_is_not_confirmed(
    project: Project, tmp_path: Path
) -> None:
    """The storage is gone at the stop: Litestream's final sync retries for
    shutdown-sync-timeout, then serve says what is missing and exits 74, never 0."""
    from tests.support.storage import MotoS3

    moto = MotoS3().start()
    try:
        project.configure(
            {
                "shutdown-sync-timeout": "1s",
                "dbs": [{"path": "default", "replica": moto.replica("db")}],
            }
        )
        run = Served(project, tmp_path, "--db", str(project.db)).wait_ready()
        wait_for(lambda: count_rows(project.db) > 20, 30, "rows to be written")
    finally:
        moto.stop()
    assert run.stop(signal.SIGTERM) == exitcodes.SYNC_UNCONFIRMED, run.stderr()
    # Why depends on which gives up first: the listing of the unreachable replica
    # ("'default' (...): ...") or Litestream's own retries past shutdown-sync-timeout.
    assert re.search(
        r"but the final sync was not confirmed: ('default' \(|Litestream did not finish)",
        run.stderr(),
    ), run.stderr()
    assert "replica confirmed in sync" not in run.stderr()


def test_two_databases_are_confirmed_together(project: Project, tmp_path: Path) -> None:
    cache = project.root / "cache.sqlite3"
    project.configure(
        {
            "dbs": [
                {"path": "default", "replica": {"type": "file", "path": str(tmp_path / "r1")}},
                {"path": "cache", "replica": {"type": "file", "path": str(tmp_path / "r2")}},
            ]
        },
        {
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(project.db)},
            "cache": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(cache)},
        },
    )
    job = (
        "import sqlite3, sys\n"
        "for path in sys.argv[1:]:\n"
        "    c = sqlite3.connect(path); c.execute('CREATE TABLE IF NOT EXISTS t (x)')\n"
        "    c.executemany('INSERT INTO t VALUES (1)', [()] * 7); c.commit(); c.close()\n"
    )
    result = project.run(
        "litestream", "serve", "--", sys.executable, "-c", job, str(project.db), str(cache)
    )
    assert result.returncode == 0, result.stderr
    line = [x for x in result.stderr.splitlines() if "replica confirmed in sync" in x]
    assert len(line) == 1 and "'default' (" in line[0] and "'cache' (" in line[0], line
    for where in ("r1", "r2"):
        out = tmp_path / f"copy-{where}.db"
        done = subprocess.run(
            [LITESTREAM, "restore", "-o", str(out), f"file://{tmp_path / where}"],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        assert count_rows(out, "t") == 7
