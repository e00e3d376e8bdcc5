"""System checks (``django_litestream.E00x`` / ``W00x``), run in-process with pytest-django."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connections
from django.db.backends.signals import connection_created
from django.test import override_settings

from django_litestream import checks as ls_checks

SRC = Path(ls_checks.__file__).parent
LITESTREAM_EXE = str(Path(sys.executable).parent / "litestream")
SQLITE = "django.db.backends.sqlite3"
FILE_REPLICA = {"type": "file", "path": "/tmp/replica"}
pytestmark = pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")


def sqlite_dbs(**extra) -> dict:
    return {"default": {"ENGINE": SQLITE, "NAME": "/tmp/django-litestream-tests.db"}, **extra}


def manual(**litestream) -> dict:
    return {"dbs": [{"path": "default", "replica": dict(FILE_REPLICA)}], **litestream}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """A known environment: bucket set, no CA bundle, binary pinned explicitly."""
    for name in ("AWS_CA_BUNDLE", "AWS_BUCKET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LITESTREAM_REPLICA_BUCKET", "bucket")


def run_checks() -> list[checks.CheckMessage]:
    return ls_checks.check_settings()


def found(messages) -> list[str]:
    return [m.id for m in messages]


# -- one case per check ID -------------------------------------------------------------

E001_CASES = {
    "litestream-not-dict": (["dbs"], "LITESTREAM must be a dict, not list."),
    "dbs-not-list": ({"dbs": "default"}, "LITESTREAM['dbs'] must be a list, not str."),
    "db-not-dict": ({"dbs": [42]}, "LITESTREAM['dbs'][0] must be a dict, not int."),
    "db-no-path": ({"dbs": [{"replica": FILE_REPLICA}]}, "LITESTREAM['dbs'][0] has no 'path'."),
    "path-not-str": (
        {"dbs": [{"path": 5}]},
        "LITESTREAM['dbs'][0]['path'] must be a DATABASES alias or a file path, not 5.",
    ),
    "replica-not-dict": (
        {"dbs": [{"path": "default", "replica": "s3://b/db"}]},
        "LITESTREAM['dbs'][0]['replica'] must be a dict, not str.",
    ),
    "bad-type": (
        {"dbs": [{"path": "default", "replica": {"type": "ftp"}}]},
        "LITESTREAM['dbs'][0]['replica']['type'] is 'ftp', which Litestream 0.5 does not know.",
    ),
    "two-replicas": (
        {"dbs": [{"path": "default", "replicas": [FILE_REPLICA, FILE_REPLICA]}]},
        "LITESTREAM['dbs'][0]['replicas'] lists 2 replicas; Litestream 0.5 replicates each "
        "database to exactly one.",
    ),
    "replica-and-replicas": (
        {"dbs": [{"path": "default", "replica": FILE_REPLICA, "replicas": [FILE_REPLICA]}]},
        "LITESTREAM['dbs'][0] has both 'replica' and 'replicas'.",
    ),
    "duplicate": (
        {
            "dbs": [
                {"path": "default", "replica": FILE_REPLICA},
                {"path": "/tmp/django-litestream-tests.db", "replica": FILE_REPLICA},
            ]
        },
        "LITESTREAM['dbs'][1] and LITESTREAM['dbs'][0] are the same database "
        "(/tmp/django-litestream-tests.db).",
    ),
    "path-prefix-int": (
        {"path_prefix": 3, "dbs": []},
        "LITESTREAM['path_prefix'] has the wrong type (int).",
    ),
    "vfs-list": ({"vfs": ["x"], "dbs": []}, "LITESTREAM['vfs'] has the wrong type (list)."),
}


@pytest.mark.parametrize("case", list(E001_CASES))
def test_e001_malformed(case):
    litestream, msg = E001_CASES[case]
    with override_settings(LITESTREAM=litestream):
        messages = run_checks()
    assert found(messages) == ["django_litestream.E001"]
    assert isinstance(messages[0], checks.Error)
    assert messages[0].msg == msg
    assert messages[0].hint and not messages[0].hint.startswith("Hint:")


def test_e002_unknown_alias_with_suggestion():
    with override_settings(LITESTREAM={"dbs": [{"path": "defualt"}]}):
        messages = run_checks()
    assert found(messages) == ["django_litestream.E002"]
    assert messages[0].msg == (
        "LITESTREAM['dbs'][0]['path'] is 'defualt', which is not an alias in DATABASES "
        "(aliases: 'default')."
    )
    assert messages[0].hint.startswith("Did you mean 'default'?")


def test_e003_non_sqlite_engine():
    databases = sqlite_dbs(pg={"ENGINE": "django.db.backends.postgresql", "NAME": "app"})
    with override_settings(DATABASES=databases, LITESTREAM={"dbs": [{"path": "pg"}]}):
        messages = run_checks()
    assert found(messages) == ["django_litestream.E003"]
    assert "'pg'" in messages[0].msg and "not SQLite" in messages[0].msg


@pytest.mark.parametrize(
    "name", [":memory:", "", "file::memory:?cache=shared", "file:mem1?mode=memory&cache=shared"]
)
def test_e004_in_memory(name):
    databases = sqlite_dbs(mem={"ENGINE": SQLITE, "NAME": name})
    with override_settings(DATABASES=databases, LITESTREAM={"dbs": [{"path": "mem"}]}):
        messages = run_checks()
    assert found(messages) == ["django_litestream.E004"]
    assert "in-memory" in messages[0].msg


def test_e005_bin_path_not_executable(tmp_path):
    fake = tmp_path / "litestream"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o644)
    with override_settings(LITESTREAM=manual(bin_path=str(fake))):
        messages = run_checks()
    assert found(messages) == ["django_litestream.E005"]
    assert isinstance(messages[0], checks.Error)
    assert messages[0].msg == f"LITESTREAM['bin_path'] is {fake}, which is not an executable file."
    assert messages[0].hint == (
        f"Run 'chmod +x {fake}', or point bin_path at the litestream executable."
    )
    real = tmp_path / "real"
    real.symlink_to(LITESTREAM_EXE)
    with override_settings(LITESTREAM=manual(bin_path=str(real))):
        assert run_checks() == []


def test_e005_bin_path_is_a_directory(tmp_path):
    """A directory gets no 'chmod +x' advice; the executable inside is named when there."""
    with override_settings(LITESTREAM=manual(bin_path=str(tmp_path))):
        messages = run_checks()
    assert found(messages) == ["django_litestream.E005"]
    assert messages[0].msg == (
        f"LITESTREAM['bin_path'] is {tmp_path}, a directory, not the litestream executable."
    )
    assert messages[0].hint == "Point bin_path at the litestream executable inside."
    (tmp_path / "litestream").symlink_to(LITESTREAM_EXE)
    with override_settings(LITESTREAM=manual(bin_path=str(tmp_path))):
        messages = run_checks()
    assert messages[0].hint == f"Point bin_path at '{tmp_path / 'litestream'}'."


@pytest.mark.parametrize(
    "unset", [("LITESTREAM_REPLICA_BUCKET",), ("LITESTREAM_REPLICA_BUCKET", "AWS_BUCKET")]
)
def test_missing_bucket_is_w009_and_e006_under_deploy(monkeypatch, unset):
    """A laptop or CI job without a bucket can still migrate and test: W009 there; the
    deployment check (and every command that hands the configuration to Litestream) E006."""
    for name in unset:
        monkeypatch.delenv(name, raising=False)
    with override_settings(LITESTREAM={"dbs": [{"path": "default"}]}):
        messages = run_checks()
        deploy = ls_checks.check_deploy()
    assert found(messages) == ["django_litestream.W009"]
    assert isinstance(messages[0], checks.Warning)
    assert "That is fine for development and tests" in messages[0].msg
    assert found(deploy) == ["django_litestream.E006"]
    assert isinstance(deploy[0], checks.Error)
    assert deploy[0].msg == (
        "LITESTREAM['dbs'][0] has no 'replica', so it replicates to the S3 bucket named by "
        "$LITESTREAM_REPLICA_BUCKET (or $AWS_BUCKET), and neither is set."
    )
    # Either bucket variable satisfies it.
    monkeypatch.setenv("AWS_BUCKET", "b")
    with override_settings(LITESTREAM={"dbs": [{"path": "default"}]}):
        assert run_checks() == []
        assert ls_checks.check_deploy() == []


def test_blank_bucket_variable_names_no_bucket(monkeypatch):
    monkeypatch.setenv("LITESTREAM_REPLICA_BUCKET", " ")
    with override_settings(LITESTREAM={"dbs": [{"path": "default"}]}):
        (message,) = ls_checks.check_deploy()
    assert message.id == "django_litestream.E006"
    assert message.msg.endswith("and $LITESTREAM_REPLICA_BUCKET is blank.")


def test_deploy_check_only_under_deploy(monkeypatch, capsys):
    """'check' warns (exit 0); 'check --deploy' fails on E006."""
    monkeypatch.delenv("LITESTREAM_REPLICA_BUCKET")
    with override_settings(LITESTREAM={"dbs": [{"path": "default"}]}):
        call_command("check", tag=["litestream"])
        assert "django_litestream.W009" in capsys.readouterr().err
        with pytest.raises(SystemCheckError) as err:
            call_command("check", tag=["litestream"], deploy=True)
    assert "django_litestream.E006" in str(err.value)


def test_w001_unknown_key_with_suggestion():
    with override_settings(LITESTREAM=manual(sync_intervall="1s")):
        messages = run_checks()
    assert found(messages) == ["django_litestream.W001"]
    assert isinstance(messages[0], checks.Warning)
    assert messages[0].hint == "Did you mean 'sync-interval'?"


def test_w002_litestream_03_key():
    litestream = {"dbs": [{"path": "default", "replica": {**FILE_REPLICA, "retention": "24h"}}]}
    with override_settings(LITESTREAM=litestream):
        messages = run_checks()
    assert found(messages) == ["django_litestream.W002"]


def test_w003_bare_number_duration():
    litestream = {"dbs": [{"path": "default", "replica": {**FILE_REPLICA, "sync_interval": 10}}]}
    with override_settings(LITESTREAM=litestream):
        messages = run_checks()
    assert found(messages) == ["django_litestream.W003"]


@pytest.mark.parametrize(
    "litestream",
    [
        {"dbs": [{"path": "default"}]},
        {"dbs": [{"path": "default", "replica": {"type": "s3", "bucket": "b", "path": "p"}}]},
        {"dbs": [{"path": "default", "replica": {"url": "s3://b/p"}}]},
    ],
    ids=["auto", "s3", "s3-url"],
)
def test_w004_aws_ca_bundle_with_s3(monkeypatch, litestream):
    monkeypatch.setenv("AWS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    with override_settings(LITESTREAM=litestream):
        messages = run_checks()
    assert found(messages) == ["django_litestream.W004"]
    assert "unable to add custom RootCAs HTTPClient" in messages[0].msg


def test_w004_not_for_non_s3_replicas(monkeypatch):
    monkeypatch.setenv("AWS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    with override_settings(LITESTREAM=manual()):
        assert run_checks() == []


@pytest.mark.parametrize(
    "key, addr",
    [
        ("addr", ":9090"),
        ("addr", "0.0.0.0:9090"),
        ("mcp-addr", ":3001"),
        ("mcp_addr", "0.0.0.0:3001"),
        ("addr", "[::]:9090"),
    ],
)
def test_w005_listens_beyond_loopback(key, addr):
    with override_settings(LITESTREAM=manual(**{key: addr})):
        messages = run_checks()
    assert found(messages) == ["django_litestream.W005"]
    hyphen = key.replace("_", "-")
    assert messages[0].msg.startswith(f"LITESTREAM['{hyphen}'] is {addr!r}")


@pytest.mark.parametrize("addr", ["127.0.0.1:9090", "localhost:9090", "[::1]:9090"])
def test_w005_not_for_loopback(addr):
    with override_settings(LITESTREAM=manual(addr=addr, mcp_addr=addr)):
        assert run_checks() == []


def test_w006_binary_not_found(tmp_path):
    missing = tmp_path / "nowhere" / "litestream"
    with override_settings(LITESTREAM=manual(bin_path=str(missing))):
        messages = run_checks()
    assert found(messages) == ["django_litestream.W006"]
    assert isinstance(messages[0], checks.Warning)
    assert str(missing) in messages[0].msg


def test_default_settings_are_clean():
    assert run_checks() == []


# -- the ID set ------------------------------------------------------------------------

# Every ID in use. Gaps are numbers once reserved for work that needed fewer IDs; an ID is
# never reused for another meaning.
EXPECTED_IDS = {f"django_litestream.E{i:03}" for i in (*range(1, 14), 18, 19, 20, 21)} | {
    f"django_litestream.W{i:03}" for i in (*range(1, 13), 18, 19, 20, 21, 22, 23, 32)
}


def test_check_ids_unique_and_all_tested():
    """The IDs in use are exactly EXPECTED_IDS, and each belongs to one module."""
    files: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        for match in re.finditer(r"\"(django_litestream\.[EW]\d{3})\"", path.read_text()):
            files.setdefault(match.group(1), set()).add(path.name)
    assert set(files) == EXPECTED_IDS
    assert {k: v for k, v in files.items() if len(v) != 1} == {}


def test_ids_match_levels(monkeypatch, tmp_path):
    """E-IDs are errors and W-IDs warnings; independent findings are all reported."""
    litestream = {
        "addr": ":9090",
        "bogus": 1,
        "dbs": [
            {"path": "default", "replica": {"url": "s3://b/p", "name": "x", "sync-interval": 5}}
        ],
        "bin_path": "/nonexistent/litestream",
    }
    monkeypatch.setenv("AWS_CA_BUNDLE", "/x")
    with override_settings(LITESTREAM=litestream):
        warnings = run_checks()
    assert sorted(found(warnings)) == [f"django_litestream.W00{i}" for i in range(1, 7)]

    fake = tmp_path / "litestream"
    fake.write_text("")
    monkeypatch.delenv("AWS_CA_BUNDLE")
    monkeypatch.delenv("LITESTREAM_REPLICA_BUCKET")
    with override_settings(LITESTREAM={"bin_path": str(fake), "dbs": [{"path": "default"}]}):
        errors = run_checks() + ls_checks.check_deploy()
    assert found(errors) == [
        "django_litestream.E005",
        "django_litestream.W009",
        "django_litestream.E006",
    ]

    for message in warnings + errors:
        expected = checks.Error if message.id.split(".")[1][0] == "E" else checks.Warning
        assert type(message) is expected


# -- through Django's check framework --------------------------------------------------


def test_call_command_check_runs_them():
    with (
        override_settings(LITESTREAM={"dbs": [{"path": "defualt"}]}),
        pytest.raises(SystemCheckError) as err,
    ):
        call_command("check")
    assert "django_litestream.E002" in str(err.value)
    with (
        override_settings(LITESTREAM={"dbs": [{"path": "defualt"}]}),
        pytest.raises(SystemCheckError) as err,
    ):
        call_command("check", tag=["litestream"])
    assert "django_litestream.E002" in str(err.value)


def test_call_command_check_passes_warnings(capsys):
    with override_settings(LITESTREAM=manual(addr=":9090")):
        call_command("check")
    assert "django_litestream.W005" in capsys.readouterr().err


def test_registered_under_litestream_tag():
    """apps.py registers every check of checks.py by name (and imports checks.py only when
    they run); a check added there without a line in apps.CHECKS would never run."""
    from django_litestream import apps

    registered = {
        c.__name__: c for c in checks.registry.registry.get_checks(include_deployment_checks=True)
    }
    defined = {
        name
        for name, value in vars(ls_checks).items()
        if name.startswith("check_") and callable(value)
    }
    assert defined == {name for name, _ in apps.CHECKS}
    for name, deploy in apps.CHECKS:
        assert registered[name].__module__ == "django_litestream.checks"
        assert tuple(registered[name].tags) == ("litestream",)
        assert (registered[name] in checks.registry.registry.get_checks()) is not deploy
    assert "litestream" in checks.registry.registry.tags_available()


def test_a_deferred_check_runs_the_real_one():
    from django_litestream import apps

    deferred = dict((c.__name__, c) for c, _ in apps.DEFERRED)
    with override_settings(LITESTREAM={"dbs": [{"path": "defualt"}]}):
        assert found(deferred["check_settings"]()) == found(ls_checks.check_settings())
        assert "django_litestream.E002" in found(deferred["check_settings"]())


def test_manage_py_start_does_not_import_the_checks():
    """Every manage.py command, serve's start above all, runs without loading checks.py and
    PyYAML until the checks run (docs/serve.rst, "Performance")."""
    code = (
        "import sys, django; django.setup(); "
        "print(sorted(m for m in ('django_litestream.checks', 'yaml') if m in sys.modules))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_checks_never_open_a_database_connection(tmp_path, django_db_blocker):
    """Even with database access allowed, no check connects or creates a database file."""
    databases = {
        "default": {"ENGINE": SQLITE, "NAME": str(tmp_path / "never-created.sqlite3")},
        "other": {"ENGINE": SQLITE, "NAME": str(tmp_path / "other.sqlite3")},
    }
    litestream = {"dbs": [{"path": "default"}, {"path": "other", "replica": FILE_REPLICA}]}
    opened = []

    def on_connect(sender, connection, **kwargs):
        opened.append(connection.alias)

    for alias in connections:
        connections[alias].close()
    connection_created.connect(on_connect)
    try:
        with (
            django_db_blocker.unblock(),
            override_settings(DATABASES=databases, LITESTREAM=litestream),
        ):
            messages = run_checks()
            call_command("check")
    finally:
        connection_created.disconnect(on_connect)
    assert messages == []
    assert opened == []
    assert all(connections[alias].connection is None for alias in connections)
    assert list(tmp_path.iterdir()) == []


def test_connection_probe_is_real(django_db_blocker):
    """The probe above notices a connection when one is opened."""
    opened = []

    def on_connect(sender, connection, **kwargs):
        opened.append(connection.alias)

    connection_created.connect(on_connect)
    try:
        with django_db_blocker.unblock():
            connections["default"].ensure_connection()
    finally:
        connection_created.disconnect(on_connect)
        connections["default"].close()
    assert opened == ["default"]


def test_e007_malformed_vfs_through_the_check_framework():
    with override_settings(LITESTREAM=manual(vfs={"replica": 42})):
        messages = run_checks()
    assert found(messages) == ["django_litestream.E007"]
    assert isinstance(messages[0], checks.Error)
    assert messages[0].hint
