#!/usr/bin/env python
"""Benchmark ``manage.py litestream serve`` side by side with bare gunicorn and the plain recipe.

Run from the repository root with the project's virtualenv::

    .venv/bin/python benchmarks/bench_serve.py                 # full run (about 20 minutes)
    .venv/bin/python benchmarks/bench_serve.py --quick         # small sizes, fewer runs
    .venv/bin/python benchmarks/bench_serve.py --before ../old/src   # also the older serve

Everything runs on 127.0.0.1: the example app from ``tests/project.py``, gunicorn, litestream,
and a moto S3 server. Every figure is measured in this one invocation, so the ratios compare
like with like on the same machine at the same time. See ``benchmarks/README.md`` for what
each figure means. Every process started here and every temporary file is removed at the end,
also on Ctrl-C or failure.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime as dt
import http.client
import json
import os
import platform
import re
import shlex
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from tests.support.project import Project, make_project
from tests.support.storage import MotoS3, free_port

HOST = "127.0.0.1"
START_TIMEOUT = 180.0  # spawn -> first 200, per run (a 100 MB cold start included)
STOP_TIMEOUT = 90.0  # SIGTERM -> exit, per run
RESTORE_TIMEOUT = 180.0
MIB = 1024 * 1024
BIN_DIR = Path(sys.executable).parent
SERVE_KINDS = ("serve", "serve-m", "before")
LABELS = {
    "bare": "bare gunicorn",
    "recipe": "plain recipe",
    "floor": "floor",
    "before": "serve before",
    "serve": "serve",
    "serve-m": "python -m",
}
# "Serving 0.61s after start (Django 0.21s, guard 0.04s, ...); listening on ..."
SERVING = re.compile(r"Serving ([\d.]+)s after start \((.*)\); listening on ")


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def litestream_binary() -> str:
    beside = BIN_DIR / "litestream"
    found = str(beside) if os.access(beside, os.X_OK) else shutil.which("litestream")
    if not found:
        sys.exit("bench: no litestream executable beside this Python or on PATH")
    return found


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt_range(values: Sequence[float]) -> str:
    if not values:
        return "n/a"
    return f"{median(values):6.2f}  [{min(values):.2f}-{max(values):.2f}]"


def get_status(port: int, path: str = "/", timeout: float = 2.0) -> int | None:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def become_subreaper() -> None:
    """Orphans of our children are re-parented to us, so the final cleanup finds them."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def log_tail(path: Path, n: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def remove_db(path: Path) -> None:
    """Make ``path`` look like a fresh machine: no database, sidecars, lock or Litestream meta."""
    for suffix in (
        "",
        "-wal",
        "-shm",
        "-journal",
        ".restoring",
        ".restoring-wal",
        ".restoring-shm",
        ".serve-lock",
    ):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}{suffix}")
    shutil.rmtree(path.parent / f".{path.name}-litestream", ignore_errors=True)


def build_db(path: Path, mib: float) -> int:
    """A WAL-mode database of about ``mib`` MiB of random-ish rows (incompressible blobs)."""
    target = int(mib * MIB)
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS blobs (id INTEGER PRIMARY KEY, name TEXT, payload BLOB)"
        )
        for _ in range(10_000):  # bounded: ~2,500 rows of ~250 bytes per MiB
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            size = path.stat().st_size
            if size >= target:
                break
            rows = max(100, min(20_000, (target - size) // 250))
            with conn:
                conn.execute(
                    "INSERT INTO blobs (name, payload) WITH RECURSIVE n(x) AS "
                    "(SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ?) "
                    "SELECT hex(randomblob(16)), randomblob(abs(random() % 300) + 50) FROM n",
                    (rows,),
                )
    finally:
        conn.close()
    return path.stat().st_size


def parse_log_time(line: str) -> float | None:
    """Epoch seconds of a supervisor log line: '2026-01-02 10:11:12,345 [django-litestream] ...'."""
    match = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) ", line)
    if not match:
        return None
    stamp = dt.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S")
    return stamp.timestamp() + int(match.group(2)) / 1000


def write_config(path: Path, dbs: Iterable[tuple[Path, dict[str, Any]]]) -> Path:
    """A plain litestream.yml (JSON is YAML) as a user of the plain recipe would write it."""
    path.write_text(
        json.dumps(
            {"dbs": [{"path": str(db), "replica": replica} for db, replica in dbs]}, indent=2
        )
    )
    return path


# --------------------------------------------------------------------------------------------
# processes
# --------------------------------------------------------------------------------------------
@dataclass
class Run:
    """One server process under measurement."""

    kind: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    spawned_wall: float
    spawned: float
    tmpdir: Path | None = None
    first_200: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Result:
    """What one start, serve for a while, stop cycle measured."""

    first_200: float
    stop: float
    code: int | None
    leftovers: int
    level0: int  # bytes of new level-0 files in the replica(s)
    all_levels: int  # bytes of new files of any level
    phases: dict[str, float] = field(default_factory=dict)
    # Seconds gunicorn's processes spent ready to run but waiting for a CPU, from the spawn
    # to the first 200 (Linux's /proc/PID/schedstat): what everything else running at the
    # same time cost the server's boot, far steadier than first-200 medians.
    waited: float | None = None


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-serve-"))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.s3: MotoS3 | None = None
        self.litestream = litestream_binary()
        self.counter = 0
        self.lines: list[str] = []
        # gunicorn >= 24 opens a control socket at a fixed path in $HOME; every run here
        # (and anything else on the machine) would share it, so turn it off where it exists.
        helptext = subprocess.run(
            [sys.executable, "-m", "gunicorn", "--help"], capture_output=True, text=True, timeout=60
        ).stdout
        self.gunicorn_extra = ["--no-control-socket"] if "--no-control-socket" in helptext else []
        # serve-m: the same serve through ``python -m django_litestream`` (no django.setup()).
        self.kinds = ["bare", "recipe", "serve", "serve-m"] + (["before"] if args.before else [])

    # -- output ---------------------------------------------------------------------------
    def out(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.append(text)

    def note(self, text: str) -> None:
        """Progress on stderr, so stdout is only the report."""
        print(f"  .. {text}", file=sys.stderr, flush=True)

    # -- lifecycle ------------------------------------------------------------------------
    def launch(
        self, argv: Sequence[str], *, cwd: Path, env: dict[str, str], name: str
    ) -> tuple[subprocess.Popen[bytes], Path]:
        self.counter += 1
        log = self.tmp / "logs" / f"{self.counter:03d}-{name}.log"
        log.parent.mkdir(exist_ok=True)
        with open(log, "wb") as handle:
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc, log

    def reap_orphans(self) -> None:
        """Reap zombies re-parented to us (we are a subreaper), never our own Popen children."""
        mine = {p.pid for p in self.procs}
        for child in psutil.Process().children():
            if child.pid in mine:
                continue
            with contextlib.suppress(psutil.Error, ChildProcessError, OSError):
                if child.status() == psutil.STATUS_ZOMBIE:
                    os.waitpid(child.pid, os.WNOHANG)

    def kill_tree(self, proc: subprocess.Popen[bytes]) -> None:
        try:
            tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        except psutil.Error:
            tree = []
        for p in tree:
            with contextlib.suppress(psutil.Error):
                p.kill()
        with contextlib.suppress(Exception):
            proc.wait(timeout=10)
        psutil.wait_procs(tree, timeout=5)
        self.reap_orphans()

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                self.kill_tree(proc)
        # Anything else still below us (orphans re-parented to this subreaper), except moto.
        moto = self.s3.proc.pid if self.s3 and self.s3.proc else None
        with contextlib.suppress(psutil.Error):
            rest = [p for p in psutil.Process().children(recursive=True) if p.pid != moto]
            for p in rest:
                with contextlib.suppress(psutil.Error):
                    p.kill()
            psutil.wait_procs(rest, timeout=5)
        self.reap_orphans()
        if self.s3 is not None:
            with contextlib.suppress(Exception):
                self.s3.stop()
        if self.args.keep_temp:
            print(f"bench: kept {self.tmp}", file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- projects -------------------------------------------------------------------------
    def project(self, name: str) -> Project:
        root = self.tmp / name
        root.mkdir()
        project = make_project(root)
        project.env["PATH"] = f"{BIN_DIR}{os.pathsep}{project.env.get('PATH', '')}"
        project.env.pop("AWS_CA_BUNDLE", None)
        # An installed package has its bytecode compiled; a run without it would time the
        # compiler (about 30 ms of Django start-up here), not serve.
        project.env.pop("PYTHONDONTWRITEBYTECODE", None)
        return project

    def start_moto(self) -> MotoS3:
        if self.s3 is None:
            self.note("starting moto S3 on 127.0.0.1")
            self.s3 = MotoS3().start()
        return self.s3

    # -- commands -------------------------------------------------------------------------
    def gunicorn(self, port: int) -> list[str]:
        return [
            sys.executable, "-m", "gunicorn",
            "-b", f"{HOST}:{port}",
            "-w", str(self.args.workers),
            "-k", "sync",
            *self.gunicorn_extra,
            "testapp.wsgi:application",
        ]  # fmt: skip

    def start(
        self,
        kind: str,
        project: Project,
        *,
        config: Path | None = None,
        restore_flag: bool = False,
    ) -> Run:
        """Spawn one variant: bare | recipe | serve | before (all run the same gunicorn)."""
        port = free_port()
        env = dict(project.env)
        tmpdir = None
        server = self.gunicorn(port)
        if kind == "bare":
            argv = server
        elif kind == "recipe":
            assert config is not None
            argv = [self.litestream, "replicate", "-config", str(config)]
            if restore_flag:
                argv.append("-restore-if-db-not-exists")
            argv += ["-exec", shlex.join(server)]
        elif kind in SERVE_KINDS:
            # A private TMPDIR per run: serve's runtime dir lands there, so its file
            # timestamps give a breakdown and nothing is left in /tmp if a run is killed.
            tmpdir = self.tmp / "tmp" / f"run-{self.counter + 1:03d}"
            tmpdir.mkdir(parents=True)
            env["TMPDIR"] = str(tmpdir)
            if kind == "before":
                env["PYTHONPATH"] = os.pathsep.join([self.args.before, env["PYTHONPATH"]])
            argv = project.command("litestream", "serve", "--", *server)
            if kind == "serve-m":
                env["DJANGO_SETTINGS_MODULE"] = "settings"
                argv = [project.python, "-m", "django_litestream", "serve", "--", *server]
        else:
            raise ValueError(kind)
        wall, mono = time.time(), time.perf_counter()
        proc, log = self.launch(argv, cwd=project.root, env=env, name=kind)
        return Run(kind, proc, port, log, wall, mono, tmpdir)

    def wait_200(self, run: Run, timeout: float = START_TIMEOUT) -> float:
        deadline = run.spawned + timeout
        while True:
            if get_status(run.port, "/", timeout=5) == 200:
                run.first_200 = time.perf_counter() - run.spawned
                return run.first_200
            if run.proc.poll() is not None:
                raise RuntimeError(
                    f"{run.kind} exited ({run.proc.returncode}) before answering:\n"
                    f"{log_tail(run.log)}"
                )
            if time.perf_counter() > deadline:
                raise RuntimeError(
                    f"{run.kind}: no HTTP 200 within {timeout}s:\n{log_tail(run.log)}"
                )
            time.sleep(0.005)

    def phases(self, run: Run) -> dict[str, float]:
        """Where serve's start went: its own "Serving ... after start" line, or (serve before
        it had one) the timestamps of its runtime files. Read while it serves."""
        if run.kind not in SERVE_KINDS:
            return {}
        for line in log_tail(run.log, 200_000).splitlines():
            if match := SERVING.search(line):
                found = {"total": float(match.group(1))}
                for part in match.group(2).split(", "):
                    name, _, value = part.rpartition(" ")
                    found[name] = float(value.rstrip("s"))
                return found
        steps: dict[str, float] = {}
        dirs = list(run.tmpdir.glob("django-litestream-serve-*")) if run.tmpdir else []
        if len(dirs) == 1:
            files = {"plan": "plan.json", "socket": "litestream.sock", "server": "server.pid"}
            for label, name in files.items():
                with contextlib.suppress(OSError):
                    steps[label] = os.stat(dirs[0] / name).st_mtime - run.spawned_wall
        if {"plan", "socket", "server"} <= set(steps):
            return {
                "Django": steps["plan"],
                "start, restore": steps["socket"] - steps["plan"],
                "Litestream": steps["server"] - steps["socket"],
            }
        return {}

    def stop(self, run: Run) -> tuple[float, int | None, int]:
        """SIGTERM the top process; (seconds to its exit, exit code, leftover processes)."""
        try:
            tree = psutil.Process(run.proc.pid).children(recursive=True)
        except psutil.Error:
            tree = []
        started = time.perf_counter()
        with contextlib.suppress(ProcessLookupError):
            os.kill(run.proc.pid, signal.SIGTERM)
        try:
            code: int | None = run.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            code = None
        seconds = time.perf_counter() - started
        if code is None:
            self.kill_tree(run.proc)
        _gone, alive = psutil.wait_procs(tree, timeout=10)
        alive = [p for p in alive if _running(p)]
        for p in alive:
            with contextlib.suppress(psutil.Error):
                p.kill()
        self.reap_orphans()
        return seconds, code, len(alive)

    def cycle(
        self,
        kind: str,
        project: Project,
        config: Path,
        dbs: Sequence[Path],
        *,
        restore: bool = False,
        settle: float = 1.0,
        during: Callable[[Run], None] | None = None,
    ) -> Result:
        """Start, first 200, ``during`` (5 /hit by default), ``settle`` s idle, SIGTERM.

        The replica is listed before and after: the bytes of the files that are new.
        """
        before = [self.replica_files(config, db) for db in dbs]
        run = self.start(kind, project, config=config, restore_flag=restore)
        try:
            first = self.wait_200(run)
            waited = server_waited(run.proc.pid)
            for _ in range(5):  # something for the final sync to ship
                get_status(run.port, "/hit")
            if during is not None:
                during(run)
            time.sleep(settle)
            phases = self.phases(run)
            seconds, code, left = self.stop(run)
        finally:
            if run.proc.poll() is None:
                self.kill_tree(run.proc)
        level0 = everything = 0
        for db, old in zip(dbs, before, strict=True):
            for key, size in self.replica_files(config, db).items():
                if key not in old:
                    everything += size
                    level0 += size if key[0] == 0 else 0
        return Result(first, seconds, code, left, level0, everything, phases, waited)

    def run_cmd(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: dict[str, str],
        timeout: float = RESTORE_TIMEOUT,
    ) -> tuple[float, subprocess.CompletedProcess[str]]:
        started = time.perf_counter()
        result = subprocess.run(
            list(argv), cwd=cwd, env=env, capture_output=True, text=True,
            timeout=timeout, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        return time.perf_counter() - started, result

    def replica_files(self, config: Path, db: Path) -> dict[tuple[int, int, int], int]:
        """Every LTX file of ``db``'s replica: (level, min txid, max txid) -> size."""
        result = subprocess.run(
            [self.litestream, "ltx", "-json", "-level", "all", "-config", str(config), str(db)],
            capture_output=True, text=True, timeout=120, env=self.env(),
        )  # fmt: skip
        if result.returncode != 0:
            return {}
        return {
            (int(f["level"]), int(f["min_txid"], 16), int(f["max_txid"], 16)): int(f["size"])
            for f in json.loads(result.stdout or "[]")
        }

    def env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}

    def adopt(self, config: Path) -> None:
        """After writes made without Litestream (bare gunicorn, a table dropped between runs):
        let plain Litestream take them over (``replicate -once``), as the recipe's would.

        Without it, serve's guard rightly refuses the database at its next start: writes
        made while Litestream was not running, once checkpointed, look like an older copy.
        """
        result = subprocess.run(
            [self.litestream, "replicate", "-once", "-config", str(config)],
            capture_output=True, text=True, timeout=300, env=self.env(),
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"litestream replicate -once failed:\n{result.stderr[-2000:]}")

    def bare_restores(self, config: Path, dbs: Sequence[Path]) -> float:
        """Seconds for ``litestream restore`` of every db in ``dbs``, all started at once."""
        outs = [self.tmp / f"floor-{db.name}" for db in dbs]
        for out in outs:
            remove_db(out)
        started = time.perf_counter()
        procs = [
            subprocess.Popen(
                [self.litestream, "restore", "-config", str(config), "-o", str(out), str(db)],
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            for db, out in zip(dbs, outs, strict=True)
        ]
        self.procs.extend(procs)
        codes = [p.wait(timeout=RESTORE_TIMEOUT) for p in procs]
        seconds = time.perf_counter() - started
        if any(codes) or not all(o.exists() for o in outs):
            raise RuntimeError(f"litestream restore failed: {codes}")
        for out in outs:
            remove_db(out)
        return seconds


def server_waited(top: int) -> float | None:
    """Run-queue wait of every gunicorn process under ``top`` (itself included), seconds.

    gunicorn's processes are those whose argv has ``gunicorn`` as one word (``python -m
    gunicorn``; the recipe's Litestream has it inside its ``-exec`` string only).
    """
    try:
        root = psutil.Process(top)
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    total, seen = 0, 0
    for proc in tree:
        try:
            if "gunicorn" not in proc.cmdline():
                continue
            with open(f"/proc/{proc.pid}/schedstat") as handle:
                total += int(handle.read().split()[1])
            seen += 1
        except (psutil.Error, OSError, IndexError, ValueError):
            continue
    return total / 1e9 if seen else None


def _running(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def rss_of(p: psutil.Process | None) -> tuple[float, float] | None:
    """(RSS, USS) in MiB."""
    if p is None:
        return None
    try:
        info = p.memory_full_info()
        return info.rss / MIB, info.uss / MIB
    except psutil.Error:
        return None


def serve_processes(pid: int) -> dict[str, psutil.Process | None]:
    """The supervisor (the serve PID itself after its exec), litestream, Litestream's -exec
    child (the sleeper; the gate in an older serve) and the gunicorn master."""
    found: dict[str, psutil.Process | None] = dict.fromkeys(
        ("supervisor", "litestream", "exec child", "gunicorn master"), None
    )
    try:
        top = psutil.Process(pid)
        if "django_litestream.serve.supervisor" in " ".join(top.cmdline()):
            found["supervisor"] = top
        for p in top.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                cmd = " ".join(p.cmdline())
                parent = p.parent()
                if p.name() == "litestream" and " replicate " in f" {cmd} ":
                    found["litestream"] = p
                elif parent is not None and parent.name() == "litestream":
                    found["exec child"] = p
                elif (
                    "gunicorn" in cmd
                    and parent is not None
                    and "gunicorn" not in " ".join(parent.cmdline())
                ):
                    found["gunicorn master"] = p
    except psutil.Error:
        pass
    return found


def litestream_of(pid: int) -> psutil.Process | None:
    """The ``litestream replicate`` process at or below ``pid``."""
    with contextlib.suppress(psutil.Error):
        top = psutil.Process(pid)
        for p in [top, *top.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                if p.name() == "litestream" and "replicate" in p.cmdline():
                    return p
    return None


# --------------------------------------------------------------------------------------------
# replicas reset to one state before each cold run
# --------------------------------------------------------------------------------------------
class Replicas:
    """The replicas of a project's databases, each run starting from the same state.

    The state is made once (an upload of the whole database, then one small write through
    serve, so that the newest level-0 file is a delta of a few KB as in a replica that has
    been running), kept as a pristine copy, and copied to a fresh location for every run.
    """

    def __init__(self, bench: Bench, storage: str, names: Sequence[str], tag: str) -> None:
        self.bench = bench
        self.storage = storage
        self.names = list(names)
        self.tag = tag  # keeps the file replicas of different projects apart
        self.count = 0
        self.previous = ""  # the S3 copy of the last run
        if storage == "s3":
            self.s3 = bench.start_moto()
            self.bucket = self.s3.new_bucket()
        self.pristine = [self.location(name, "pristine") for name in self.names]

    def location(self, name: str, where: str) -> dict[str, Any]:
        if self.storage == "s3":
            bucket = self.bucket if where == "pristine" else where
            return self.s3.replica(name, bucket)
        return {"type": "file", "path": str(self.bench.tmp / "replicas" / self.tag / where / name)}

    def fresh(self) -> list[dict[str, Any]]:
        """A copy of the pristine state in new locations, one per database."""
        self.count += 1
        if self.storage == "file":
            copies = [self.location(name, f"run-{self.count}") for name in self.names]
            for source, copy in zip(self.pristine, copies, strict=True):
                shutil.copytree(source["path"], copy["path"])
            return copies
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "s3",
            endpoint_url=self.s3.base_url,
            region_name=self.s3.region,
            aws_access_key_id=self.s3.access_key_id,
            aws_secret_access_key=self.s3.secret_access_key,
            # moto answered one CopyObject with a 500 three times in a row in a full run
            # (28 copies of 100 MiB into its memory): more patience than boto3's default.
            config=Config(retries={"max_attempts": 10, "mode": "standard"}),
        )
        if self.previous:  # moto holds every object in memory: the last run's copy goes
            self.drop(client, self.previous)
        bucket = self.s3.new_bucket()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for item in page.get("Contents", []):
                source = {"Bucket": self.bucket, "Key": item["Key"]}
                client.copy_object(Bucket=bucket, Key=item["Key"], CopySource=source)
        self.previous = bucket
        return [self.location(name, bucket) for name in self.names]

    def drop(self, client: Any, bucket: str) -> None:
        """Empty and delete ``bucket``; one that will not go is left, with a line (moto may
        still be storing what a stopped run sent): only memory is lost."""
        from botocore.exceptions import ClientError

        try:
            # A cold run's SIGTERM comes during Litestream's upload of the fresh copy, which
            # then leaves an unfinished multipart upload: no listing of objects shows it,
            # but it keeps the bucket from being deleted. Aborted first, and said.
            uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
            for upload in uploads:
                client.abort_multipart_upload(
                    Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
            if uploads:
                self.bench.note(f"aborted {len(uploads)} unfinished upload(s) in {bucket}")
            for _ in range(5):
                pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
                keys = [{"Key": item["Key"]} for page in pages for item in page.get("Contents", [])]
                if not keys:
                    break
                for start in range(0, len(keys), 1000):
                    chunk = {"Objects": keys[start : start + 1000]}
                    client.delete_objects(Bucket=bucket, Delete=chunk)  # errors: listed again
            client.delete_bucket(Bucket=bucket)
        except ClientError as exc:
            self.bench.note(f"left the S3 copy {bucket} in moto ({exc})")


# --------------------------------------------------------------------------------------------
# load generators
# --------------------------------------------------------------------------------------------
@dataclass
class Load:
    rps: float
    requests: int
    errors: int
    tool: str


def wrk_load(port: int, path: str, connections: int, duration: float) -> Load:
    argv = [
        "wrk", "-t", "1", "-c", str(connections), "-d", f"{duration:g}s", "--timeout", "5s",
        f"http://{HOST}:{port}{path}",
    ]  # fmt: skip
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=duration + 30, stdin=subprocess.DEVNULL
    )
    text = result.stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"(\d+) requests in", text)
    if result.returncode != 0 or not rps or not total:
        raise RuntimeError(f"wrk failed: {result.stdout[-1500:]}{result.stderr[-1500:]}")
    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", text):
        errors += int(m.group(1))
    if m := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    ):
        # gunicorn's sync workers close each connection; wrk may count that as a read error.
        errors += int(m.group(1)) + int(m.group(3)) + int(m.group(4))
    return Load(float(rps.group(1)), int(total.group(1)), errors, "wrk")


def python_load(port: int, path: str, connections: int, duration: float) -> Load:
    """Threads with keep-alive http.client connections (reconnecting when the server closes)."""
    stop_at = time.monotonic() + duration
    ok = [0] * connections
    bad = [0] * connections

    def worker(i: int) -> None:
        conn: http.client.HTTPConnection | None = None
        while time.monotonic() < stop_at and bad[i] < 10_000:
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(HOST, port, timeout=5)
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                if response.status == 200:
                    ok[i] += 1
                else:
                    bad[i] += 1
                if response.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                bad[i] += 1
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(connections)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(0.0, stop_at - time.monotonic()) + 15)
    elapsed = time.monotonic() - started
    return Load(sum(ok) / elapsed, sum(ok), sum(bad), "python")


# --------------------------------------------------------------------------------------------
# the measurements
# --------------------------------------------------------------------------------------------
def warm_project(b: Bench, results: dict[str, Any]) -> tuple[Project, Path]:
    """The warm project: a database of --warm-mib MiB, uploaded once, file replica."""
    if "warm_project" in results:
        found: tuple[Project, Path] = results["warm_project"]
        return found
    project = b.project("warm")
    replica = {"type": "file", "path": str(b.tmp / "replica-warm")}
    project.configure({"dbs": [{"path": "default", "replica": replica}]})
    b.note(f"building a {b.args.warm_mib:g} MiB database and uploading it")
    build_db(project.db, b.args.warm_mib)
    with contextlib.closing(sqlite3.connect(project.db)) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS hits (id INTEGER PRIMARY KEY)")
        conn.commit()
    _s, result = b.run_cmd(project.command("litestream", "replicate", "-once"),
                           cwd=project.root, env=project.env)  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"replicate -once failed:\n{result.stderr[-3000:]}")
    config = write_config(b.tmp / "recipe-warm.yml", [(project.db, replica)])
    results["warm_project"] = (project, config)
    return project, config


def section_start(b: Bench, results: dict[str, Any]) -> None:
    """Warm start -> first 200, SIGTERM -> exit, bytes uploaded, memory."""
    project, config = warm_project(b, results)
    runs: dict[str, list[Result]] = {k: [] for k in b.kinds}
    rss: dict[str, list[tuple[float, float]]] = {}

    def memory(run: Run) -> None:
        if run.kind == "serve":
            time.sleep(1.0)  # steady state: both workers up, litestream idle
            for name, p in serve_processes(run.proc.pid).items():
                if (m := rss_of(p)) is not None:
                    rss.setdefault(name, []).append(m)

    for i in range(b.args.runs):
        for kind in b.kinds[i % len(b.kinds) :] + b.kinds[: i % len(b.kinds)]:
            b.note(f"warm start {kind} {i + 1}/{b.args.runs}")
            runs[kind].append(b.cycle(kind, project, config, [project.db], during=memory))
            if kind == "bare":
                b.adopt(config)
    results["warm"] = runs
    results["rss_idle"] = rss


def cold_project(
    b: Bench, storage: str, count: int, mib: float
) -> tuple[Project, Replicas, list[Path], list[str]]:
    """``count`` databases of ``mib`` MiB, their replicas made once (see Replicas)."""
    project = b.project(f"cold-{storage}-{count}")
    aliases = ["default", *[f"db{i}" for i in range(2, count + 1)]]
    paths = [project.root / f"{alias}.sqlite3" for alias in aliases]
    replicas = Replicas(b, storage, [f"db{i}" for i in range(1, count + 1)], f"{count}")
    databases = {
        a: {"ENGINE": "django.db.backends.sqlite3", "NAME": str(p)}
        for a, p in zip(aliases, paths, strict=True)
    }
    configure(project, aliases, replicas.pristine, databases)
    b.note(f"building {count} x {mib:g} MiB and uploading ({storage})")
    for path in paths:
        build_db(path, mib)
    _s, result = b.run_cmd(project.command("litestream", "replicate", "-once"),
                           cwd=project.root, env=project.env)  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"replicate -once failed:\n{result.stderr[-3000:]}")
    # One small write through serve: the newest level-0 file becomes a delta of a few KB.
    write = [sys.executable, "manage.py", "write_rows", "1"]
    _s, result = b.run_cmd(project.command("litestream", "serve", "--", *write),
                           cwd=project.root, env=project.env)  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"serve -- write_rows failed:\n{result.stderr[-3000:]}")
    return project, replicas, paths, aliases


def configure(
    project: Project,
    aliases: Sequence[str],
    replicas: Sequence[dict[str, Any]],
    databases: dict[str, Any],
) -> None:
    project.configure(
        {"dbs": [{"path": a, "replica": r} for a, r in zip(aliases, replicas, strict=True)]},
        databases=databases,
    )


def section_cold(b: Bench, results: dict[str, Any], storage: str, count: int, mib: float) -> None:
    """Cold starts of ``count`` databases of ``mib`` MiB: floor, recipe, serve (before)."""
    project, replicas, paths, aliases = cold_project(b, storage, count, mib)
    databases = {
        a: {"ENGINE": "django.db.backends.sqlite3", "NAME": str(p)}
        for a, p in zip(aliases, paths, strict=True)
    }
    kinds = [k for k in b.kinds if k != "bare"]
    runs: dict[str, list[Result]] = {k: [] for k in kinds}
    floor: list[float] = []
    singles: list[float] = []
    config = b.tmp / f"recipe-cold-{storage}-{count}.yml"
    for i in range(b.args.runs):
        b.note(f"cold start {count} x {mib:g} MiB {storage}, round {i + 1}/{b.args.runs}")
        write_config(config, zip(paths, replicas.pristine, strict=True))
        floor.append(b.bare_restores(config, paths))
        if count > 1:
            singles.append(sum(b.bare_restores(config, [p]) for p in paths))
        for kind in kinds[i % len(kinds) :] + kinds[: i % len(kinds)]:
            fresh = replicas.fresh()
            configure(project, aliases, fresh, databases)
            write_config(config, zip(paths, fresh, strict=True))
            for path in paths:
                remove_db(path)
            runs[kind].append(
                b.cycle(kind, project, config, paths, restore=True, settle=b.args.settle)
            )
    results.setdefault("cold", {})[(storage, count)] = {
        "mib": mib,
        "runs": runs,
        "floor": floor,
        "sequential": singles,
    }


def section_rps(b: Bench, results: dict[str, Any]) -> None:
    """Requests/s through serve, the plain recipe and bare gunicorn, alternating; and how
    many level-0 files (uploads) each replicating variant made per second of /hit."""
    project, config = warm_project(b, results)
    use_wrk = b.args.loadgen == "wrk" or (b.args.loadgen == "auto" and shutil.which("wrk"))
    load = wrk_load if use_wrk else python_load
    kinds = ["bare", "serve", "recipe"]
    table: dict[str, dict[str, list[Load]]] = {}
    files: dict[str, list[float]] = {"serve": [], "recipe": []}
    rss_loaded: dict[str, list[tuple[float, float]]] = {}
    for path in ("/", "/hit"):
        table[path] = {k: [] for k in kinds}
        for r in range(b.args.rps_rounds):
            order = kinds[r % 3 :] + kinds[: r % 3]
            for kind in order:
                b.note(f"rps {path} {kind} round {r + 1}/{b.args.rps_rounds}")
                if path == "/hit":  # same starting table every run: count(*) grows with it
                    with contextlib.closing(sqlite3.connect(project.db, timeout=30)) as conn:
                        conn.execute("DROP TABLE IF EXISTS hits")
                        conn.commit()
                    b.adopt(config)
                run = b.start(kind, project, config=config)
                try:
                    b.wait_200(run)
                    get_status(run.port, path)
                    load(run.port, path, b.args.connections, b.args.warmup)
                    old = b.replica_files(config, project.db)
                    result = load(run.port, path, b.args.connections, b.args.rps_duration)
                    table[path][kind].append(result)
                    if path == "/hit" and kind != "bare":
                        new = b.replica_files(config, project.db)
                        made = [k for k in new if k not in old and k[0] == 0]
                        files[kind].append(len(made) / b.args.rps_duration)
                    if kind == "serve":
                        for name, p in serve_processes(run.proc.pid).items():
                            if (m := rss_of(p)) is not None:
                                rss_loaded.setdefault(name, []).append(m)
                    b.stop(run)
                finally:
                    if run.proc.poll() is None:
                        b.kill_tree(run.proc)
                if kind == "bare":
                    b.adopt(config)
    results["rps"] = table
    results["l0_per_second"] = files
    results["rss_loaded"] = rss_loaded


def section_idle(b: Bench, results: dict[str, Any]) -> None:
    """Litestream's CPU while nothing is written: serve's (its monitor-interval) vs the
    recipe's (Litestream's default of 1s)."""
    project, config = warm_project(b, results)
    cpu: dict[str, list[float]] = {"serve": [], "recipe": []}
    for r in range(b.args.idle_rounds):
        for kind in ("serve", "recipe"):
            b.note(f"idle CPU {kind} round {r + 1}/{b.args.idle_rounds}")
            run = b.start(kind, project, config=config)
            try:
                b.wait_200(run)
                time.sleep(2.0)
                proc = litestream_of(run.proc.pid)
                if proc is None:
                    raise RuntimeError(f"{kind}: no litestream process found")
                before = sum(proc.cpu_times()[:2])
                time.sleep(b.args.idle_seconds)
                used = sum(proc.cpu_times()[:2]) - before
                cpu[kind].append(100 * used / b.args.idle_seconds)
                b.stop(run)
            finally:
                if run.proc.poll() is None:
                    b.kill_tree(run.proc)
    results["idle_cpu"] = cpu


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------
def report(
    b: Bench, results: dict[str, Any], load_before: tuple[float, ...], elapsed: float
) -> None:
    a = b.args
    out = b.out
    verdicts: list[str] = []

    def row(label: str, values: Sequence[float], note: str = "") -> None:
        out(f"{label:<58}{fmt_range(values)}{note}")

    out()
    out("=" * 100)
    out("django-litestream serve benchmark" + ("  (--quick)" if a.quick else ""))
    out("=" * 100)
    out(
        f"machine: nproc={os.cpu_count()} ({platform.machine()}), {platform.system()} "
        f"{platform.release()}, RAM {psutil.virtual_memory().total / 2**30:.1f} GiB"
    )
    out(f"python {platform.python_version()}; {_versions(b)}")
    before = " ".join(f"{x:.2f}" for x in load_before)
    after = " ".join(f"{x:.2f}" for x in os.getloadavg())
    out(f"load average before / after: {before} / {after}; the bench took {elapsed:.0f}s")
    flags = " ".join(["-w", str(a.workers), "-k", "sync", *b.gunicorn_extra])
    out(f"gunicorn {flags}; N={a.runs} runs per figure, interleaved; seconds, median [min-max]")
    if a.before:
        out(f"serve before: serve run from {a.before}")

    table: list[tuple[str, dict[str, list[float]], str, Callable[[dict[str, float]], float]]] = []
    warm = results.get("warm")
    if warm:
        firsts = {k: [r.first_200 for r in v] for k, v in warm.items()}
        table.append(
            (
                f"warm, {a.warm_mib:g} MiB present, file replica",
                firsts,
                "recipe + 0.15 s",
                lambda m: m["recipe"] + 0.15,
            )
        )
    for (storage, count), cold in sorted(results.get("cold", {}).items(), key=lambda x: x[0][1]):
        firsts = {k: [r.first_200 for r in v] for k, v in cold["runs"].items()}
        firsts["floor"] = cold["floor"]
        where = "file" if storage == "file" else "S3 (moto)"
        if count == 1:
            label = f"cold, {cold['mib']:g} MiB, {where}"
            table.append((label, firsts, "1.15 x recipe", lambda m: 1.15 * m["recipe"]))
        else:
            label = f"cold, {count} x {cold['mib']:g} MiB, {where}"
            extra = 0.5 if storage == "file" else 0.6
            table.append(
                (label, firsts, f"floor + {extra} s", lambda m, e=extra: m["floor"] + e)  # type: ignore[misc]
            )
    if warm:
        stops = {k: [r.stop for r in v] for k, v in warm.items()}
        table.append(
            ("SIGTERM -> exit, idle", stops, "recipe + 0.03 s", lambda m: m["recipe"] + 0.03)
        )
    if table:
        cols = [
            k
            for k in ("bare", "recipe", "floor", "before", "serve", "serve-m")
            if k in b.kinds + ["floor"]
        ]
        out()
        out("1. The issue's table: spawn -> first HTTP 200, and SIGTERM -> exit (median seconds)")
        out(f"   {'':<38}" + "".join(f"{LABELS[c]:>14}" for c in cols) + f"{'target':>18}")
        for label, values, target_text, target in table:
            medians = {k: median(v) for k, v in values.items() if v}
            cells = "".join(f"{medians[c]:>14.3f}" if c in medians else f"{'-':>14}" for c in cols)
            out(f"   {label:<38}{cells}{target_text:>18}")
            if "serve" in medians:
                goal = target(medians)
                verdicts.append(
                    f"{'PASS' if medians['serve'] <= goal else 'MISS'}  {label}: serve "
                    f"{medians['serve']:.3f}s, target {target_text} = {goal:.3f}s"
                    + (f" (before {medians['before']:.3f}s)" if "before" in medians else "")
                    + (f"; python -m {medians['serve-m']:.3f}s" if "serve-m" in medians else "")
                )
        out("   each cell: median of N runs; floor = bare `litestream restore` (all at once)")

    uploads: list[tuple[str, dict[str, list[Result]]]] = []
    if warm:
        uploads.append((f"warm, {a.warm_mib:g} MiB (5 /hit)", warm))
    for (storage, count), cold in sorted(results.get("cold", {}).items(), key=lambda x: x[0][1]):
        size = f"{cold['mib']:g} MiB" if count == 1 else f"{count} x {cold['mib']:g} MiB"
        uploads.append((f"cold, {size}, {storage}", cold["runs"]))
    if uploads:
        out()
        out("2. Bytes uploaded to the replica per start (a start, 5 /hit, idle, SIGTERM; MB,")
        out("   median): level 0 (what the start itself sent) / all levels (with compactions)")
        kinds = [k for k in ("recipe", "before", "serve", "serve-m") if k in b.kinds]
        out(f"   {'':<38}" + "".join(f"{LABELS[k]:>18}" for k in kinds))
        for label, runs in uploads:
            cells = ""
            for k in kinds:
                if runs.get(k):
                    l0 = median([r.level0 / 1e6 for r in runs[k]])
                    al = median([r.all_levels / 1e6 for r in runs[k]])
                    cells += f"{f'{l0:.3f} / {al:.1f}':>18}"
                else:
                    cells += f"{'-':>18}"
            out(f"   {label:<38}{cells}")

    if warm or results.get("cold"):
        out()
        out("3. Details, seconds, median [min-max]")
    if warm:
        for kind, runs in warm.items():
            row(f"   warm first 200, {LABELS[kind]}", [r.first_200 for r in runs])
        for kind, runs in warm.items():
            codes = sorted({str(r.code) for r in runs})
            left = sum(r.leftovers for r in runs)
            row(
                f"   SIGTERM -> exit, {LABELS[kind]}",
                [r.stop for r in runs],
                f"  exit {','.join(codes)}; {left} processes left",
            )
        waits = {
            LABELS[kind]: [r.waited for r in runs if r.waited is not None]
            for kind, runs in warm.items()
        }
        if any(waits.values()):
            out(
                "   warm, gunicorn's wait for a CPU until the first 200 (ms, median): "
                + ", ".join(f"{k} {1000 * median(v):.0f}" for k, v in waits.items() if v)
            )
        _phases(out, "   warm, serve's phases", warm.get("serve", []))
        _phases(out, "   warm, serve before's phases", warm.get("before", []))
        _phases(out, "   warm, python -m's phases", warm.get("serve-m", []))
    for (storage, count), cold in sorted(results.get("cold", {}).items(), key=lambda x: x[0][1]):
        size = f"{cold['mib']:g} MiB" if count == 1 else f"{count} x {cold['mib']:g} MiB"
        out(f"   cold, {size}, {storage}:")
        row("     floor: bare restore(s), all at once", cold["floor"])
        if cold["sequential"]:
            row("     the same restores one after the other", cold["sequential"])
        for kind, runs in cold["runs"].items():
            row(f"     {LABELS[kind]} -> first 200", [r.first_200 for r in runs])
            row(f"     {LABELS[kind]} SIGTERM -> exit", [r.stop for r in runs])
        _phases(out, "     serve's phases", cold["runs"].get("serve", []))

    if "rps" in results:
        tools = {x.tool for kinds in results["rps"].values() for v in kinds.values() for x in v}
        out()
        out(
            f"4. Requests/s, {a.rps_rounds} rounds alternating the order, {a.rps_duration:g}s "
            f"each after {a.warmup:g}s warm-up, {a.connections} connections, {'/'.join(tools)}"
        )
        out("   path  variant   median req/s  each round (req/s)                          errors")
        for path, kinds in results["rps"].items():
            for kind, loads in kinds.items():
                value = median([x.rps for x in loads])
                rounds = " ".join(f"{x.rps:6.0f}" for x in loads)
                errors = sum(x.errors for x in loads)
                out(f"   {path:<5} {kind:<9} {value:12.0f}  {rounds:<43} {errors:6d}")
            ratios = {}
            for top, bottom in (("serve", "bare"), ("recipe", "bare"), ("serve", "recipe")):
                paired = [o.rps / x.rps for o, x in zip(kinds[top], kinds[bottom], strict=True)]
                ratios[top, bottom] = median(paired)
                out(
                    f"   {path:<5} {top + '/' + bottom + ',':<14} same round: median "
                    f"{median(paired):.3f} [{' '.join(f'{r:.2f}' for r in paired)}]"
                )
            verdicts.append(
                f"INFO  requests/s on {path}: serve/bare {ratios['serve', 'bare']:.3f}, "
                f"recipe/bare {ratios['recipe', 'bare']:.3f}, "
                f"serve/recipe {ratios['serve', 'recipe']:.3f}"
            )
        files = results.get("l0_per_second", {})
        if files.get("serve"):
            out(
                "   level-0 files (one upload each) per second of /hit: "
                + ", ".join(
                    f"{k} {median(v):.1f} [{min(v):.1f}-{max(v):.1f}]"
                    for k, v in files.items()
                    if v
                )
            )
    if "idle_cpu" in results:
        out()
        out(f"5. Litestream's CPU while idle, % of one core over {a.idle_seconds:g}s")
        for kind, values in results["idle_cpu"].items():
            row(f"   {LABELS[kind]}", values)
    if "rss_idle" in results or "rss_loaded" in results:
        out()
        out("6. Memory of serve's processes, MiB (RSS counts shared pages; USS is private)")
        out("   process            idle RSS  idle USS   after load RSS  after load USS")
        idle, loaded = results.get("rss_idle", {}), results.get("rss_loaded", {})
        for name in ("supervisor", "exec child", "litestream", "gunicorn master"):
            cells = []
            for values, width in ((idle.get(name), 8), (loaded.get(name), 14)):
                for index in (0, 1):
                    cells.append(
                        f"{max(x[index] for x in values):{width}.1f}"
                        if values
                        else f"{'n/a':>{width}}"
                    )
            out(f"   {name:<17} {cells[0]}  {cells[1]}   {cells[2]}  {cells[3]}")
        out(
            "   (largest over all serve runs; supervisor = the serve PID after its exec; exec "
            "child = Litestream's -exec child)"
        )
        sums = [
            s[0] + g[0]
            for s, g in zip(idle.get("supervisor", []), idle.get("exec child", []), strict=False)
        ]
        if sums:
            peak = max(sums) * MIB / 1e6
            verdicts.append(
                f"{'PASS' if peak < 30 else 'MISS'}  supervisor + exec child RSS {peak:.1f} MB "
                "(target < 30 MB)"
            )
    out()
    out("Targets")
    for line in verdicts:
        out(f"   {line}")
    out("=" * 100)


def _phases(out: Callable[[str], None], label: str, runs: Sequence[Result]) -> None:
    found: dict[str, list[float]] = {}
    for r in runs:
        for name, value in r.phases.items():
            found.setdefault(name, []).append(value)
    if found:
        out(f"{label}: " + ", ".join(f"{k} {median(v):.2f}" for k, v in found.items()))


def _versions(b: Bench) -> str:
    parts = []
    with contextlib.suppress(Exception):
        v = subprocess.run([b.litestream, "version"], capture_output=True, text=True, timeout=10)
        parts.append(f"litestream {v.stdout.strip()}")
    for mod in ("django", "gunicorn", "moto"):
        with contextlib.suppress(Exception):
            parts.append(f"{mod} {__import__(mod).__version__}")
    if shutil.which("wrk"):
        with contextlib.suppress(Exception):
            v = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10)
            parts.append((v.stdout + v.stderr).split("[")[0].strip())
    return ", ".join(parts)


# --------------------------------------------------------------------------------------------
SECTIONS = ("start", "cold", "multi", "rps", "idle")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="smaller databases (10 MiB, 3 x 4 MiB), N=2, short load runs",
    )
    p.add_argument("--runs", type=int, help="runs per start/stop figure (default 5, quick 2)")
    p.add_argument("--warm-mib", type=float, help="warm-start database size (default 9)")
    p.add_argument("--db-mib", type=float, help="cold-start database size (default 100, quick 10)")
    p.add_argument(
        "--multi-mib",
        type=float,
        help="size of each of the concurrent databases (default 36.5, quick 4)",
    )
    p.add_argument("--multi-count", type=int, default=3, help="number of concurrent databases")
    p.add_argument(
        "--storages", default="file,s3", help="replica storages of the cold starts (file,s3)"
    )
    p.add_argument(
        "--settle",
        type=float,
        default=2.0,
        help="seconds a cold start keeps serving after its first 200 before SIGTERM, so that "
        "the recipe's Litestream (1s monitor) has opened the database too (2)",
    )
    p.add_argument("--rps-duration", type=float, help="seconds per load run (default 5, quick 3)")
    p.add_argument("--rps-rounds", type=int, help="alternating rounds (default 6, quick 2)")
    p.add_argument(
        "--warmup", type=float, help="seconds of load before each measured run (default 1)"
    )
    p.add_argument("--idle-rounds", type=int, help="idle CPU rounds (default 3, quick 1)")
    p.add_argument("--idle-seconds", type=float, default=10.0, help="idle CPU window (10)")
    p.add_argument("--connections", type=int, default=4, help="concurrent connections (4)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (2)")
    p.add_argument(
        "--loadgen",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="wrk when on PATH (auto), else a Python load generator",
    )
    p.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help="comma-separated sections: start (warm start, SIGTERM, memory), cold (one "
        "database), multi (several), rps (requests/s), idle (Litestream's idle CPU)",
    )
    p.add_argument("--before", metavar="SRC", help="also run serve from this source tree")
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="SECONDS",
        help="first wait up to SECONDS for the 1-minute load average to drop below "
        "half the CPU count (other work on the machine skews every figure)",
    )
    p.add_argument("--keep-temp", action="store_true", help="keep the temporary directory (logs)")
    a = p.parse_args(argv)
    q = a.quick
    a.runs = a.runs or (2 if q else 5)
    a.warm_mib = a.warm_mib or 9
    a.db_mib = a.db_mib or (10 if q else 100)
    a.multi_mib = a.multi_mib or (4 if q else 36.5)
    a.rps_duration = a.rps_duration or (3 if q else 5)
    a.rps_rounds = a.rps_rounds or (2 if q else 6)
    a.idle_rounds = a.idle_rounds or (1 if q else 3)
    a.warmup = a.warmup if a.warmup is not None else 1
    for name in ("runs", "multi_count", "rps_rounds", "connections", "workers", "idle_rounds"):
        if getattr(a, name) < 1 or getattr(a, name) > 1000:
            p.error(f"--{name.replace('_', '-')} must be between 1 and 1000")
    a.sections = {s.strip() for s in a.only.split(",") if s.strip()}
    if unknown := a.sections - set(SECTIONS):
        p.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    a.storages = [s.strip() for s in a.storages.split(",") if s.strip()]
    if unknown := set(a.storages) - {"file", "s3"}:
        p.error(f"unknown storage(s): {', '.join(sorted(unknown))}")
    if a.before:
        a.before = str(Path(a.before).resolve())
        if not (Path(a.before) / "django_litestream").is_dir():
            p.error(f"--before {a.before}: no django_litestream package there")
    if a.loadgen == "wrk" and not shutil.which("wrk"):
        p.error("--loadgen wrk: wrk is not on PATH (apt-get install wrk)")
    return a


def wait_quiet(seconds: float) -> None:
    limit = (os.cpu_count() or 1) / 2
    deadline = time.monotonic() + seconds
    while os.getloadavg()[0] >= limit and time.monotonic() < deadline:
        print(
            f"  .. waiting for a quiet machine: load {os.getloadavg()[0]:.2f} >= {limit:g}",
            file=sys.stderr,
            flush=True,
        )
        time.sleep(min(15.0, max(0.0, deadline - time.monotonic())))


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.pop("AWS_CA_BUNDLE", None)
    become_subreaper()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)
    wait_quiet(args.wait_quiet)
    bench = Bench(args)
    results: dict[str, Any] = {}
    load_before = os.getloadavg()
    started = time.monotonic()
    code = 0
    try:
        if "start" in args.sections:
            section_start(bench, results)
        for storage in args.storages:
            if "cold" in args.sections:
                section_cold(bench, results, storage, 1, args.db_mib)
            if "multi" in args.sections:
                section_cold(bench, results, storage, args.multi_count, args.multi_mib)
        if "idle" in args.sections:
            section_idle(bench, results)
        if "rps" in args.sections:
            section_rps(bench, results)
    except KeyboardInterrupt:
        print("\nbench: interrupted; cleaning up", file=sys.stderr)
        code = 130
    except Exception as exc:  # report what was measured, then the failure
        print(f"\nbench: FAILED: {exc}", file=sys.stderr)
        code = 1
    finally:
        try:
            if results:
                try:
                    report(bench, results, load_before, time.monotonic() - started)
                except Exception as exc:  # a partial run: say so rather than hide the cleanup
                    print(f"bench: could not report partial results: {exc!r}", file=sys.stderr)
                    code = code or 1
        finally:
            bench.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
