"""``python -m django_litestream serve``: serve without django.setup(), same guarantees.

A real serve, the real binary and a file replica; the job's rows are looked up in a fresh
restore. An app whose ``ready()`` leaves a mark shows whether Django's apps were loaded.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from django_litestream.serve import exitcodes
from tests.support.project import Project

MARKER_APP = {
    "markerapp/__init__.py": "",
    "markerapp/apps.py": (
        "import os\n"
        "from django.apps import AppConfig\n"
        "class MarkerConfig(AppConfig):\n"
        "    name = 'markerapp'\n"
        "    def ready(self):\n"
        "        mark = os.path.join(os.path.dirname(__file__), '..', 'apps-loaded')\n"
        "        with open(mark, 'a') as f:\n"
        "            f.write(f'{os.getpid()}\\n')\n"
    ),
}
# The job run as the server: 40 single-row transactions, each id printed once committed.
JOB = (
    "import sqlite3, sys\n"
    "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
    "c.execute('CREATE TABLE IF NOT EXISTS acks (id INTEGER PRIMARY KEY)')\n"
    "for _ in range(40):\n"
    "    print(c.execute('INSERT INTO acks DEFAULT VALUES RETURNING id').fetchone()[0])\n"
)


@pytest.fixture
def marked(project: Project, file_replica: dict[str, str]) -> Project:
    project.configure({"dbs": [{"path": "default", "replica": file_replica}]})
    for name, text in MARKER_APP.items():
        (project.root / name).parent.mkdir(parents=True, exist_ok=True)
        (project.root / name).write_text(text)
    with (project.root / "settings.py").open("a") as settings:
        settings.write("INSTALLED_APPS = [*INSTALLED_APPS, 'markerapp']\n")
    return project


def entry(project: Project, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "django_litestream", *args],
        cwd=project.root,
        env={**project.env, **env},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def restored_ids(project: Project, tmp_path: Path) -> set[int]:
    copy = tmp_path / f"restored-{len(list(tmp_path.glob('restored-*')))}.db"
    result = project.run("litestream", "restore", "-o", str(copy), "default")
    assert result.returncode == 0, result.stderr
    conn = sqlite3.connect(copy)
    try:
        return {row[0] for row in conn.execute("SELECT id FROM acks")}
    finally:
        conn.close()


def test_serves_without_loading_the_apps_and_confirms_every_write(
    marked: Project, tmp_path: Path
) -> None:
    job = ("--", sys.executable, "-c", JOB, str(marked.db))
    result = entry(marked, "serve", *job, DJANGO_SETTINGS_MODULE="settings")
    assert result.returncode == 0, result.stderr
    assert "replica confirmed in sync" in result.stderr, result.stderr
    acked = {int(line) for line in result.stdout.split()}
    assert len(acked) == 40
    assert not (marked.root / "apps-loaded").exists()  # no django.setup()
    assert acked <= restored_ids(marked, tmp_path)
    # The control: manage.py loads every app before serve runs (so the mark can appear).
    result = marked.run("litestream", "serve", *job)
    assert result.returncode == 0, result.stderr
    assert (marked.root / "apps-loaded").exists()
    assert len(restored_ids(marked, tmp_path)) == 80


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ((), {}, "python -m django_litestream runs 'serve' only (got nothing)"),
        (("status",), {}, "python -m django_litestream runs 'serve' only (got 'status')"),
        (("serve",), {}, "no settings module. Set DJANGO_SETTINGS_MODULE"),
        (("--settings", "nope.settings", "serve"), {}, "'nope.settings' cannot be loaded"),
        (("serve", "--bogus"), {"DJANGO_SETTINGS_MODULE": "settings"}, "--bogus"),
    ],
)
def test_mistakes_are_one_line(
    marked: Project, args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    result = entry(marked, *args, **env)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_a_setting_the_binary_refuses_is_said_as_before_by_both_entries(
    project: Project, file_replica: dict[str, str]
) -> None:
    """The binary's verdict comes from a child forked before the exec (configcheck.py):
    the supervisor says it exactly as the Django side did, exit 78, and nothing else ran
    (no database created)."""
    refused = {**file_replica, "sync-interval": "10sec"}
    project.configure({"dbs": [{"path": "default", "replica": refused}]})
    said = (
        "LITESTREAM['dbs'][0]['replica']['sync-interval'] is '10sec', which Litestream cannot "
        "read as a duration"
    )
    job = ("--", sys.executable, "-c", "pass")
    via_manage = project.run("litestream", "serve", *job)
    via_m = entry(project, "serve", *job, DJANGO_SETTINGS_MODULE="settings")
    for result, prefix in ((via_manage, "CommandError: "), (via_m, "")):
        assert result.returncode == exitcodes.CONFIG, result.stderr
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith(f"{prefix}{said}"), line
        assert line.endswith("(django_litestream.E009)"), line
        assert "Traceback" not in result.stderr
    assert not project.db.exists()
