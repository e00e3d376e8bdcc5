"""What ``serve`` tells its user: a short log on a normal start, and messages that point
the right way (the replica's real name, who killed the server, a full disk, QUIT).

Real ``serve`` processes, the real binary, a file replica or moto for S3; a full disk is a
real tmpfs mounted in a private mount namespace (root only).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from django_litestream.config.locations import describe as describe_replica
from django_litestream.config.types import EnvRef
from django_litestream.serve import exitcodes
from django_litestream.serve.launch import litestream_logging
from tests.support import SIGSERVER
from tests.support.project import Project, wait_for, write_rows
from tests.support.serving import Served, restored_rows

# "2026-11-29 02:58:13,164 [django-litestream] INFO message" -> ("INFO", "message")
SERVE_LINE = re.compile(r"^\S+ \S+ \[django-litestream\] (\w+) (.*)$")


@pytest.fixture
def served(project: Project, file_replica: dict[str, str]) -> Project:
    project.configure({"dbs": [{"path": "default", "replica": file_replica}]})
    return project


def serve_lines(stderr: str) -> list[tuple[str, str]]:
    return [m.groups() for m in map(SERVE_LINE.match, stderr.splitlines()) if m]


# -- a normal start ----------------------------------------------------------------------------


def test_normal_start_is_a_few_lines_of_serves_own(served: Project, file_replica) -> None:
    """First start of a new project: what happens, in serve's words; no Litestream INFO."""
    result = served.run("litestream", "serve", "--", sys.executable, "-c", "pass")
    assert result.returncode == 0, result.stderr
    replica = f"file://{file_replica['path']}"
    label = f"'default' ({served.db})"
    assert serve_lines(result.stderr) == [
        ("INFO", f"{label} is missing; restoring it from {replica}"),
        (
            "INFO",
            f"No backup in {replica} yet: {label} starts as a new, empty database. (If this "
            "machine should have restored data, check the replica's bucket and path; "
            "--require-replica makes this an error.)",
        ),
        ("INFO", f"Replicating {label} to {replica}"),
        ("INFO", f"Replica in sync; starting the server: {sys.executable} -c pass"),
        ("INFO", f"Server exited (exit status 0); replica confirmed in sync ({label} at txid 1)"),
    ]
    # Nothing else: Litestream's routine start-up lines are left out by default.
    assert len(result.stderr.splitlines()) == 5, result.stderr


def test_several_databases_are_summed_up_in_one_line(project: Project, tmp_path: Path) -> None:
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
    write_rows(project.db, 1)
    write_rows(cache, 1)
    result = project.run("litestream", "serve", "--", sys.executable, "-c", "pass")
    assert result.returncode == 0, result.stderr
    first = "holds nothing yet; the database becomes its first backup"
    assert serve_lines(result.stderr)[:4] == [
        ("INFO", f"The replica file://{tmp_path / 'r1'} of 'default' ({project.db}) {first}"),
        ("INFO", f"The replica file://{tmp_path / 'r2'} of 'cache' ({cache}) {first}"),
        (
            "INFO",
            f"Replicating 2 databases: 'default' ({project.db}) to file://{tmp_path / 'r1'}; "
            f"'cache' ({cache}) to file://{tmp_path / 'r2'}",
        ),
        ("INFO", f"All 2 replicas in sync; starting the server: {sys.executable} -c pass"),
    ]


@pytest.mark.parametrize(
    ("opts", "logging", "shown"),
    [
        ((), None, False),
        (("--verbose",), None, True),
        ((), {"level": "info"}, True),  # the user's own level is kept
        ((), {"level": "error"}, False),
    ],
    ids=["default", "--verbose", "logging-info", "logging-error"],
)
def test_litestreams_info_lines_on_request(
    served: Project, file_replica, opts: tuple[str, ...], logging, shown: bool
) -> None:
    litestream: dict = {"dbs": [{"path": "default", "replica": file_replica}]}
    if logging:
        litestream["logging"] = logging
    served.configure(litestream)
    write_rows(served.db, 1)
    result = served.run("litestream", "serve", *opts, "--", sys.executable, "-c", "pass")
    assert result.returncode == 0, result.stderr
    assert ("level=INFO msg=litestream version=0.5.17" in result.stderr) == shown, result.stderr
    assert ("Replicating 'default'" in result.stderr) is True  # serve's own lines always


def test_verbose_setting(served: Project, file_replica) -> None:
    served.configure(
        {"dbs": [{"path": "default", "replica": file_replica}], "serve": {"verbose": True}}
    )
    result = served.run("litestream", "serve", "--", sys.executable, "-c", "pass")
    assert result.returncode == 0, result.stderr
    assert "level=INFO msg=litestream version=0.5.17" in result.stderr


def test_litestream_logging_section() -> None:
    assert litestream_logging(None, verbose=False) == {"stderr": True, "level": "warn"}
    assert litestream_logging({"type": "json"}, verbose=True) == {
        "type": "json",
        "stderr": True,
        "level": "info",
    }
    assert litestream_logging({"level": "debug"}, verbose=True)["level"] == "debug"
    assert litestream_logging({"level": "error"}, verbose=False)["level"] == "error"
    assert litestream_logging({"stderr": False}, verbose=False)["stderr"] is False


# -- the replica by its real name ---------------------------------------------------------------


def test_replica_description_resolves_references_never_secrets() -> None:
    env = {"BUCKET": "prod-bucket", "LITESTREAM_REPLICA_BUCKET": "auto-bucket"}
    auto = {"type": "s3", "bucket": EnvRef("LITESTREAM_REPLICA_BUCKET"), "path": "p/db.sqlite3"}
    assert describe_replica(auto, env) == "s3://auto-bucket/p/db.sqlite3"
    written = {"type": "gs", "bucket": "${BUCKET}", "path": "/db", "secret-access-key": "s"}
    assert describe_replica(written, env) == "gs://prod-bucket/db"
    assert describe_replica({"type": "s3", "bucket": "$UNSET", "path": "x"}, env) == "s3://$UNSET/x"
    assert describe_replica({"type": "file", "path": "/r/$BUCKET"}, env) == "file:///r/prod-bucket"
    url = {"url": "sftp://me:hunter2@host:22/backups"}
    assert describe_replica(url, env) == "sftp://me:***@host:22/backups"


def test_a_short_secret_does_not_mangle_words_in_the_log(
    project: Project, file_replica, tmp_path: Path
) -> None:
    """A secret is blanked where it stands as a value, never inside a word: with the secret
    'list', the outage line still says 'listing' (and so does not show where it occurs)."""
    project.env["AWS_SECRET_ACCESS_KEY"] = "list"
    project.configure(
        {
            "serve": {"replica_check_interval": 1},
            "dbs": [{"path": "default", "replica": file_replica}],
        }
    )
    run = Served(project, tmp_path).wait_ready()
    level0 = Path(file_replica["path"]) / "ltx" / "0"
    wait_for(level0.is_dir, 30, "the replica's level 0")
    shutil.rmtree(level0)
    level0.write_text("not a directory")  # the listing of level 0 now fails
    write_rows(project.db, 5)
    wait_for(lambda: "did not confirm a sync" in run.stderr(), 60, "the outage warning")
    line = next(ln for ln in run.stderr().splitlines() if "did not confirm a sync" in ln)
    assert "listing the storage failed" in line and "***ing" not in line, line
    run.kill_all()  # (a stop would retry the final sync for shutdown-sync-timeout)


def test_scrub_blanks_values_not_parts_of_words() -> None:
    from django_litestream.config.secrets import scrub, secret_values

    secrets = secret_values({"AWS_SECRET_ACCESS_KEY": "test", "TOKEN": "wJalrXUtnFEMI/K7MDENG"})
    text = (
        "Litestream tested latest; key=test u:test@h 'test' test s3://b/p?t=wJalrXUtnFEMI/K7MDENG"
    )
    assert scrub(text, secrets) == (
        "Litestream tested latest; key=*** u:***@h '***' *** s3://b/p?t=***"
    )


def test_log_names_the_bucket_from_the_environment(project: Project, s3_server) -> None:
    """The auto-generated replica ($LITESTREAM_REPLICA_BUCKET) is shown by its real name."""
    bucket = s3_server.new_bucket()
    project.configure(
        {
            "dbs": [{"path": "default"}],
            "endpoint": s3_server.base_url,
            "region": s3_server.region,
            "force_path_style": True,
        }
    )
    env = {
        "LITESTREAM_REPLICA_BUCKET": bucket,
        "LITESTREAM_ACCESS_KEY_ID": s3_server.access_key_id,
        "LITESTREAM_SECRET_ACCESS_KEY": s3_server.secret_access_key,
    }
    result = project.run("litestream", "serve", "--", sys.executable, "-c", "pass", env=env)
    assert result.returncode == 0, result.stderr
    assert f"Replicating 'default' ({project.db}) to s3://{bucket}/db.sqlite3\n" in result.stderr
    assert f"No backup in s3://{bucket}/db.sqlite3 yet" in result.stderr
    assert "EnvRef" not in result.stderr
    assert s3_server.secret_access_key not in result.stderr


# -- the first message on a new project ---------------------------------------------------------


def test_missing_bucket_is_named_before_a_missing_server(project: Project) -> None:
    """A new project with neither a bucket nor a server: the bucket comes first."""
    for name in ("LITESTREAM_REPLICA_BUCKET", "AWS_BUCKET"):
        project.env.pop(name, None)
    project.configure({"dbs": [{"path": "default"}]})
    settings = project.root / "settings.py"
    settings.write_text(settings.read_text().replace("WSGI_APPLICATION", "#"))
    result = project.run("litestream", "serve")
    assert result.returncode == exitcodes.CONFIG, result.stderr
    assert "(django_litestream.E006)" in result.stderr
    assert "no server command" not in result.stderr
    assert "Traceback" not in result.stderr


# -- who stopped the server ---------------------------------------------------------------------


def test_kill_after_graceful_timeout_is_not_called_out_of_memory(
    served: Project, tmp_path: Path
) -> None:
    run = Served(served, tmp_path, "--on-term", "ignore", opts=("--graceful-timeout", "1"))
    run.wait_ready()
    assert run.stop(signal.SIGTERM) == 128 + signal.SIGKILL
    err = run.stderr()
    assert "Server exited (killed by SIGKILL from serve); replica confirmed in sync" in err, err
    assert "out of memory" not in err


def test_quit_is_logged_as_quit(served: Project, tmp_path: Path) -> None:
    run = Served(served, tmp_path, "--on-term", "ignore").wait_ready()
    assert run.stop(signal.SIGQUIT, timeout=30) == 128 + signal.SIGKILL
    lines = serve_lines(run.stderr())
    assert ("WARNING", "SIGQUIT received: stopping the server now, then a final sync") in lines
    assert not any("SIGTERM" in text for _, text in lines), lines
    assert "out of memory" not in run.stderr()


# -- a full local disk --------------------------------------------------------------------------


def can_mount_tmpfs() -> bool:
    """Root with unshare, and allowed to mount (a container may deny CAP_SYS_ADMIN)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    with tempfile.TemporaryDirectory() as where:
        probe = ["unshare", "--mount", "--propagation", "private", "mount", "-t", "tmpfs"]
        result = subprocess.run([*probe, "tmpfs", where], capture_output=True, timeout=30)
    return result.returncode == 0


needs_mounts = pytest.mark.skipif(
    not can_mount_tmpfs(), reason="mounting a small tmpfs needs root, unshare and CAP_SYS_ADMIN"
)


def in_small_disk(project: Project, size: str, *args: str) -> list[str]:
    """``manage.py ARGS`` in a private mount namespace where ``data/`` is a ``size`` tmpfs.

    The mount exists only for that process tree and vanishes with it; the test reaches its
    files through ``/proc/PID/root``.
    """
    data = project.root / "data"
    data.mkdir(exist_ok=True)
    script = 'mount -t tmpfs -o size="$1" tmpfs "$2" && shift 2 && exec "$@"'
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        "sh",
        size,
        str(data),
        *project.command(*args),
    ]


# Writes 3 KB rows until SQLite finds the disk full; prints the error and the rows committed.
FILL_WRITER = """\
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=10, isolation_level=None)
conn.execute("CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY, v TEXT)")
committed = 0
try:
    for _ in range(5000):
        conn.execute("INSERT INTO rows (v) VALUES (?)", ("x" * 3000,))
        committed += 1
except sqlite3.OperationalError as exc:
    print(exc)
print(committed)
"""


def on_data_disk(project: Project, file_replica, size: str) -> Path:
    db = project.root / "data" / "db.sqlite3"
    project.configure(
        {"dbs": [{"path": "default", "replica": file_replica}]},
        {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(db)}},
    )
    return db


@needs_mounts
def test_restore_onto_a_full_disk_says_so_at_once(project: Project, file_replica) -> None:
    """A 1 MiB database cannot be restored onto a 256 KiB disk: no retries, no credentials."""
    db = on_data_disk(project, file_replica, "256k")
    (project.root / "data").mkdir()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (b BLOB)")
    with conn:
        conn.executemany("INSERT INTO t VALUES (randomblob(1000))", [()] * 1000)
    conn.close()
    assert project.run("litestream", "replicate", "-once").returncode == 0
    argv = in_small_disk(project, "256k", "litestream", "serve", "--restore-timeout", "60")
    result = subprocess.run(
        [*argv, "--", sys.executable, "-c", "raise SystemExit('must not run')"],
        cwd=project.root,
        env=project.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == exitcodes.RESTORE_FAILED, result.stderr
    (line,) = [t for level, t in serve_lines(result.stderr) if level == "ERROR"]
    assert line.startswith(f"Cannot restore 'default' ({db}): "), line
    assert "no space left on device" in line
    assert line.endswith(
        f"A disk of this machine is full ({db.parent}): free space on it (Litestream resumes "
        "by itself once there is room)."
    ), line
    assert "retrying" not in result.stderr  # a full disk is not retried for --restore-timeout
    assert "credentials" not in result.stderr


@needs_mounts
def test_full_disk_while_serving_names_the_disk_not_the_credentials(
    project: Project, file_replica, tmp_path: Path
) -> None:
    db = on_data_disk(project, file_replica, "4m")
    argv = in_small_disk(
        project,
        "4m",
        "litestream",
        "serve",
        "--replica-check-interval",
        "1",
        "--",
        sys.executable,
        SIGSERVER,
        str(tmp_path / "signals.log"),
    )
    (tmp_path / "signals.log").touch()
    err_path = tmp_path / "serve.err"
    with err_path.open("w") as err:
        proc = subprocess.Popen(
            argv,
            cwd=project.root,
            env=project.env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        wait_for(
            lambda: "ready" in (tmp_path / "signals.log").read_text() or proc.poll() is not None,
            60,
            "the server to start",
        )
        assert proc.poll() is None, err_path.read_text()
        # serve's namespace, where data/ is the tmpfs: files through /proc/PID/root, and
        # SQLite through nsenter (it resolves the /proc/PID/root link back to this namespace).
        data = Path(f"/proc/{proc.pid}/root{db.parent}")
        filler = data / "filler"
        with filler.open("wb") as handle:
            handle.write(b"\0" * max(0, shutil.disk_usage(data).free - 192 * 1024))
        writer = subprocess.run(
            ["nsenter", "--target", str(proc.pid), "--mount", "--"]
            + [sys.executable, "-c", FILL_WRITER, str(db)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "database or disk is full" in writer.stdout, writer
        committed = int(writer.stdout.split()[-1])
        wait_for(lambda: "did not confirm a sync" in err_path.read_text(), 60, "the warning")
        # The disk stays full for a while: Litestream retries a failing sync with a doubling
        # pause, so after a few seconds a check sees no attempt at all, which is no recovery
        # (a false "confirms syncs again", then a second warning, flapped before).
        full_until = time.monotonic() + 8
        while time.monotonic() < full_until:
            assert "confirms syncs again" not in err_path.read_text()
            time.sleep(0.2)
        filler.unlink()
        wait_for(lambda: "confirms syncs again" in err_path.read_text(), 60, "the recovery")
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        code = proc.wait(timeout=60)
    err = err_path.read_text()
    assert code == 0, err
    (warning,) = [t for level, t in serve_lines(err) if "did not confirm a sync" in t]
    assert "no space left on device" in warning
    ltx_dir = db.parent / ".db.sqlite3-litestream" / "ltx" / "0"
    assert warning.endswith(
        f"checks again every 1s; a disk of this machine is full ({ltx_dir}): free space on it "
        "(Litestream resumes by itself once there is room)."
    ), warning
    assert "credentials" not in warning
    # Litestream's own error is shown at the default (quiet) level.
    assert "level=ERROR" in err and "disk full" in err
    assert restored_rows(project, tmp_path) == committed


# -- serve --help ------------------------------------------------------------------------------


def test_help_names_each_setting_and_no_file_path(served: Project) -> None:
    """A wheel's user has no docs/ directory: the help is complete on its own."""
    from django_litestream.serve.options import OPTIONS

    result = served.run("litestream", "serve", "--help")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    for option in OPTIONS:
        assert f"[{option.setting}]" in text, option.setting
    assert ".rst" not in text and "docs/" not in text
    assert '--pre "python manage.py migrate --noinput"' in text
