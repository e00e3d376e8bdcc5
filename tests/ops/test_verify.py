"""``manage.py litestream verify``: passed, failed and inconclusive, on real replicas.

Every case runs the real binary against a real replica (a directory, or moto for S3): a
healthy replica passes (and nothing is left behind), a damaged one fails, a live database
that is not its replica's continuation fails without being synced, and a running serve is
used through its metrics (no second Litestream on the database).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from django_litestream.ops import digest, verify
from django_litestream.replica import ltx
from django_litestream.serve import exitcodes
from tests.support.operations import (
    SIGSERVER,
    litestream_on,
    replica_listing,
    served_rows,
    tree,
)
from tests.support.project import Project, wait_for


@pytest.fixture
def replicated(project: Project, file_replica: dict[str, str]) -> Project:
    project.configure({"dbs": [{"path": "default", "replica": file_replica}]})
    served_rows(project, rows=20, other=7)
    return project


def verify_json(project: Project, *args: str) -> tuple[int, list[dict]]:
    result = project.run("litestream", "verify", "--json", *args)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


def dump(path: Path) -> list[str]:
    """Schema and rows (Litestream's own tables left out), read without writing."""
    conn = digest.connect_readonly(str(path))
    try:
        return [line for line in conn.iterdump() if "_litestream_" not in line]
    finally:
        conn.close()


def newest_l0(replica: Path) -> Path:
    return sorted((replica / "ltx" / "0").glob("*.ltx"))[-1]


# -- passed ---------------------------------------------------------------------------------


def test_passes_on_a_file_replica_and_leaves_nothing_behind(
    replicated: Project, file_replica: dict[str, str]
) -> None:
    replica = Path(file_replica["path"])
    project_before, replica_before = tree(replicated.root), tree(replica)
    rows_before = dump(replicated.db)
    proc = subprocess.Popen(
        replicated.command("litestream", "verify"),
        cwd=replicated.root,
        env=replicated.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert out.startswith(f"'default' ({replicated.db}): passed: txid ")
    assert "integrity_check ok; 2 tables, 27 rows; rows and checksums equal" in out
    assert "via one 'litestream replicate -once'" in out
    # Nothing left: no file added in the project or the replica (the sync asked for had
    # nothing to add), no private directory of this process, the same schema and rows.
    assert set(tree(replicated.root)) == set(project_before)
    assert tree(replica) == replica_before
    mine = f"django-litestream-{proc.pid}-"
    assert not [n for n in os.listdir(tempfile.gettempdir()) if n.startswith(mine)]
    assert dump(replicated.db) == rows_before


def test_passes_on_s3_and_quick_counts_only(project: Project, s3_replica) -> None:
    project.configure({"dbs": [{"path": "default", "replica": s3_replica.replica}]})
    served_rows(project, 12)
    code, (found,) = verify_json(project)
    assert code == 0, found
    newest = max(int(f["max_txid"], 16) for f in replica_listing(project))
    assert (found["outcome"], found["txid"], found["rows"]) == ("passed", f"{newest:016x}", 12)
    assert found["replica"] == f"s3://{s3_replica.bucket}/db"
    assert found["quick"] is False and found["differences"] == []
    assert tuple(found) == verify.JSON_KEYS
    code, (quick,) = verify_json(project, "--quick", "default")
    assert code == 0 and quick["quick"] is True
    assert "quick_check ok" in quick["reason"] and "row counts equal" in quick["reason"]


def test_uses_the_running_serve_and_no_second_litestream(replicated: Project, serving) -> None:
    log = replicated.root / "sig.log"
    run = serving(sys.executable, SIGSERVER, str(log), "--db", str(replicated.db))
    wait_for(lambda: log.exists() and "ready" in log.read_text(), 60, "the server")
    # (The server may start while Litestream starts: it opens the database soon after.)
    served_by = wait_for(lambda: litestream_on(replicated.db), 30, "serve's Litestream")
    assert len(served_by) == 1
    proc = replicated.spawn("litestream", "verify")
    seen: set[int] = set()
    while proc.poll() is None:
        seen |= litestream_on(replicated.db)
        time.sleep(0.02)
    out, err = proc.communicate()
    assert proc.returncode == 0, out + err
    assert seen == served_by  # verify never started a Litestream of its own
    assert f"via the running serve (PID {run.proc.pid})" in out
    assert run.proc.poll() is None
    assert run.stop() == 0, run.stderr()


# -- failed ---------------------------------------------------------------------------------


def test_fails_on_a_corrupted_newest_ltx_file(
    replicated: Project, file_replica: dict[str, str]
) -> None:
    replica = Path(file_replica["path"])
    newest = newest_l0(replica)
    # A restore reads the newest txid from whichever level holds it: Litestream may already
    # have compacted it into a higher level (a snapshot at level 9, say), and the backup then
    # restores fine without the level-0 file. So every file holding it is corrupted.
    last = newest.name.split("-")[1]
    holding = sorted(replica.glob(f"ltx/*/*-{last}"))
    assert newest in holding
    for path in holding:
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF  # same size: nothing but a restore can tell
        path.write_bytes(bytes(data))
    code, (found,) = verify_json(replicated)
    assert code == verify.EXIT_FAILED == 65, found
    assert found["outcome"] == "failed"
    # Litestream notices most corruptions itself; one that decodes to other bytes differs.
    assert found["reason"].startswith(("restore error: ", "the restored copy ")), found


def test_fails_when_the_newest_ltx_file_is_removed_under_serve(
    replicated: Project, file_replica: dict[str, str], serving
) -> None:
    # The removed file must be one nothing after it makes up for. Litestream's level-1
    # compaction reads the local level-0 files (it runs once as Litestream starts, whatever
    # the interval, then every interval: 1h here), and every later transaction's file holds
    # the pages it rewrites again; with writes going on, a restore without the removed file
    # was often complete, and verify rightly passed. So: the start's compaction first, then
    # one transaction, uploaded and removed, and no write after it.
    replica = {"type": "file", "path": file_replica["path"]}
    replicated.configure(
        {"dbs": [{"path": "default", "replica": replica}], "levels": [{"interval": "1h"}]}
    )
    log = replicated.root / "sig.log"
    run = serving(sys.executable, SIGSERVER, str(log))
    wait_for(lambda: log.exists() and "ready" in log.read_text(), 60, "the server")
    replica = Path(file_replica["path"])
    wait_for(lambda: list((replica / "ltx" / "1").glob("*.ltx")), 30, "the start's compaction")
    # Each level's first compaction waits until Litestream has opened the database (retried
    # every second): the snapshot level's too, and a snapshot taken after the write below
    # holds it, so verify rightly passed (once in a run of the whole suite).
    wait_for(lambda: list((replica / "ltx" / "9").glob("*.ltx")), 30, "the start's snapshot")
    before = newest_l0(replica)
    with contextlib.closing(sqlite3.connect(replicated.db)) as conn:
        conn.execute("CREATE TABLE last_one (id INTEGER PRIMARY KEY, v TEXT)")
        conn.executemany("INSERT INTO last_one (v) VALUES (?)", [("z" * 200,)] * 50)
        conn.commit()
    wait_for(lambda: newest_l0(replica) != before, 30, "its upload")
    removed = newest_l0(replica)
    last = int(removed.name.split("-")[1].split(".")[0], 16)
    # Behind Litestream's back: it believes it uploaded it. On a loaded machine a level's
    # start-up compaction can come after the write and hold the same transaction (then a
    # restore rightly has it, and verify rightly passes): every file holding it goes.
    holding = [f for f in replica.glob("ltx/*/*.ltx") if ltx.parse_name(f.name)[1] >= last]
    assert removed in holding
    for file in holding:
        file.unlink()
    code, (found,) = verify_json(replicated, "--timeout", "8")
    assert code == 65, found["reason"]
    assert found["outcome"] == "failed"
    assert found["reason"].startswith(
        f"the replica holds txid {last - 1:016x} and did not receive txid {last:016x} within "
    ), found["reason"]
    # serve's own final proof sees the hole too: the replica lacks Litestream's newest txid.
    assert run.stop() == exitcodes.SYNC_UNCONFIRMED


@pytest.mark.parametrize("replacement", ["older", "empty"])
def test_fails_on_a_live_database_replaced_without_syncing_it(
    replicated: Project, tmp_path: Path, replacement: str
) -> None:
    older = tmp_path / "older.db"
    if replacement == "older":
        shutil.copy(replicated.db, older)  # 20 + 7 rows, then more are replicated
        served_rows(replicated, 5)
    else:
        sqlite3.connect(older).execute("PRAGMA user_version = 1").connection.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{replicated.db}{suffix}").unlink(missing_ok=True)
    shutil.copy(older, replicated.db)
    listing = replica_listing(replicated)
    code, (found,) = verify_json(replicated)
    assert code == 65
    assert found["outcome"] == "failed"
    assert "is not a continuation of its replica" in found["reason"]
    assert "verify does not sync it, since that would replace the backup" in found["reason"]
    assert replica_listing(replicated) == listing  # never synced


def test_missing_database_fails_naming_the_restore(replicated: Project) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{replicated.db}{suffix}").unlink(missing_ok=True)
    result = replicated.run("litestream", "verify")
    assert result.returncode == 65
    assert result.stdout == (
        f"'default' ({replicated.db}): failed: the database does not exist here; "
        "'python manage.py litestream restore default' brings it back\n"
    )


# -- inconclusive ---------------------------------------------------------------------------


def test_inconclusive_beside_a_litestream_outside_serve(replicated: Project) -> None:
    daemon = replicated.spawn("litestream", "replicate")
    try:
        wait_for(lambda: litestream_on(replicated.db), 30, "replicate to open the database")
        before = litestream_on(replicated.db)
        result = replicated.run("litestream", "verify")
        assert result.returncode == verify.EXIT_INCONCLUSIVE == 75, result.stderr
        assert f"inconclusive: Litestream (PID {next(iter(before))}) replicates it outside " in (
            result.stdout
        )
        assert "enable its control socket" in result.stdout
        assert litestream_on(replicated.db) == before
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)


def test_ctrl_c_removes_the_temporary_directory(replicated: Project, serving) -> None:
    log = replicated.root / "sig.log"
    serving(sys.executable, SIGSERVER, str(log), "--db", str(replicated.db))
    wait_for(lambda: log.exists() and "ready" in log.read_text(), 60, "the server")
    proc = replicated.spawn("litestream", "verify")
    mine = f"django-litestream-{proc.pid}-"
    wait_for(
        lambda: [n for n in os.listdir(tempfile.gettempdir()) if n.startswith(mine)],
        30,
        "verify's private directory",
    )
    os.kill(proc.pid, signal.SIGINT)
    assert proc.wait(30) == 130
    assert not [n for n in os.listdir(tempfile.gettempdir()) if n.startswith(mine)]


# -- without processes ----------------------------------------------------------------------


def test_differences_name_what_differs(tmp_path: Path) -> None:
    def make(name: str, rows: int, extra: str = "") -> digest.Digest:
        path = tmp_path / name
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT)")
        conn.executemany("INSERT INTO a (v) VALUES (?)", [("x",)] * rows)
        if extra:
            conn.execute(extra)
        conn.commit()
        conn.close()
        conn = digest.connect_readonly(str(path))
        try:
            return digest.read(conn)
        finally:
            conn.close()

    copy = make("copy.db", 3)
    assert digest.differences(copy, make("same.db", 3)) == []
    assert digest.differences(copy, make("more.db", 4)) == [
        "a has 3 rows in the restored copy, 4 live"
    ]
    assert digest.differences(copy, make("table.db", 3, "CREATE TABLE b (x)")) == [
        "table b is missing from the restored copy"
    ]
    changed = make("changed.db", 3, "UPDATE a SET v = 'y' WHERE id = 2")
    assert digest.differences(copy, changed) == ["a has the same 3 rows, but their contents differ"]


def test_exit_code_is_the_worst_outcome() -> None:
    from django_litestream.config.types import Database

    def result(outcome: str) -> verify.Result:
        return verify.Result(Database("/x.db", "w"), "file:///r", outcome)

    assert verify.exit_code([result("passed")]) == 0
    assert verify.exit_code([result("passed"), result("inconclusive")]) == 75
    assert verify.exit_code([result("inconclusive"), result("failed")]) == 65
