#!/usr/bin/env python
"""Benchmark ``manage.py litestream serve`` side by side with bare gunicorn and the plain recipe.

Run from the repository root with the project's virtualenv::

    .venv/bin/python benchmarks/bench_serve.py            # full run (about 10 minutes)
    .venv/bin/python benchmarks/bench_serve.py --quick    # small sizes, fewer runs (~2 minutes)

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
import socket
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psutil  # noqa: E402

from tests.project import Project, make_project  # noqa: E402
from tests.storage import MotoS3  # noqa: E402

HOST = "127.0.0.1"
START_TIMEOUT = 180.0  # spawn -> first 200, per run (a 100 MB cold start included)
STOP_TIMEOUT = 90.0  # SIGTERM -> exit, per run
RESTORE_TIMEOUT = 180.0
MIB = 1024 * 1024
BIN_DIR = Path(sys.executable).parent


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def litestream_binary() -> str:
    beside = BIN_DIR / "litestream"
    found = str(beside) if os.access(beside, os.X_OK) else shutil.which("litestream")
    if not found:
        sys.exit("bench: no litestream executable beside this Python or on PATH")
    return found


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt_s(value: float) -> str:
    return "   n/a" if value != value else f"{value:6.2f}"


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


def restore_phase(log: Path) -> tuple[float | None, list[float]]:
    """(seconds from the first 'is missing' to the last 'Restored' line, per-db seconds)."""
    first = last = None
    each: list[float] = []
    for line in log_tail(log, 10_000_000).splitlines():
        if "[django-litestream]" not in line:
            continue
        stamp = parse_log_time(line)
        if " is missing; restoring it" in line and first is None:
            first = stamp
        match = re.search(r" Restored .* in ([\d.]+)s$", line)
        if match:
            last = stamp
            each.append(float(match.group(1)))
    if first is None or last is None:
        return None, each
    return last - first, each


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

    # -- output ---------------------------------------------------------------------------
    def out(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.append(text)

    def note(self, text: str) -> None:
        """Progress on stderr, so stdout is only the report."""
        print(f"  .. {text}", file=sys.stderr, flush=True)

    # -- lifecycle ------------------------------------------------------------------------
    def launch(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: dict[str, str],
        name: str,
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
        """Spawn one variant: bare | recipe | serve (all run the same gunicorn command)."""
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
        elif kind == "serve":
            # A private TMPDIR per run: serve's runtime dir lands there, so its file
            # timestamps give a breakdown and nothing is left in /tmp if a run is killed.
            tmpdir = self.tmp / "tmp" / f"run-{self.counter + 1:03d}"
            tmpdir.mkdir(parents=True)
            env["TMPDIR"] = str(tmpdir)
            argv = project.command("litestream", "serve", "--", *server)
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

    def start_and_stop(
        self, kind: str, project: Project, *, config: Path | None = None, restore: bool = False
    ) -> tuple[Run, dict[str, float]]:
        """Spawn, wait for the first 200 (run.first_200), read serve's breakdown, SIGTERM."""
        run = self.start(kind, project, config=config, restore_flag=restore)
        try:
            self.wait_200(run)
            steps = self.serve_breakdown(run)
            self.stop(run)
        finally:
            if run.proc.poll() is None:
                self.kill_tree(run.proc)
        return run, steps

    def serve_breakdown(self, run: Run) -> dict[str, float]:
        """Seconds from spawn to each step, from serve's runtime files (read while serving)."""
        steps: dict[str, float] = {}
        if run.tmpdir is None:
            return steps
        dirs = list(run.tmpdir.glob("django-litestream-serve-*"))
        if len(dirs) != 1:
            return steps
        if run.first_200 is not None:
            steps["first"] = run.first_200
        files = {"plan": "plan.json", "socket": "litestream.sock", "server": "server.pid"}
        for label, name in files.items():
            with contextlib.suppress(OSError):
                steps[label] = os.stat(dirs[0] / name).st_mtime - run.spawned_wall
        return steps

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

    def bare_restore(self, project: Project, config: Path, db: Path) -> float:
        out = self.tmp / f"restore-{db.name}"
        remove_db(out)
        seconds, result = self.run_cmd(
            [self.litestream, "restore", "-config", str(config), "-o", str(out), str(db)],
            cwd=project.root, env=project.env,
        )  # fmt: skip
        if result.returncode != 0 or not out.exists():
            raise RuntimeError(f"litestream restore failed: {result.stderr[-2000:]}")
        remove_db(out)
        return seconds

    def concurrent_restores(self, project: Project, config: Path, dbs: Sequence[Path]) -> float:
        outs = [self.tmp / f"restore-c-{db.name}" for db in dbs]
        for out in outs:
            remove_db(out)
        started = time.perf_counter()
        procs = [
            subprocess.Popen(
                [self.litestream, "restore", "-config", str(config), "-o", str(out), str(db)],
                cwd=project.root,
                env=project.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
            for db, out in zip(dbs, outs, strict=True)
        ]
        self.procs.extend(procs)
        codes = [p.wait(timeout=RESTORE_TIMEOUT) for p in procs]
        seconds = time.perf_counter() - started
        if any(codes) or not all(o.exists() for o in outs):
            raise RuntimeError(f"concurrent litestream restore failed: {codes}")
        for out in outs:
            remove_db(out)
        return seconds


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
    """The supervisor (the serve PID itself after its exec), litestream, gate, gunicorn."""
    found: dict[str, psutil.Process | None] = dict.fromkeys(
        ("supervisor", "litestream", "gate", "gunicorn master"), None
    )
    try:
        top = psutil.Process(pid)
        if "django_litestream.serve.supervisor" in " ".join(top.cmdline()):
            found["supervisor"] = top
        for p in top.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                cmd = " ".join(p.cmdline())
                if p.name() == "litestream" and " replicate " in f" {cmd} ":
                    found["litestream"] = p
                elif "django_litestream.serve.gate" in cmd:
                    found["gate"] = p
                elif "gunicorn" in cmd and "serve.gate" in " ".join(p.parent().cmdline()):
                    found["gunicorn master"] = p
    except psutil.Error:
        pass
    return found


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
def write_config(path: Path, dbs: Iterable[tuple[Path, dict[str, Any]]]) -> Path:
    """A plain litestream.yml (JSON is YAML) as a user of the plain recipe would write it."""
    path.write_text(
        json.dumps(
            {"dbs": [{"path": str(db), "replica": replica} for db, replica in dbs]}, indent=2
        )
    )
    return path


def section_start(b: Bench, results: dict[str, Any]) -> None:
    """1(a-c) spawn -> first 200 warm; 3 RSS while serving; 4 SIGTERM -> exit."""
    project = b.project("warm")
    replica = {"type": "file", "path": str(b.tmp / "replica-warm")}
    project.configure({"dbs": [{"path": "default", "replica": replica}]})
    conn = sqlite3.connect(project.db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS hits (id INTEGER PRIMARY KEY)")
    conn.close()
    config = write_config(b.tmp / "recipe-warm.yml", [(project.db, replica)])
    results["warm_project"] = (project, config)
    first: dict[str, list[float]] = {"bare": [], "recipe": [], "serve": []}
    term: dict[str, list[float]] = {"bare": [], "recipe": [], "serve": []}
    codes: dict[str, list[int | None]] = {"bare": [], "recipe": [], "serve": []}
    leftovers: dict[str, int] = {"bare": 0, "recipe": 0, "serve": 0}
    breakdown: list[dict[str, float]] = []
    rss: dict[str, list[tuple[float, float]]] = {}
    for i in range(b.args.runs):
        for kind in ("bare", "recipe", "serve"):
            b.note(f"warm start {kind} {i + 1}/{b.args.runs}")
            run = b.start(kind, project, config=config)
            try:
                first[kind].append(b.wait_200(run))
                if kind == "serve":
                    breakdown.append(b.serve_breakdown(run))
                for _ in range(5):  # something for the final sync to ship
                    get_status(run.port, "/hit")
                time.sleep(1.0)  # steady state: both workers up, litestream idle
                if kind == "serve":
                    for name, p in serve_processes(run.proc.pid).items():
                        if (m := rss_of(p)) is not None:
                            rss.setdefault(name, []).append(m)
                seconds, code, left = b.stop(run)
                term[kind].append(seconds)
                codes[kind].append(code)
                leftovers[kind] += left
            finally:
                if run.proc.poll() is None:
                    b.kill_tree(run.proc)
    results.update(first=first, term=term, codes=codes, leftovers=leftovers,
                   breakdown=breakdown, rss_idle=rss)  # fmt: skip


def section_cold(b: Bench, results: dict[str, Any]) -> None:
    """1(d): one database of --db-mib restored from S3 on cold start."""
    s3 = b.start_moto()
    project = b.project("cold1")
    bucket = s3.new_bucket()
    replica = s3.replica("db", bucket)
    project.configure({"dbs": [{"path": "default", "replica": replica}]})
    b.note(f"building a {b.args.db_mib:g} MiB database")
    size = build_db(project.db, b.args.db_mib)
    b.note("replicating it to S3 (manage.py litestream replicate -once)")
    seconds, result = b.run_cmd(project.command("litestream", "replicate", "-once"),
                                cwd=project.root, env=project.env)  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"replicate -once failed:\n{result.stderr[-3000:]}")
    config = write_config(b.tmp / "recipe-cold1.yml", [(project.db, replica)])
    data: dict[str, list[float]] = {
        k: []
        for k in (
            "bare_restore",
            "serve_cold",
            "serve_restore_phase",
            "serve_restore_own",
            "serve_warm",
            "recipe_cold",
        )
    }
    steps: list[dict[str, float]] = []
    for i in range(b.args.runs):
        b.note(f"cold start 1 x {b.args.db_mib:g} MiB, round {i + 1}/{b.args.runs}")
        data["bare_restore"].append(b.bare_restore(project, config, project.db))
        remove_db(project.db)
        run, step = b.start_and_stop("serve", project)
        phase, each = restore_phase(run.log)
        if phase is None:
            raise RuntimeError(f"serve did not log a restore:\n{log_tail(run.log)}")
        data["serve_cold"].append(run.first_200)
        data["serve_restore_phase"].append(phase)
        data["serve_restore_own"].append(max(each))
        steps.append({**step, "restore": phase})
        run, _ = b.start_and_stop("serve", project)  # the database is present now
        data["serve_warm"].append(run.first_200)
        remove_db(project.db)
        run, _ = b.start_and_stop("recipe", project, config=config, restore=True)
        data["recipe_cold"].append(run.first_200)
    results["cold"] = {"data": data, "size": size, "upload": seconds, "steps": steps}


def section_multi(b: Bench, results: dict[str, Any]) -> None:
    """1(e): --multi-count databases of --multi-mib restored concurrently on cold start."""
    s3 = b.start_moto()
    project = b.project("cold3")
    bucket = s3.new_bucket()
    n = b.args.multi_count
    aliases = ["default", *[f"db{i}" for i in range(2, n + 1)]]
    paths = [project.root / f"{alias}.sqlite3" for alias in aliases]
    replicas = [s3.replica(f"db{i}", bucket) for i in range(1, n + 1)]
    project.configure(
        {"dbs": [{"path": a, "replica": r} for a, r in zip(aliases, replicas, strict=True)]},
        databases={a: {"ENGINE": "django.db.backends.sqlite3", "NAME": str(p)}
                   for a, p in zip(aliases, paths, strict=True)},
    )  # fmt: skip
    b.note(f"building {n} databases of {b.args.multi_mib:g} MiB")
    sizes = [build_db(p, b.args.multi_mib) for p in paths]
    b.note("replicating them to S3 (manage.py litestream replicate -once)")
    _s, result = b.run_cmd(project.command("litestream", "replicate", "-once"),
                           cwd=project.root, env=project.env)  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"replicate -once failed:\n{result.stderr[-3000:]}")
    config = write_config(b.tmp / "recipe-cold3.yml", list(zip(paths, replicas, strict=True)))
    singles: list[list[float]] = [[] for _ in paths]
    steps: list[dict[str, float]] = []
    data: dict[str, list[float]] = {k: [] for k in (
        "slowest", "sum", "bare_concurrent", "serve_phase", "serve_own_slowest", "serve_cold",
        "serve_warm", "recipe_cold")}  # fmt: skip
    for i in range(b.args.runs):
        b.note(f"cold start {n} x {b.args.multi_mib:g} MiB, round {i + 1}/{b.args.runs}")
        each = [b.bare_restore(project, config, p) for p in paths]
        for k, s in enumerate(each):
            singles[k].append(s)
        data["slowest"].append(max(each))
        data["sum"].append(sum(each))
        data["bare_concurrent"].append(b.concurrent_restores(project, config, paths))
        for p in paths:
            remove_db(p)
        run, step = b.start_and_stop("serve", project)
        phase, each = restore_phase(run.log)
        if phase is None:
            raise RuntimeError(f"serve did not log the restores:\n{log_tail(run.log)}")
        data["serve_cold"].append(run.first_200)
        data["serve_phase"].append(phase)
        data["serve_own_slowest"].append(max(each))
        steps.append({**step, "restore": phase})
        run, _ = b.start_and_stop("serve", project)
        data["serve_warm"].append(run.first_200)
        for p in paths:
            remove_db(p)
        run, _ = b.start_and_stop("recipe", project, config=config, restore=True)
        data["recipe_cold"].append(run.first_200)
    results["multi"] = {"data": data, "singles": singles, "sizes": sizes, "steps": steps}


def section_rps(b: Bench, results: dict[str, Any]) -> None:
    """2: requests/s through serve, the plain recipe and bare gunicorn, alternating."""
    if "warm_project" not in results:
        section_start_project_only(b, results)
    project, config = results["warm_project"]
    use_wrk = b.args.loadgen == "wrk" or (b.args.loadgen == "auto" and shutil.which("wrk"))
    load = wrk_load if use_wrk else python_load
    kinds = ["bare", "serve", "recipe"]
    table: dict[str, dict[str, list[Load]]] = {}
    rss_loaded: dict[str, list[tuple[float, float]]] = {}
    for path in ("/", "/hit"):
        table[path] = {k: [] for k in kinds}
        for r in range(b.args.rps_rounds):
            order = (
                kinds[r % 3 :] + kinds[: r % 3]
            )  # rotate: bare/serve/recipe, serve/recipe/bare, ...
            for kind in order:
                b.note(f"rps {path} {kind} round {r + 1}/{b.args.rps_rounds}")
                if path == "/hit":  # same starting table every run: count(*) grows with it
                    with contextlib.closing(sqlite3.connect(project.db, timeout=30)) as conn:
                        conn.execute("DROP TABLE IF EXISTS hits")
                        conn.commit()
                run = b.start(kind, project, config=config)
                try:
                    b.wait_200(run)
                    get_status(run.port, path)
                    load(run.port, path, b.args.connections, b.args.warmup)
                    result = load(run.port, path, b.args.connections, b.args.rps_duration)
                    table[path][kind].append(result)
                    if kind == "serve":
                        for name, p in serve_processes(run.proc.pid).items():
                            if (m := rss_of(p)) is not None:
                                rss_loaded.setdefault(name, []).append(m)
                    b.stop(run)
                finally:
                    if run.proc.poll() is None:
                        b.kill_tree(run.proc)
    results["rps"] = table
    results["rss_loaded"] = rss_loaded


def section_start_project_only(b: Bench, results: dict[str, Any]) -> None:
    project = b.project("warm")
    replica = {"type": "file", "path": str(b.tmp / "replica-warm")}
    project.configure({"dbs": [{"path": "default", "replica": replica}]})
    with contextlib.closing(sqlite3.connect(project.db)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
    results["warm_project"] = (
        project,
        write_config(b.tmp / "recipe-warm.yml", [(project.db, replica)]),
    )


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
        out(f"{label:<56}{fmt_range(values)}{note}")

    out()
    out("=" * 96)
    out("django-litestream serve benchmark" + ("  (--quick)" if a.quick else ""))
    out("=" * 96)
    out(
        f"machine: nproc={os.cpu_count()} ({platform.machine()}), {platform.system()} "
        f"{platform.release()}, RAM {psutil.virtual_memory().total / 2**30:.1f} GiB"
    )
    out(f"python {platform.python_version()}; {_versions(b)}")
    before = " ".join(f"{x:.2f}" for x in load_before)
    after = " ".join(f"{x:.2f}" for x in os.getloadavg())
    out(f"load average before / after: {before} / {after}; the bench took {elapsed:.0f}s")
    flags = " ".join(["-w", str(a.workers), "-k", "sync", *b.gunicorn_extra])
    out(f"gunicorn {flags}; N={a.runs} runs per figure; seconds, median [min-max]")
    if "first" in results:
        f = results["first"]
        out()
        out("1. Spawn -> first HTTP 200 on / (warm: database present, file replica)")
        row("   (a) bare gunicorn", f["bare"])
        row("   (b) plain recipe: litestream replicate -exec gunicorn", f["recipe"])
        row("   (c) manage.py litestream serve -- gunicorn", f["serve"])
        base = median(f["bare"])
        out(
            f"       serve - bare = {median(f['serve']) - base:+.2f}s;  "
            f"recipe - bare = {median(f['recipe']) - base:+.2f}s"
        )
        _breakdown(out, results.get("breakdown", []))
    if "cold" in results:
        c = results["cold"]
        d = c["data"]
        out()
        out(
            f"   (d) cold start, one {c['size'] / MIB:.0f} MiB database restored from S3 (moto); "
            f"replicate -once uploaded it in {c['upload']:.1f}s"
        )
        row("       bare `litestream restore` (reference)", d["bare_restore"])
        row("       serve cold start -> first 200", d["serve_cold"])
        row("         serve's restore phase (log line to log line)", d["serve_restore_phase"])
        row("         restore + integrity check (serve's own timer)", d["serve_restore_own"])
        row("       serve warm start, same S3 project", d["serve_warm"])
        row(
            "       recipe -restore-if-db-not-exists -> first 200",
            d["recipe_cold"],
            "  (info: it serves before any sync)",
        )
        extra = median(d["serve_cold"]) - median(d["serve_warm"]) - median(d["serve_restore_phase"])
        out(f"       serve cold - serve warm - restore phase = {extra:+.2f}s (post-restore sync)")
        _breakdown(out, c["steps"])
    if "multi" in results:
        m = results["multi"]
        d = m["data"]
        n = len(m["singles"])
        out()
        out(f"   (e) cold start, {n} databases of {m['sizes'][0] / MIB:.0f} MiB restored from S3")
        for k, single in enumerate(m["singles"]):
            row(f"       bare restore of database {k + 1} alone", single)
        row("       slowest single (per round)", d["slowest"])
        row("       sum of singles (per round)", d["sum"])
        row(f"       {n} bare restores at once (what the machine allows)", d["bare_concurrent"])
        row(f"       serve restore phase, {n} concurrent (log to log)", d["serve_phase"])
        row("         slowest restore + integrity (serve's own timer)", d["serve_own_slowest"])
        row("       serve cold start -> first 200", d["serve_cold"])
        row(f"       serve warm start, same {n} databases", d["serve_warm"])
        row("       recipe -restore-if-db-not-exists -> first 200", d["recipe_cold"])
        _breakdown(out, m["steps"])
        slow, total, phase = median(d["slowest"]), median(d["sum"]), median(d["serve_phase"])
        overlap = (total - phase) / (total - slow) if total > slow else float("nan")
        out(
            f"       serve phase = {phase / slow:.2f} x slowest single = {phase / total:.2f} x sum;"
            f" overlap (sum-phase)/(sum-slowest) = {overlap:.2f} (1 concurrent, 0 serial)"
        )
        at_once = median(d["bare_concurrent"])
        out(
            f"       serve phase = {phase / at_once:.2f} x the {n} bare restores at once "
            "(serve's cost over what this machine allows)"
        )
        ok = phase <= slow + 0.25 * (total - slow)
        verdicts.append(
            f"{'PASS' if ok else 'MISS'}  {n}-database cold restore: serve {phase:.2f}s vs slowest "
            f"single {slow:.2f}s vs sum {total:.2f}s (pass: within 25% of the way to the sum)"
        )
    if "rps" in results:
        tools = {x.tool for kinds in results["rps"].values() for v in kinds.values() for x in v}
        out()
        out(
            f"2. Requests/s, {a.rps_rounds} rounds alternating the order, {a.rps_duration:g}s "
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
            ratio = ratios["serve", "bare"]
            short = "" if ratio >= 0.98 else f", short by {0.98 - ratio:.3f}"
            verdicts.append(
                f"{'PASS' if ratio >= 0.98 else 'MISS'}  requests/s through serve on {path}: "
                f"{ratio:.3f} of bare gunicorn (target >= 0.98{short}); recipe/bare "
                f"{ratios['recipe', 'bare']:.3f}, serve/recipe {ratios['serve', 'recipe']:.3f}"
            )
    if "rss_idle" in results or "rss_loaded" in results:
        out()
        out("3. Memory of serve's processes, MiB (RSS counts shared pages; USS is private)")
        out("   process            idle RSS  idle USS   after load RSS  after load USS")
        idle, loaded = results.get("rss_idle", {}), results.get("rss_loaded", {})
        for name in ("supervisor", "litestream", "gate", "gunicorn master"):
            cells = []
            for values, width in ((idle.get(name), 8), (loaded.get(name), 14)):
                for index in (0, 1):
                    cells.append(
                        f"{max(x[index] for x in values):{width}.1f}"
                        if values
                        else f"{'n/a':>{width}}"
                    )
            out(f"   {name:<17} {cells[0]}  {cells[1]}   {cells[2]}  {cells[3]}")
        out("   (largest over all serve runs; supervisor = the serve PID after its exec)")
        sup = [x[0] for x in (*idle.get("supervisor", []), *loaded.get("supervisor", []))]
        if sup:
            peak = max(sup)
            verdicts.append(
                f"{'PASS' if peak < 40 else 'MISS'}  supervisor RSS {peak:.1f} MiB (target < 40 MB)"
            )
    if "term" in results:
        t, codes, left = results["term"], results["codes"], results["leftovers"]
        out()
        out("4. SIGTERM -> exit of the spawned process (after 5 /hit requests and 1s idle)")
        for kind, label in (
            ("bare", "bare gunicorn"),
            ("recipe", "plain recipe (litestream replicate -exec)"),
            ("serve", "serve"),
        ):
            status = sorted({str(c) for c in codes[kind]})
            row(
                f"   {label}",
                t[kind],
                f"  exit code {','.join(status)}; {left[kind]} processes left",
            )
    out()
    out("Targets")
    for line in verdicts:
        out(f"   {line}")
    out("=" * 96)


def _breakdown(out: Callable[[str], None], steps: list[dict[str, float]]) -> None:
    """Median length of each stage of serve's start, from its runtime files' timestamps."""
    stages: dict[str, list[float]] = {}
    labels = (
        ("manage.py: Django setup, config, plan, exec", None, "plan"),
        ("supervisor start, lock, [restore,] litestream start", "plan", "socket"),
        ("  of which the restore phase", None, None),
        ("gate: Litestream synced + replica holds it", "socket", "server"),
        ("gunicorn boot -> first HTTP 200", "server", "first"),
    )
    for step in steps:
        for label, begin, end in labels:
            if label.strip().startswith("of which"):
                if "restore" in step:
                    stages.setdefault(label, []).append(step["restore"])
            elif end in step and (begin is None or begin in step):
                stages.setdefault(label, []).append(step[end] - (step[begin] if begin else 0.0))
    if not stages:
        return
    out("       breakdown of serve's start (median of runs):")
    for label, _begin, _end in labels:
        if label in stages:
            out(f"         {label:<54}{median(stages[label]):6.2f}")


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
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="smaller databases (10 MiB, 3 x 4 MiB), N=2, short load runs",
    )
    p.add_argument("--runs", type=int, help="runs per start/stop figure (default 5, quick 2)")
    p.add_argument("--db-mib", type=float, help="cold-start database size (default 100, quick 10)")
    p.add_argument(
        "--multi-mib",
        type=float,
        help="size of each of the concurrent databases (default 35, quick 4)",
    )
    p.add_argument("--multi-count", type=int, default=3, help="number of concurrent databases")
    p.add_argument("--rps-duration", type=float, help="seconds per load run (default 5, quick 3)")
    p.add_argument("--rps-rounds", type=int, help="alternating rounds (default 6, quick 2)")
    p.add_argument(
        "--warmup", type=float, help="seconds of load before each measured run (default 1)"
    )
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
        default="start,cold,multi,rps",
        help="comma-separated sections: start (1a-c, 3, 4), cold (1d), multi (1e), rps (2)",
    )
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
    a.db_mib = a.db_mib or (10 if q else 100)
    a.multi_mib = a.multi_mib or (4 if q else 35)
    a.rps_duration = a.rps_duration or (3 if q else 5)
    a.rps_rounds = a.rps_rounds or (2 if q else 6)
    a.warmup = a.warmup if a.warmup is not None else 1
    for name in ("runs", "multi_count", "rps_rounds", "connections", "workers"):
        if getattr(a, name) < 1 or getattr(a, name) > 1000:
            p.error(f"--{name.replace('_', '-')} must be between 1 and 1000")
    a.sections = {s.strip() for s in a.only.split(",") if s.strip()}
    unknown = a.sections - {"start", "cold", "multi", "rps"}
    if unknown:
        p.error(f"unknown section(s): {', '.join(sorted(unknown))}")
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
        if "cold" in args.sections:
            section_cold(bench, results)
        if "multi" in args.sections:
            section_multi(bench, results)
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
