"""Development and CI without a bucket: the spec's minimal setting, no bucket variable.

Every developer laptop and CI job runs ``migrate``, ``runserver`` and ``test`` with
``{"dbs": [{"path": "default"}]}`` and no ``LITESTREAM_REPLICA_BUCKET``. A missing bucket
only matters where something replicates: W009 in ordinary checks, E006 under
``check --deploy`` and for the commands that hand the configuration to Litestream; the
commands that need no configuration (a replica URL given) do not ask for it.
"""

from __future__ import annotations

import signal
import subprocess

import httpx
import pytest

from tests.support.project import Project, count_rows, stop, wait_for, write_rows
from tests.support.storage import free_port

BUCKET_VARS = ("LITESTREAM_REPLICA_BUCKET", "AWS_BUCKET")
TESTS_MODULE = (
    "from django.test import TestCase\n"
    "class Smoke(TestCase):\n"
    "    def test_database(self):\n"
    "        from django.db import connection\n"
    "        with connection.cursor() as c:\n"
    "            c.execute('SELECT 1')\n"
    "            self.assertEqual(c.fetchone(), (1,))\n"
)


@pytest.fixture
def laptop(project: Project) -> Project:
    for name in BUCKET_VARS:
        project.env.pop(name, None)
    settings = project.configure({"dbs": [{"path": "default"}]})
    text = (project.root / "settings.py").read_text()
    (project.root / "settings.py").write_text(
        text.replace(
            '"testapp"]', '"testapp", "django.contrib.contenttypes", "django.contrib.auth"]'
        )
    )
    (project.root / "testapp" / "tests.py").write_text(TESTS_MODULE)
    return settings


def test_check_warns_and_check_deploy_fails(laptop: Project):
    result = laptop.run("check")
    assert result.returncode == 0, result.stderr
    assert "(django_litestream.W009)" in result.stderr
    assert "E006" not in result.stderr.split("(django_litestream.E006, also")[0]
    result = laptop.run("check", "--deploy")
    assert result.returncode == 1
    assert "(django_litestream.E006) LITESTREAM['dbs'][0] has no 'replica'" in result.stderr


def test_migrate_and_test_work(laptop: Project):
    result = laptop.run("migrate", "--noinput")
    assert result.returncode == 0, result.stderr
    assert "Applying auth.0001_initial... OK" in result.stdout
    result = laptop.run("test", "testapp")
    assert result.returncode == 0, result.stderr
    assert "Ran 1 test" in result.stderr and "OK" in result.stderr


def test_runserver_works(laptop: Project, tmp_path):
    port = free_port()
    proc = laptop.spawn(
        "runserver",
        "--noreload",
        f"127.0.0.1:{port}",
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "err").open("w"),
    )
    try:

        def answered() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/", timeout=2).text == "ok"
            except httpx.HTTPError:
                return proc.poll() is not None

        wait_for(answered, 60, "runserver to answer")
        assert proc.poll() is None, (tmp_path / "err").read_text()
    finally:
        stop(proc, signal.SIGINT)
    assert "W009" in (tmp_path / "err").read_text()


def test_replicating_commands_refuse_with_e006(laptop: Project):
    for argv in (["replicate"], ["databases"], ["restore", "-o", "/tmp/x.db", "default"]):
        result = laptop.run("litestream", *argv)
        assert result.returncode == 78, argv
        assert result.stderr.endswith("(django_litestream.E006)\n"), result.stderr


def test_commands_given_a_replica_url_need_no_bucket(laptop: Project, tmp_path):
    """restore / ltx / replicate with a replica URL read no configuration at all."""
    db = tmp_path / "app.db"
    write_rows(db, 7)
    url = f"file://{tmp_path / 'replica'}"
    result = laptop.run("litestream", "replicate", "-once", str(db), url)
    assert (result.returncode, result.stderr.count("E006")) == (0, 0), result.stderr
    result = laptop.run("litestream", "ltx", url)
    assert result.returncode == 0, result.stderr
    assert "E006" not in result.stderr and "W009" not in result.stderr
    out = tmp_path / "restored.db"
    result = laptop.run("litestream", "restore", "-o", str(out), url)
    assert result.returncode == 0, result.stderr
    assert count_rows(out) == 7
