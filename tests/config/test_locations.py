"""Two databases, one replica location: E008, and distinct auto-generated paths (W008)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from django_litestream import checks as ls_checks
from django_litestream import conf
from django_litestream.config import build as builder
from django_litestream.config import locations

SQLITE = "django.db.backends.sqlite3"
pytestmark = pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")


def build(litestream, databases):
    generated = builder.build(conf.parse(litestream, databases), {})
    return generated, yaml.safe_load(generated.render())


@pytest.fixture
def base_dir(tmp_path: Path) -> Path:
    return tmp_path / "myproject"


def test_the_specs_dbs_example_gets_two_replica_paths(base_dir):
    """{"path": "default"} and {"path": "/full/path/to/db.sqlite3"}: both named db.sqlite3."""
    databases = {"default": {"ENGINE": SQLITE, "NAME": base_dir / "db.sqlite3"}}
    spec = {"dbs": [{"path": "default"}, {"path": "/full/path/to/db.sqlite3"}]}
    generated, data = build(spec, databases)
    digest = hashlib.sha256(b"/full/path/to/db.sqlite3").hexdigest()[:8]
    assert [db["replica"]["path"] for db in data["dbs"]] == ["db.sqlite3", f"{digest}/db.sqlite3"]
    (warning,) = generated.problems
    assert warning.id == "django_litestream.W008"
    assert (
        f"derived distinct ones: LITESTREAM['dbs'][1] (/full/path/to/db.sqlite3) -> "
        f"{digest}/db.sqlite3."
    ) in warning.msg
    sharing = locations.collisions(conf.parse(spec, databases).dbs, data["dbs"], {})
    assert sharing == []


def test_derived_paths_use_the_alias_and_the_prefix(tmp_path):
    databases = {
        "default": {"ENGINE": SQLITE, "NAME": tmp_path / "a" / "db.sqlite3"},
        "archive": {"ENGINE": SQLITE, "NAME": tmp_path / "b" / "db.sqlite3"},
    }
    litestream = {"path_prefix": "/proj/", "dbs": [{"path": "default"}, {"path": "archive"}]}
    _, data = build(litestream, databases)
    assert [db["replica"]["path"] for db in data["dbs"]] == [
        "proj/db.sqlite3",
        "proj/archive/db.sqlite3",
    ]


def test_adding_a_database_never_moves_an_existing_replica(base_dir, tmp_path):
    databases = {
        "default": {"ENGINE": SQLITE, "NAME": base_dir / "db.sqlite3"},
        "cache": {"ENGINE": SQLITE, "NAME": base_dir / "cache.sqlite3"},
    }
    before = [{"path": "default"}, {"path": str(tmp_path / "x" / "db.sqlite3")}]
    after = [*before, {"path": "cache"}, {"path": str(tmp_path / "y" / "db.sqlite3")}]
    _, first = build({"dbs": before}, databases)
    _, second = build({"dbs": after}, databases)
    assert second["dbs"][:2] == first["dbs"]
    paths = [db["replica"]["path"] for db in second["dbs"]]
    assert len(set(paths)) == 4


def test_distinct_file_names_keep_the_specs_paths(base_dir):
    databases = {
        "default": {"ENGINE": SQLITE, "NAME": base_dir / "db.sqlite3"},
        "cache": {"ENGINE": SQLITE, "NAME": base_dir / "cache.sqlite3"},
    }
    generated, data = build({"dbs": [{"path": "default"}, {"path": "cache"}]}, databases)
    assert [db["replica"]["path"] for db in data["dbs"]] == ["db.sqlite3", "cache.sqlite3"]
    assert generated.problems == []


S3 = {"type": "s3", "bucket": "backups", "endpoint": "http://127.0.0.1:9000"}

COLLIDING = {
    "s3-same-bucket-and-path": (
        {**S3, "path": "/db.sqlite3"},
        {**S3, "path": "db.sqlite3/"},
        "s3://backups at http://127.0.0.1:9000/db.sqlite3",
    ),
    "s3-url-and-keys": (
        {"url": "s3://backups/app/db"},
        {"type": "s3", "bucket": "backups", "path": "app//db"},
        "s3://backups/app/db",
    ),
    "file-one-directory": (
        {"type": "file", "path": "/var/backups/db"},
        {"type": "file", "path": "/var/backups/./db/"},
        "file:///var/backups/db",
    ),
    "file-url-and-path": (
        {"url": "file:///var/backups/db"},
        {"path": "/var/backups/db"},  # no type: Litestream's default is file
        "file:///var/backups/db",
    ),
    "nats-same-bucket-other-paths": (
        {"type": "nats", "url": "nats://127.0.0.1:4222", "bucket": "b", "path": "one"},
        {"type": "nats", "url": "nats://127.0.0.1:4222", "bucket": "b", "path": "two"},
        "nats://127.0.0.1:4222/b",
    ),
    "sftp-same-host-and-path": (
        {"type": "sftp", "host": "backup:22", "user": "a", "path": "/srv/db"},
        {"url": "sftp://b@backup:22/srv/db"},
        "sftp://backup:22/srv/db",
    ),
}

DISTINCT = {
    "s3-other-path": ({**S3, "path": "a"}, {**S3, "path": "b"}),
    "s3-other-endpoint": ({**S3, "path": "a"}, {**S3, "path": "a", "endpoint": "http://x"}),
    "s3-other-bucket": ({**S3, "path": "a"}, {**S3, "bucket": "other", "path": "a"}),
    "file-other-directory": ({"type": "file", "path": "/a"}, {"type": "file", "path": "/b"}),
    "nats-other-bucket": (
        {"type": "nats", "url": "nats://h", "bucket": "a"},
        {"type": "nats", "url": "nats://h", "bucket": "b"},
    ),
}


def two_databases(tmp_path: Path, first: dict, second: dict) -> tuple[dict, dict]:
    databases = {
        "default": {"ENGINE": SQLITE, "NAME": str(tmp_path / "db.sqlite3")},
        "cache": {"ENGINE": SQLITE, "NAME": str(tmp_path / "cache.sqlite3")},
    }
    litestream = {
        "dbs": [{"path": "default", "replica": first}, {"path": "cache", "replica": second}]
    }
    return litestream, databases


@pytest.mark.parametrize("case", list(COLLIDING))
def test_e008_two_databases_one_location(case, tmp_path):
    first, second, where = COLLIDING[case]
    litestream, databases = two_databases(tmp_path, first, second)
    with override_settings(LITESTREAM=litestream, DATABASES=databases):
        (message,) = ls_checks.check_replica_locations()
    assert message.id == "django_litestream.E008"
    assert message.msg == (
        f"LITESTREAM['dbs'][0] ('default' ({tmp_path / 'db.sqlite3'})) and LITESTREAM['dbs'][1] "
        f"('cache' ({tmp_path / 'cache.sqlite3'})) replicate to the same location, {where}: "
        "each would overwrite the other's backup, and a restore would return whichever wrote "
        "last."
    )
    assert message.hint == "give each database its own replica path (for NATS, its own bucket)."


@pytest.mark.parametrize("case", list(DISTINCT))
def test_no_e008_for_distinct_locations(case, tmp_path):
    litestream, databases = two_databases(tmp_path, *DISTINCT[case])
    with override_settings(LITESTREAM=litestream, DATABASES=databases):
        assert ls_checks.check_replica_locations() == []


def test_e008_counts_environment_variables_as_litestream_expands_them(tmp_path, monkeypatch):
    monkeypatch.setenv("BUCKET_A", "same")
    monkeypatch.setenv("BUCKET_B", "same")
    first = {"type": "s3", "bucket": "$BUCKET_A", "path": "db"}
    second = {"type": "s3", "bucket": "${BUCKET_B}", "path": "db"}
    litestream, databases = two_databases(tmp_path, first, second)
    with override_settings(LITESTREAM=litestream, DATABASES=databases):
        assert [m.id for m in ls_checks.check_replica_locations()] == ["django_litestream.E008"]
    monkeypatch.setenv("BUCKET_B", "other")
    with override_settings(LITESTREAM=litestream, DATABASES=databases):
        assert ls_checks.check_replica_locations() == []


def test_e008_through_manage_py_check(tmp_path):
    litestream, databases = two_databases(tmp_path, *COLLIDING["file-one-directory"][:2])
    with (
        override_settings(LITESTREAM=litestream, DATABASES=databases),
        pytest.raises(SystemCheckError) as err,
    ):
        call_command("check")
    assert "django_litestream.E008" in str(err.value)
