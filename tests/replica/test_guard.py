"""Never replicate the wrong database: the guard before serve and replicate.

The two reproductions of the issue (a database ``migrate`` created on a fresh disk; a file
replaced by hand, with and without Litestream's state beside it) are refused, with the
replica untouched; the ways out work; and the cases that must never raise an alarm (a warm
restart, a crash mid-write, a deleted state directory, a database serve just restored)
proceed without a flag. Everything runs the real binary against a real replica.
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
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from django_litestream.replica import guard, ltx
from django_litestream.serve import exitcodes
from tests.support import SIGSERVER, procs
from tests.support.project import Project, count_rows, wait_for, write_rows

PASS = ("--", sys.executable, "-c", "pass")
MUST_NOT_RUN = ("--", sys.executable, "-c", "raise SystemExit('must not run')")
AUTH_APPS = '["django.contrib.contenttypes", "django.contrib.auth", "django_litestream", "testapp"]'


def with_auth_models(project: Project) -> Project:
    """migrate then creates real tables (contenttypes, auth), as in a real project."""
    settings = project.root / "settings.py"
    text = settings.read_text()
    settings.write_text(text.replace('["django_litestream", "testapp"]', AUTH_APPS))
    return project


@pytest.fixture
def guarded(project: Project, file_replica: dict[str, str]) -> Project:
    project.configure({"dbs": [{"path": "default", "replica": file_replica}]})
    return with_auth_models(project)


def meta_dir(project: Project) -> Path:
    return project.db.parent / f".{project.db.name}-litestream"


def remove_database(project: Project, *, state: bool = True) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{project.db}{suffix}").unlink(missing_ok=True)
    if state:
        shutil.rmtree(meta_dir(project), ignore_errors=True)


def replica_files(project: Project) -> list[dict]:
    result = project.run("litestream", "ltx", "-json", "-level", "all", "default")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def restored_rows(project: Project, tmp: Path) -> int:
    out = tmp / f"restored-{os.urandom(3).hex()}.db"
    result = project.run("litestream", "restore", "-o", str(out), "default")
    assert result.returncode == 0, result.stderr
    return count_rows(out)


def replicate_rows(project: Project, n: int) -> None:
    write_rows(project.db, n)
    result = project.run("litestream", "replicate", "-once")
    assert result.returncode == 0, result.stderr


# -- the two reproductions ---------------------------------------------------------------


def migrate_over_a_backup(project: Project) -> list[dict]:
    """Six rows in the replica, then a fresh disk where migrate runs first."""
    replicate_rows(project, 6)
    remove_database(project)
    before = replica_files(project)
    result = project.run("migrate", "--noinput")
    assert result.returncode == 0, result.stderr
    assert project.db.exists()
    return before


def assert_migrate_refused(project: Project, result, before: list[dict], tmp: Path) -> None:
    assert result.returncode == exitcodes.NOT_CONTINUATION, result.stderr
    assert "Traceback" not in result.stderr and "must not run" not in result.stderr
    assert (
        f"ERROR 'default' ({project.db}) was just created by migrate (schema only, no rows, "
        "no Litestream state), but its replica "
    ) in result.stderr
    assert (
        'Run migrate after the restore instead: python manage.py litestream serve --pre "python '
        'manage.py migrate --noinput"'
    ) in result.stderr
    assert replica_files(project) == before  # Litestream never started
    assert restored_rows(project, tmp) == 6


def test_migrate_on_a_fresh_disk_is_refused(guarded: Project, tmp_path: Path) -> None:
    before = migrate_over_a_backup(guarded)
    result = guarded.run("litestream", "serve", *MUST_NOT_RUN)
    assert_migrate_refused(guarded, result, before, tmp_path)
    assert "holds txid 0000000000000001 (written " in result.stderr


def test_migrate_on_a_fresh_disk_is_refused_on_s3(project: Project, s3_replica, tmp_path) -> None:
    project.configure({"dbs": [{"path": "default", "replica": s3_replica.replica}]})
    with_auth_models(project)
    before = migrate_over_a_backup(project)
    result = project.run("litestream", "serve", *MUST_NOT_RUN)
    assert_migrate_refused(project, result, before, tmp_path)
    assert f"its replica s3://{s3_replica.bucket}/db holds txid" in result.stderr


def test_the_recommended_entrypoint_restores_then_migrates(guarded: Project, tmp_path) -> None:
    replicate_rows(guarded, 6)
    remove_database(guarded)
    result = guarded.run(
        "litestream", "serve", "--pre", f"{sys.executable} manage.py migrate --noinput", *PASS
    )
    assert result.returncode == 0, result.stderr
    assert "is missing; restoring it" in result.stderr
    assert count_rows(guarded.db) == 6
    assert restored_rows(guarded, tmp_path) == 6
    with sqlite3.connect(guarded.db) as conn:  # migrate ran, after the restore
        assert conn.execute("SELECT count(*) FROM django_migrations").fetchone()[0] > 0


@pytest.mark.parametrize("keep_state", [True, False], ids=["state-kept", "state-removed"])
def test_a_file_replaced_by_hand_is_refused(guarded: Project, tmp_path, keep_state) -> None:
    replicate_rows(guarded, 3)
    old = tmp_path / "old-copy.sqlite3"
    with sqlite3.connect(guarded.db) as src, sqlite3.connect(old) as dst:
        src.backup(dst)
    replicate_rows(guarded, 4)
    before = replica_files(guarded)
    remove_database(guarded, state=not keep_state)
    shutil.copy(old, guarded.db)
    result = guarded.run("litestream", "serve", *MUST_NOT_RUN)
    assert result.returncode == exitcodes.NOT_CONTINUATION, result.stderr
    assert "must not run" not in result.stderr
    size = guarded.db.stat().st_size
    assert (
        f"ERROR 'default' ({guarded.db}) is not a continuation of its replica "
        f"file://{tmp_path / 'replica'}: the replica holds txid "
    ) in result.stderr
    assert f"the local file is not known to this replica ({size} bytes, modified " in result.stderr
    assert "Litestream would replace the backup with it." in result.stderr
    assert "--restore-over-local (moves it to db.sqlite3.replaced-<time>" in result.stderr
    assert replica_files(guarded) == before
    assert restored_rows(guarded, tmp_path) == 7


# -- the ways out ----------------------------------------------------------------------------


def test_adopt_local_replicates_the_local_file_and_says_so(guarded: Project, tmp_path) -> None:
    before = migrate_over_a_backup(guarded)
    write_rows(guarded.db, 2)  # the new truth has two rows of its own
    result = guarded.run("litestream", "serve", "--adopt-local", *PASS)
    assert result.returncode == 0, result.stderr
    newest = before[-1]["max_txid"]
    assert (
        f"WARNING Adopting 'default' ({guarded.db}) as the new truth (--adopt-local): its "
        f"replica file://{tmp_path / 'replica'} holds txid {newest}"
    ) in result.stderr
    assert "the local file is not known to this replica (" in result.stderr
    assert restored_rows(guarded, tmp_path) == 2


def test_adopt_local_setting(guarded: Project, file_replica, tmp_path) -> None:
    guarded.configure(
        {"dbs": [{"path": "default", "replica": file_replica}], "serve": {"adopt_local": True}}
    )
    with_auth_models(guarded)
    migrate_over_a_backup(guarded)
    write_rows(guarded.db, 1)
    result = guarded.run("litestream", "serve", *PASS)
    assert result.returncode == 0, result.stderr
    assert "as the new truth (--adopt-local)" in result.stderr
    assert restored_rows(guarded, tmp_path) == 1


def test_restore_over_local_keeps_the_replaced_file(guarded: Project, tmp_path) -> None:
    migrate_over_a_backup(guarded)
    write_rows(guarded.db, 2)
    check = (
        f"import sqlite3; c = sqlite3.connect({str(guarded.db)!r}); "
        "assert c.execute('select count(*) from rows').fetchone()[0] == 6"
    )
    result = guarded.run(
        "litestream", "serve", "--restore-over-local", "--", sys.executable, "-c", check
    )
    assert result.returncode == 0, result.stderr
    (aside,) = guarded.root.glob("db.sqlite3.replaced-*")
    assert f"moved it aside to {aside} (--restore-over-local)" in result.stderr
    assert count_rows(aside / "db.sqlite3") == 2  # kept, not deleted
    assert count_rows(guarded.db) == 6
    assert restored_rows(guarded, tmp_path) == 6


def test_adopt_and_restore_over_local_contradict(guarded: Project) -> None:
    result = guarded.run("litestream", "serve", "--adopt-local", "--restore-over-local", *PASS)
    assert result.returncode == exitcodes.USAGE
    assert "--adopt-local and --restore-over-local contradict each other" in result.stderr


# -- manage.py litestream replicate ----------------------------------------------------------


def test_replicate_refuses_a_wrong_database(guarded: Project, tmp_path: Path) -> None:
    before = migrate_over_a_backup(guarded)
    result = guarded.run("litestream", "replicate", "-once")
    assert result.returncode == 65, result.stderr
    assert "Traceback" not in result.stderr
    assert "was just created by migrate" in result.stderr
    assert "'python manage.py litestream replicate --adopt-local'" in result.stderr
    assert replica_files(guarded) == before
    assert restored_rows(guarded, tmp_path) == 6
    write_rows(guarded.db, 2)
    result = guarded.run("litestream", "replicate", "-once", "--adopt-local")
    assert result.returncode == 0, result.stderr
    assert "as the new truth (--adopt-local)" in result.stderr
    assert restored_rows(guarded, tmp_path) == 2


def test_replicate_with_a_replica_url_refuses_a_wrong_database(guarded, tmp_path) -> None:
    """``replicate DB_PATH REPLICA_URL`` (no configuration) is checked too."""
    migrate_over_a_backup(guarded)
    url = f"file://{tmp_path / 'replica'}"
    result = guarded.run("litestream", "replicate", "-once", "default", url)
    assert result.returncode == 65, result.stderr
    assert (
        f"{guarded.db} was just created by migrate (schema only, no rows, no Litestream "
        f"state), but its replica {url} holds txid"
    ) in result.stderr
    assert restored_rows(guarded, tmp_path) == 6


def test_replicate_refuses_a_missing_database_over_a_backup(guarded: Project, tmp_path) -> None:
    replicate_rows(guarded, 5)
    remove_database(guarded)
    result = guarded.run("litestream", "replicate", "-once")
    assert result.returncode == 65, result.stderr
    assert "does not exist, but its replica" in result.stderr
    assert "or add -restore-if-db-not-exists" in result.stderr
    result = guarded.run("litestream", "replicate", "-once", "-restore-if-db-not-exists")
    assert result.returncode == 0, result.stderr
    assert count_rows(guarded.db) == 5


def test_writes_made_while_litestream_was_stopped_need_adopt_local(guarded, tmp_path) -> None:
    """Once the WAL is checkpointed away they cannot be told from an older copy: refused."""
    replicate_rows(guarded, 3)
    write_rows(guarded.db, 4)
    assert not Path(f"{guarded.db}-wal").exists()  # the writer closed last: WAL checkpointed
    result = guarded.run("litestream", "replicate", "-once")
    assert result.returncode == 65, result.stderr
    assert (
        "its WAL does not continue Litestream's state, so it cannot be shown to hold the "
        "replica's history (writes made while Litestream was not running, once checkpointed, "
        "look the same as an older copy)"
    ) in result.stderr
    assert restored_rows(guarded, tmp_path) == 3
    result = guarded.run("litestream", "replicate", "-once", "--adopt-local")
    assert result.returncode == 0, result.stderr
    assert restored_rows(guarded, tmp_path) == 7


# -- no false alarms ---------------------------------------------------------------------------


def serve_rows(project: Project, n: int) -> str:
    result = project.run(
        "litestream", "serve", "--", sys.executable, "manage.py", "write_rows", str(n)
    )
    assert result.returncode == 0, result.stderr
    assert "not a continuation" not in result.stderr
    return result.stderr


def test_warm_restart_proceeds_on_the_cheap_proof(guarded: Project, tmp_path) -> None:
    serve_rows(guarded, 4)
    err = serve_rows(guarded, 5)
    assert "continues its replica" in err and "(proven by Litestream's state and WAL)" in err
    assert restored_rows(guarded, tmp_path) == 9


def test_wal_checkpointed_by_another_connection_proceeds(guarded: Project, tmp_path) -> None:
    serve_rows(guarded, 4)
    conn = sqlite3.connect(guarded.db)  # the last connection: checkpoints and removes the WAL
    assert conn.execute("SELECT count(*) FROM rows").fetchone()[0] == 4
    conn.close()
    assert not Path(f"{guarded.db}-wal").exists()
    err = serve_rows(guarded, 2)
    assert "(proven by a restored copy)" in err
    assert not list(guarded.root.glob(".db.sqlite3.guard-*"))  # the copy is removed
    assert restored_rows(guarded, tmp_path) == 6


def test_deleted_state_directory_proceeds(guarded: Project, tmp_path: Path) -> None:
    serve_rows(guarded, 4)
    shutil.rmtree(meta_dir(guarded))
    err = serve_rows(guarded, 3)
    assert "(proven by a restored copy)" in err
    assert restored_rows(guarded, tmp_path) == 7


def test_just_restored_database_is_not_checked_again(guarded: Project, tmp_path) -> None:
    serve_rows(guarded, 4)
    remove_database(guarded)
    err = serve_rows(guarded, 1)
    assert "is missing; restoring it" in err
    assert "continues its replica" not in err  # restored by serve: the replica's own
    assert restored_rows(guarded, tmp_path) == 5


def kill_tree(pid: int) -> None:
    """SIGKILL serve and every process under it at once, as a power cut would."""
    found = [p.process for p in procs.children(pid)]
    with contextlib.suppress(psutil.Error):
        found.append(psutil.Process(pid))
    for proc in found:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGKILL)
    psutil.wait_procs(found, timeout=10)


@pytest.fixture
def spawned() -> Iterator[list]:
    running: list = []
    yield running
    for proc in running:
        kill_tree(proc.pid)


def test_restart_after_sigkill_mid_write_proceeds(guarded: Project, tmp_path, spawned) -> None:
    """Three cycles of writes, SIGKILL of the whole tree, restart without a flag."""
    log = tmp_path / "signals.log"
    acknowledged = 0
    for cycle in range(3):
        log.write_text("")
        # The last cycle's count must not pass for this one's (the CI run on 3.10 killed a
        # new server before its first write and counted the old 207 acknowledged writes).
        Path(f"{log}.count").unlink(missing_ok=True)
        err = (tmp_path / f"serve-{cycle}.err").open("w+")
        proc = guarded.spawn(
            "litestream",
            "serve",
            "--",
            sys.executable,
            SIGSERVER,
            str(log),
            "--db",
            str(guarded.db),
            "--write-every",
            "0.002",
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        spawned.append(proc)
        wait_for(
            lambda p=proc: "ready" in log.read_text() or p.poll() is not None, 60, "the server"
        )
        assert proc.poll() is None, Path(err.name).read_text()
        count = Path(f"{log}.count")
        wait_for(lambda c=count: c.exists() and int(c.read_text() or 0) > 200, 60, "writes")
        kill_tree(proc.pid)
        acknowledged += int(count.read_text())
        text = Path(err.name).read_text()
        assert "not a continuation" not in text, text
        if cycle:  # the cheap proof: Litestream's state and the WAL it left
            assert "(proven by Litestream's state and WAL)" in text, text
        assert Path(f"{guarded.db}-wal").stat().st_size > 0  # frames past the last LTX file
    result = guarded.run("litestream", "serve", *PASS)
    assert result.returncode == 0, result.stderr
    assert "(proven by Litestream's state and WAL)" in result.stderr
    restored = restored_rows(guarded, tmp_path)
    assert acknowledged <= count_rows(guarded.db) <= restored <= count_rows(guarded.db) + 3


# -- the pieces, against files the real binary wrote ---------------------------------------------


def test_lz4_pages_of_a_real_snapshot_decode_to_the_database(guarded: Project, tmp_path) -> None:
    """Every page of Litestream's first LTX file (a full snapshot) decodes to the database."""
    write_rows(guarded.db, 2000)
    replicate_rows(guarded, 1)
    (snapshot,) = [f for f in ltx.level0(str(meta_dir(guarded))) if f.min_txid == 1]
    header = ltx.read_header(snapshot.path)
    out = tmp_path / "at-txid-1.db"
    result = guarded.run(
        "litestream", "restore", "-txid", "0000000000000001", "-o", str(out), "default"
    )
    assert result.returncode == 0, result.stderr
    data = out.read_bytes()
    size = header.page_size
    assert header.commit == len(data) // size > 20
    for number in range(1, header.commit + 1):
        assert ltx.page(snapshot.path, number) == data[(number - 1) * size : number * size]
    assert ltx.page(snapshot.path, header.commit + 1) is None


def test_verdict_api(guarded: Project, tmp_path: Path) -> None:
    """The function issue 8's verify will reuse: a verdict with one-line reasons."""
    from django_litestream.litestream.binary import find

    replicate_rows(guarded, 2)
    config = tmp_path / "litestream.yml"
    result = guarded.run("litestream", "config")
    config.write_text(result.stdout)
    kwargs = {
        "label": "'default'",
        "replica_description": "file://replica",
        "meta_path": str(meta_dir(guarded)),
        "binary": find(None) or "litestream",
        "config_path": str(config),
    }
    verdict = guard.check(str(guarded.db), **kwargs)
    assert (verdict.kind, verdict.proof, verdict.proceed) == (guard.CONTINUES, "wal", True)
    assert verdict.replica_txid == verdict.local.state_txid
    assert guard.check(str(guarded.db), restored=True, **kwargs).kind == guard.JUST_RESTORED
    remove_database(guarded)
    sqlite3.connect(guarded.db).execute("CREATE TABLE t (x)").connection.commit()
    verdict = guard.check(str(guarded.db), **kwargs)
    assert (verdict.kind, verdict.proceed) == (guard.NOT_CONTINUATION, False)
    assert verdict.why == "Litestream never replicated it"
    assert "\n" not in verdict.reason


# -- two databases, one replica location ---------------------------------------------------


def two_in_one(project: Project, replica: dict, tmp_path: Path) -> Path:
    cache = project.root / "cache.sqlite3"
    project.configure(
        {"dbs": [{"path": "default", "replica": replica}, {"path": "cache", "replica": replica}]},
        {
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(project.db)},
            "cache": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(cache)},
        },
    )
    write_rows(project.db, 3)
    write_rows(cache, 4)
    return cache


@pytest.mark.parametrize("command", [("replicate", "-once"), ("serve", *MUST_NOT_RUN)])
def test_two_databases_in_one_file_replica_are_refused(project, tmp_path, command) -> None:
    replica = {"type": "file", "path": str(tmp_path / "shared")}
    two_in_one(project, replica, tmp_path)
    result = project.run("litestream", *command)
    assert result.returncode == 78, result.stderr
    assert "Traceback" not in result.stderr and "must not run" not in result.stderr
    assert "replicate to the same location, file://" in result.stderr
    assert "(django_litestream.E008)" in result.stderr
    assert not (tmp_path / "shared").exists()  # the replica untouched


@pytest.mark.parametrize("command", [("replicate", "-once"), ("serve", *MUST_NOT_RUN)])
def test_two_databases_in_one_s3_path_are_refused(project, s3_replica, tmp_path, command) -> None:
    two_in_one(project, s3_replica.replica, tmp_path)
    check = project.run("check")
    assert check.returncode == 1
    assert "django_litestream.E008" in check.stderr
    assert f"replicate to the same location, s3://{s3_replica.bucket} at " in check.stderr
    result = project.run("litestream", *command)
    assert result.returncode == 78, result.stderr
    assert "must not run" not in result.stderr
    listing = project.run("litestream", "ltx", "-json", "default")
    assert listing.returncode == 78  # ltx reads the replica: refused too
    project.configure({"dbs": [{"path": "default", "replica": s3_replica.replica}]})
    assert replica_files(project) == []  # the shared location holds nothing: untouched


# -- a replica that cannot be read -----------------------------------------------------------


def test_unreadable_replica_is_exit_69_after_the_restore_timeout(project, s3_replica) -> None:
    replica = dict(s3_replica.replica, bucket="no-such-bucket")
    project.configure({"dbs": [{"path": "default", "replica": replica}]})
    write_rows(project.db, 1)
    result = project.run("litestream", "serve", "--restore-timeout", "1", *MUST_NOT_RUN)
    assert result.returncode == exitcodes.RESTORE_FAILED, result.stderr
    assert "must not run" not in result.stderr and "Traceback" not in result.stderr
    assert (
        f"ERROR Cannot check 'default' ({project.db}) against its replica s3://no-such-bucket/db: "
    ) in result.stderr
    assert "NoSuchBucket" in result.stderr
    result = project.run("litestream", "replicate", "-once")
    assert result.returncode == 69, result.stderr
    assert "Cannot check 'default' (" in result.stderr


def test_term_during_the_check_stops_serve_at_once(project: Project, tmp_path, spawned) -> None:
    """An unreachable replica is retried for --restore-timeout; TERM does not wait for it."""
    replica = {"type": "sftp", "host": "127.0.0.1:9", "user": "u", "password": "p", "path": "/d"}
    project.configure({"dbs": [{"path": "default", "replica": replica}]})
    write_rows(project.db, 1)
    err = (tmp_path / "serve.err").open("w+")
    proc = project.spawn("litestream", "serve", "--restore-timeout", "120", *PASS, stderr=err)
    spawned.append(proc)
    wait_for(
        lambda: any(p.argv[1:2] == ("ltx",) for p in procs.children(proc.pid)),
        30,
        "the check to list the replica",
    )
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM, Path(err.name).read_text()
