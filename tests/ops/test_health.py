"""The health endpoint's verdicts and who sees details, in-process; the webhook sender.

A serve is stood for by what it leaves for readers: the real lock (``serve/lock.py``) held
by this process on a real file, recording a state file written by ``serve/state.py``. The
end-to-end behaviour (a real serve, gunicorn and storage) is in ``test_health.py``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.test import RequestFactory, override_settings

from django_litestream.ops import health
from django_litestream.serve import state
from django_litestream.serve.alerts import Webhook
from django_litestream.serve.lock import DatabaseLock
from django_litestream.views import health_view

TOKEN = "t" * 24


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "db.sqlite3"
    path.write_bytes(b"")
    yield path


def settings_for(db: Path, **health_options: Any) -> dict[str, Any]:
    return {
        "dbs": [{"path": str(db), "replica": {"type": "file", "path": "/srv/secret-replica"}}],
        "health": {"token": TOKEN, **health_options},
    }


def call(db: Path, *, user: Any = None, token: str | None = None, method: str = "get", **opts):
    request = getattr(RequestFactory(), method)(
        "/litestream/health/", **({"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {})
    )
    if user is not None:
        request.user = user
    with override_settings(LITESTREAM=settings_for(db, **opts)):
        response = health_view(request)
    return response.status_code, json.loads(response.content) if response.content else None


def serve_state(db: Path, tmp: Path, **dbstate: Any) -> DatabaseLock:
    """Hold the database's lock as serve does, naming a state file with ``dbstate``."""
    path = str(tmp / "state.json")
    now = time.time()
    record = {
        "path": str(db),
        "replica": "file:///srv/secret-replica",
        "ok": True,
        "since": None,
        "outage_since": None,
        "checked_at": now,
        "reason": None,
        **dbstate,
    }
    state.write(
        path,
        {"pid": 4242, "checks": True, "stale_after": now + 60, "dbs": {str(db): record}},
    )
    lock = DatabaseLock(str(db))
    lock.acquire({"pid": 4242, "state": path, "metrics": "127.0.0.1:1"})
    return lock


STAFF = SimpleNamespace(is_active=True, is_staff=True)
VISITOR = SimpleNamespace(is_active=True, is_staff=False)


def test_no_serve_is_503_and_public(db: Path) -> None:
    code, body = call(db)
    assert code == 503
    assert body["status"] == "unhealthy"
    assert body["databases"][0]["status"] == "not_serving"
    assert str(db) not in json.dumps(body)


def test_in_sync_is_200_and_details_need_staff_or_the_token(db: Path, tmp_path: Path) -> None:
    lock = serve_state(db, tmp_path)
    try:
        code, public = call(db)
        assert code == 200 and public["status"] == "ok"
        assert public["databases"][0]["lag_seconds"] == 0.0
        text = json.dumps(public)
        assert "secret-replica" not in text and str(db) not in text
        for who in ({"user": VISITOR}, {"token": "wrong-" + TOKEN}, {"token": TOKEN[:-1]}):
            assert "path" not in call(db, **who)[1]["databases"][0]
        for who in ({"user": STAFF}, {"token": TOKEN}):
            found = call(db, **who)[1]["databases"][0]
            assert found["path"] == str(db) and found["replica"] == "file:///srv/secret-replica"
            assert found["serve_pid"] == 4242
        assert TOKEN not in json.dumps(call(db, token=TOKEN)[1])
    finally:
        lock.release()


def test_an_outage_is_tolerated_for_max_lag_seconds(db: Path, tmp_path: Path) -> None:
    lock = serve_state(
        db, tmp_path, ok=False, since=time.time() - 5, reason="listing the storage failed"
    )
    try:
        code, body = call(db, max_lag_seconds=60)
        assert code == 200 and body["databases"][0]["status"] == "behind"
        assert 4 < body["databases"][0]["lag_seconds"] < 30
        code, body = call(db, max_lag_seconds=2)
        assert code == 503 and body["databases"][0]["status"] == "lagging"
        assert "listing the storage failed" not in json.dumps(body)
        assert call(db, max_lag_seconds=2, token=TOKEN)[1]["databases"][0]["reason"] == (
            "listing the storage failed"
        )
    finally:
        lock.release()


@pytest.mark.parametrize(
    ("written", "status"),
    [
        ({"checks": False}, "unchecked"),
        ({"stale_after": 1.0}, "stale"),
        ({"dbs": {}}, "starting"),
    ],
)
def test_what_serve_cannot_vouch_for_is_503(
    db: Path, tmp_path: Path, written: dict[str, Any], status: str
) -> None:
    lock = serve_state(db, tmp_path)
    data = json.loads((tmp_path / "state.json").read_text())
    data.update(written)
    (tmp_path / "state.json").write_text(json.dumps(data))
    try:
        code, body = call(db)
        assert (code, body["databases"][0]["status"]) == (503, status)
        assert body["databases"][0]["reason"] == health.PUBLIC[status]
    finally:
        lock.release()


def test_post_is_not_allowed_and_a_bad_setting_is_503(db: Path) -> None:
    assert call(db, method="post")[0] == 405
    code, body = call(db, max_lag_seconds="soon")
    assert code == 503
    assert body["reason"] == "the LITESTREAM setting is invalid; run 'python manage.py check'"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"max_lag": 5}, "LITESTREAM['health'] has the unknown key 'max_lag'."),
        ({"max_lag_seconds": 0}, "must be a positive number of seconds, not 0."),
        ({"max_lag_seconds": True}, "must be a positive number of seconds, not True."),
        ({"token": 123}, "LITESTREAM['health']['token'] must be a string, not int."),
        ({"token": "short"}, "is too short to keep the details private"),
    ],
)
def test_health_setting_mistakes_name_the_key(value: dict[str, Any], message: str) -> None:
    with pytest.raises(health.HealthSettingError, match=message.replace("[", r"\[")):
        health.parse(value)


# -- the webhook sender ---------------------------------------------------------------------


class Receiver(ThreadingHTTPServer):
    def __init__(self, status: int = 200, delay: float = 0.0) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.status, self.delay = status, delay
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                status = receiver.status  # before the body is counted: the test waits on it
                receiver.bodies.append(
                    json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                )
                time.sleep(receiver.delay)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/secret-path"


def test_a_failing_webhook_is_logged_once_and_its_recovery_too(caplog) -> None:
    receiver = Receiver(status=500)
    hook = Webhook(receiver.url, attempts=2, backoff=0.01)
    try:
        with caplog.at_level(logging.INFO, logger="django_litestream.serve"):
            for n in range(3):
                hook.send({"event": "replica_outage_started", "n": n})
            assert_eventually(lambda: len(receiver.bodies) == 6)  # 3 events x 2 attempts
            receiver.status = 204
            hook.send({"event": "replica_outage_ended"})
            assert_eventually(lambda: hook.sent == 1)
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, warnings
        assert warnings[0].startswith(
            "Could not deliver the replica_outage_started event to the alert webhook "
            f"http://127.0.0.1:{receiver.server_address[1]}/... (HTTP 500, 2 attempts)"
        )
        assert any("works again" in r.getMessage() for r in caplog.records)
        assert "secret-path" not in caplog.text
    finally:
        hook.close(wait=5)
        receiver.shutdown()


def test_sending_never_waits_for_a_slow_webhook() -> None:
    receiver = Receiver(delay=2.0)
    hook = Webhook(receiver.url, timeout=5)
    try:
        started = time.monotonic()
        for n in range(5):
            hook.send({"event": "replica_outage_started", "n": n})
        assert time.monotonic() - started < 0.05
    finally:
        hook.close()
        receiver.shutdown()


def assert_eventually(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
