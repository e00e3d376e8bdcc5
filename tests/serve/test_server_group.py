"""A server's master gone, its workers still serving: serve stops them before the final sync.

The stand-in ``orphanworkers.py`` (tests/support/bin) is a master whose workers never
notice its death, so that what happens after it is certain rather than a race with a real
server's own check (gunicorn's workers notice within about a second).
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import psutil

from tests.support import BIN, procs
from tests.support.project import Project, wait_for
from tests.support.storage import free_port

ORPHANWORKERS = str(BIN / "orphanworkers.py")


class Client(threading.Thread):
    """POSTs /insert back to back and records every acknowledged id."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.acked: list[int] = []
        self.done = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=2) as http:
            while not self.done.is_set():
                try:
                    answer = http.post(f"http://127.0.0.1:{self.port}/insert")
                except httpx.HTTPError:
                    continue
                if answer.status_code == 200:
                    self.acked.append(int(answer.text))


def test_workers_left_by_a_killed_master_stop_before_the_final_sync(
    project: Project, file_replica, tmp_path: Path
) -> None:
    project.configure({"dbs": [{"path": "default", "replica": file_replica}]})
    port = free_port()
    err = tmp_path / "serve.err"
    serve = project.spawn(
        "litestream",
        "serve",
        "--",
        sys.executable,
        ORPHANWORKERS,
        str(port),
        str(project.db),
        stdout=subprocess.DEVNULL,
        stderr=err.open("w"),
    )
    client = Client(port)
    try:
        client.start()
        wait_for(lambda: len(client.acked) >= 20 or serve.poll() is not None, 60, "20 writes")
        assert serve.poll() is None, err.read_text()
        tree = procs.children(serve.pid)
        master = next(
            p for p in tree if ORPHANWORKERS in p.cmdline and p.process.ppid() == serve.pid
        )
        group = [p for p in tree if ORPHANWORKERS in p.cmdline]
        assert len(group) == 3  # the master and its two workers
        master.process.send_signal(signal.SIGKILL)
        code = serve.wait(60)
        client.done.set()
        client.join(10)
        out = tmp_path / "restored.db"
        restored = project.run("litestream", "restore", "-o", str(out), "default")
        assert restored.returncode == 0, restored.stderr
        with sqlite3.connect(out) as conn:
            held = {row[0] for row in conn.execute("SELECT id FROM acks")}
        missing = sorted(set(client.acked) - held)
        assert not missing, f"{len(missing)} acknowledged writes are not in the replica"
        assert code == 137, err.read_text()
        assert not any(procs.alive(p) for p in group), "a worker outlived serve"
        log = err.read_text()
        assert "The server's master exited (killed by SIGKILL) while 2 processes" in log
        assert "blocking checkpoint" not in log  # SQLite's own (passive) checkpoints are not
    finally:
        client.done.set()
        if serve.poll() is None:
            serve.kill()
        for proc in psutil.process_iter(["cmdline"]):
            if ORPHANWORKERS in " ".join(proc.info.get("cmdline") or []):
                proc.kill()
