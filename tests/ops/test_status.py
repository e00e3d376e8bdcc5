"""``manage.py litestream status``: Litestream's columns plus the replica's position.

Three states against a real file replica: in sync, writes Litestream has not replicated
(it is not running while the application writes), and a replica that cannot be reached;
plus what a running serve's replica checks report.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from datetime import datetime
from pathlib import Path

import pytest

from django_litestream.ops import status
from tests.support.operations import SIGSERVER, replica_listing, served_rows
from tests.support.project import Project, wait_for

KEYS = {
    "alias",
    "path",
    "status",
    "local_txid",
    "replica_txid",
    "lag_txids",
    "lag_seconds",
    "last_replicated_at",
    "replica_reachable",
    "db_bytes",
    "wal_bytes",
}


@pytest.fixture
def replicated(project: Project, file_replica: dict[str, str]) -> Project:
    project.configure({"dbs": [{"path": "default", "replica": file_replica}]})
    served_rows(project, 10)
    return project


def status_json(project: Project, *args: str) -> tuple[int, dict]:
    result = project.run("litestream", "status", "-json", *args)
    assert "Traceback" not in result.stderr, result.stderr
    (row,) = json.loads(result.stdout)
    assert set(row) >= KEYS
    assert tuple(row) == status.JSON_KEYS
    return result.returncode, row


def test_in_sync(replicated: Project) -> None:
    code, row = status_json(replicated)
    assert code == 0
    files = replica_listing(replicated)
    newest = max(files, key=lambda f: f["max_txid"])
    assert row["alias"] == "default"
    assert row["path"] == row["database"] == str(replicated.db)  # Litestream's key, kept
    assert row["status"] == "ok"
    assert row["local_txid"] == row["replica_txid"] == newest["max_txid"]
    assert (row["lag_txids"], row["lag_seconds"], row["pending_commits"]) == (0, 0.0, 0)
    assert row["replica_reachable"] is True and row["error"] is None
    last = datetime.fromisoformat(row["last_replicated_at"])
    assert last == datetime.fromisoformat(max(f["timestamp"] for f in files).replace("Z", "+00:00"))
    assert row["db_bytes"] == os.path.getsize(replicated.db)
    assert row["wal_bytes"] == os.path.getsize(f"{replicated.db}-wal")
    assert row["serve"] is None
    text = replicated.run("litestream", "status").stdout.splitlines()
    assert text[0].split() == [
        *("database", "status", "local", "txid", "wal", "size"),  # Litestream's columns
        *("replica", "txid", "lag", "lag", "(s)", "last", "file", "(UTC)", "db", "size"),
    ]
    assert text[1].split()[:3] == [str(replicated.db), "ok", row["local_txid"]]


def test_writes_while_replication_is_stopped(replicated: Project) -> None:
    conn = sqlite3.connect(replicated.db, isolation_level=None)  # the application, still open
    try:
        for _ in range(5):
            conn.execute("INSERT INTO rows (v) VALUES ('late')")
        code, row = status_json(replicated)
    finally:
        conn.close()
    assert code == 0
    assert row["local_txid"] == row["replica_txid"]  # Litestream never saw the writes
    assert row["pending_commits"] == 5
    assert row["lag_txids"] == 1  # they become one transaction at Litestream's next sync
    assert row["lag_seconds"] > 0
    assert row["replica_reachable"] is True


def test_unreachable_replica_is_a_value_and_exit_69(
    replicated: Project, file_replica: dict[str, str]
) -> None:
    where = Path(file_replica["path"])
    where.rename(f"{where}.moved")
    where.write_text("not a directory")
    code, row = status_json(replicated)
    assert code == 69
    assert row["replica_reachable"] is False
    assert (row["replica_txid"], row["lag_txids"], row["lag_seconds"]) == (None, None, None)
    assert row["local_txid"] is not None
    assert "not a directory" in row["error"]
    result = replicated.run("litestream", "status")
    assert result.returncode == 69
    assert f"default: the replica file://{where} could not be reached: " in result.stdout


def test_a_running_serves_findings(replicated: Project, serving) -> None:
    log = replicated.root / "sig.log"
    run = serving(
        sys.executable, SIGSERVER, str(log), "--db", str(replicated.db), "--write-every", "0.1"
    )
    wait_for(lambda: log.exists() and "ready" in log.read_text(), 60, "the server")

    def checked() -> dict | None:
        row = status_json(replicated)[1]
        return row if row["serve"] and row["serve"]["checked_at"] else None

    row = wait_for(checked, 30, "serve's first replica check")
    assert row["serve"]["pid"] == run.proc.pid
    assert row["serve"]["checks"] is True and row["serve"]["in_sync"] is True
    # A write every tenth of a second, each its own txid under serve's 100 ms monitor, and
    # uploaded every sync-interval (1 s): the replica is a few txids and at most about two
    # sync-intervals behind.
    assert row["lag_txids"] is not None and row["lag_txids"] <= 30
    assert row["lag_seconds"] is not None and row["lag_seconds"] <= 3
    assert run.stop() == 0
