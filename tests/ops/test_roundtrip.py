"""Replicate, lose the database, restore it: all through ``manage.py litestream``.

Real binary, real storage servers (see ``tests/storage.py``); the database path is always
given as the Django alias, and ``restore default`` writes back to the configured path.
"""

from __future__ import annotations

import re
import sqlite3
import urllib.request
from pathlib import Path

import pytest
import yaml

from django_litestream.errors import RestoreRefusedError
from tests.support.project import Project, count_rows, write_rows

BACKENDS = ["file_replica", "s3_replica", "gcs_replica", "sftp_replica", "abs_replica"]


def run_ok(project: Project, *args: str) -> str:
    result = project.run("litestream", *args, timeout=60)
    assert result.returncode == 0, f"litestream {args} rc={result.returncode}\n" + (
        result.stdout + result.stderr
    )
    return result.stdout + result.stderr


def delete_database(db: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    assert not db.exists()


def integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def round_trip(project: Project) -> None:
    write_rows(project.db, 100)
    run_ok(project, "replicate", "-once")
    write_rows(project.db, 50)  # an incremental sync on top of the first
    # Written while Litestream was stopped and checkpointed out of the WAL: the guard cannot
    # tell them from an older copy (docs/commands.rst), so this machine adopts them.
    run_ok(project, "replicate", "-once", "--adopt-local")
    assert count_rows(project.db) == 150

    delete_database(project.db)
    run_ok(project, "restore", "default")
    assert count_rows(project.db) == 150
    assert integrity(project.db) == "ok"


@pytest.mark.parametrize("backend", BACKENDS)
def test_round_trip(project: Project, request, backend):
    target = request.getfixturevalue(backend)
    replica = target if isinstance(target, dict) else target.replica
    if not isinstance(target, dict):
        project.env.update(target.env)
    project.configure({"dbs": [{"path": "default", "replica": replica}]})
    round_trip(project)

    # Literal credentials in the settings reached Litestream only through its environment.
    config = run_ok(project, "config")
    for key in ("access-key-id", "secret-access-key", "account-key"):
        if key in replica:
            assert replica[key] not in config
            assert yaml.safe_load(config)["dbs"][0]["replica"][key].startswith(
                "$DJANGO_LITESTREAM_SECRET_"
            )


def test_restore_refuses_to_overwrite_then_if_db_not_exists(project: Project, file_replica):
    project.configure({"dbs": [{"path": "default", "replica": file_replica}]})
    write_rows(project.db, 10)
    run_ok(project, "replicate", "-once")
    result = project.run("litestream", "restore", "default")
    # The database is still there: refused in one line, before Litestream runs.
    assert result.returncode == RestoreRefusedError.exit_code, result.stderr
    assert "-force" in result.stderr and "Traceback" not in result.stderr
    assert count_rows(project.db) == 10
    run_ok(project, "restore", "-if-db-not-exists", "default")
    delete_database(project.db)
    run_ok(project, "restore", "-if-db-not-exists", "default")
    assert count_rows(project.db) == 10


def test_auto_generated_replica_round_trip(project: Project, s3_server):
    """The spec's simplest setup: bucket and credentials only from the environment."""
    bucket = s3_server.new_bucket()
    project.env.update(
        {
            "LITESTREAM_REPLICA_BUCKET": bucket,
            "LITESTREAM_ACCESS_KEY_ID": s3_server.access_key_id,
            "LITESTREAM_SECRET_ACCESS_KEY": s3_server.secret_access_key,
        }
    )
    for name in ("AWS_BUCKET", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        project.env.pop(name, None)
    project.configure(
        {
            "path_prefix": "myproject",
            "endpoint": s3_server.base_url,
            "region": s3_server.region,
            "force-path-style": True,
            "dbs": [{"path": "default"}],
        }
    )
    round_trip(project)
    with urllib.request.urlopen(
        f"{s3_server.base_url}/{bucket}?prefix=myproject/db.sqlite3/", timeout=10
    ) as resp:
        listing = resp.read().decode()
    assert re.search(r"<Key>myproject/db\.sqlite3/[^<]+\.ltx</Key>", listing), listing


def test_auto_generated_replica_with_aws_variables_and_no_expand_env(project: Project, s3_server):
    """AWS_* fallbacks; with -no-expand-env the references are filled in by django-litestream."""
    bucket = s3_server.new_bucket()
    for name in (
        "LITESTREAM_REPLICA_BUCKET",
        "LITESTREAM_ACCESS_KEY_ID",
        "LITESTREAM_SECRET_ACCESS_KEY",
    ):
        project.env.pop(name, None)
    project.env.update(
        {
            "AWS_BUCKET": bucket,
            "AWS_ACCESS_KEY_ID": s3_server.access_key_id,
            "AWS_SECRET_ACCESS_KEY": s3_server.secret_access_key,
        }
    )
    project.configure(
        {
            "endpoint": s3_server.base_url,
            "region": s3_server.region,
            "dbs": [{"path": "default"}],
        }
    )
    config = yaml.safe_load(run_ok(project, "config"))
    assert config["dbs"][0]["replica"]["bucket"] == "$AWS_BUCKET"
    assert config["access-key-id"] == "$AWS_ACCESS_KEY_ID"

    write_rows(project.db, 40)
    run_ok(project, "replicate", "-once", "-no-expand-env")
    delete_database(project.db)
    run_ok(project, "restore", "-no-expand-env", "default")
    assert count_rows(project.db) == 40
