"""Settings from outside the project's own cases (issue 27): older READMEs, Litestream's
reference examples translated into the setting, and mistakes users make.

Each case goes through ``check`` (in-process), through what the commands print or build,
and through the real binary: a setting ``check`` passes must not be refused by
Litestream, and one Litestream runs must not be refused by ``check``.
"""

from __future__ import annotations

import datetime
import decimal
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from django.core import checks
from django.test import override_settings

from django_litestream import checks as ls_checks
from django_litestream import conf
from django_litestream.config import build as builder
from django_litestream.config import locations
from django_litestream.config.types import Generated
from tests.support.project import count_rows, write_rows

LITESTREAM = str(Path(sys.executable).parent / "litestream")
SQLITE = "django.db.backends.sqlite3"
DB = "/tmp/django-litestream-tests.db"
pytestmark = pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("AWS_CA_BUNDLE", "AWS_BUCKET", "LITESTREAM_REPLICA_BUCKET", "DATA_DIR"):
        monkeypatch.delenv(name, raising=False)


def run_checks(litestream, databases=None) -> list[checks.CheckMessage]:
    databases = databases or {"default": {"ENGINE": SQLITE, "NAME": DB}}
    with override_settings(LITESTREAM=litestream, DATABASES=databases):
        return ls_checks.check_settings()


def errors(messages) -> list[checks.CheckMessage]:
    return [m for m in messages if m.level >= checks.ERROR]


def generated(litestream, databases=None) -> Generated:
    databases = databases or {"default": {"ENGINE": SQLITE, "NAME": DB}}
    return builder.build(conf.parse(litestream, databases), os.environ)


def binary(*args: str, env=None, cwd=None, timeout=60) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    return subprocess.run(
        [LITESTREAM, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**base, **(env or {})},
        cwd=cwd,
    )


def config_file(gen: Generated, tmp: Path) -> Path:
    path = tmp / "litestream.yml"
    path.write_text(gen.render())
    return path


def file_replica(tmp: Path, name: str = "replica") -> dict:
    return {"type": "file", "path": str(tmp / name)}


# -- 1. durations as datetime.timedelta ---------------------------------------------------

TD = datetime.timedelta


@pytest.mark.parametrize(
    ("value", "go"),
    [(TD(seconds=10), "10s"), (TD(minutes=90), "1h30m"), (TD(milliseconds=1500), "1s500ms")],
)
@pytest.mark.parametrize(
    "where", ["sync_interval", "shutdown_sync_timeout", "snapshot.interval", "replica"]
)
def test_timedelta_durations_become_go_durations(where, value, go, tmp_path):
    replica = file_replica(tmp_path)
    litestream: dict = {"dbs": [{"path": "default", "replica": replica}]}
    if where == "replica":
        replica["sync-interval"] = value
    elif where == "snapshot.interval":
        litestream["snapshot"] = {"interval": value}
    else:
        litestream[where] = value
    assert run_checks(litestream) == []  # the binary judged it too
    data = yaml.safe_load(generated(litestream).render())
    written = {
        "replica": lambda: data["dbs"][0]["replica"]["sync-interval"],
        "snapshot.interval": lambda: data["snapshot"]["interval"],
    }.get(where, lambda: data[where.replace("_", "-")])()
    assert written == go


@pytest.mark.parametrize(
    "value",
    [datetime.date(2024, 1, 1), decimal.Decimal("1"), {1, 2}, b"x", object()],
    ids=["date", "decimal", "set", "bytes", "object"],
)
def test_values_litestream_cannot_read_are_e001_naming_the_key(value):
    litestream = {
        "dbs": [{"path": "default", "replica": {"type": "file", "path": "/r", "x": value}}]
    }
    (error,) = run_checks(litestream)
    assert error.id == "django_litestream.E001"
    assert error.msg.startswith("LITESTREAM['dbs'][0]['replica']['x'] is ")


def test_serve_sections_read_a_timedelta_as_seconds():
    settings = conf.parse(
        {"serve": {"graceful_timeout": TD(seconds=3)}, "health": {"max_lag_seconds": TD(1)}}, {}
    )
    assert settings.serve["graceful_timeout"] == 3.0
    assert settings.health["max_lag_seconds"] == 86400.0


def test_config_command_prints_a_timedelta_as_a_go_duration(project, tmp_path):
    project.configure(
        "{'sync_interval': __import__('datetime').timedelta(seconds=10), "
        f"'dbs': [{{'path': 'default', 'replica': {file_replica(tmp_path)!r}}}]}}"
    )
    shown = project.run("litestream", "config")
    assert shown.returncode == 0, shown.stderr
    assert "sync-interval: 10s" in shown.stdout and "Traceback" not in shown.stderr
    checked = project.run("check")
    assert checked.returncode == 0 and "Traceback" not in checked.stderr


# -- 2. every replica URL form Litestream reads --------------------------------------------

ARN = "arn:aws:s3:us-east-2:123456789012:accesspoint/my-access-point"


def test_s3_access_point_url_is_read_as_litestream_reads_it(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    url = f"s3://{ARN}/db"
    litestream = {"dbs": [{"path": "default", "replica": {"url": url}}]}
    assert run_checks(litestream) == []
    where = locations.resolve({"url": url}, {})
    assert (where.kind, where.host, where.path) == ("s3", ARN, "db")
    listed = binary(
        "databases", "-json", "-config", str(config_file(generated(litestream), tmp_path))
    )
    assert listed.returncode == 0 and json.loads(listed.stdout)[0]["replica"] == "s3"
    # the same access point and key for two databases is one location (E008)
    databases = {
        "default": {"ENGINE": SQLITE, "NAME": DB},
        "other": {"ENGINE": SQLITE, "NAME": str(tmp_path / "other.db")},
    }
    two = {
        "dbs": [
            {"path": "default", "replica": {"url": url}},
            {"path": "other", "replica": {"url": url}},
        ]
    }
    with override_settings(LITESTREAM=two, DATABASES=databases):
        assert [m.id for m in ls_checks.check_replica_locations()] == ["django_litestream.E008"]
    apart = {**two, "dbs": [two["dbs"][0], {"path": "other", "replica": {"url": url + "2"}}]}
    with override_settings(LITESTREAM=apart, DATABASES=databases):
        assert ls_checks.check_replica_locations() == []


@pytest.mark.parametrize(
    "url",
    [
        f"s3://{ARN}",
        f"s3://{ARN}/db?region=us-east-2",
        "s3://bucket/db?endpoint=http://[::1]:9000&forcePathStyle=true",
        "s3://[::1]:9000/db",
        "s3://host:notaport/db",
        "s3://[::1/db",
        "sftp://user:p%40ss@host:2222/backups/db",
        "webdavs://dav.example.com/backups",
        "nats://127.0.0.1:4222",
        "file://relative/replica",
    ],
)
def test_every_replica_url_form_is_read_without_an_exception(url):
    litestream = {"dbs": [{"path": "default", "replica": {"url": url}}]}
    for message in run_checks(litestream):  # findings are fine; a traceback is not
        assert message.id.startswith("django_litestream.")
    generated(litestream).render()
    locations.describe({"url": url}, {})


# -- 3. a directory of databases with meta-dir: judged as replicate builds it ---------------


def wal_database(path: Path, rows: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_rows(path, rows)


def test_dir_with_meta_dir_is_judged_as_replicate_builds_it(tmp_path):
    dbs = tmp_path / "dbs"
    wal_database(dbs / "a.db", 3)
    wal_database(dbs / "sub" / "b.db", 5)
    entry = {
        "dir": str(dbs),
        "pattern": "*.db",
        "recursive": True,
        "meta-dir": str(tmp_path / "meta"),
        "replica": file_replica(tmp_path),
    }
    assert run_checks({"dbs": [entry]}) == []
    # Litestream runs it: both databases replicated, their state under meta-dir.
    path = config_file(generated({"dbs": [entry]}), tmp_path)
    ran = binary("replicate", "-once", "-config", str(path))
    assert ran.returncode == 0, ran.stderr
    out = tmp_path / "b.db"
    restored = binary("restore", "-o", str(out), f"file://{tmp_path / 'replica' / 'sub' / 'b.db'}")
    assert restored.returncode == 0, restored.stderr
    assert count_rows(out) == 5
    assert (tmp_path / "meta" / "sub" / "b.db-litestream").is_dir()
    # Both meta-dir and meta-path: replicate refuses, and so does check.
    both = {**entry, "meta-path": str(tmp_path / "m2")}
    refused = binary(
        "replicate", "-once", "-config", str(config_file(generated({"dbs": [both]}), tmp_path))
    )
    assert refused.returncode != 0 and "cannot specify both" in refused.stderr
    (error,) = errors(run_checks({"dbs": [both]}))
    assert error.id == "django_litestream.E009" and "cannot specify both" in error.msg


# -- 4. keys only replicate's start reads -----------------------------------------------------


@pytest.mark.parametrize("addr", [9090, "9090", "localhost"])
def test_addr_without_port_is_e009_like_replicate_refuses_it(addr, tmp_path):
    db = tmp_path / "app.db"
    write_rows(db, 2)
    databases = {"default": {"ENGINE": SQLITE, "NAME": str(db)}}
    litestream = {"addr": addr, "dbs": [{"path": "default", "replica": file_replica(tmp_path)}]}
    (error,) = run_checks(litestream, databases)
    assert error.id == "django_litestream.E009"
    assert error.msg.startswith(f"LITESTREAM['addr'] is {addr!r}, which Litestream 0.5 refuses")
    assert "'127.0.0.1:9090'" in error.hint
    path = config_file(generated(litestream, databases), tmp_path)
    started = binary("replicate", "-once", "-config", str(path))
    assert started.returncode != 0 and "must specify port for bind address" in started.stderr
    # with a port, both agree it runs
    fine = {**litestream, "addr": "127.0.0.1:0"}
    assert run_checks(fine, databases) == []
    path = config_file(generated(fine, databases), tmp_path)
    assert binary("replicate", "-once", "-config", str(path)).returncode == 0


# -- 6. a bin_path that is not Litestream ------------------------------------------------------


NOT_LITESTREAM = "#!/bin/sh\necho \"Unknown command: '$1'\"\nexit 1\n"


@pytest.mark.parametrize("program", ["python", "stand-in"])
def test_bin_path_that_is_not_litestream_is_e012_naming_bin_path(program, tmp_path):
    if program == "python":
        exe = sys.executable
    else:  # a stand-in: a program that is not Litestream (like an executable manage.py)
        script = tmp_path / "not-litestream"
        script.write_text(NOT_LITESTREAM)
        script.chmod(0o755)
        exe = str(script)
    litestream = {"bin_path": exe, "dbs": [{"path": "default", "replica": file_replica(tmp_path)}]}
    (error,) = run_checks(litestream)
    assert error.id == "django_litestream.E012"
    assert error.msg.startswith(f"LITESTREAM['bin_path'] is {exe}, which does not answer like")


def test_bin_path_not_litestream_stops_the_commands_with_78(project, tmp_path):
    script = tmp_path / "not-litestream"
    script.write_text(NOT_LITESTREAM)
    script.chmod(0o755)
    project.configure(
        {"bin_path": str(script), "dbs": [{"path": "default", "replica": file_replica(tmp_path)}]}
    )
    ran = project.run("litestream", "databases")
    assert ran.returncode == 78, ran.stderr
    assert f"LITESTREAM['bin_path'] is {script}, which does not answer like" in ran.stderr
    assert "Traceback" not in ran.stderr


# -- 7. credentials in replica URLs ---------------------------------------------------------

URLS = {
    "sftp": ("sftp://alice:s3cretPW@127.0.0.1:2222/backups/db", "s3cretPW", "password"),
    "webdavs": (
        "webdavs://bob:dav-Pass1@dav.example.com/backups/b",
        "dav-Pass1",
        "webdav-password",
    ),
    "nats": ("nats://carol:natsPW9@127.0.0.1:4222/bucket", "natsPW9", "password"),
    "encoded": ("sftp://dave:p%40ss%3Aw0rd@127.0.0.1:2222/backups/d", "p@ss:w0rd", "password"),
}


def test_url_credentials_never_appear_in_config(project, tmp_path):
    dbs = []
    for i, (url, _secret, _key) in enumerate(URLS.values()):
        dbs.append({"path": str(tmp_path / f"db{i}.sqlite3"), "replica": {"url": url}})
    litestream = {"dbs": dbs}
    gen = generated(litestream)
    text = gen.render()
    for name, (_url, secret, _key) in URLS.items():
        assert secret not in text and "p%40ss" not in text, name
    replicas = [entry["replica"] for entry in yaml.safe_load(text)["dbs"]]
    assert replicas[0]["url"] == "sftp://alice@127.0.0.1:2222/backups/db"
    assert replicas[2] == {
        "url": "nats://127.0.0.1:4222/bucket",
        "username": "carol",
        "password": "$DJANGO_LITESTREAM_SECRET_2",
    }
    for replica, (_url, secret, key) in zip(replicas, URLS.values(), strict=True):
        name = replica[key].removeprefix("$")
        assert gen.secret_values[name] == secret
    # the binary reads the moved credentials as it read the URL's
    listed = binary(
        "databases", "-json", "-config", str(config_file(gen, tmp_path)), env=gen.secret_env
    )
    assert listed.returncode == 0, listed.stderr
    # the command people paste into bug reports
    project.configure(litestream)
    shown = project.run("litestream", "config")
    assert shown.returncode == 0, shown.stderr
    for _url, secret, _key in URLS.values():
        assert secret not in shown.stdout + shown.stderr
        assert "p%40ss" not in shown.stdout + shown.stderr


class NatsRecorder:
    """A stand-in, not a NATS server: it records the CONNECT line a client sends, then
    refuses it (no NATS server is installable here; what is checked is what the client
    sends)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connects: list[dict] = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(
                    b'INFO {"server_id":"recorder","version":"2.10.0","proto":1,'
                    b'"max_payload":1048576,"auth_required":true,"jetstream":true}\r\n'
                )
                conn.settimeout(5)
                data = b""
                try:
                    while b"\r\n" not in data and (chunk := conn.recv(4096)):
                        data += chunk
                except OSError:
                    pass
                line = data.split(b"\r\n")[0].decode(errors="replace")
                if line.startswith("CONNECT "):
                    self.connects.append(json.loads(line[len("CONNECT ") :]))
                conn.sendall(b"-ERR 'Authorization Violation'\r\n")

    def close(self) -> None:
        self.sock.close()


def test_nats_url_credentials_reach_litestream(project, tmp_path):
    recorder = NatsRecorder()
    try:
        db = project.root / "db.sqlite3"
        write_rows(db, 1)
        url = f"nats://carol:natsPW9@127.0.0.1:{recorder.port}/bucket"
        project.configure({"dbs": [{"path": "default", "replica": {"url": url}}]})
        ran = project.run("litestream", "replicate", "-once", "--adopt-local", timeout=60)
        assert ran.returncode != 0  # the recorder refuses every client
        assert "natsPW9" not in ran.stdout + ran.stderr
        assert recorder.connects, ran.stderr
        assert recorder.connects[0].get("user") == "carol"
        assert recorder.connects[0].get("pass") == "natsPW9"
    finally:
        recorder.close()


def test_a_url_password_litestream_ignores_is_left_out_and_said():
    litestream = {"dbs": [{"path": "default", "replica": {"url": "s3://key:SeCrEt99@bucket/db"}}]}
    gen = generated(litestream)
    assert "SeCrEt99" not in gen.render()
    (warning,) = [p for p in gen.problems if p.id == "django_litestream.W032"]
    assert "SeCrEt99" not in str(warning) and "s3:// URL" in warning.msg
    given = {"dbs": [{"path": "default", "replica": {"url": URLS["sftp"][0], "password": "$PW"}}]}
    gen = generated(given)
    assert gen.data["dbs"][0]["replica"]["password"] == "$PW"  # the key wins, as in Litestream
    assert [p.id for p in gen.problems] == ["django_litestream.W032"]


# -- 8. the same key spelled twice -------------------------------------------------------------


@pytest.mark.parametrize(
    ("litestream", "where"),
    [
        ({"sync-interval": "1s", "sync_interval": "5s", "dbs": []}, "LITESTREAM has"),
        ({"bin-path": LITESTREAM, "bin_path": LITESTREAM, "dbs": []}, "LITESTREAM has"),
        (
            {"dbs": [{"path": "default", "busy_timeout": "1s", "busy-timeout": "2s"}]},
            "LITESTREAM['dbs'][0] has",
        ),
        (
            {
                "dbs": [
                    {
                        "path": "default",
                        "replica": {
                            "type": "file",
                            "path": "/r",
                            "sync-interval": "1s",
                            "sync_interval": "5s",
                        },
                    }
                ]
            },
            "LITESTREAM['dbs'][0]['replica'] has",
        ),
    ],
    ids=["top", "own-key", "db", "replica"],
)
def test_a_key_spelled_twice_is_e001_naming_both(litestream, where):
    (error,) = run_checks(litestream)
    assert error.id == "django_litestream.E001"
    assert error.msg.startswith(where) and "the same setting" in error.msg
    spellings = [
        k
        for k in (
            "sync-interval",
            "sync_interval",
            "bin-path",
            "bin_path",
            "busy_timeout",
            "busy-timeout",
        )
        if k in error.msg
    ]
    assert len(spellings) == 2


# -- 9. a top-level bucket is the auto-generated replica's -----------------------------------


def test_top_level_bucket_is_the_auto_replicas_bucket(project, s3_server, monkeypatch):
    for name in ("LITESTREAM_REPLICA_BUCKET", "AWS_BUCKET"):
        monkeypatch.delenv(name, raising=False)
    bucket = s3_server.new_bucket()
    litestream = {
        "bucket": bucket,
        "region": s3_server.region,
        "endpoint": s3_server.base_url,
        "force-path-style": True,
        "access-key-id": s3_server.access_key_id,
        "secret-access-key": s3_server.secret_access_key,
        "dbs": [{"path": "default"}],
    }
    assert run_checks(litestream) == []
    with override_settings(LITESTREAM=litestream):
        assert ls_checks.check_deploy() == []
    assert generated(litestream).data["dbs"][0]["replica"]["bucket"] == bucket
    env = {
        k: v for k, v in project.env.items() if k not in ("LITESTREAM_REPLICA_BUCKET", "AWS_BUCKET")
    }
    project.env = env
    project.configure(litestream)
    write_rows(project.db, 7)
    ran = project.run("litestream", "replicate", "-once")
    assert ran.returncode == 0, ran.stderr
    out = project.root / "restored.db"
    restored = project.run("litestream", "restore", "-o", str(out), "default")
    assert restored.returncode == 0, restored.stderr
    assert count_rows(out) == 7


# -- 11. lesser, same family ------------------------------------------------------------------


def test_empty_extend_dbs_is_only_a_warning(tmp_path):
    litestream = {"extend_dbs": [], "dbs": [{"path": "default", "replica": file_replica(tmp_path)}]}
    assert [m.id for m in run_checks(litestream)] == ["django_litestream.W012"]
    full = {**litestream, "extend_dbs": [{"path": "/x.db"}]}
    assert [m.id for m in errors(run_checks(full))] == ["django_litestream.E013"]


@pytest.mark.parametrize("key", ["DBS", "Dbs"])
def test_misspelled_dbs_in_another_case_is_e011(key):
    (error,) = errors(run_checks({key: [{"path": "default"}]}))
    assert error.id == "django_litestream.E011"
    assert error.msg.startswith(f"LITESTREAM['{key}'] looks like a misspelled 'dbs'")


def test_misspelled_type_of_a_replica_without_type_is_e011(tmp_path):
    litestream = {
        "dbs": [{"path": "default", "replica": {"typ": "s3", "bucket": "b", "path": "db"}}]
    }
    (error,) = errors(run_checks(litestream))
    assert error.id == "django_litestream.E011"
    assert error.msg == (
        "LITESTREAM['dbs'][0]['replica']['typ'] looks like a misspelled 'type': as written, the "
        "replica has neither 'type' nor 'url', and Litestream makes it a file replica in the "
        "directory 'db' (relative to where it runs)."
    )
    # the binary: a file replica, as said
    listed = binary(
        "databases", "-json", "-config", str(config_file(generated(litestream), tmp_path))
    )
    assert json.loads(listed.stdout)[0]["replica"] == "file"


def test_sftp_port_key_hint_says_host_colon_port():
    replica = {"type": "sftp", "host": "h", "user": "u", "path": "/p", "port": 2222}
    (warning,) = run_checks({"dbs": [{"path": "default", "replica": replica}]})
    assert warning.id == "django_litestream.W001"
    assert "'host' ('sftp.example.com:2222')" in warning.hint


def test_variables_in_database_paths_are_expanded_like_litestream(tmp_path, monkeypatch):
    litestream = {"dbs": [{"path": "${DATA_DIR}/db.sqlite3", "replica": file_replica(tmp_path)}]}
    (error,) = run_checks(litestream)
    assert error.id == "django_litestream.E001"
    assert "DATA_DIR is not set here" in error.msg
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    assert run_checks(litestream) == []
    gen = generated(litestream)
    want = str(tmp_path / "data" / "db.sqlite3")
    assert gen.data["dbs"][0]["path"] == want
    listed = binary("databases", "-json", "-config", str(config_file(gen, tmp_path)))
    assert json.loads(listed.stdout)[0]["path"] == want


def test_a_database_path_with_a_variable_under_serve_restores_to_the_real_path(project, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    source = tmp_path / "source.db"
    write_rows(source, 4)
    replica = file_replica(tmp_path)
    assert binary("replicate", "-once", str(source), f"file://{replica['path']}").returncode == 0
    project.configure({"dbs": [{"path": "$DATA_DIR/app.db", "replica": replica}]})
    ran = project.run(
        "litestream", "serve", "--", sys.executable, "-c", "pass", env={"DATA_DIR": str(data)}
    )
    assert ran.returncode == 0, ran.stderr
    assert count_rows(data / "app.db") == 4
    assert not (project.root / "$DATA_DIR").exists()
    assert not any("$" in p.name for p in project.root.iterdir())
    conn = sqlite3.connect(data / "app.db")
    conn.close()
