"""System checks of the health endpoint's and serve's settings (E020-E021, W022-W023)."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from django_litestream import checks as ls_checks

FILE_REPLICA = {"type": "file", "path": "/tmp/replica"}


def ids(litestream: dict, **settings) -> list[str]:
    value = {"dbs": [{"path": "default", "replica": dict(FILE_REPLICA)}], **litestream}
    with override_settings(LITESTREAM=value, **settings):
        return [m.id for m in ls_checks.check_operations()]


ROUTED = "tests.support.operations_urls"


def test_good_settings_are_quiet() -> None:
    good = {"health": {"max_lag_seconds": 120}, "serve": {"alert_webhook": "https://h.example/x"}}
    assert ids(good, ROOT_URLCONF=ROUTED) == []


@pytest.mark.parametrize(
    "health", [{"max_lag": 1}, {"max_lag_seconds": -1}, {"token": "short"}, {"token": 5}]
)
def test_e020_a_malformed_health_setting(health: dict) -> None:
    assert ids({"health": health}) == ["django_litestream.E020"]


@pytest.mark.parametrize(
    "serve",
    [
        {"alert_webhook": "hooks.example.com"},
        {"alert_webhook": 5},
        {"replica_check_interval": "30s"},
        {"grace_timeout": 3},
    ],
)
def test_e021_a_serve_setting_serve_would_refuse(serve: dict) -> None:
    assert ids({"serve": serve}) == ["django_litestream.E021"]


def test_w022_health_routed_but_replica_checks_off() -> None:
    off = {"serve": {"replica_check_interval": 0}}
    assert ids(off, ROOT_URLCONF=ROUTED) == ["django_litestream.W022"]
    assert ids(off) == []  # tests.settings routes nothing


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://alerts.example.com/hook", ["django_litestream.W023"]),
        ("http://10.0.0.5:8080/hook", ["django_litestream.W023"]),
        ("https://alerts.example.com/hook", []),
        ("http://127.0.0.1:9000/hook", []),
        ("http://localhost/hook", []),
    ],
)
def test_w023_an_unencrypted_webhook(url: str, expected: list[str]) -> None:
    assert ids({"serve": {"alert_webhook": url}}) == expected


def test_check_command_runs_them() -> None:
    value = {"dbs": [{"path": "default", "replica": FILE_REPLICA}], "health": {"max_lag": 1}}
    with override_settings(LITESTREAM=value), pytest.raises(SystemCheckError, match="E020"):
        call_command("check", "--tag", "litestream")
