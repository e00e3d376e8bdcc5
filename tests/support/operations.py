"""Helpers for the operations tests (verify, status, health, alerts, point-in-time restore).

``Serving`` runs ``manage.py litestream serve`` in the background with its output in files
and, after the test, makes sure nothing it started is left running. Writes that must reach
the replica are made under ``serve`` (``served_rows``): a ``replicate -once`` after a
connection closed would find the WAL checkpointed away, which the guard rightly refuses.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.support import SIGSERVER
from tests.support.project import Project, stop, wait_for


class Serving:
    def __init__(self, project: Project, tmp: Path, *command: str, opts: tuple[str, ...] = ()):
        name = os.urandom(3).hex()
        self.log = tmp / f"signals-{name}.log"
        self.log.touch()
        self.err = tmp / f"serve-{name}.err"
        self.out_file = (tmp / f"serve-{name}.out").open("w")
        self.err_file = self.err.open("w")
        argv = list(command) or [sys.executable, SIGSERVER, str(self.log)]
        self.proc = project.spawn(
            "litestream", "serve", *opts, "--", *argv, stdout=self.out_file, stderr=self.err_file
        )

    def stderr(self) -> str:
        self.err_file.flush()
        return self.err.read_text()

    def wait_log(self, word: str = "ready", timeout: float = 60) -> Serving:
        wait_for(
            lambda: word in self.log.read_text() or self.proc.poll() is not None,
            timeout,
            f"{word!r} from the server",
        )
        assert self.proc.poll() is None, self.stderr()
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int:
        return stop(self.proc, sig)

    def kill_all(self) -> None:
        try:
            found = [psutil.Process(self.proc.pid)]
            found += found[0].children(recursive=True)
        except psutil.Error:
            found = []
        for proc in found:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(found, timeout=10)
        self.out_file.close()
        self.err_file.close()


@pytest.fixture
def serving(project: Project, tmp_path: Path) -> Iterator[Any]:
    """``serving(*command, opts=())`` starts serve; everything is killed after the test."""
    started: list[Serving] = []

    def start(*command: str, opts: tuple[str, ...] = ()) -> Serving:
        run = Serving(project, tmp_path, *command, opts=opts)
        started.append(run)
        return run

    yield start
    for run in started:
        run.kill_all()


def served_rows(project: Project, n: int = 0, table: str = "rows", **more: int) -> None:
    """Insert ``n`` rows into ``table`` (and ``more``: table=count) in one job under serve,
    which confirms them in the replica before it exits."""
    counts = {table: n, **more} if n else more
    code = (
        "import sqlite3, sys, json; c = sqlite3.connect(sys.argv[1], timeout=10)\n"
        "for t, n in json.loads(sys.argv[2]).items():\n"
        "    c.execute(f'CREATE TABLE IF NOT EXISTS {t} (id INTEGER PRIMARY KEY, v TEXT)')\n"
        "    c.executemany(f'INSERT INTO {t} (v) VALUES (?)', [('x' * 50,)] * n)\n"
        "c.commit()"
    )
    result = project.run(
        "litestream",
        "serve",
        "--",
        sys.executable,
        "-c",
        code,
        str(project.db),
        json.dumps(counts),
    )
    assert result.returncode == 0, result.stderr


def replica_listing(project: Project, *args: str) -> list[dict[str, Any]]:
    result = project.run("litestream", "ltx", "-json", "-level", "all", *args, "default")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root``: (size, mtime_ns), by relative path."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            info = path.stat()
            found[str(path.relative_to(root))] = (info.st_size, info.st_mtime_ns)
    return found


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single line a user mistake prints (never a traceback)."""
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0].removeprefix("CommandError: ")


def litestream_on(db: Path) -> set[int]:
    """PIDs of the Litestream processes that have ``db`` open (other tests' are not)."""
    wanted = {str(db), f"{db}-wal"}
    found = set()
    for proc in psutil.process_iter(["name"]):
        with contextlib.suppress(psutil.Error):
            if proc.info["name"] == "litestream" and any(
                f.path in wanted for f in proc.open_files()
            ):
                found.add(proc.pid)
    return found
