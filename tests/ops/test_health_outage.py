"""The health endpoint and the alert webhook, through a real serve, gunicorn and storage.

The storage is made unwritable while rows are written (moto stopped with SIGSTOP; for a
file replica, a file put where its directory was): the endpoint must turn 503 within
2 x sync-interval + the check interval, and 200 again after the storage comes back, and a
local HTTP server must receive exactly one start and one end event. No body may hold a
secret, and only a request with the token sees paths and the replica's location.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from django_litestream.serve import watch
from tests.support.project import Project, wait_for
from tests.support.storage import MotoS3, free_port

TOKEN = "health-token-0123456789abcdef"
SYNC_INTERVAL = 1.0
CHECK_INTERVAL = 1.0
# The bound the issue sets, plus what a loaded 2-core machine adds: starting one
# 'litestream ltx' process, the state file's write and the poll of the endpoint.
BOUND = 2 * SYNC_INTERVAL + CHECK_INTERVAL
SLACK = 1.5


class Hooks(ThreadingHTTPServer):
    """A webhook receiver on 127.0.0.1 that records every JSON body it gets."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.status = 200

        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hooks.events.append(json.loads(body))
                self.send_response(hooks.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/T0SECRET/B1SECRET"


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    server = Hooks()
    yield server
    server.shutdown()
    server.server_close()


class Writer(threading.Thread):
    """Writes a row every 50 ms, as an application would, until stopped."""

    def __init__(self, db: Path) -> None:
        super().__init__(daemon=True)
        self.db = db
        self.done = threading.Event()
        self.rows = 0

    def run(self) -> None:
        conn = sqlite3.connect(self.db, timeout=30, isolation_level=None)
        conn.execute("CREATE TABLE IF NOT EXISTS w (id INTEGER PRIMARY KEY, v TEXT)")
        while not self.done.wait(0.05):
            conn.execute("INSERT INTO w (v) VALUES ('x')")
            self.rows += 1
        conn.close()

    def __enter__(self) -> Writer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.join(30)


def health(port: int, token: str | None = None) -> httpx.Response | None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        return httpx.get(f"http://127.0.0.1:{port}/litestream/health/", headers=headers, timeout=5)
    except httpx.HTTPError:
        return None


def wait_status(port: int, code: int, timeout: float, bodies: list[str]) -> float:
    """Poll the endpoint until it answers ``code``; the seconds it took."""
    started = time.monotonic()

    def answered() -> bool:
        found = health(port)
        if found is not None:
            bodies.append(found.text)
        return found is not None and found.status_code == code

    wait_for(answered, timeout, f"HTTP {code} from the health endpoint")
    return time.monotonic() - started


def explained(run: Any, wait: Callable[[], float]) -> float:
    """``wait()``, and when it times out, serve's log with the failure: it says why."""
    try:
        return wait()
    except AssertionError as exc:
        raise AssertionError(f"{exc}; serve's log ends:\n{run.stderr()[-4000:]}") from None


@pytest.mark.parametrize("storage", ["file", "s3"])
def test_health_follows_an_outage_and_the_webhook_gets_one_start_and_one_end(
    project: Project, tmp_path: Path, serving, hooks: Hooks, storage: str
) -> None:
    moto = MotoS3().start() if storage == "s3" else None  # its own: it is stopped below
    try:
        if moto is not None:
            replica = moto.replica("db")
            secrets = [moto.secret_access_key, moto.access_key_id]
            where = replica["bucket"]
        else:
            replica = {"type": "file", "path": str(tmp_path / "replica")}
            secrets = []
            where = str(tmp_path / "replica")
        replica["sync-interval"] = f"{SYNC_INTERVAL:g}s"
        project.configure(
            {
                "dbs": [{"path": "default", "replica": replica}],
                "health": {"max_lag_seconds": 1, "token": TOKEN},
                "serve": {"alert_webhook": hooks.url},
            }
        )
        port = free_port()
        run = serving(
            sys.executable,
            "-m",
            "gunicorn",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            "1",
            "testapp.wsgi:application",
            opts=("--replica-check-interval", f"{CHECK_INTERVAL:g}"),
        )
        bodies: list[str] = []
        explained(run, lambda: wait_status(port, 200, 60, bodies))
        detail = health(port, TOKEN)
        assert detail is not None and detail.status_code == 200
        assert detail.json()["databases"][0]["path"] == str(project.db)
        assert where in detail.json()["databases"][0]["replica"]
        bodies.append(detail.text)
        with Writer(project.db) as writer:
            wait_for(lambda: writer.rows > 20, 30, "rows to be written")
            began = time.monotonic()
            if moto is not None:
                os.kill(moto.proc.pid, signal.SIGSTOP)
            else:
                os.rename(where, f"{where}.moved")
                Path(where).write_text("not a directory")
            try:
                took = wait_status(port, 503, 30, bodies)
                assert took <= BOUND + SLACK, f"503 came {took:.1f}s after the outage began"
                outage = health(port, TOKEN)
                assert outage is not None and outage.status_code == 503
                bodies.append(outage.text)
                found = outage.json()["databases"][0]
                assert found["status"] == "lagging" and found["outage_since"]
                time.sleep(2)  # an outage of a few seconds, checked every second
            finally:
                if moto is not None:
                    os.kill(moto.proc.pid, signal.SIGCONT)
                else:
                    os.unlink(where)
                    os.rename(f"{where}.moved", where)
                lasted = time.monotonic() - began
            recovered = explained(run, lambda: wait_status(port, 200, 60, bodies))
        wait_for(lambda: len(hooks.events) >= 2, 30, "the end event")
        assert run.stop() == 0, run.stderr()
    finally:
        if moto is not None:
            moto.stop()
    err = run.stderr()
    assert err.count("did not confirm a sync") == 1, err
    assert err.count("confirms syncs again: the outage lasted about") == 1, err
    # The length it reports is the real one, give or take a check and an upload.
    reported = int(re.search(r"the outage lasted about (\d+)s", err).group(1))
    assert lasted - 2 <= reported <= lasted + recovered + 2, (reported, lasted)
    assert [e["event"] for e in hooks.events] == ["replica_outage_started", "replica_outage_ended"]
    start, end = hooks.events
    assert tuple(start) == watch.EVENT_KEYS[:-2] and tuple(end) == watch.EVENT_KEYS
    assert start["database"] == "default" and start["path"] == str(project.db)
    assert where in start["replica"] and start["reason"]
    assert end["duration_seconds"] >= 2 and end["since"] == start["since"]
    public = [b for b in bodies if '"path"' not in b]
    assert public and all(where not in b and str(project.db) not in b for b in public)
    for text in [*bodies, err, json.dumps(hooks.events)]:
        for secret in [*secrets, TOKEN]:
            assert secret not in text
    assert "T0SECRET" not in err  # the webhook's URL is logged by host only
    print(
        f"{storage}: 503 after {took:.2f}s (bound {BOUND:g}s), 200 again {recovered:.2f}s "
        f"after the storage came back; outage {lasted:.1f}s, reported {reported}s"
    )


def test_no_serve_is_503_saying_so(project: Project, file_replica) -> None:
    project.configure({"dbs": [{"path": "default", "replica": file_replica}]})
    port = free_port()
    # A server that is not under serve: the database is not replicated.
    gunicorn = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", "1"]
        + ["testapp.wsgi:application"],
        cwd=project.root,
        env=project.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: health(port) is not None, 60, "gunicorn")
        found = health(port)
        assert found is not None and found.status_code == 503
        assert found.json() == {
            "status": "unhealthy",
            "max_lag_seconds": 60.0,
            "databases": [
                {
                    "alias": "default",
                    "status": "not_serving",
                    "healthy": False,
                    "lag_seconds": None,
                    "reason": "no 'litestream serve' is running for this database",
                }
            ],
        }
        assert found.headers["Cache-Control"].startswith("max-age=0")
    finally:
        gunicorn.send_signal(signal.SIGTERM)
        with contextlib.suppress(Exception):
            gunicorn.wait(30)
        if gunicorn.poll() is None:
            gunicorn.kill()
