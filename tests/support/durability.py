"""Acknowledged writes against a restore of the replica: the helpers of the durability tests.

``Writers`` are HTTP clients that POST ``/insert`` back to back (the test app answers each
with the new row's id once it is committed) and keep every acknowledged id. ``Replica``
restores what the storage holds into a fresh file with the ``litestream`` binary itself
(no Django start-up per restore), and ``missing`` says which acknowledged ids it lacks.
The benchmark ``benchmarks/bench_durability.py`` uses the same helpers.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

LITESTREAM = str(Path(sys.executable).parent / "litestream")


def listen_port() -> int:
    """A free port for a server, outside the kernel's range for outgoing connections.

    The writers here open thousands of short connections; a port picked from the ephemeral
    range can be some client socket's local port a moment later, and the server then fails
    to bind it ("Address already in use").
    """
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(10000, max(10001, low))
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port below the ephemeral range")


class Writers:
    """``n`` threads, each POSTing ``/insert`` back to back over keep-alive connections."""

    def __init__(self, port: int, n: int = 2) -> None:
        self.port = port
        self.acked: list[int] = []
        self.failed = 0  # answers other than 200, and broken connections
        self.stopped = threading.Event()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(n)]

    def __enter__(self) -> Writers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join(30)

    def wait_for(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acked) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(self.acked)} of {count} writes acknowledged")
            time.sleep(0.01)

    def run(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while not self.stopped.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                conn.request("POST", "/insert", body=b"")
                response = conn.getresponse()
                body = response.read()
                if response.status == 200:
                    self.acked.append(int(body))
                else:
                    self.failed += 1
                if response.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                self.failed += 1
                if conn is not None:
                    conn.close()
                conn = None
                self.stopped.wait(0.005)  # the server is starting or stopping
        if conn is not None:
            conn.close()


class Replica:
    """Restores a replica (its Litestream replica settings) into fresh files."""

    def __init__(self, replica: Mapping[str, Any], workdir: Path) -> None:
        self.workdir = workdir
        self.config = workdir / "restore.yml"
        self.db = workdir / "restore-source.db"  # a name only: the config needs a db path
        self.config.write_text(json.dumps({"dbs": [{"path": str(self.db), "replica": replica}]}))
        self.count = 0

    def ids(self, table: str = "acks") -> set[int]:
        """Every id in ``table`` of a fresh restore of the replica's newest state."""
        self.count += 1
        out = self.workdir / f"restored-{self.count}.db"
        env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
        argv = [LITESTREAM, "restore", "-config", str(self.config), "-o", str(out), str(self.db)]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
        assert result.returncode == 0, result.stderr
        try:
            with sqlite3.connect(out) as conn:
                return {row[0] for row in conn.execute(f"SELECT id FROM {table}")}
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{out}{suffix}").unlink(missing_ok=True)


def missing(acked: Iterable[int], restored: set[int]) -> list[int]:
    return sorted(set(acked) - restored)


def ranges(ids: Iterable[int]) -> list[tuple[int, int]]:
    """Consecutive runs: [1, 2, 3, 7] -> [(1, 3), (7, 7)]."""
    out: list[list[int]] = []
    for i in sorted(ids):
        if out and out[-1][1] == i - 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return [(a, b) for a, b in out]
