#!/usr/bin/env python
"""Benchmark what reaches the replica: serve beside the plain recipe, in one invocation.

Run from the repository root with the project's virtualenv::

    .venv/bin/python benchmarks/bench_durability.py            # full run (about 25 minutes)
    .venv/bin/python benchmarks/bench_durability.py --quick    # about 5 minutes

Three sections, each with every variant side by side on the same machine at the same time:

1. ``stop``: two clients POST ``/insert`` back to back through gunicorn (2 sync workers) for a
   few seconds, then SIGTERM; every acknowledged id is looked up in a fresh restore of the
   replica. File replica and S3 (moto). Variants: ``serve``; the plain recipe
   ``litestream replicate -exec gunicorn``; and the control that proves the cause of the
   holes serve used to have: the plain recipe whose -exec child first runs one
   ``litestream sync -wait`` over the control socket and then becomes gunicorn.
2. ``lag``: one write per second (file replica, ``sync-interval: 1s``); for each write, the
   seconds from its acknowledgement until the replica holds the LTX file that contains it.
   The containing file is found exactly: the commit's end in the WAL (from the WAL index in
   ``-shm``) against each local LTX file's header (WAL offset, size and salts).
3. ``warm``: the bytes a warm start of a large database uploads (a start, 3 s of writes, a
   stop), and whether any level-0 file is a full copy of the database.

``--before SRC`` adds the variant ``serve-before``: serve run from another source tree (the
``src`` directory of an older checkout), for before/after figures. Everything runs on
127.0.0.1; every process and temporary file is removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import random
import shlex
import shutil
import signal
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from benchmarks.bench_serve import become_subreaper, build_db, get_status
from tests.support.durability import (
    LITESTREAM,
    Replica,
    Writers,
    listen_port,
    missing,
    ranges,
)
from tests.support.project import Project, make_project
from tests.support.storage import MotoS3

MIB = 1024 * 1024
CONFIRMED = "replica confirmed in sync"
RUNNING: list[Variant] = []  # every variant made, for the cleanup


def note(text: str) -> None:
    print(f"  .. {text}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# variants
# --------------------------------------------------------------------------------------------
@dataclass
class Variant:
    """One way of running the same gunicorn command on one project of its own."""

    name: str  # serve | serve-before | recipe | recipe+sync
    project: Project
    replica: dict[str, Any]
    tmp: Path
    src: str | None = None  # serve-before: the other source tree
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def config(self) -> Path:
        return self.tmp / "litestream.yml"

    @property
    def socket(self) -> Path:
        return self.tmp / "ls.sock"

    def setup(self, db_options: dict[str, Any]) -> None:
        entry = {"path": "default", "replica": self.replica, **db_options}
        self.project.configure({"dbs": [entry]})
        cfg: dict[str, Any] = {
            "logging": {"stderr": True},
            "dbs": [{**entry, "path": str(self.project.db)}],
        }
        if self.name == "recipe+sync":
            cfg["socket"] = {"enabled": True, "path": str(self.socket)}
        self.config.write_text(json.dumps(cfg))
        if self.src:
            path = self.project.env.get("PYTHONPATH", "")
            self.project.env["PYTHONPATH"] = os.pathsep.join([self.src, *path.split(os.pathsep)])

    def argv(self, port: int) -> list[str]:
        gunicorn = [
            sys.executable, "-m", "gunicorn", "testapp.wsgi:application",
            "-b", f"127.0.0.1:{port}", "-w", "2", "-k", "sync", "--no-control-socket",
        ]  # fmt: skip
        if self.name.startswith("serve"):
            return self.project.command("litestream", "serve", "--", *gunicorn)
        exec_line = shlex.join(gunicorn)
        if self.name == "recipe+sync":
            child = self.tmp / "sync_then_gunicorn.py"
            child.write_text(
                "import os, subprocess, sys, time\n"
                f"sock, db = {str(self.socket)!r}, {str(self.project.db)!r}\n"
                "while not os.path.exists(sock): time.sleep(0.01)\n"
                f"subprocess.run([{LITESTREAM!r}, 'sync', '-wait', '-socket', sock, db])\n"
                f"os.execvp(sys.executable, {gunicorn!r})\n"
            )
            exec_line = shlex.join([sys.executable, str(child)])
        return [LITESTREAM, "replicate", "-config", str(self.config), "-exec", exec_line]

    def start(self, log: Path) -> tuple[subprocess.Popen[bytes], int]:
        port = listen_port()
        with log.open("ab") as handle:
            proc = subprocess.Popen(
                self.argv(port),
                cwd=self.project.root,
                env=self.project.env,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)
        deadline = time.monotonic() + 120
        while get_status(port) != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not serve:\n{log.read_text()[-3000:]}")
            time.sleep(0.01)
        return proc, port


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    try:
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.Error:
        tree = []
    for p in tree:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(tree, timeout=10)
    with contextlib.suppress(Exception):
        proc.wait(timeout=10)
    reap_orphans()


def reap_orphans() -> None:
    """Reap zombies re-parented to us (we are a subreaper), never a Popen child of ours."""
    mine = {p.pid for v in RUNNING for p in v.procs}
    for child in psutil.Process().children():
        if child.pid not in mine:
            with contextlib.suppress(psutil.Error, ChildProcessError, OSError):
                if child.status() == psutil.STATUS_ZOMBIE:
                    os.waitpid(child.pid, os.WNOHANG)


def stop(proc: subprocess.Popen[bytes], timeout: float = 120) -> tuple[int | None, float]:
    started = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)
    try:
        code: int | None = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        code = None
        kill_tree(proc)
    return code, time.monotonic() - started


# --------------------------------------------------------------------------------------------
# 1. stop: acknowledged ids against a restore
# --------------------------------------------------------------------------------------------
@dataclass
class StopRun:
    acked: int
    lost: list[int]
    holes: int  # missing ranges followed by a later acknowledged id that is present
    code: int | None
    confirmed: bool
    seconds: float


def stop_run(v: Variant, replica: Replica, writes: float, n: int) -> StopRun:
    log = v.tmp / f"run-{n}.log"
    proc, port = v.start(log)
    try:
        with Writers(port) as writers:
            time.sleep(writes)  # the workload's length, not a synchronisation
            code, seconds = stop(proc)
    finally:
        kill_tree(proc)
    have = replica.ids()
    lost = missing(writers.acked, have)
    top = max(writers.acked, default=0)
    holes = sum(1 for _, end in ranges(lost) if end < top)
    text = log.read_text(errors="replace")
    confirmed = CONFIRMED in text.split("Starting gunicorn")[-1]
    return StopRun(len(writers.acked), lost, holes, code, confirmed, seconds)


def section_stop(b: Bench) -> dict[str, dict[str, list[StopRun]]]:
    out: dict[str, dict[str, list[StopRun]]] = {}
    for storage in b.args.storages:
        variants = [b.variant(name, storage, "stop") for name in b.names(control=True)]
        replicas = {v.name: Replica(v.replica, v.tmp) for v in variants}
        runs: dict[str, list[StopRun]] = {v.name: [] for v in variants}
        for n in range(b.args.runs):
            for v in variants:  # interleaved, run by run
                r = stop_run(v, replicas[v.name], b.args.writes, n)
                runs[v.name].append(r)
                note(
                    f"stop {storage} {v.name} run {n + 1}: acked {r.acked}, missing "
                    f"{len(r.lost)} in {len(ranges(r.lost))} ranges, exit {r.code}"
                    f"{', confirmed' if r.confirmed else ''}"
                )
        out[storage] = runs
    return out


# --------------------------------------------------------------------------------------------
# 2. lag: one write per second, ack -> replica holds the LTX file that contains it
# --------------------------------------------------------------------------------------------
def commit_end(db: Path) -> tuple[bytes, int] | None:
    """(WAL salts, end offset of the last committed frame) from the WAL index in -shm."""
    with open(f"{db}-shm", "rb") as f:
        head = f.read(96)
    if len(head) < 96 or head[:48] != head[48:96]:
        return None  # being written: read again
    page = struct.unpack_from("<H", head, 14)[0]
    page = 65536 if page == 1 else page
    frames = struct.unpack_from("<I", head, 16)[0]
    return head[32:40], 32 + frames * (page + 24)


def ltx_header(path: Path) -> tuple[int, bytes, int] | None:
    """(max txid, WAL salts, end of the WAL range) of a local LTX file."""
    try:
        with open(path, "rb") as f:
            head = f.read(72)
    except OSError:
        return None
    if len(head) < 72 or head[:4] != b"LTX1":
        return None
    max_txid, offset, size = (
        struct.unpack_from(">Q", head, 24)[0],
        *struct.unpack_from(">qq", head, 48),
    )
    return max_txid, head[64:72], offset + size


class LagWatch:
    """Polls the local LTX files (headers) and the replica's L0 (first-seen times)."""

    def __init__(self, local: Path, replica: Path) -> None:
        self.local, self.replica = local, replica
        self.headers: dict[str, tuple[int, bytes, int]] = {}
        self.seen: dict[int, float] = {}  # replica txid -> first seen (monotonic)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stopped.wait(0.02):
            with contextlib.suppress(OSError):
                for name in os.listdir(self.local):
                    if name.endswith(".ltx") and name not in self.headers:
                        header = ltx_header(self.local / name)
                        if header:
                            self.headers[name] = header
            now = time.monotonic()
            with contextlib.suppress(OSError):
                for name in os.listdir(self.replica):
                    if name.endswith(".ltx"):
                        txid = int(name.split("-")[1].split(".")[0], 16)
                        self.seen.setdefault(txid, now)

    def arrived(self, salts: bytes, end: int) -> float | None:
        """When the replica first held the LTX file containing the commit ending at ``end``."""
        covering = [t for t, s, e in list(self.headers.values()) if s == salts and e >= end]
        if not covering:
            return None
        txid = min(covering)
        times = [at for t, at in list(self.seen.items()) if t >= txid]
        return min(times) if times else None

    def close(self) -> None:
        self.stopped.set()
        self.thread.join()


def lag_one(v: Variant, seconds: float, results: dict[str, list[float]]) -> None:
    proc, port = v.start(v.tmp / "lag.log")
    local = v.project.root / f".{v.project.db.name}-litestream" / "ltx" / "0"
    watch = LagWatch(local, Path(v.replica["path"]) / "ltx" / "0")
    pending: list[tuple[float, bytes, int]] = []
    delays: list[float] = []
    jitter = random.Random(6)  # periods of 0.9 to 1.1 s: the writes meet every phase of
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)  # Litestream's 1 s ticks
    try:
        # Steady state: the recipe's server writes before Litestream's first sync, and those
        # writes can only be found in that sync's full snapshot, not by their WAL position.
        deadline = time.monotonic() + 60
        while not watch.headers and time.monotonic() < deadline:
            time.sleep(0.05)
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            tick = time.monotonic()
            conn.request("POST", "/insert", body=b"")
            response = conn.getresponse()
            response.read()
            acked = time.monotonic()
            point = None
            while point is None:
                point = commit_end(v.project.db)
            if response.status == 200:
                pending.append((acked, *point))
            for item in list(pending):
                at = watch.arrived(item[1], item[2])
                if at is not None:
                    delays.append(at - item[0])
                    pending.remove(item)
            time.sleep(max(0.0, jitter.uniform(0.9, 1.1) - (time.monotonic() - tick)))
        deadline = time.monotonic() + 30
        while pending and time.monotonic() < deadline:
            for item in list(pending):
                at = watch.arrived(item[1], item[2])
                if at is not None:
                    delays.append(at - item[0])
                    pending.remove(item)
            time.sleep(0.05)
        delays.extend(float("inf") for _ in pending)  # never arrived within 30 s
    finally:
        watch.close()
        conn.close()
        stop(proc)
        kill_tree(proc)
    results[v.name] = delays


def section_lag(b: Bench) -> dict[str, list[float]]:
    variants = [b.variant(name, "file", "lag", mib=9) for name in b.names(control=False)]
    results: dict[str, list[float]] = {}
    threads = [
        threading.Thread(target=lag_one, args=(v, b.args.lag_seconds, results)) for v in variants
    ]
    note(f"lag: {len(threads)} variants side by side for {b.args.lag_seconds:.0f}s")
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


# --------------------------------------------------------------------------------------------
# 3. warm: bytes uploaded by a warm start of a large database
# --------------------------------------------------------------------------------------------
def replica_files(root: Path) -> dict[str, int]:
    found: dict[str, int] = {}
    for path in root.rglob("*.ltx"):
        with contextlib.suppress(OSError):
            found[str(path.relative_to(root))] = path.stat().st_size
    return found


def section_warm(b: Bench) -> tuple[int, dict[str, list[tuple[int, int, int]]]]:
    out: dict[str, list[tuple[int, int, int]]] = {}
    size = 0
    for name in b.names(control=False):
        v = b.variant(name, "file", "warm", mib=b.args.warm_mib)
        size = v.project.db.stat().st_size
        rep = Path(v.replica["path"])
        out[name] = []
        for n in range(b.args.warm_runs + 1):
            before = replica_files(rep)
            proc, port = v.start(v.tmp / f"warm-{n}.log")
            with Writers(port):
                time.sleep(3)  # the workload
                stop(proc)
            kill_tree(proc)
            new = {k: s for k, s in replica_files(rep).items() if k not in before}
            l0 = sum(s for k, s in new.items() if k.startswith("ltx/0/"))
            full = sum(1 for k, s in new.items() if k.startswith("ltx/0/") and s > size / 2)
            if n:  # the first start of each variant is a cold upload, not a warm start
                out[name].append((sum(new.values()), l0, full))
                note(f"warm {name} run {n}: level 0 {l0 / MIB:.2f} MiB, {full} full copies")
    return size, out


# --------------------------------------------------------------------------------------------
# the bench
# --------------------------------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-durability-"))
        self.s3: MotoS3 | None = None
        self.variants: list[Variant] = []

    def names(self, *, control: bool) -> list[str]:
        names = ["serve", "recipe"]
        if self.args.before:
            names.insert(1, "serve-before")
        if control:
            names.append("recipe+sync")
        return names

    def variant(self, name: str, storage: str, section: str, mib: float = 0) -> Variant:
        tmp = self.tmp / f"{section}-{storage}-{name}"
        root = tmp / "proj"
        root.mkdir(parents=True)
        project = make_project(root)
        project.env.pop("AWS_CA_BUNDLE", None)
        if storage == "s3":
            if self.s3 is None:
                note("starting moto S3 on 127.0.0.1")
                self.s3 = MotoS3().start()
            replica = self.s3.replica("db")
        else:
            replica = {"type": "file", "path": str(tmp / "replica")}
        replica["sync-interval"] = "1s"
        src = self.args.before if name == "serve-before" else None
        v = Variant(name, project, replica, tmp, src)
        v.setup({})
        if mib:
            build_db(project.db, mib)
        with sqlite3.connect(project.db) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE IF NOT EXISTS acks (id INTEGER PRIMARY KEY, v TEXT)")
        conn.close()
        self.variants.append(v)
        RUNNING.append(v)
        return v

    def close(self) -> None:
        for v in self.variants:
            for proc in v.procs:
                if proc.poll() is None:
                    kill_tree(proc)
        if self.s3 is not None:
            with contextlib.suppress(Exception):
                self.s3.stop()
        if self.args.keep_temp:
            print(f"bench: kept {self.tmp}", file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def report(b: Bench, results: dict[str, Any], elapsed: float) -> None:
    out: Callable[[str], None] = print
    a = b.args
    out("")
    out("=" * 100)
    out("django-litestream durability benchmark" + ("  (--quick)" if a.quick else ""))
    out("=" * 100)
    out(
        f"machine: nproc={os.cpu_count()} ({platform.machine()}), python "
        f"{platform.python_version()}, load {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
        f"took {elapsed:.0f}s"
    )
    if a.before:
        out(f"serve-before: serve from {a.before}")
    if "stop" in results:
        out("")
        out(
            f"1. Back-to-back writers (2 clients, gunicorn -w 2) for {a.writes:g}s, SIGTERM, "
            f"fresh restore; {a.runs} runs per variant and storage, interleaved"
        )
        out(
            f"   {'storage':<8}{'variant':<14}{'acked':>8}{'runs losing':>13}{'ids lost':>10}"
            f"{'max/run':>9}{'holes':>7}{'exit 0':>8}{'false confirm':>15}{'stop s':>8}"
        )
        for storage, runs in results["stop"].items():
            for name, rs in runs.items():
                lossy = [r for r in rs if r.lost]
                false = sum(1 for r in rs if r.lost and (r.code == 0 or r.confirmed))
                out(
                    f"   {storage:<8}{name:<14}{sum(r.acked for r in rs):>8}"
                    f"{len(lossy):>8} of {len(rs):<2}{sum(len(r.lost) for r in rs):>10}"
                    f"{max((len(r.lost) for r in rs), default=0):>9}"
                    f"{sum(r.holes for r in rs):>7}{sum(r.code == 0 for r in rs):>8}"
                    f"{false:>15}{statistics.median(r.seconds for r in rs):>8.2f}"
                )
        out("   holes: missing ranges with a later acknowledged id present (not the tail)")
        out("   false confirm: ids lost although exit 0 (or serve said 'replica confirmed')")
    if "lag" in results:
        out("")
        out(
            f"2. One write per second for {a.lag_seconds:.0f}s, file replica, sync-interval 1s: "
            "acknowledgement -> replica holds it"
        )
        out(f"   {'variant':<14}{'writes':>8}{'p50 s':>8}{'p99 s':>8}{'max s':>8}{'> 2 s':>7}")
        for name, delays in results["lag"].items():
            out(
                f"   {name:<14}{len(delays):>8}{pct(delays, 0.5):>8.2f}{pct(delays, 0.99):>8.2f}"
                f"{max(delays, default=float('nan')):>8.2f}{sum(d > 2 for d in delays):>7}"
            )
    if "warm" in results:
        size, warm = results["warm"]
        out("")
        out(
            f"3. Warm start of a {size / MIB:.0f} MiB database (start, 3s of writes, stop): "
            "level-0 bytes uploaded to the file replica"
        )
        out(f"   {'variant':<14}{'runs':>6}{'median MiB':>12}{'max MiB':>9}{'full-copy L0':>14}")
        for name, rows in warm.items():
            l0 = [r[1] / MIB for r in rows]
            out(
                f"   {name:<14}{len(rows):>6}{statistics.median(l0):>12.2f}{max(l0):>9.2f}"
                f"{sum(r[2] for r in rows):>14}   runs: {' '.join(f'{x:.2f}' for x in l0)}"
            )
        out("   full-copy L0: level-0 files larger than half the database, in all runs. Level 1")
        out("   and up are compactions on their own clocks (every 30 s, 5 min, 1 h), not counted;")
        out("   they copy each full level-0 file once more per level.")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer runs, shorter lag run, 20 MiB")
    p.add_argument("--runs", type=int, help="stop runs per variant and storage (10; quick 3)")
    p.add_argument("--writes", type=float, default=3.0, help="seconds of writes per stop run")
    p.add_argument("--storages", default="file,s3", help="comma-separated: file, s3")
    p.add_argument("--lag-seconds", type=float, help="length of the lag run (300; quick 30)")
    p.add_argument("--warm-mib", type=float, help="warm-start database size (100; quick 20)")
    p.add_argument("--warm-runs", type=int, help="warm starts per variant (3; quick 2)")
    p.add_argument("--only", default="stop,lag,warm", help="sections: stop, lag, warm")
    p.add_argument("--before", metavar="SRC", help="also run serve from this source tree")
    p.add_argument("--keep-temp", action="store_true", help="keep the temporary directory")
    a = p.parse_args(argv)
    a.runs = a.runs or (3 if a.quick else 10)
    a.lag_seconds = a.lag_seconds or (30.0 if a.quick else 300.0)
    a.warm_mib = a.warm_mib or (20.0 if a.quick else 100.0)
    a.warm_runs = a.warm_runs or (2 if a.quick else 3)
    a.storages = [s.strip() for s in a.storages.split(",") if s.strip()]
    a.sections = {s.strip() for s in a.only.split(",") if s.strip()}
    if unknown := a.sections - {"stop", "lag", "warm"}:
        p.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    if unknown := set(a.storages) - {"file", "s3"}:
        p.error(f"unknown storage(s): {', '.join(sorted(unknown))}")
    if a.before and not (Path(a.before) / "django_litestream").is_dir():
        p.error(f"--before {a.before}: no django_litestream package there")
    return a


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.pop("AWS_CA_BUNDLE", None)
    become_subreaper()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    bench = Bench(args)
    results: dict[str, Any] = {}
    started = time.monotonic()
    code = 0
    try:
        if "stop" in args.sections:
            results["stop"] = section_stop(bench)
        if "lag" in args.sections:
            results["lag"] = section_lag(bench)
        if "warm" in args.sections:
            results["warm"] = section_warm(bench)
    except KeyboardInterrupt:
        print("\nbench: interrupted; cleaning up", file=sys.stderr)
        code = 130
    except Exception as exc:  # report what was measured, then the failure
        print(f"\nbench: FAILED: {exc!r}", file=sys.stderr)
        code = 1
    finally:
        try:
            if results:
                report(bench, results, time.monotonic() - started)
        finally:
            bench.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
