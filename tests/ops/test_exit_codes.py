"""The commands' exit codes as the docs give them, for cases from outside (issue 27): a
first-boot restore with a point in time, an empty ``-o``, a database that is not
configured, a ``bin_path`` that cannot be run or is not Litestream."""

from __future__ import annotations

import sys

import pytest

from tests.support.project import Project, write_rows


@pytest.mark.parametrize("source", ["default", "url"])
def test_timestamp_with_if_replica_exists_on_an_empty_replica_exits_0(
    project: Project, file_replica, tmp_path, source
):
    """A first-boot script restores 'as of' a time only when there is a backup."""
    (tmp_path / "replica").mkdir()
    project.configure({"dbs": [{"path": "default", "replica": file_replica}]})
    out = tmp_path / "out.db"
    what = "default" if source == "default" else f"file://{file_replica['path']}"
    ran = project.run(
        "litestream", "restore", "-timestamp", "-5m", "-if-replica-exists", "-o", str(out), what
    )
    assert ran.returncode == 0, ran.stderr
    assert "holds no backup yet; nothing restored (-if-replica-exists)" in ran.stderr
    assert not out.exists()
    # without the flag it stays "no backup" (66)
    ran = project.run("litestream", "restore", "-timestamp", "-5m", "-o", str(out), what)
    assert ran.returncode == 66, ran.stderr


def test_empty_output_path_is_a_usage_error(project: Project, file_replica):
    """Litestream reads an empty -o as the database's own path: with -force, over the live
    file (past the refusal to restore over a running serve's database)."""
    project.configure({"dbs": [{"path": "default", "replica": file_replica}]})
    write_rows(project.db, 3)
    before = project.db.read_bytes()
    for flags in (["-o", "", "-force"], ["-o="]):
        ran = project.run("litestream", "restore", *flags, "default")
        assert ran.returncode == 2, ran.stderr
        assert "restore -o needs a file path" in ran.stderr
        assert project.db.read_bytes() == before


def test_unknown_database_is_a_usage_error_like_status(project: Project, file_replica, tmp_path):
    project.configure({"dbs": [{"path": "default", "replica": file_replica}]})
    ran = project.run("litestream", "restore", "-o", str(tmp_path / "x.db"), "nosuch")
    assert ran.returncode == 2, ran.stderr
    assert "restore: 'nosuch' is not a database in LITESTREAM['dbs'] (configured: default)" in (
        ran.stderr
    )
    status = project.run("litestream", "status", "nosuch")
    assert status.returncode == 2
    assert "'nosuch' is not a database in LITESTREAM['dbs'] (configured: default)" in status.stderr


@pytest.mark.parametrize("kind", ["not-executable", "directory"])
def test_bin_path_not_executable_or_a_directory_exits_78(
    project: Project, file_replica, tmp_path, kind
):
    if kind == "directory":
        bin_path = tmp_path / "bin"
        bin_path.mkdir()
    else:
        bin_path = tmp_path / "litestream"
        bin_path.write_text("#!/bin/sh\n")
        bin_path.chmod(0o644)
    project.configure(
        {"bin_path": str(bin_path), "dbs": [{"path": "default", "replica": file_replica}]}
    )
    # (the pass-through commands: tests/ops/test_passthrough.py, test_bad_input)
    ran = project.run("litestream", "serve", "--", sys.executable, "-c", "pass")
    assert ran.returncode == 78, ran.stderr
    assert f"LITESTREAM['bin_path'] is {bin_path}" in ran.stderr
    assert "Traceback" not in ran.stderr


GARBAGE = '#!/bin/sh\nprintf "\\033[31mRED\\001\\002\\377\\376garbage\\033]0;title\\007\\n"\n'


def test_a_bin_path_that_prints_garbage_is_e012_and_nothing_raw_reaches_the_terminal(
    project: Project, file_replica, tmp_path
):
    """A stand-in (named 'garbage'): a program printing control characters and bytes that
    are not UTF-8, where Litestream should be."""
    garbage = tmp_path / "garbage"
    garbage.write_text(GARBAGE)
    garbage.chmod(0o755)
    project.configure(
        {"bin_path": str(garbage), "dbs": [{"path": "default", "replica": file_replica}]}
    )
    for args in (["version"], ["databases"]):
        ran = project.run("litestream", *args)
        assert ran.returncode == 78, (args, ran.stderr)
        assert "django_litestream.E012" in ran.stderr
        shown = ran.stdout + ran.stderr
        assert not any(c in shown for c in "\x1b\x07\x01\x02"), repr(shown)
