"""The older release's names (django_litestream_vfs, vfs_extension_path) and the read
replicas' checks that need Django (E019, W019-W021), in-process with pytest-django."""

from __future__ import annotations

import importlib
import subprocess
import sys
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

import django_litestream_vfs
from django_litestream import checks as ls_checks
from django_litestream.vfs import ENGINE

pytestmark = pytest.mark.filterwarnings("ignore:Overriding setting")
ROUTER = "django_litestream.db.routers.LitestreamRouter"
MIDDLEWARE = "django_litestream.middleware.ReadYourWritesMiddleware"


def ids() -> list[str]:
    return [m.id for m in ls_checks.check_read_replicas()]


@pytest.fixture(autouse=True)
def fresh_legacy_flag(monkeypatch):
    monkeypatch.setattr(django_litestream_vfs, "used", False)


def test_get_vfs_databases_works_from_the_older_module_and_says_where_it_moved():
    namespace: dict[str, Any] = {
        "__name__": "mysite.settings",
        "LITESTREAM": {"vfs": {"replica": "file:///srv/replica"}},
    }
    with pytest.warns(DeprecationWarning, match="use 'from django_litestream import"):
        exec(
            "from django_litestream_vfs import get_vfs_databases\n"
            "DATABASES = {'default': {}, **get_vfs_databases()}\n",
            namespace,
        )
    assert namespace["DATABASES"]["replica"]["ENGINE"] == ENGINE
    assert namespace["DATABASES"]["replica"]["OPTIONS"]["replica_url"] == "file:///srv/replica"
    [warning] = ls_checks.check_read_replicas()
    assert warning.id == "django_litestream.W020"
    assert warning.hint == (
        "Import it from django_litestream: 'from django_litestream import get_vfs_databases'."
    )


def test_the_older_app_label_works_and_gets_w019(tmp_path):
    """A real project with only 'django_litestream_vfs' installed: checks still run."""
    (tmp_path / "settings.py").write_text(
        "SECRET_KEY = 'x'\nINSTALLED_APPS = ['django_litestream_vfs']\n"
        "DATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3', 'NAME': "
        f"{str(tmp_path / 'db.sqlite3')!r}}}}}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "django", "check", "--settings", "settings"],
        cwd=tmp_path,
        env={"PYTHONPATH": f"{tmp_path}:{':'.join(sys.path[1:])}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "(django_litestream.W019) 'django_litestream_vfs' in INSTALLED_APPS is the older" in (
        done.stderr
    )
    assert "HINT: Replace it with 'django_litestream' in INSTALLED_APPS" in done.stderr


@pytest.mark.parametrize(
    "engine",
    ["django_litestream_vfs.backends.sqlite_vfs", "django_litestream.db.backends.sqlite_vfs"],
)
def test_the_older_engines_explain_what_replaced_them(engine):
    with pytest.raises(ImproperlyConfigured) as info:
        importlib.import_module(f"{engine}.base")
    assert str(info.value).startswith(f"ENGINE '{engine}' is the older django-litestream")
    assert "Build the entry with get_vfs_databases() from django_litestream" in str(info.value)


def test_a_primary_that_is_not_an_alias_is_e019():
    databases = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "/tmp/x.db"},
        "r": {
            "ENGINE": ENGINE,
            "NAME": "r",
            "OPTIONS": {"replica_url": "s3://b/d", "primary": "x"},
        },
    }
    with override_settings(DATABASES=databases):
        [error] = ls_checks.check_read_replicas()
    assert error.id == "django_litestream.E019"
    assert error.msg == (
        "LITESTREAM['vfs']['r']['primary'] is 'x', which is not an alias in DATABASES."
    )


def test_litestream_router_without_the_middleware_is_w021():
    with override_settings(DATABASE_ROUTERS=[ROUTER], MIDDLEWARE=[]):
        assert ids() == ["django_litestream.W021"]
    with override_settings(DATABASE_ROUTERS=[ROUTER], MIDDLEWARE=[MIDDLEWARE]):
        assert ids() == []


# -- read-your-writes scopes (no database needed) --------------------------------------------


def test_read_your_writes_scopes_and_the_window(monkeypatch):
    import contextvars

    from django_litestream import readwrite

    def fresh_context() -> None:
        assert not readwrite.reads_primary(0)
        with readwrite.read_your_writes() as scope:
            assert not readwrite.reads_primary(0)
            assert readwrite.mark_writes(lambda *a: "ran", "SELECT 1", None, False, {}) == "ran"
            assert not scope.wrote
            readwrite.mark_writes(lambda *a: None, "  insert into t values (1)", None, False, {})
            assert scope.wrote and readwrite.reads_primary(0)
        # Outside the scope: only the window counts.
        assert not readwrite.reads_primary(0)
        assert readwrite.reads_primary(30)
        clock = [readwrite.time.monotonic() + 31]
        monkeypatch.setattr(readwrite.time, "monotonic", lambda: clock[0])
        assert not readwrite.reads_primary(30)
        with readwrite.read_your_writes(sticky=True):
            assert readwrite.reads_primary(0)

    contextvars.copy_context().run(fresh_context)
