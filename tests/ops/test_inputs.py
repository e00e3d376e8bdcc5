"""Mistakes with verify, status, restore -timestamp and the alert webhook: one line each.

Every case is a real ``manage.py`` process; the line must name the problem and the fix, and
the exit code must be the documented one (docs/commands.rst and docs/serve.rst).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.operations import one_line, served_rows
from tests.support.project import Project

Setup = Callable[[Project, Path], list[str]]


def file_settings(project: Project, tmp: Path, **extra: Any) -> None:
    replica = {"type": "file", "path": str(tmp / "replica")}
    project.configure({"dbs": [{"path": "default", "replica": replica}], **extra})


def plain(*argv: str, **extra: Any) -> Setup:
    def setup(project: Project, tmp: Path) -> list[str]:
        file_settings(project, tmp, **extra)
        return [a.replace("TMP", str(tmp)) for a in argv]

    return setup


def with_backup(*argv: str) -> Setup:
    def setup(project: Project, tmp: Path) -> list[str]:
        file_settings(project, tmp)
        served_rows(project, 2)
        return [a.replace("TMP", str(tmp)) for a in argv]

    return setup


def no_replica(*argv: str) -> Setup:
    def setup(project: Project, tmp: Path) -> list[str]:
        project.configure({"dbs": [{"path": "default"}]})  # the auto S3 replica, no bucket
        return list(argv)

    return setup


def unreachable(*argv: str) -> Setup:
    def setup(project: Project, tmp: Path) -> list[str]:
        file_settings(project, tmp)
        served_rows(project, 2)
        (tmp / "replica").rename(tmp / "replica.moved")
        (tmp / "replica").write_text("a file where the directory was")
        return [a.replace("TMP", str(tmp)) for a in argv]

    return setup


def existing_output(*argv: str) -> Setup:
    def setup(project: Project, tmp: Path) -> list[str]:
        file_settings(project, tmp)
        (tmp / "out.db").write_bytes(b"not empty")
        return [a.replace("TMP", str(tmp)) for a in argv]

    return setup


CASES: dict[str, tuple[Setup, int, str]] = {
    "verify an unknown alias": (
        plain("litestream", "verify", "defualt"),
        2,
        "verify: 'defualt' is not a database in LITESTREAM['dbs'] (configured: default). "
        "Give a DATABASES alias or a path from that list.",
    ),
    "status an unknown alias": (
        plain("litestream", "status", "-json", "other"),
        2,
        "status: 'other' is not a database in LITESTREAM['dbs'] (configured: default).",
    ),
    "verify --timeout not a number": (
        plain("litestream", "verify", "--timeout", "soon"),
        2,
        "verify: argument --timeout/-timeout: invalid float value: 'soon'. Run 'python "
        "manage.py litestream verify -h'.",
    ),
    "verify an unknown flag": (
        plain("litestream", "verify", "--fast"),
        2,
        "verify: unrecognized arguments: --fast. Run 'python manage.py litestream verify -h'.",
    ),
    "status -timeout 0": (
        plain("litestream", "status", "-timeout", "0"),
        2,
        "status: -timeout must be between 0 and 600 seconds, not 0.",
    ),
    "verify with no database": (
        lambda project, tmp: (project.configure({"dbs": []}), ["litestream", "verify"])[1],
        78,
        "'verify' has no database to look at: LITESTREAM['dbs'] lists none.",
    ),
    "verify with no replica configured": (
        no_replica("litestream", "verify"),
        78,
        "(django_litestream.E006)",
    ),
    "status with no replica configured": (
        no_replica("litestream", "status"),
        78,
        "(django_litestream.E006)",
    ),
    "restore -timestamp garbage": (
        plain("litestream", "restore", "-timestamp", "next tuesday", "-o", "TMP/x.db", "default"),
        2,
        "restore -timestamp: Cannot read 'next tuesday' as a time; give an ISO 8601 time",
    ),
    "restore -timestamp an impossible time": (
        plain(
            "litestream", "restore", "-timestamp", "2026-13-45 25:99", "-o", "TMP/x.db", "default"
        ),
        2,
        "restore -timestamp: Cannot read '2026-13-45 25:99' as a time;",
    ),
    "restore -timestamp before the oldest backup": (
        with_backup("litestream", "restore", "-timestamp", "-3d", "-o", "TMP/x.db", "default"),
        66,
        "is before the oldest backup the replica holds (from ",
    ),
    "restore -timestamp from an empty replica": (
        plain("litestream", "restore", "-timestamp", "-1h", "-o", "TMP/x.db", "default"),
        66,
        "holds no backup to restore.",
    ),
    "restore over an existing file": (
        existing_output("litestream", "restore", "-o", "TMP/out.db", "default"),
        73,
        "already exists and restore would overwrite it. Restore elsewhere with -o PATH, or add "
        "-force once nothing uses it (stop the application first).",
    ),
    "restore -timestamp from an unreachable replica": (
        unreachable("litestream", "restore", "-timestamp", "-1m", "-o", "TMP/x.db", "default"),
        69,
        "could not be listed (open ",
    ),
    "serve --alert-webhook not a URL": (
        plain("litestream", "serve", "--alert-webhook", "hooks.example.com/T0"),
        2,
        "serve: --alert-webhook must be an http:// or https:// URL such as "
        "'https://hooks.example.com/T0/B1'; it is 'hooks.example.com/T0'.",
    ),
    "the alert_webhook setting not a URL": (
        plain("litestream", "serve", serve={"alert_webhook": "ftp://files.example.com/x"}),
        78,
        "LITESTREAM['serve']['alert_webhook'] must be an http:// or https:// URL",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_one_line_and_a_documented_code(project: Project, tmp_path: Path, case: str) -> None:
    setup, code, expected = CASES[case]
    argv = setup(project, tmp_path)
    result = project.run(*argv)
    assert result.returncode == code, result.stderr + result.stdout
    assert expected in one_line(result)


def test_verify_an_unreachable_replica_is_one_failed_line(project: Project, tmp_path) -> None:
    argv = unreachable("litestream", "verify")(project, tmp_path)
    result = project.run(*argv)
    assert result.returncode == 65
    assert result.stderr == ""
    (line,) = result.stdout.splitlines()
    assert line.startswith(
        f"'default' ({project.db}): failed: the replica could not be read: open "
    )
