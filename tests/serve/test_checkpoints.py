"""An application's own blocking checkpoint under serve is named in the log.

The application (plain WSGI under real gunicorn workers) inserts a row and then runs
``PRAGMA wal_checkpoint(TRUNCATE)`` with a 2 s busy timeout: under Litestream's read
transaction that checkpoint waits the whole timeout, holding the write lock.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import psutil

from tests.support.project import Project, wait_for
from tests.support.storage import free_port

APP = """\
import sqlite3

DB = {db!r}


def application(environ, start_response):
    conn = sqlite3.connect(DB, timeout=2, isolation_level=None)
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
        row = conn.execute("INSERT INTO t (v) VALUES ('x') RETURNING id").fetchone()[0]
        if environ["PATH_INFO"] == "/trunc":
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        conn.close()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(row).encode()]
"""
WARNING = re.compile(r"PID (\d+) \(.*\) is running a blocking checkpoint .*wal_checkpoint")


def test_an_apps_blocking_checkpoint_is_named_in_the_log(
    project: Project, file_replica, tmp_path: Path
) -> None:
    project.configure({"dbs": [{"path": "default", "replica": file_replica}]})
    (project.root / "trunc_app.py").write_text(APP.format(db=str(project.db)))
    port = free_port()
    err = tmp_path / "serve.err"
    serve = project.spawn(
        "litestream",
        "serve",
        "--",
        sys.executable,
        "-m",
        "gunicorn",
        "-w",
        "2",
        "-b",
        f"127.0.0.1:{port}",
        "trunc_app:application",
        stdout=subprocess.DEVNULL,
        stderr=err.open("w"),
    )
    stop = threading.Event()

    def post(path: str) -> None:
        with httpx.Client(timeout=10) as http:
            while not stop.is_set():
                try:
                    http.post(f"http://127.0.0.1:{port}{path}")
                except httpx.HTTPError:
                    stop.wait(0.05)

    try:
        wait_for(lambda: "Serving" in err.read_text() or serve.poll() is not None, 60, "serving")
        assert serve.poll() is None, err.read_text()
        clients = [threading.Thread(target=post, args=(p,)) for p in ("/insert", "/trunc")]
        for client in clients:
            client.start()
        found = wait_for(lambda: WARNING.search(err.read_text()), 20, "the checkpoint warning")
        workers = {p.pid for p in psutil.Process(serve.pid).children(recursive=True)}
        assert int(found.group(1)) in workers, found.group(0)  # a gunicorn worker, named
        assert "litestream" not in found.group(0).split("is running")[0]
    finally:
        stop.set()
        serve.terminate()
        serve.wait(60)
    assert len(WARNING.findall(err.read_text())) <= 2  # once per worker at most
