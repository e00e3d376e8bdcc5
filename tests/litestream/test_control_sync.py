"""What Litestream 0.5.17 itself does: a control-socket sync can lose its read lock.

This documents the binary, not django-litestream (which therefore never calls it; see
``serve/probe.py`` and docs/serve.rst, "Why serve never calls litestream sync").

Litestream keeps a long read transaction open on the database so that SQLite cannot
checkpoint the WAL past what Litestream has read. When the first sync of a database (or a
checkpoint) runs inside a ``POST /sync`` on the control socket (``litestream sync
[-wait]``), that read transaction is begun on the HTTP request's context, and Go's
``database/sql`` rolls it back as soon as the request ends. Then any other connection can
checkpoint every frame into the database and restart the WAL before Litestream has read
the last ones, and those transactions are in no LTX file: the replica lacks them while
``integrity_check`` says ``ok``.

The writes here are made by hand at the exact moments that matter, so the outcome is
certain, not a race: rows ``a`` and ``b`` go to different tables (different pages), ``a``
is committed after Litestream's last sync, an outside ``PRAGMA wal_checkpoint(PASSIVE)``
(what SQLite's automatic checkpoint does every ~1000 pages) runs, then ``b`` is committed,
which restarts the WAL.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.durability import LITESTREAM
from tests.support.project import wait_for
from tests.support.storage import free_port


class Litestream:
    def __init__(self, tmp: Path, **db_options: Any) -> None:
        self.db = tmp / "db.sqlite3"
        self.socket = tmp / "ls.sock"
        self.addr = f"127.0.0.1:{free_port()}"
        self.replica = tmp / "replica"
        config = {
            "addr": self.addr,
            "socket": {"enabled": True, "path": str(self.socket)},
            "logging": {"stderr": True},
            "dbs": [
                {
                    "path": str(self.db),
                    "replica": {"type": "file", "path": str(self.replica)},
                    **db_options,
                }
            ],
        }
        self.config = tmp / "litestream.yml"
        self.config.write_text(json.dumps(config))
        with sqlite3.connect(self.db) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE t1 (id INTEGER PRIMARY KEY, v TEXT)")
            conn.execute("CREATE TABLE t2 (id INTEGER PRIMARY KEY, v TEXT)")
            conn.execute("INSERT INTO t1 (v) VALUES ('first')")
            conn.execute("INSERT INTO t2 (v) VALUES ('first')")
        self.log = (tmp / "litestream.log").open("w")
        self.proc = subprocess.Popen(
            [LITESTREAM, "replicate", "-config", str(self.config)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        wait_for(self.socket.exists, 30, "the control socket")

    def sync(self) -> dict[str, Any]:
        """``litestream sync -wait`` over HTTP: POST /sync on the control socket."""
        transport = httpx.HTTPTransport(uds=str(self.socket))
        with httpx.Client(transport=transport, timeout=30) as client:
            response = client.post(
                "http://litestream/sync", json={"path": str(self.db), "wait": True}
            )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def txid(self) -> float:
        text = httpx.get(f"http://{self.addr}/metrics", timeout=5).text
        line = next(x for x in text.splitlines() if x.startswith("litestream_txid{"))
        return float(line.rsplit(" ", 1)[1])

    def write(self, table: str, value: str) -> None:
        with sqlite3.connect(self.db, isolation_level=None) as conn:
            conn.execute(f"INSERT INTO {table} (v) VALUES (?)", (value,))
        conn.close()

    def outside_checkpoint(self) -> tuple[int, int, int]:
        conn = sqlite3.connect(self.db)
        try:
            busy, frames, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            conn.close()
        return busy, frames, done

    def restored(self, tmp: Path) -> tuple[set[str], set[str], str]:
        out = tmp / "restored.db"
        argv = [LITESTREAM, "restore", "-o", str(out), f"file://{self.replica}"]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        with sqlite3.connect(out) as conn:
            t1 = {v for (v,) in conn.execute("SELECT v FROM t1")}
            t2 = {v for (v,) in conn.execute("SELECT v FROM t2")}
            check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        return t1, t2, check

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)
        self.log.close()


@pytest.fixture
def litestream(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Litestream]:
    running = Litestream(tmp_path, **request.param)
    try:
        yield running
    finally:
        running.stop()


def write_between_syncs(ls: Litestream) -> tuple[int, int, int]:
    """The sequence that loses row ``a`` when nothing holds the WAL back."""
    for i in range(20):
        ls.write("t2", f"filler {i}")
    ls.sync()  # Litestream has read everything so far
    ls.write("t1", "a")  # committed after that sync
    checkpoint = ls.outside_checkpoint()
    ls.write("t2", "b")  # the WAL restarts here if the checkpoint copied every frame
    ls.sync()
    return checkpoint


# monitor-interval 1h: Litestream's own monitor never runs in this test, so the control
# socket's sync is certainly the first to open the database.
@pytest.mark.parametrize("litestream", [{"monitor-interval": "1h"}], indirect=True)
def test_first_sync_over_the_control_socket_drops_the_read_lock_and_loses_writes(
    litestream: Litestream, tmp_path: Path
) -> None:
    first = litestream.sync()
    assert first["txid"] == first["replicated_txid"] == 1
    busy, frames, done = write_between_syncs(litestream)
    # Nothing held SQLite back: every frame was copied into the database ...
    assert (busy, done) == (0, frames), (busy, frames, done)
    t1, t2, check = litestream.restored(tmp_path)
    # ... so row a, committed between two syncs, is in no LTX file, while b (later) is.
    assert "a" not in t1
    assert t1 == {"first"}
    assert {"first", "b"} <= t2
    assert check == "ok"


@pytest.mark.parametrize("litestream", [{}], indirect=True)
def test_control_the_monitor_opens_the_database_first_and_nothing_is_lost(
    litestream: Litestream, tmp_path: Path
) -> None:
    """The same writes once Litestream's own monitor (1s) has opened the database."""
    wait_for(lambda: litestream.txid() > 0, 30, "Litestream's first sync of its own")
    busy, frames, done = write_between_syncs(litestream)
    # Litestream's read transaction stops the checkpoint short of the newest frames ...
    assert done < frames, (busy, frames, done)
    t1, t2, check = litestream.restored(tmp_path)
    # ... so nothing is lost.
    assert t1 == {"first", "a"}
    assert {"first", "b"} <= t2
    assert check == "ok"


def test_litestream_binary_is_the_pinned_one() -> None:
    """These facts were established on 0.5.17; a different binary must re-establish them."""
    version = subprocess.run(
        [LITESTREAM, "version"], capture_output=True, text=True, timeout=30, env=dict(os.environ)
    ).stdout.strip()
    assert version == "0.5.17", version
