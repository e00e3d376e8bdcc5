"""LITESTREAM["vfs"] as settings: get_vfs_databases(), the checks, and finding a binding.

No replica is read here (see test_vfs.py for the real thing).
"""

from __future__ import annotations

import sys
import types
import warnings
from typing import Any

import pytest

from django_litestream import get_vfs_databases, vfs
from django_litestream.config.build import build
from django_litestream.config.locations import resolve
from django_litestream.config.secrets import mask_url
from django_litestream.config.types import Problem
from django_litestream.errors import SettingError
from django_litestream.vfs import extension

ENGINE = "django_litestream.db.backends.litestream_vfs"


# -- get_vfs_databases ------------------------------------------------------------------


def test_databases_from_explicit_setting():
    litestream = {
        "bin_path": "/opt/litestream",
        "vfs": {
            "prod_replica": "s3://mybucket/db.sqlite3",
            "analytics_replica": "gs://analytics/db.sqlite3",
            "poll_interval": "500ms",
            "max_lag_seconds": 60,
        },
    }
    assert get_vfs_databases(litestream) == {
        "prod_replica": {
            "ENGINE": ENGINE,
            "NAME": "prod_replica",
            "OPTIONS": {
                "replica_url": "s3://mybucket/db.sqlite3",
                "poll_interval": "500ms",
                "open_timeout": 30.0,
                "reconnect_after": 30.0,
                "max_lag_seconds": 60.0,
                "bin_path": "/opt/litestream",
            },
        },
        "analytics_replica": {
            "ENGINE": ENGINE,
            "NAME": "analytics_replica",
            "OPTIONS": {
                "replica_url": "gs://analytics/db.sqlite3",
                "poll_interval": "500ms",
                "open_timeout": 30.0,
                "reconnect_after": 30.0,
                "max_lag_seconds": 60.0,
                "bin_path": "/opt/litestream",
            },
        },
    }


def test_databases_read_litestream_from_the_calling_module():
    namespace: dict[str, Any] = {
        "__name__": "mysite.settings",
        "LITESTREAM": {"vfs": {"replica": "file:///srv/replica", "poll_interval": 2}},
    }
    exec(
        "from django_litestream import get_vfs_databases\n"
        "DATABASES = {'default': {}, **get_vfs_databases()}\n",
        namespace,
    )
    assert namespace["DATABASES"] == {
        "default": {},
        "replica": {
            "ENGINE": ENGINE,
            "NAME": "replica",
            "OPTIONS": {
                "replica_url": "file:///srv/replica",
                "poll_interval": "2s",
                "open_timeout": 30.0,
                "reconnect_after": 30.0,
            },
        },
    }


@pytest.mark.parametrize(
    ("given", "duration"), [(2, "2s"), (0.25, "0.25s"), (0.0001, "0.0001s"), ("750ms", "750ms")]
)
def test_poll_interval_becomes_a_go_duration(given, duration):
    [entry] = get_vfs_databases({"vfs": {"r": "s3://b/db", "poll_interval": given}}).values()
    assert entry["OPTIONS"]["poll_interval"] == duration


def test_no_vfs_key_means_no_databases():
    assert get_vfs_databases({"dbs": [{"path": "default"}]}) == {}
    assert get_vfs_databases({"vfs": {"poll_interval": "1s"}}) == {}


def test_missing_litestream_in_the_calling_module():
    namespace: dict[str, Any] = {"__name__": "mysite.settings"}
    with pytest.raises(SettingError) as info:
        exec("from django_litestream import get_vfs_databases\nget_vfs_databases()", namespace)
    assert str(info.value) == (
        "get_vfs_databases() found no LITESTREAM in mysite.settings. Hint: define LITESTREAM "
        "above the DATABASES setting, or pass it: get_vfs_databases(LITESTREAM)."
    )
    assert info.value.check_id == "django_litestream.E007"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            ["s3://b/db"],
            "LITESTREAM['vfs'] must be a dict of alias -> replica URL, not list. Hint: write "
            "'vfs': {'prod_replica': 's3://mybucket/db.sqlite3'}.",
        ),
        (
            {"replica": {"url": 42}},
            "LITESTREAM['vfs']['replica']['url'] is 42; it must be the replica URL "
            "as a string. Hint: write a URL such as 's3://mybucket/db.sqlite3' or "
            "'file:///srv/replica'.",
        ),
        (
            {"replica": {"poll_interval": "1s"}},
            "LITESTREAM['vfs']['replica'] has no 'url'. Hint: write {'url': "
            "'s3://mybucket/db.sqlite3', ...} or just the URL as a string.",
        ),
        (
            {"replica": 3},
            "LITESTREAM['vfs'] has the key 'replica', which is not an option, and its value 3 "
            "is not a replica URL. Hint: Options: poll_interval, open_timeout, max_lag_seconds, "
            "cache_size, reconnect_after, read_replica, read_your_writes_seconds, "
            "extension_path; every other key is a database alias whose value is its replica "
            "URL.",
        ),
        (
            {"replica": "s3://b/db", "max_lag": 60},
            "LITESTREAM['vfs'] has the key 'max_lag', which is not an option, and its value 60 "
            "is not a replica URL. Hint: Did you mean 'max_lag_seconds'? Options: "
            "poll_interval, open_timeout, max_lag_seconds, cache_size, reconnect_after, "
            "read_replica, read_your_writes_seconds, extension_path; every other key is a "
            "database alias whose value is its replica URL.",
        ),
        (
            {"replica": "s3://b/db", "poll-intervall": "2s"},
            "LITESTREAM['vfs'] has the key 'poll-intervall', which is not an option, and its "
            "value '2s' is not a replica URL. Hint: Did you mean 'poll_interval'? Options: "
            "poll_interval, open_timeout, max_lag_seconds, cache_size, reconnect_after, "
            "read_replica, read_your_writes_seconds, extension_path; every other key is a "
            "database alias whose value is its replica URL.",
        ),
        (
            {"replica": {"url": "s3://b/db", "poll_intervl": "2s"}},
            "LITESTREAM['vfs']['replica'] has the key 'poll_intervl', which is not a replica "
            "option. Hint: Did you mean 'poll_interval'? Options: poll_interval, open_timeout, "
            "max_lag_seconds, cache_size, reconnect_after, url, primary, endpoint, region, "
            "force_path_style, skip_verify.",
        ),
        (
            {"replica": {"url": "s3://b/db", "access_key_id": "AKIA"}},
            "LITESTREAM['vfs']['replica']['access_key_id']: credentials cannot be given per "
            "replica; the VFS extension reads them from the environment the process starts "
            "with. Hint: set them where the process starts (AWS_ACCESS_KEY_ID / "
            "AWS_SECRET_ACCESS_KEY for S3, as for replication) and remove this key.",
        ),
        (
            {"replica": {"url": "gs://b/db", "region": "eu-west-1"}},
            "LITESTREAM['vfs']['replica']['region'] is an S3 option, but the replica URL is a "
            "gs:// URL. Hint: remove it, or use an s3:// URL.",
        ),
        (
            {"replica": {"url": "s3://b/db", "endpoint": "127.0.0.1:9000"}},
            "LITESTREAM['vfs']['replica']['endpoint'] is '127.0.0.1:9000'; it must be a URL. "
            "Hint: write for example 'endpoint': 'https://s3.example.com'.",
        ),
        (
            {"replica": {"url": "s3://b/db", "cache_size": "lots"}},
            "LITESTREAM['vfs']['replica']['cache_size'] is 'lots', which is not a size in "
            "bytes. Hint: write a number of bytes (67108864) or a string such as '64MB' or "
            "'512KiB'.",
        ),
        (
            {"replica": "s3://b/db", "poll_interval": "0s"},
            "LITESTREAM['vfs']['poll_interval'] is '0s', which is not a positive duration. "
            "Hint: write a number of seconds (1) or a duration string such as '500ms' or '2s'.",
        ),
        (
            {"replica": "s3://b/db", "read_replica": "other"},
            "LITESTREAM['vfs']['read_replica'] is 'other', which is not a replica in "
            "LITESTREAM['vfs']. Hint: use one of 'replica'.",
        ),
        (
            {"replica": "s3://b/db", "read_your_writes_seconds": "5"},
            "LITESTREAM['vfs']['read_your_writes_seconds'] is '5'; it must be a number of "
            "seconds (0 for the request only). Hint: write for example "
            "'read_your_writes_seconds': 5.",
        ),
        (
            {"replica": "gcs://bucket/db"},
            "LITESTREAM['vfs']['replica'] is 'gcs://bucket/db', which is not a replica URL "
            "Litestream can read. Hint: write 'gs://...'.",
        ),
        (
            {"replica": "/srv/replica"},
            "LITESTREAM['vfs']['replica'] is '/srv/replica', which is not a replica URL "
            "Litestream can read. Hint: use one of s3, gs, abs, file, sftp, webdav, webdavs, "
            "nats, oss.",
        ),
        (
            {"replica": "file://srv/replica"},
            "LITESTREAM['vfs']['replica'] is 'file://srv/replica'; a file replica URL needs an "
            "absolute path after 'file://'. Hint: write three slashes: "
            "'file:///abs/path/to/replica' (the path is the replica directory).",
        ),
        (
            {"replica": "s3:///db.sqlite3"},
            "LITESTREAM['vfs']['replica'] is 's3:///db.sqlite3', which names no bucket or host. "
            "Hint: write 's3://BUCKET/PATH', for example 's3://mybucket/db.sqlite3'.",
        ),
        (
            {"my-replica": "s3://b/db"},
            "LITESTREAM['vfs'] has the key 'my-replica', which cannot be a database alias. "
            "Hint: use a name such as 'prod_replica' (letters, digits and underscores).",
        ),
        (
            {"replica": "s3://b/db", "poll_interval": "soon"},
            "LITESTREAM['vfs']['poll_interval'] is 'soon', which is not a positive duration. Hint: "
            "write a number of seconds (1) or a duration string such as '500ms' or '2s'.",
        ),
        (
            {"replica": "s3://b/db", "max_lag_seconds": -5},
            "LITESTREAM['vfs']['max_lag_seconds'] is -5; it must be a positive number of "
            "seconds or None. Hint: write for example 'max_lag_seconds': 30.",
        ),
    ],
)
def test_validation_errors(raw, message):
    with pytest.raises(SettingError) as info:
        get_vfs_databases({"vfs": raw})
    assert str(info.value) == message
    assert info.value.check_id == "django_litestream.E007"
    # The same problem, as the system check will show it.
    [problem] = vfs.check_vfs(raw)
    assert problem == Problem("django_litestream.E007", info.value.msg, info.value.hint, True)


def test_passwords_stay_out_of_messages():
    url = "sftp://backup:hunter2@example.com:22/db"
    assert mask_url(url) == "sftp://backup:***@example.com:22/db"
    assert mask_url("s3://bucket/db?region=x") == "s3://bucket/db?region=x"
    with pytest.raises(SettingError) as info:
        get_vfs_databases({"vfs": {"r": "sftp://backup:hunter2@"}})
    assert "hunter2" not in str(info.value)
    assert "'sftp://backup:***@'" in str(info.value)


def test_litestream_must_be_a_dict():
    with pytest.raises(SettingError, match=r"LITESTREAM must be a dict, not list\."):
        get_vfs_databases([])  # type: ignore[arg-type]


# -- check_vfs and finding a binding ----------------------------------------------------


def _fake_module(name: str, *, can_load: bool) -> types.ModuleType:
    module = types.ModuleType(name)
    connection = type("Connection", (), {"enable_load_extension": lambda self, on: None})
    module.Connection = connection if can_load else type("Connection", (), {})  # type: ignore[attr-defined]
    return module


def test_find_binding_takes_the_first_that_can_load_extensions(monkeypatch):
    monkeypatch.setitem(sys.modules, "fake_stdlib", _fake_module("fake_stdlib", can_load=False))
    monkeypatch.setitem(sys.modules, "fake_sqlean", _fake_module("fake_sqlean", can_load=True))
    monkeypatch.setattr(
        extension, "BINDINGS", (("fake_stdlib", "the stdlib"), ("fake_sqlean", "fake-sqlean"))
    )
    assert extension.find_binding() is sys.modules["fake_sqlean"]


def test_find_binding_names_what_it_tried(monkeypatch):
    monkeypatch.setitem(sys.modules, "fake_stdlib", _fake_module("fake_stdlib", can_load=False))
    monkeypatch.setitem(sys.modules, "fake_missing", None)  # import raises ImportError
    monkeypatch.setattr(
        extension, "BINDINGS", (("fake_stdlib", "the stdlib"), ("fake_missing", "sqlean.py"))
    )
    with pytest.raises(extension.VFSUnavailableError) as info:
        extension.find_binding()
    assert str(info.value) == (
        "No SQLite binding that can load extensions was found; tried the stdlib (built "
        "without loadable extensions), sqlean.py (not installed). Install the VFS extras "
        "with: pip install 'django-litestream[vfs]'."
    )


def test_check_vfs_warns_when_the_vfs_cannot_load(monkeypatch):
    monkeypatch.setitem(sys.modules, "litestream_vfs", None)
    [problem] = vfs.check_vfs({"replica": "s3://b/db.sqlite3"}, environ={})
    assert problem == Problem(
        "django_litestream.W007",
        "LITESTREAM['vfs'] configures 'replica', but the Litestream VFS cannot be loaded "
        "here: The Litestream VFS extension is not installed (package litestream-vfs).",
        "Hint: Install the VFS extras with: pip install 'django-litestream[vfs]'.",
    )
    assert not problem.error


def test_check_vfs_is_quiet_without_replicas(monkeypatch):
    monkeypatch.setitem(sys.modules, "litestream_vfs", None)
    assert vfs.check_vfs(None) == []
    assert vfs.check_vfs({"poll_interval": "1s"}) == []


def test_backend_without_a_binding_says_what_to_install(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured
    from django.db.utils import ConnectionHandler

    from django_litestream.vfs import backend as base

    monkeypatch.setattr(base, "_binding", None)
    monkeypatch.setattr(
        base, "_binding_error", extension.VFSUnavailableError("No SQLite binding (tried x).")
    )
    handler = ConnectionHandler(
        {"default": {}, **get_vfs_databases({"vfs": {"r": "file:///nowhere"}})}
    )
    wrapper = handler["r"]
    with pytest.raises(ImproperlyConfigured) as info:
        # What ensure_connection() runs (pytest-django forbids that one here).
        wrapper.get_new_connection(wrapper.get_connection_params())
    assert str(info.value) == (
        "DATABASES['r']: No SQLite binding (tried x). Install the VFS extras with: "
        "pip install 'django-litestream[vfs]'."
    )


# -- per-replica options ----------------------------------------------------------------


def test_a_replica_dict_carries_its_own_options():
    litestream = {
        "vfs": {
            "poll_interval": "2s",
            "max_lag_seconds": 30,
            "cheap": "file:///srv/replica",
            "cloud": {
                "url": "s3://bucket/second.sqlite3?forcePathStyle=true",
                "endpoint": "http://127.0.0.1:9000",
                "region": "eu-west-1",
                "skip-verify": True,
                "poll-interval": 0.5,
                "cache_size": "64MB",
                "max_lag_seconds": None,
                "reconnect_after": 10,
                "primary": "second",
            },
        }
    }
    databases = get_vfs_databases(litestream)
    assert databases["cheap"]["OPTIONS"] == {
        "replica_url": "file:///srv/replica",
        "poll_interval": "2s",
        "open_timeout": 30.0,
        "reconnect_after": 30.0,
        "max_lag_seconds": 30.0,
    }
    assert databases["cloud"]["OPTIONS"] == {
        "replica_url": "s3://bucket/second.sqlite3?forcePathStyle=true&"
        "endpoint=http%3A%2F%2F127.0.0.1%3A9000&region=eu-west-1&skipVerify=true",
        "poll_interval": "0.5s",
        "open_timeout": 30.0,
        "reconnect_after": 10.0,
        "cache_size": 64_000_000,
        "primary": "second",
    }


@pytest.mark.parametrize(
    ("given", "size"), [(1048576, 1048576), ("512KiB", 524288), ("2 MB", 2_000_000), ("4096", 4096)]
)
def test_cache_size_in_bytes(given, size):
    [entry] = get_vfs_databases({"vfs": {"r": {"url": "s3://b/db", "cache_size": given}}}).values()
    assert entry["OPTIONS"]["cache_size"] == size


def test_option_keys_may_use_hyphens():
    [entry] = get_vfs_databases(
        {"vfs": {"r": "s3://b/db", "poll-interval": "250ms", "max-lag-seconds": 5}}
    ).values()
    assert entry["OPTIONS"]["poll_interval"] == "250ms"
    assert entry["OPTIONS"]["max_lag_seconds"] == 5.0


def test_router_options_are_not_aliases():
    settings = vfs.parse(
        {"a": "s3://b/a", "b": "s3://b/b", "read_replica": "b", "read_your_writes_seconds": 3}
    )
    assert list(settings.replicas) == ["a", "b"]
    assert (settings.read_replica, settings.read_your_writes_seconds) == ("b", 3.0)


# -- the extension file, AWS_CA_BUNDLE ------------------------------------------------------


def test_the_older_vfs_extension_path_is_honoured(tmp_path):
    so_file = tmp_path / "litestream-vfs.so"
    so_file.write_bytes(b"")
    litestream = {"vfs_extension_path": so_file, "vfs": {"r": "file:///srv/replica"}}
    [entry] = get_vfs_databases(litestream).values()
    assert entry["OPTIONS"]["extension_path"] == str(so_file)
    assert extension.extension_path(str(so_file)) == str(so_file)


def test_a_missing_extension_file_is_e018(tmp_path):
    missing = tmp_path / "nowhere.so"
    found = vfs.check_vfs({"vfs_extension_path": str(missing)}, environ={})
    assert found == [
        Problem(
            "django_litestream.E018",
            f"LITESTREAM['vfs_extension_path'] is {missing}, which does not exist.",
            "Hint: remove it: the extension now comes with the litestream-vfs package "
            "(pip install 'django-litestream[vfs]'); or point it at the file.",
            error=True,
        )
    ]
    with pytest.raises(extension.VFSUnavailableError, match="does not exist"):
        extension.extension_path(str(missing))


def test_conf_folds_vfs_extension_path_into_vfs_and_keeps_it_from_litestream(tmp_path):
    from django_litestream import conf

    settings = conf.parse(
        {
            "vfs_extension_path": "/opt/litestream-vfs.so",
            "vfs": {"r": "file:///srv/replica"},
            "dbs": [{"path": "/srv/db.sqlite3", "replica": {"type": "file", "path": "/r"}}],
        },
        {},
    )
    assert settings.vfs == {
        "r": "file:///srv/replica",
        "vfs_extension_path": "/opt/litestream-vfs.so",
    }
    generated = build(settings, {})
    assert "vfs" not in generated.render()
    assert not [p for p in generated.problems if p.id == "django_litestream.W001"]


def test_aws_ca_bundle_with_an_s3_replica_is_w018():
    [problem] = vfs.check_vfs({"cloud": "s3://b/db"}, environ={"AWS_CA_BUNDLE": "/ca.pem"})
    assert problem.id == "django_litestream.W018"
    assert problem.msg == (
        "AWS_CA_BUNDLE is set and the read replica 'cloud' is on S3; the VFS extension's S3 "
        "client then fails to open it ('SQL logic error')."
    )
    assert vfs.check_vfs({"cloud": "gs://b/db"}, environ={"AWS_CA_BUNDLE": "/ca.pem"}) == []


# -- the binding: never the standard library's sqlite3 ----------------------------------------


def test_the_stdlib_sqlite3_is_never_a_vfs_binding(monkeypatch):
    import sqlite3

    monkeypatch.setattr(extension, "BINDINGS", (("sqlite3", "the standard library"),))
    monkeypatch.setattr(extension, "stdlib_can_load", lambda: True)
    with pytest.raises(extension.VFSUnavailableError) as info:
        extension.find_binding()
    assert "never used for the VFS" in str(info.value)
    with pytest.raises(extension.VFSUnavailableError, match="standard library"):
        extension.load_extension(sqlite3)


# -- which database a replica copies --------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "replica", "expected"),
    [
        ("file:///srv/rep", {"type": "file", "path": "/srv/rep/"}, True),
        ("file:///srv/rep", {"url": "file:///srv/other"}, False),
        (
            "s3://Bucket/db?endpoint=http://x",
            {"type": "s3", "bucket": "bucket", "path": "/db"},
            True,
        ),
        ("s3://bucket/db", {"url": "s3://bucket/db"}, True),
        ("s3://bucket/db", {"type": "gs", "bucket": "bucket", "path": "db"}, False),
    ],
)
def test_copies(url, replica, expected):
    """A read replica's URL names the place a ``dbs`` entry replicates to (config/locations)."""
    assert resolve(replica, {}).same_place(resolve({"url": url}, {})) is expected


def test_the_replica_of_a_second_same_named_database_copies_that_database(tmp_path, monkeypatch):
    """Two databases named db.sqlite3 get distinct auto-generated replica paths (W008); the
    read replica of the second is routed back to the second, not to ``default``."""
    from django.db import connections
    from django.test import override_settings

    from django_litestream.vfs.freshness import primary_for

    sqlite = "django.db.backends.sqlite3"
    databases = {
        "default": {"ENGINE": sqlite, "NAME": str(tmp_path / "a" / "db.sqlite3")},
        "cache": {"ENGINE": sqlite, "NAME": str(tmp_path / "b" / "db.sqlite3")},
    }
    monkeypatch.setenv("LITESTREAM_REPLICA_BUCKET", "bkt")
    replicas = {
        "default_replica": "s3://bkt/app/db.sqlite3",
        "cache_replica": "s3://bkt/app/cache/db.sqlite3",
    }
    for alias, url in replicas.items():
        monkeypatch.setitem(
            connections.settings, alias, {"ENGINE": ENGINE, "OPTIONS": {"replica_url": url}}
        )
    litestream = {"path_prefix": "app", "dbs": [{"path": "default"}, {"path": "cache"}]}
    with warnings.catch_warnings():  # Django warns that DATABASES is overridden: read only
        warnings.simplefilter("ignore", UserWarning)
        overridden = override_settings(DATABASES=databases, LITESTREAM=litestream)
        overridden.enable()
    try:
        assert primary_for("default_replica") == "default"
        assert primary_for("cache_replica") == "cache"
    finally:
        overridden.disable()
