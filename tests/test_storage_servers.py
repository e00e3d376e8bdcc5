"""Prove each storage fixture is real: round-trip a WAL-mode SQLite database
through the real litestream binary (``replicate -once`` twice, then ``restore``)
and compare row counts and ``PRAGMA integrity_check``.

Run alone with:
    python -m pytest -p tests.support.fixtures_storage tests/test_storage_servers.py -p no:django
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

LITESTREAM = str(Path(sys.executable).parent / "litestream")


def litestream(*args: str, env: dict[str, str], timeout: float = 60) -> str:
    proc = subprocess.run(
        [LITESTREAM, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"litestream {args} rc={proc.returncode}\n{output}"
    return output


def insert_rows(db: Path, n: int) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, data BLOB)")
        conn.executemany("INSERT INTO t (data) VALUES (randomblob(1000))", [()] * n)
    conn.close()


def check(db: Path) -> tuple[int, str]:
    conn = sqlite3.connect(db)
    try:
        count = conn.execute("SELECT count(*) FROM t").fetchone()[0]
        return count, conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def write_config(tmp_path: Path, db: Path, replica: dict) -> Path:
    config = tmp_path / "litestream.yml"
    config.write_text(yaml.safe_dump({"dbs": [{"path": str(db), "replica": replica}]}))
    return config


@pytest.mark.parametrize("fixture", ["s3_replica", "gcs_replica", "sftp_replica", "abs_replica"])
def test_round_trip(fixture, request, tmp_path):
    target = request.getfixturevalue(fixture)
    db, out = tmp_path / "app.db", tmp_path / "restored.db"
    config = write_config(tmp_path, db, target.replica)

    insert_rows(db, 100)
    litestream("replicate", "-config", str(config), "-once", env=target.env)
    insert_rows(db, 50)  # a second, incremental sync
    litestream("replicate", "-config", str(config), "-once", env=target.env)
    litestream("restore", "-config", str(config), "-o", str(out), str(db), env=target.env)

    assert check(out) == check(db) == (150, "ok")


def test_sftp_host_key_is_pinned(sftp_server, tmp_path):
    """A wrong pinned host key must make litestream refuse the server."""
    replica = sftp_server.replica("db")
    replica["host-key"] = Path(f"{sftp_server.user_key}.pub").read_text().strip()  # not the host's
    db = tmp_path / "app.db"
    insert_rows(db, 1)
    config = write_config(tmp_path, db, replica)
    proc = subprocess.run(
        [LITESTREAM, "replicate", "-config", str(config), "-once"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode != 0
    assert "host key" in (proc.stdout + proc.stderr)
