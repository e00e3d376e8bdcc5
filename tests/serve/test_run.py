"""``manage.py litestream serve`` with real processes, real signals and a real replica.

The server under test is tests/support/bin/sigserver.py, a stand-in that records the signals it
gets and writes rows; gunicorn, uvicorn and runserver have their own tests below.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from django_litestream.serve import exitcodes
from tests.support import SIGSERVER, procs
from tests.support.project import Project, count_rows, wait_for, write_rows
from tests.support.serving import Served, restored_rows


def local_rows(project: Project) -> int:
    return count_rows(project.db)


def assert_killed_writer_lost_nothing(project: Project, tmp: Path, run: Served) -> None:
    """After SIGKILL of a writer, every acknowledged row is in the replica.

    The replica may hold one row more than the local file: a writer killed between
    appending its commit frame to the WAL and updating the WAL index never saw that commit
    succeed, but Litestream reads the WAL itself and ships the frame, while SQLite's next
    checkpoint (through the stale index) leaves it out locally.
    """
    restored = restored_rows(project, tmp)
    count_file = Path(f"{run.log}.count")
    acknowledged = int(count_file.read_text()) if count_file.exists() else 0
    local = local_rows(project)
    assert acknowledged <= local <= restored <= local + 1, (acknowledged, local, restored)


# -- the sequence -----------------------------------------------------------------------------


def test_short_job_writes_reach_the_replica(served: Project, tmp_path: Path) -> None:
    """A command that writes and exits at once still has its writes replicated."""
    result = served.run("litestream", "serve", "--", sys.executable, "manage.py", "write_rows", "7")
    assert result.returncode == 0, result.stderr
    assert "replica confirmed in sync" in result.stderr
    assert restored_rows(served, tmp_path) == 7


def test_cold_start_restores_missing_database(served: Project, tmp_path: Path) -> None:
    write_rows(served.db, 42)
    assert served.run("litestream", "replicate", "-once").returncode == 0
    for suffix in ("", "-wal", "-shm"):
        Path(f"{served.db}{suffix}").unlink(missing_ok=True)
    result = served.run("litestream", "serve", "--", sys.executable, "-c", "pass")
    assert result.returncode == 0, result.stderr
    assert "is missing; restoring it" in result.stderr
    assert count_rows(served.db) == 42
    assert not list(served.root.glob("*.restoring*"))


def meta_dir(project: Project) -> Path:
    return project.db.parent / f".{project.db.name}-litestream"


def test_leftovers_of_a_missing_database_are_moved_aside(served: Project) -> None:
    """The README's tour: delete db.sqlite3 (its -wal and Litestream's state stay), serve."""
    write_rows(served.db, 42)
    assert served.run("litestream", "replicate", "-once").returncode == 0
    ltx = sorted(p.name for p in meta_dir(served).rglob("*.ltx"))
    wal = Path(f"{served.db}-wal")
    assert ltx and wal.stat().st_size > 0  # Litestream keeps SQLite from checkpointing
    wal_bytes = wal.read_bytes()
    served.db.unlink()
    result = served.run("litestream", "serve", "--", sys.executable, "-c", "pass")
    assert result.returncode == 0, result.stderr
    assert count_rows(served.db) == 42
    (stale,) = served.root.glob(f"{served.db.name}.stale-*")
    assert (
        f"is missing but left {wal.name} and .{served.db.name}-litestream behind; "
        f"moved to {stale} so that neither SQLite nor Litestream mistakes it for part of the "
        "new database. Delete that directory once you know you do not need it.\n"
    ) in result.stderr, result.stderr
    # Moved, not deleted: the old state may hold the only copy of a last transaction.
    assert sorted(p.name for p in (stale / meta_dir(served).name).rglob("*.ltx")) == ltx
    assert (stale / wal.name).read_bytes() == wal_bytes


def test_fresh_start_over_stale_litestream_state_does_not_stall(
    served: Project, file_replica: dict[str, str], tmp_path: Path
) -> None:
    """A new database must not inherit the LTX state of the one it replaces.

    Litestream stalls ("LTX file is missing") when its state directory starts past txid 1,
    as it does once L0 retention has pruned it; the first LTX file is removed by hand here to
    get that state without waiting minutes for retention.
    """
    write_rows(served.db, 3)
    assert served.run("litestream", "replicate", "-once").returncode == 0
    write_rows(served.db, 3)  # written while Litestream is stopped: adopted (see test_guard)
    assert served.run("litestream", "replicate", "-once", "--adopt-local").returncode == 0
    first = min(meta_dir(served).rglob("*.ltx"))
    first.unlink()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{served.db}{suffix}").unlink(missing_ok=True)
    shutil.rmtree(file_replica["path"])
    result = served.run(
        "litestream",
        "serve",
        "--ready-timeout",
        "20",
        "--",
        sys.executable,
        "manage.py",
        "write_rows",
        "5",
    )
    assert result.returncode == 0, result.stderr
    # A database was here before (its state was moved aside): an empty replica is suspicious.
    assert (
        "WARNING 'default' (" in result.stderr
        and "holds no backup, although a database was here before: starting with an empty database"
        in result.stderr
    ), result.stderr
    assert restored_rows(served, tmp_path) == 5


def test_new_replica_over_pruned_state_names_litestream_reset(
    served: Project, file_replica: dict[str, str], tmp_path: Path
) -> None:
    """A database kept, its replica new (another bucket or path): Litestream stalls.

    It tries to upload from txid 1, whose LTX file L0 retention has pruned (removed by hand
    here, as above). serve cannot fix this silently, so the error names the fix.
    """
    served.configure(
        {"dbs": [{"path": "default", "replica": file_replica}], "shutdown-sync-timeout": "1s"}
    )
    for _ in range(2):
        write_rows(served.db, 3)  # written while Litestream is stopped: adopted
        assert served.run("litestream", "replicate", "-once", "--adopt-local").returncode == 0
    min(meta_dir(served).rglob("*.ltx")).unlink()
    shutil.rmtree(file_replica["path"])
    cmd = ("litestream", "serve", "--ready-timeout", "3", "--", sys.executable, "-c", "pass")
    result = served.run(*cmd)
    assert result.returncode == exitcodes.NOT_READY, result.stderr
    assert (
        "Litestream's local state (its LTX files) no longer covers what the replica needs"
    ) in result.stderr
    assert "run 'python manage.py litestream reset DB' for that database" in result.stderr
    assert served.run("litestream", "reset", "default").returncode == 0
    result = served.run(*cmd)
    assert result.returncode == 0, result.stderr
    assert restored_rows(served, tmp_path) == 6


def test_database_directory_that_cannot_be_made_is_a_clear_error(
    served: Project, file_replica: dict[str, str]
) -> None:
    """No traceback when the database's directory cannot exist (a file is in the way)."""
    blocker = served.root / "data"
    blocker.write_text("a file where the database's directory should be")
    name = blocker / "db.sqlite3"
    served.configure(
        {"dbs": [{"path": "default", "replica": file_replica}]},
        {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(name)}},
    )
    result = served.run("litestream", "serve", "--", sys.executable, "-c", "pass")
    assert result.returncode == exitcodes.LOCKED, result.stderr
    assert "Traceback" not in result.stderr
    assert (
        f"Cannot create the lock file {name}.serve-lock: File exists ({blocker}). Check that "
        "the database's directory exists (or can be created) and that this user may write "
        "there."
    ) in result.stderr


def test_restore_that_cannot_write_is_a_clear_error(served: Project, file_replica) -> None:
    """The restore's own files cannot be written (a directory is in the way): exit 69."""
    write_rows(served.db, 3)
    assert served.run("litestream", "replicate", "-once").returncode == 0
    for suffix in ("", "-wal", "-shm"):
        Path(f"{served.db}{suffix}").unlink(missing_ok=True)
    shutil.rmtree(meta_dir(served))
    (served.root / f"{served.db.name}.restoring").mkdir()
    (served.root / f"{served.db.name}.restoring" / "x").write_text("not removable by unlink")
    result = served.run("litestream", "serve", "--", sys.executable, "-c", "pass")
    assert result.returncode == exitcodes.RESTORE_FAILED, result.stderr
    assert "Traceback" not in result.stderr
    assert f"Cannot restore 'default' ({served.db}): " in result.stderr
    assert "Check that its directory exists (or can be created)" in result.stderr


def test_empty_replica_starts_fresh_calmly(served: Project, file_replica) -> None:
    """A first start (no database, nothing left behind, an empty replica) is no warning."""
    result = served.run("litestream", "serve", "--", sys.executable, "-c", "pass")
    assert result.returncode == 0, result.stderr
    assert (
        f"INFO No backup in file://{file_replica['path']} yet: 'default' ({served.db}) starts "
        "as a new, empty database. (If this machine should have restored data, check the "
        "replica's bucket and path; --require-replica makes this an error.)\n"
    ) in result.stderr, result.stderr
    assert "WARNING" not in result.stderr
    assert served.db.exists()


def test_require_replica_refuses_an_empty_replica(served: Project) -> None:
    result = served.run(
        "litestream",
        "serve",
        "--require-replica",
        "--",
        sys.executable,
        "-c",
        "raise SystemExit('must not run')",
    )
    assert result.returncode == exitcodes.REPLICA_EMPTY, result.stderr
    assert "refusing to start fresh because --require-replica is set" in result.stderr
    assert "must not run" not in result.stderr


def test_require_replica_setting(served: Project, file_replica) -> None:
    served.configure(
        {
            "dbs": [{"path": "default", "replica": file_replica}],
            "serve": {"require_replica": True, "command": "python -c pass"},
        }
    )
    assert served.run("litestream", "serve").returncode == exitcodes.REPLICA_EMPTY


def test_unreachable_replica_fails_restore_within_timeout(project: Project) -> None:
    with_port = {
        "type": "s3",
        "bucket": "b",
        "path": "db",
        "endpoint": "http://127.0.0.1:9",
        "region": "us-east-1",
        "access-key-id": "x",
        "secret-access-key": "y",
    }
    project.configure({"dbs": [{"path": "default", "replica": with_port}]})
    started = time.monotonic()
    result = project.run(
        "litestream",
        "serve",
        "--restore-timeout",
        "2",
        "--",
        sys.executable,
        "-c",
        "pass",
        timeout=60,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == exitcodes.RESTORE_FAILED, result.stderr
    assert "Cannot restore 'default' (" in result.stderr
    assert "Check that the replica is reachable" in result.stderr
    # documented bound: --restore-timeout plus start-up, never Litestream's own retry budget
    assert elapsed < 2 + 15, elapsed
    assert not project.db.exists()


def test_pre_serve_commands_run_replicated_before_the_server(served: Project, tmp_path) -> None:
    result = served.run(
        "litestream",
        "serve",
        "--pre",
        f"{sys.executable} manage.py write_rows 3",
        "--pre",
        f"{sys.executable} manage.py write_rows 2",
        "--",
        sys.executable,
        "-c",
        "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]);"
        "assert c.execute('select count(*) from rows').fetchone()[0]==5",
        str(served.db),
    )
    assert result.returncode == 0, result.stderr
    assert restored_rows(served, tmp_path) == 5


def test_failing_pre_serve_command_stops_serve_with_its_status(served: Project) -> None:
    result = served.run(
        "litestream",
        "serve",
        "--pre",
        f"{sys.executable} -c 'exit(9)'",
        "--",
        sys.executable,
        "-c",
        "raise SystemExit('must not run')",
    )
    assert result.returncode == 9, result.stderr
    assert "Pre-serve command" in result.stderr and "exit status 9" in result.stderr
    assert "must not run" not in result.stderr


def test_unready_litestream_times_out(project: Project, s3_replica) -> None:
    """The S3 bucket does not exist, so no sync is ever confirmed."""
    replica = dict(s3_replica.replica, bucket="no-such-bucket")
    project.configure({"dbs": [{"path": "default", "replica": replica}]})
    write_rows(project.db, 1)  # present: no restore, straight to readiness
    result = project.run(
        "litestream",
        "serve",
        "--adopt-local",  # past the guard, which cannot list a missing bucket (test_guard)
        "--ready-timeout",
        "3",
        "--",
        sys.executable,
        "-c",
        "raise SystemExit('must not run')",
        timeout=60,
    )
    assert result.returncode == exitcodes.NOT_READY, result.stderr
    assert "was not ready within --ready-timeout (3s)" in result.stderr
    assert "must not run" not in result.stderr


# -- exit codes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [0, 1, 3, 4, 42])
def test_server_exit_code_is_serves_exit_code(served: Project, code: int) -> None:
    result = served.run("litestream", "serve", "--", sys.executable, "-c", f"exit({code})")
    assert result.returncode == code, result.stderr


def test_server_killed_by_signal_gives_128_plus_n(served: Project) -> None:
    result = served.run(
        "litestream",
        "serve",
        "--",
        sys.executable,
        "-c",
        "import os,signal; os.kill(os.getpid(), signal.SIGKILL)",
    )
    assert result.returncode == 128 + signal.SIGKILL
    assert "killed by SIGKILL (out of memory?)" in result.stderr


def test_missing_server_command_is_127(served: Project) -> None:
    result = served.run("litestream", "serve", "--", "no-such-server-binary")
    assert result.returncode == 127
    assert "Cannot start no-such-server-binary" in result.stderr


def test_second_instance_is_refused_naming_the_holder(served: Project, tmp_path: Path) -> None:
    first = Served(served, tmp_path).wait_ready()
    second = served.run("litestream", "serve", "--", sys.executable, "-c", "pass")
    assert second.returncode == exitcodes.LOCKED
    assert f"Another 'litestream serve' (PID {first.proc.pid}) is already serving" in second.stderr
    assert first.stop() == 0


# -- signals -----------------------------------------------------------------------------------


def test_term_is_graceful_and_rows_reach_the_replica(served: Project, tmp_path: Path) -> None:
    run = Served(served, tmp_path, "--db", str(served.db)).wait_ready()
    wait_for(lambda: local_rows(served) > 50, 30, "rows to be written")
    assert run.stop(signal.SIGTERM) == 0, run.stderr()
    assert run.signals().count("SIGTERM") == 1
    assert restored_rows(served, tmp_path) == local_rows(served)


def test_server_that_traps_term_and_exits_nonzero_keeps_its_code_and_final_sync(
    served: Project, tmp_path: Path
) -> None:
    run = Served(served, tmp_path, "--db", str(served.db), "--on-term", "exit:1").wait_ready()
    wait_for(lambda: local_rows(served) > 20, 30, "rows to be written")
    assert run.stop(signal.SIGTERM) == 1
    assert restored_rows(served, tmp_path) == local_rows(served)


def test_terminal_ctrl_c_reaches_the_server_once(served: Project, tmp_path: Path) -> None:
    run = Served(served, tmp_path).wait_ready()
    os.killpg(run.proc.pid, signal.SIGINT)  # what a terminal does: the whole foreground group
    assert run.wait() == 0, run.stderr()
    assert run.signals().count("SIGINT") == 1


def test_graceful_timeout_kills_the_server_and_still_syncs(served: Project, tmp_path) -> None:
    run = Served(
        served,
        tmp_path,
        "--db",
        str(served.db),
        "--on-term",
        "ignore",
        opts=("--graceful-timeout", "1"),
    ).wait_ready()
    wait_for(lambda: local_rows(served) > 20, 30, "rows to be written")
    assert run.stop(signal.SIGTERM) == 128 + signal.SIGKILL
    assert "did not exit within --graceful-timeout (1s)" in run.stderr()
    assert_killed_writer_lost_nothing(served, tmp_path, run)


@pytest.mark.parametrize("second", [signal.SIGTERM, signal.SIGINT])
def test_second_signal_stops_the_server_now(served: Project, tmp_path, second) -> None:
    run = Served(served, tmp_path, "--db", str(served.db), "--on-term", "ignore").wait_ready()
    os.kill(run.proc.pid, signal.SIGTERM)
    wait_for(lambda: "SIGTERM" in run.signals(), 10, "the server to get TERM")
    os.kill(run.proc.pid, second)
    assert run.wait(timeout=30) == 128 + signal.SIGKILL
    assert "stopping the server now" in run.stderr()
    assert_killed_writer_lost_nothing(served, tmp_path, run)


def test_quit_is_a_fast_stop_with_final_sync(served: Project, tmp_path: Path) -> None:
    run = Served(served, tmp_path, "--db", str(served.db), "--on-term", "ignore").wait_ready()
    wait_for(lambda: local_rows(served) > 20, 30, "rows to be written")
    assert run.stop(signal.SIGQUIT, timeout=30) == 128 + signal.SIGKILL
    assert_killed_writer_lost_nothing(served, tmp_path, run)


@pytest.mark.parametrize(
    "sig",
    [
        signal.SIGHUP,
        signal.SIGUSR1,
        signal.SIGUSR2,
        signal.SIGTTIN,
        signal.SIGTTOU,
        signal.SIGWINCH,
    ],
)
def test_other_signals_go_to_the_server_only(served: Project, tmp_path: Path, sig) -> None:
    run = Served(served, tmp_path).wait_ready()
    litestream = run.litestream()
    os.kill(run.proc.pid, sig)
    wait_for(lambda: sig.name in run.signals(), 10, f"the server to get {sig.name}")
    assert procs.alive(litestream)
    assert run.proc.poll() is None
    assert run.stop() == 0
    assert run.signals().count(sig.name) == 1


def test_litestream_killed_stops_the_server(served: Project, tmp_path: Path) -> None:
    run = Served(served, tmp_path).wait_ready()
    server = run.server()
    run.litestream().kill()
    assert run.wait(timeout=60) == exitcodes.LITESTREAM_DIED
    assert "stopping the server so it does not serve unreplicated" in run.stderr()
    assert "SIGTERM" in run.signals()
    assert not procs.alive(server)


def test_a_killed_serve_leaves_no_server_running(served: Project, tmp_path: Path) -> None:
    """SIGKILL of serve itself (the OOM killer, kill -9): the server gets TERM (it must not
    go on serving unreplicated), Litestream's -exec child sees the FIFO close and lets
    Litestream make its final sync and exit; nothing is left running."""
    run = Served(served, tmp_path).wait_ready()
    tree = run.tree()
    assert {p.name for p in tree} >= {"litestream"}
    run.proc.kill()
    run.proc.wait(timeout=10)
    wait_for(lambda: "SIGTERM" in run.signals(), 10, "the server to get TERM")
    wait_for(lambda: not any(procs.alive(p) for p in tree), 30, "every process to exit")


def test_no_process_outlives_serve(served: Project, tmp_path: Path) -> None:
    run = Served(served, tmp_path).wait_ready()
    tree = run.tree()
    assert {p.name for p in tree} >= {"litestream"}
    assert run.stop() == 0
    wait_for(
        lambda: not any(procs.alive(p) for p in tree),
        10,
        "children to exit",
    )


def test_orphaned_grandchildren_are_reaped(served: Project, tmp_path: Path) -> None:
    run = Served(served, tmp_path, "--orphan").wait_ready()

    def orphans() -> list[procs.Proc]:
        return [
            p
            for p in procs.children(run.proc.pid, recursive=False)
            if p.name != "litestream" and SIGSERVER not in p.cmdline
        ]

    wait_for(lambda: orphans(), 10, "the orphan to be re-parented to serve")
    wait_for(lambda: not orphans(), 10, "the orphan to be reaped (no zombie left)")
    assert run.stop() == 0


@pytest.mark.skipif(not Path("/usr/bin/unshare").exists(), reason="unshare is not installed")
def test_as_pid_1_in_a_container(served: Project, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("unshare --pid needs root")
    log = tmp_path / "pid1.log"
    log.touch()
    proc = subprocess.Popen(
        [
            "unshare",
            "--pid",
            "--fork",
            "--kill-child",
            *served.command(
                "litestream", "serve", "--", sys.executable, SIGSERVER, str(log), "--orphan"
            ),
        ],
        cwd=served.root,
        env=served.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for(lambda: "ready" in log.read_text(), 30, "the server under PID 1")
        (pid1,) = psutil.Process(proc.pid).children()
        assert (
            pid1.cmdline()[1:4] == [str(served.root / "manage.py"), "litestream", "serve"]
            or "django_litestream.serve.supervisor" in pid1.cmdline()
        )
        wait_for(
            lambda: (
                not [
                    p
                    for p in procs.children(pid1.pid, recursive=False)
                    if p.name != "litestream" and SIGSERVER not in p.cmdline
                ]
            ),
            10,
            "orphans to be reaped by PID 1",
        )
        os.kill(pid1.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert log.read_text().split().count("SIGTERM") == 1
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


# -- command line --------------------------------------------------------------------------------


def test_unknown_option_is_a_usage_error(served: Project) -> None:
    result = served.run("litestream", "serve", "--gracefull-timeout", "3")
    assert result.returncode == 2
    assert (
        "serve: unrecognized arguments: --gracefull-timeout 3" in result.stderr
        or "serve:" in result.stderr
    )


def test_help_lists_every_option(served: Project) -> None:
    from django_litestream.serve.options import OPTIONS

    result = served.run("litestream", "serve", "--help")
    assert result.returncode == 0
    for option in OPTIONS:
        assert option.name in result.stdout


def test_no_server_command_names_the_fix(served: Project, file_replica) -> None:
    served.configure(
        {"dbs": [{"path": "default", "replica": file_replica}]},
    )
    (served.root / "settings.py").write_text(
        (served.root / "settings.py").read_text().replace("WSGI_APPLICATION", "#")
    )
    result = served.run("litestream", "serve")
    assert result.returncode == exitcodes.CONFIG
    assert "serve has no server command to run (WSGI_APPLICATION is not set)" in result.stderr


def test_empty_dbs_is_a_configuration_error(served: Project) -> None:
    served.configure({"dbs": []})
    result = served.run("litestream", "serve", "--", "true")
    assert result.returncode == exitcodes.CONFIG
    assert "LITESTREAM['dbs'] is empty" in result.stderr


def test_nothing_opens_the_database_before_restore(served: Project) -> None:
    """Django's start-up must not create the database file before the restore decides."""
    result = served.run("litestream", "serve", "--require-replica", "--", "true")
    assert result.returncode == exitcodes.REPLICA_EMPTY
    assert not served.db.exists()


def test_config_and_secrets_stay_private(served: Project, tmp_path: Path) -> None:
    served.configure(
        {
            "dbs": [
                {
                    "path": "default",
                    "replica": {
                        "type": "s3",
                        "bucket": "b",
                        "path": "p",
                        "endpoint": "http://127.0.0.1:9",
                        "secret-access-key": "TOPSECRETVALUE",
                        "access-key-id": "AKIDVALUE",
                    },
                }
            ]
        }
    )
    write_rows(served.db, 1)
    opts = ("--ready-timeout", "30", "--adopt-local", "--restore-timeout", "2")
    run = Served(served, tmp_path, opts=opts)  # the guard cannot reach the replica: adopted
    litestream = wait_for(
        lambda: next(
            (p for p in run.tree() if p.name == "litestream" and p.argv[1:2] == ("replicate",)),
            None,
        ),
        40,
        "litestream to start",
    )
    assert "TOPSECRETVALUE" not in litestream.cmdline
    config = Path(litestream.argv[litestream.argv.index("-config") + 1])
    assert "TOPSECRETVALUE" not in config.read_text()
    assert oct(config.stat().st_mode & 0o777) == "0o600"
    assert oct(config.parent.stat().st_mode & 0o777) == "0o700"
    run.stop()
    assert not config.parent.exists()
    assert "TOPSECRETVALUE" not in run.stderr()


def test_litestream_sync_command_finds_the_running_serve(served: Project, tmp_path) -> None:
    run = Served(served, tmp_path).wait_ready()
    result = served.run("litestream", "sync", "-wait", "default")
    assert result.returncode == 0, result.stderr
    assert run.stop() == 0


def test_wal_mode_and_no_sqlite_lock_errors(served: Project) -> None:
    result = served.run("litestream", "serve", "--", sys.executable, "manage.py", "write_rows", "1")
    assert result.returncode == 0
    with sqlite3.connect(served.db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_stdout_is_the_servers_alone(served: Project) -> None:
    result = served.run("litestream", "serve", "--", sys.executable, "-c", "print('hello')")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello\n"
    verbose = served.run(
        "litestream", "serve", "--verbose", "--", sys.executable, "-c", "print('hello')"
    )
    assert verbose.stdout == "hello\n"
    assert "level=INFO msg=litestream version=" in verbose.stderr  # Litestream's, on stderr


def test_cold_start_from_s3_restores_several_databases(project: Project, s3_replica) -> None:
    server = s3_replica.server
    cache = project.root / "cache.sqlite3"
    databases = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(project.db)},
        "cache": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(cache)},
    }
    project.configure(
        {
            "dbs": [
                {"path": "default", "replica": s3_replica.replica},
                {"path": "cache", "replica": server.replica("cache", s3_replica.bucket)},
            ]
        },
        databases,
    )
    write_rows(project.db, 30)
    write_rows(cache, 12)
    assert project.run("litestream", "replicate", "-once").returncode == 0
    for path in (project.db, cache):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    result = project.run(
        "litestream", "serve", "--require-replica", "--", sys.executable, "-c", "pass"
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("is missing; restoring it") == 2
    assert count_rows(project.db) == 30
    assert count_rows(cache) == 12


def test_litestream_failing_at_start_never_starts_the_server(project: Project) -> None:
    """An unreachable SFTP replica makes Litestream exit before its -exec child starts."""
    replica = {"type": "sftp", "host": "127.0.0.1:9", "user": "u", "password": "p", "path": "/db"}
    project.configure({"dbs": [{"path": "default", "replica": replica}]})
    write_rows(project.db, 1)
    result = project.run(
        "litestream",
        "serve",
        "--adopt-local",  # past the guard, which cannot reach the replica either
        "--",
        sys.executable,
        "-c",
        "raise SystemExit('must not run')",
    )
    assert result.returncode == exitcodes.LITESTREAM_DIED, result.stderr
    assert "Litestream exited (exit status 1) before the server started" in result.stderr
    assert "must not run" not in result.stderr


def test_unconfirmed_final_sync_is_reported(project: Project, tmp_path: Path) -> None:
    """The replica goes away while serving: the server's clean exit is not reported as 0."""
    from tests.support.storage import MotoS3

    moto = MotoS3().start()
    try:
        project.configure(
            {
                "shutdown-sync-timeout": "2s",
                "dbs": [{"path": "default", "replica": moto.replica("db")}],
            }
        )
        run = Served(project, tmp_path, "--db", str(project.db)).wait_ready()
        wait_for(lambda: local_rows(project) > 20, 30, "rows to be written")
    finally:
        moto.stop()
    assert run.stop(signal.SIGTERM) == exitcodes.SYNC_UNCONFIRMED, run.stderr()
    assert "but the final sync was not confirmed" in run.stderr()


def test_replica_outage_while_serving_is_a_warning_and_so_is_its_end(
    project: Project, tmp_path: Path
) -> None:
    """The storage hangs (moto stopped with SIGSTOP) while rows are written, then resumes."""
    from tests.support.storage import MotoS3

    moto = MotoS3().start()
    try:
        replica = moto.replica("db")
        project.configure({"dbs": [{"path": "default", "replica": replica}]})
        opts = ("--replica-check-interval", "1")
        run = Served(project, tmp_path, "--db", str(project.db), opts=opts).wait_ready()
        wait_for(lambda: local_rows(project) > 5, 30, "rows to be written")
        assert "did not confirm a sync" not in run.stderr()
        os.kill(moto.proc.pid, signal.SIGSTOP)
        try:
            wait_for(lambda: "did not confirm a sync" in run.stderr(), 60, "the outage warning")
        finally:
            os.kill(moto.proc.pid, signal.SIGCONT)
        wait_for(lambda: "confirms syncs again" in run.stderr(), 60, "the recovery message")
        assert run.proc.poll() is None  # the server kept running throughout
        assert run.stop() == 0, run.stderr()
        acknowledged = int(Path(f"{run.log}.count").read_text())
        assert restored_rows(project, tmp_path) >= acknowledged
    finally:
        moto.stop()
    err = run.stderr()
    assert err.count("did not confirm a sync") == 1  # one warning per outage, not per check
    assert f"WARNING The replica s3://{replica['bucket']}/db of 'default' (" in err


def test_vfs_logs_kept_off_the_servers_stdout(served: Project, file_replica) -> None:
    """With read replicas configured, the VFS extension's logs go to stderr."""
    served.configure(
        {
            "dbs": [{"path": "default", "replica": file_replica}],
            "vfs": {"replica": f"file://{file_replica['path']}"},
        }
    )
    show = "import os; print(os.environ.get('LITESTREAM_LOG_FILE'))"
    result = served.run("litestream", "serve", "--", sys.executable, "-c", show)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "/dev/stderr\n"
    chosen = served.run(
        "litestream",
        "serve",
        "--",
        sys.executable,
        "-c",
        show,
        env={"LITESTREAM_LOG_FILE": "/var/log/vfs.log"},
    )
    assert chosen.stdout == "/var/log/vfs.log\n"


def test_help_lists_every_exit_code(served: Project) -> None:
    result = served.run("litestream", "serve", "--help")
    for code, text in exitcodes.EXIT_CODES.items():
        assert f"  {code:<4}{text.split()[0]}" in result.stdout
