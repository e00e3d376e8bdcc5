"""Point-in-time restore as people write the time, and the two refusals of ``restore``.

Rows are written before and after a recorded moment while serve replicates; a restore at
that moment, in each form a person might type, holds exactly the earlier rows.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from django_litestream.replica import position
from tests.support.operations import SIGSERVER, one_line, served_rows
from tests.support.project import Project, wait_for

ZONE = "America/Chicago"  # Django's default TIME_ZONE, which manage.py runs in


def replica_txid(project: Project) -> int:
    result = project.run("litestream", "ltx", "-json", "-level", "0", "default")
    assert result.returncode == 0, result.stderr
    return max((int(f["max_txid"], 16) for f in json.loads(result.stdout)), default=0)


def write_and_replicate(project: Project, conn: sqlite3.Connection, n: int) -> set[int]:
    meta = project.db.parent / f".{project.db.name}-litestream"
    ids = set()
    for _ in range(n):
        ids.add(conn.execute("INSERT INTO t (v) VALUES ('x') RETURNING id").fetchone()[0])

    def copied() -> int:
        """Litestream's txid once it has copied every transaction in the WAL, else 0."""
        where = position.coverage(str(project.db), str(meta))
        return where.txid if where else 0

    # Not "its txid moved": it may have copied the rows before anyone looked (the server
    # starts while Litestream starts, so its first sync often comes right then).
    target = wait_for(copied, 30, "Litestream to copy the rows")
    wait_for(lambda: replica_txid(project) >= target, 30, "the replica to hold the rows")
    return ids


def ids_in(path: Path) -> set[int]:
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM t")}


@pytest.fixture
def history(project: Project, file_replica, serving):
    """(project, moment, ids before, ids after), written while serve replicates."""
    project.configure({"dbs": [{"path": "default", "replica": file_replica}]})
    log = project.root / "sig.log"
    run = serving(sys.executable, SIGSERVER, str(log))
    wait_for(lambda: log.exists() and "ready" in log.read_text(), 60, "the server")
    conn = sqlite3.connect(project.db, isolation_level=None, timeout=10)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    before = write_and_replicate(project, conn, 5)
    time.sleep(2)  # margins around the moment: forms without fractions are read to the second
    moment = datetime.now(timezone.utc)
    time.sleep(2)
    after = write_and_replicate(project, conn, 7)
    conn.close()
    yield project, moment, before, after
    run.stop()


def test_a_restore_at_the_moment_holds_exactly_the_earlier_rows(history, tmp_path) -> None:
    project, moment, before, after = history
    local = moment.astimezone(ZoneInfo(ZONE)).strftime("%Y-%m-%d %H:%M:%S")
    forms = {
        "iso": moment.isoformat(),
        "zulu": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "local": local,
        "minus": None,  # relative forms: computed just before they run
        "ago": None,
    }
    for name, form in forms.items():
        if form is None:
            seconds = round((datetime.now(timezone.utc) - moment).total_seconds())
            form = f"-{seconds}s" if name == "minus" else f"{seconds} seconds ago"
        out = tmp_path / f"{name}.db"
        result = project.run("litestream", "restore", "-timestamp", form, "-o", str(out), "default")
        assert result.returncode == 0, result.stderr
        assert ids_in(out) == before, (name, form)
        assert result.stderr.startswith("Restoring as of "), result.stderr
        assert "lands on txid " in result.stderr
        if name == "local":
            assert "read as local time (CST, UTC-06:00)" in result.stderr or "(CDT" in (
                result.stderr
            )
    newest = tmp_path / "newest.db"
    result = project.run("litestream", "restore", "-timestamp", "now", "-o", str(newest), "default")
    assert result.returncode == 0, result.stderr
    assert "that is at or after the newest backup, so this restores the newest" in result.stderr
    assert ids_in(newest) == before | after


def test_dry_run_prints_where_it_lands_and_writes_nothing(history, tmp_path) -> None:
    project, moment, _, _ = history
    out = tmp_path / "plan.db"
    result = project.run(
        "litestream",
        "restore",
        "-dry-run",
        "-timestamp",
        moment.isoformat(),
        "-o",
        str(out),
        "default",
    )
    assert result.returncode == 0, result.stderr
    assert "lands on txid " in result.stderr
    assert "Files to fetch:" in result.stdout  # Litestream's own plan
    assert not out.exists()


def test_before_the_oldest_backup_names_it(history, tmp_path) -> None:
    project, *_ = history
    result = project.run(
        "litestream", "restore", "-timestamp", "-2d", "-o", str(tmp_path / "x.db"), "default"
    )
    assert result.returncode == 66
    line = one_line(result)
    assert line.startswith("restore -timestamp '-2d': '-2d' = ")
    assert "is before the oldest backup the replica holds (from " in line
    assert not (tmp_path / "x.db").exists()


def test_refused_over_a_running_serves_database_even_with_force(history, tmp_path) -> None:
    project, *_ = history
    before = os.stat(project.db)
    for args in (["default"], ["-force", "default"], ["-o", str(project.db), "-force", "default"]):
        result = project.run("litestream", "restore", *args)
        assert result.returncode == 73, result.stderr
        assert one_line(result).startswith(
            f"{project.db} is the database of a running 'litestream serve' (PID "
        )
    after = os.stat(project.db)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    beside = project.run("litestream", "restore", "-o", f"{project.db}.restored", "default")
    assert beside.returncode == 0, beside.stderr


def test_refused_over_an_existing_database_without_force(
    project: Project, file_replica, tmp_path
) -> None:
    project.configure({"dbs": [{"path": "default", "replica": file_replica}]})
    served_rows(project, 3)
    out = tmp_path / "there.db"
    out.write_bytes(b"something")
    result = project.run("litestream", "restore", "-o", str(out), "default")
    assert result.returncode == 73
    assert one_line(result) == (
        f"{out} already exists and restore would overwrite it. Restore elsewhere with -o PATH, "
        "or add -force once nothing uses it (stop the application first)."
    )
    assert out.read_bytes() == b"something"
    forced = project.run("litestream", "restore", "-force", "-o", str(out), "default")
    assert forced.returncode == 0, forced.stderr
    with sqlite3.connect(out) as conn:
        assert conn.execute("SELECT count(*) FROM rows").fetchone()[0] == 3


def test_the_bad_migration_runbook(history, tmp_path) -> None:
    """docs/operations.rst, 'Someone ran a bad migration at 10:02', step by step."""
    project, moment, before, _ = history
    db = project.db
    restored = Path(f"{db}.restored")
    local = moment.astimezone(ZoneInfo(ZONE)).strftime("%Y-%m-%d %H:%M:%S")
    # 1. While serve runs: restore next to the live database, as of just before.
    result = project.run(
        "litestream", "restore", "-timestamp", local, "-o", str(restored), "default"
    )
    assert result.returncode == 0, result.stderr
    assert ids_in(restored) == before  # 2. look at it
    # 3. Stop serve; 4. move the bad database (and what belongs to it) aside, swap in the copy.
    serve_pid = json.loads(Path(f"{db}.serve-lock").read_text())["pid"]
    os.kill(serve_pid, signal.SIGTERM)
    wait_for(lambda: not Path(f"{db}.serve-lock").read_text(), 60, "serve to stop")
    aside = tmp_path / "bad"
    aside.mkdir()
    for name in (db.name, f"{db.name}-wal", f"{db.name}-shm", f".{db.name}-litestream"):
        if (db.parent / name).exists():
            os.rename(db.parent / name, aside / name)
    os.rename(restored, db)
    # 5. Start serve once with --adopt-local: the copy becomes the replica's newest state.
    refused = project.run("litestream", "serve", "--", sys.executable, "-c", "pass")
    assert refused.returncode == 65, refused.stderr  # without it: not the replica's history
    adopted = project.run(
        "litestream", "serve", "--adopt-local", "--", sys.executable, "-c", "pass"
    )
    assert adopted.returncode == 0, adopted.stderr
    out = tmp_path / "after.db"
    result = project.run("litestream", "restore", "-o", str(out), "default")
    assert result.returncode == 0, result.stderr
    assert ids_in(out) == before
