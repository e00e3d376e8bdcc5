"""Knowing the backup works, measured: verify, the health endpoint, outage detection.

Side by side in one run, on 127.0.0.1 only:

1. ``manage.py litestream verify`` (and ``--quick``) on a small and a ~100 MB database
   with a file replica and no serve running, against the floor: a bare ``litestream
   restore`` of the same database (what any verification has to pay), and ``status``.
2. The health endpoint's cost per request: in-process (the view called directly, against
   a real serve's state) against a view that returns a constant JSON body; and over HTTP
   through gunicorn under serve, against the project's plain ``/`` view.
3. Outage detection with serve's defaults (``--replica-check-interval 30``,
   ``sync-interval`` 1 s): moto is stopped with SIGSTOP at a random moment while rows are
   written; the seconds until serve's warning, against the bound 30 + 2 x 1 = 32 s, and
   the outage length serve reports against the real one.

Medians of N runs (``--runs``). Exits 0 unless something failed to run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.support import SIGSERVER
from tests.support.project import Project, make_project, wait_for
from tests.support.storage import MotoS3, free_port


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def build(project: Project, megabytes: float) -> int:
    """A WAL database of about ``megabytes``, replicated once; its size in bytes."""
    conn = sqlite3.connect(project.db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, body TEXT, n INTEGER)")
    conn.execute("CREATE INDEX items_n ON items (n)")
    rng = random.Random(8)
    while os.path.getsize(project.db) + os.path.getsize(f"{project.db}-wal") < megabytes * 1e6:
        conn.executemany(
            "INSERT INTO items (name, body, n) VALUES (?, ?, ?)",
            [
                (f"item-{rng.randrange(10**9)}", os.urandom(40).hex(), rng.randrange(1000))
                for _ in range(5000)
            ],
        )
        conn.commit()
    conn.close()
    # The first replication of a database whose replica is empty: the guard lets it through.
    result = project.run("litestream", "replicate", "-once", timeout=600)
    assert result.returncode == 0, result.stderr
    return os.path.getsize(project.db)


def timed(project: Project, *args: str) -> float:
    start = time.perf_counter()
    result = project.run(*args, timeout=900)
    took = time.perf_counter() - start
    assert result.returncode == 0, result.stdout + result.stderr
    return took


def bench_verify(root: Path, runs: int, sizes: list[float]) -> list[tuple[str, float, float]]:
    rows = []
    for megabytes in sizes:
        folder = root / f"verify-{megabytes:g}"
        (folder / "proj").mkdir(parents=True)
        project = make_project(folder / "proj")
        project.configure(
            {"dbs": [{"path": "default", "replica": {"type": "file", "path": str(folder / "r")}}]}
        )
        size = build(project, megabytes)
        say(f"verify: {size / 1e6:.1f} MB database built and replicated")
        names = ("verify", "quick", "served", "served quick", "restore", "status")
        samples: dict[str, list[float]] = {name: [] for name in names}
        out = folder / "restored.db"
        for _ in range(runs):  # interleaved, so that load hits every variant alike
            samples["verify"].append(timed(project, "litestream", "verify"))
            samples["quick"].append(timed(project, "litestream", "verify", "--quick"))
            for suffix in ("", "-wal", "-shm"):
                Path(f"{out}{suffix}").unlink(missing_ok=True)
            samples["restore"].append(
                timed(project, "litestream", "restore", "-o", str(out), "default")
            )
            samples["status"].append(timed(project, "litestream", "status"))
            with served(project, folder):
                samples["served"].append(timed(project, "litestream", "verify"))
                samples["served quick"].append(timed(project, "litestream", "verify", "--quick"))
        floor = statistics.median(samples["restore"])
        label = f"{size / 1e6:.1f} MB"
        rows += [
            (f"verify, no serve running, {label}", statistics.median(samples["verify"]), floor),
            (f"verify --quick, no serve, {label}", statistics.median(samples["quick"]), floor),
            (f"verify, through serve, {label}", statistics.median(samples["served"]), floor),
            (
                f"verify --quick, through serve, {label}",
                statistics.median(samples["served quick"]),
                floor,
            ),
            (f"status, {label}", statistics.median(samples["status"]), floor),
            (f"litestream restore (the floor), {label}", floor, floor),
        ]
    return rows


@contextlib.contextmanager
def served(project: Project, folder: Path) -> Iterator[None]:
    """serve around a server that only waits, until the block ends."""
    log = folder / "sig.log"
    log.write_text("")
    proc = project.spawn(
        "litestream",
        "serve",
        "--",
        sys.executable,
        SIGSERVER,
        str(log),
        stdout=open(os.devnull, "w"),  # noqa: SIM115
        stderr=(folder / "serve.err").open("a"),
    )
    try:
        wait_for(lambda: "ready" in log.read_text(), 120, "serve")
        yield
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(120) == 0


def start_gunicorn_serve(project: Project, port: int, log: Path) -> object:
    return project.spawn(
        "litestream",
        "serve",
        "--",
        sys.executable,
        "-m",
        "gunicorn",
        "-b",
        f"127.0.0.1:{port}",
        "-w",
        "1",
        "testapp.wsgi:application",
        stdout=open(os.devnull, "w"),  # noqa: SIM115
        stderr=log.open("w"),
    )


def bench_health(root: Path, requests: int) -> list[tuple[str, float, float]]:
    (root / "health" / "proj").mkdir(parents=True)
    project = make_project(root / "health" / "proj")
    replica = {"type": "file", "path": str(root / "health" / "r")}
    project.configure({"dbs": [{"path": "default", "replica": replica}]})
    port = free_port()
    proc = start_gunicorn_serve(project, port, root / "health" / "serve.err")
    try:
        url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                return httpx.get(f"{url}/litestream/health/", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, 60, "the health endpoint to answer 200")
        over_http = {"/litestream/health/": [], "/": []}
        with httpx.Client(timeout=5) as client:
            for _ in range(5):  # blocks, alternating
                for path, found in over_http.items():
                    start = time.perf_counter()
                    for _ in range(requests // 5):
                        assert client.get(url + path).status_code == 200
                    found.append((time.perf_counter() - start) / (requests // 5))
        in_process = view_cost(project, requests * 4)
    finally:
        proc.send_signal(signal.SIGTERM)  # type: ignore[attr-defined]
        proc.wait(60)  # type: ignore[attr-defined]
    http_health = statistics.median(over_http["/litestream/health/"]) * 1000
    http_plain = statistics.median(over_http["/"]) * 1000
    return [
        ("health over HTTP (ms/request)", http_health, http_plain),
        ("health view in-process (ms/request)", in_process[0], in_process[1]),
    ]


def view_cost(project: Project, calls: int) -> tuple[float, float]:
    """The view against a constant JsonResponse, in this process, the serve still running."""
    import django
    from django.conf import settings

    settings.configure(
        INSTALLED_APPS=["django_litestream"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(project.db)}},
        LITESTREAM={"dbs": [{"path": "default", "replica": {"type": "file", "path": "/unused"}}]},
        ALLOWED_HOSTS=["*"],
    )
    django.setup()
    from django.http import JsonResponse
    from django.test import RequestFactory

    from django_litestream.views import health_view

    request = RequestFactory().get("/litestream/health/")
    assert health_view(request).status_code == 200

    def constant(_request: object) -> JsonResponse:
        return JsonResponse({"status": "ok"})

    found: dict[str, list[float]] = {"health": [], "constant": []}
    for _ in range(5):
        for name, view in (("health", health_view), ("constant", constant)):
            start = time.perf_counter()
            for _ in range(calls // 5):
                view(request)
            found[name].append((time.perf_counter() - start) / (calls // 5))
    return statistics.median(found["health"]) * 1000, statistics.median(found["constant"]) * 1000


WARNING = re.compile(r"did not confirm a sync")
RECOVERY = re.compile(r"the outage lasted about (\d+)s")


def bench_outages(root: Path, outages: int) -> list[tuple[str, float, float]]:
    moto = MotoS3().start()
    detected: list[float] = []
    reported: list[tuple[float, float]] = []
    try:
        for n in range(outages):
            folder = root / f"outage-{n}"
            (folder / "proj").mkdir(parents=True)
            project = make_project(folder / "proj")
            project.configure({"dbs": [{"path": "default", "replica": moto.replica("db")}]})
            log, err = folder / "sig.log", folder / "serve.err"
            log.touch()
            proc = project.spawn(
                "litestream",
                "serve",
                "--",
                sys.executable,
                SIGSERVER,
                str(log),
                "--db",
                str(project.db),
                "--write-every",
                "0.05",
                stdout=open(os.devnull, "w"),  # noqa: SIM115
                stderr=err.open("w"),
            )
            try:
                wait_for(lambda log=log: "ready" in log.read_text(), 60, "the server")
                time.sleep(random.uniform(1, 31))  # anywhere in the 30 s check cycle
                stopped = time.monotonic()
                os.kill(moto.proc.pid, signal.SIGSTOP)
                try:
                    wait_for(lambda e=err: WARNING.search(e.read_text()), 90, "the warning")
                    detected.append(time.monotonic() - stopped)
                    time.sleep(5)
                finally:
                    os.kill(moto.proc.pid, signal.SIGCONT)
                real = time.monotonic() - stopped
                found = wait_for(lambda e=err: RECOVERY.search(e.read_text()), 90, "the recovery")
                reported.append((float(found.group(1)), real))
                say(f"outage {n + 1}: warning after {detected[-1]:.1f}s, {found.group(0)}")
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(60)
    finally:
        moto.stop()
    bound = 30 + 2 * 1.0
    return [
        ("outage warning, median (s), vs the bound", statistics.median(detected), bound),
        ("outage warning, max (s), vs the bound", max(detected), bound),
        (
            "reported outage length, median (s), vs the real one",
            statistics.median(r for r, _ in reported),
            statistics.median(real for _, real in reported),
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per verify figure (3)")
    parser.add_argument("--sizes", default="0.1,100", help="database sizes in MB (0.1,100)")
    parser.add_argument("--requests", type=int, default=1000, help="health requests (1000)")
    parser.add_argument("--outages", type=int, default=3, help="outages to time (3; 0: none)")
    args = parser.parse_args()
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-operations-") as tmp:
        root = Path(tmp)
        rows += bench_verify(root, args.runs, [float(s) for s in args.sizes.split(",")])
        rows += bench_health(root, args.requests)
        if args.outages:
            rows += bench_outages(root, args.outages)
    print(f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; medians of {args.runs} runs")
    print(f"{'measure':<56}{'value':>10}{'baseline':>10}{'ratio':>8}")
    for name, value, base in rows:
        print(f"{name:<56}{value:>10.3f}{base:>10.3f}{value / base:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
