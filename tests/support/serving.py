"""serve runs for the tests: the stand-in server's signal log, the database and its replica.

``Served`` runs ``manage.py litestream serve`` around ``support/bin/sigserver.py`` (a
stand-in server that records the signals it receives); ``no_serve_left_behind`` kills what
a failed test left running. The rest reads what serve did: its start-up line, Litestream's
local state, a restored copy.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
import signal
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.support import SIGSERVER, procs
from tests.support.project import Project, count_rows, stop, wait_for

LITESTREAM = str(Path(sys.executable).parent / "litestream")
SERVING = re.compile(
    r"INFO Serving ([\d.]+)s after start \(Django ([\d.]+)s, guard ([\d.]+)s, restore "
    r"([\d.]+)s, Litestream ([\d.]+)s, pre-serve ([\d.]+)s, server ([\d.]+)s\); "
    r"listening on 127\.0\.0\.1:(\d+)$",
    re.MULTILINE,
)


class Served:
    """One ``serve`` run: the process, its log files, and the server's signal log."""

    running: list[Served] = []

    def __init__(
        self,
        project: Project,
        tmp: Path,
        *server_args: str,
        opts: tuple[str, ...] = (),
        command: list[str] | None = None,
    ) -> None:
        self.project = project
        self.log = tmp / f"signals-{os.urandom(3).hex()}.log"
        self.log.touch()
        self.out = (tmp / f"serve-{self.log.stem}.out").open("w+")
        self.err = (tmp / f"serve-{self.log.stem}.err").open("w+")
        argv = command or [sys.executable, SIGSERVER, str(self.log), *server_args]
        self.proc = project.spawn(
            "litestream", "serve", *opts, "--", *argv, stdout=self.out, stderr=self.err
        )
        Served.running.append(self)

    def kill_all(self) -> None:
        """After a failed test: SIGKILL serve and everything under it."""
        found = [p.process for p in self.tree()]
        with contextlib.suppress(psutil.Error):
            found.append(psutil.Process(self.proc.pid))
        for proc in found:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(found, timeout=10)

    def signals(self) -> list[str]:
        return self.log.read_text().split()

    def wait_ready(self, timeout: float = 30) -> Served:
        wait_for(
            lambda: "ready" in self.signals() or self.proc.poll() is not None,
            timeout,
            "the server to start",
        )
        assert self.proc.poll() is None, self.stderr()
        return self

    def stderr(self) -> str:
        self.err.flush()
        return Path(self.err.name).read_text()

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        return stop(self.proc, sig, timeout)

    def tree(self) -> list[procs.Proc]:
        return procs.children(self.proc.pid)

    def litestream(self) -> psutil.Process:
        # The daemon, not a 'litestream ltx' of the replica checks (the first runs at start).
        found = [
            p.process
            for p in self.tree()
            if p.name == "litestream" and p.argv[1:2] == ("replicate",) and not p.zombie
        ]
        assert len(found) == 1, found
        return found[0]

    def server(self) -> psutil.Process:
        return wait_for(
            lambda: next((p.process for p in self.tree() if SIGSERVER in p.cmdline), None),
            10,
            "the server process",
        )


@pytest.fixture(autouse=True)
def no_serve_left_behind() -> Iterator[None]:
    yield
    while Served.running:
        Served.running.pop().kill_all()


def restored_rows(project: Project, tmp: Path) -> int:
    out = tmp / f"restored-{os.urandom(3).hex()}.db"
    result = project.run("litestream", "restore", "-o", str(out), "default")
    assert result.returncode == 0, result.stderr
    return count_rows(out)


def meta(project: Project) -> str:
    return str(project.root / f".{project.db.name}-litestream")


def fresh_machine(project: Project) -> None:
    """The database and Litestream's state gone, as on a new machine; the replica stays."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{project.db}{suffix}").unlink(missing_ok=True)
    shutil.rmtree(meta(project))


def big_database(path: Path, mib: int) -> None:
    """``mib`` MiB of incompressible rows, in WAL mode."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE blobs (b BLOB)")
        with conn:
            conn.executemany("INSERT INTO blobs VALUES (randomblob(4000))", [()] * (mib * 256))
    finally:
        conn.close()


# -- Litestream's position against the WAL (replica/position.py) ---------------------------------


def log_times(text: str, pattern: str) -> list[dt.datetime]:
    """Local times of the log lines (serve's and Litestream's formats) that match."""
    found = []
    for line in text.splitlines():
        if not re.search(pattern, line):
            continue
        if m := re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) ", line):
            found.append(dt.datetime.strptime(f"{m[1]}.{m[2]}", "%Y-%m-%d %H:%M:%S.%f"))
        elif m := re.search(r"time=(\S+)", line):
            found.append(dt.datetime.fromisoformat(m[1]).astimezone().replace(tzinfo=None))
    return found


# Litestream 0.5.17 logs each upload at DEBUG: a level-0 file of megabytes is a full copy.
SNAPSHOT_UPLOADED = r'msg="ltx file uploaded".* level=0 .*size=(\d{7,})'
DEBUG = {"level": "debug", "stderr": True}
