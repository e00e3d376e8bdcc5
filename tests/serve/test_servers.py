"""serve around real web servers: gunicorn (sync and threaded), uvicorn, runserver."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support import procs
from tests.support.project import Project, count_rows, stop, wait_for
from tests.support.storage import free_port


def get(port: int, path: str = "/") -> httpx.Response | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2)
    except httpx.HTTPError:
        return None


@pytest.fixture
def served(project: Project, file_replica: dict[str, str]) -> Project:
    project.configure({"dbs": [{"path": "default", "replica": file_replica}]})
    return project


def serve(project: Project, tmp: Path, *command: str) -> tuple[object, Path]:
    err = tmp / f"serve-{os.urandom(3).hex()}.err"
    proc = project.spawn(
        "litestream", "serve", "--", *command, stdout=subprocess.DEVNULL, stderr=err.open("w")
    )
    return proc, err


def hit_and_stop(
    project: Project,
    tmp: Path,
    command: list[str],
    port: int,
    sig: int = signal.SIGTERM,
    expect: int = 0,
) -> None:
    proc, err = serve(project, tmp, *command)
    try:
        wait_for(lambda: get(port) is not None or proc.poll() is not None, 60, "HTTP answer")
        assert proc.poll() is None, err.read_text()
        for _ in range(5):
            response = get(port, "/hit")
            assert response is not None and response.status_code == 200
        tree = procs.children(proc.pid)
        assert stop(proc, sig) == expect, err.read_text()
        wait_for(
            lambda: not any(procs.alive(p) for p in tree),
            15,
            "every child to exit",
        )
        out = tmp / "restored.db"
        restored = project.run("litestream", "restore", "-o", str(out), "default")
        assert restored.returncode == 0, restored.stderr
        assert count_rows(out, "hits") == count_rows(project.db, "hits") == 5
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.parametrize("worker", ["sync", "gthread"])
def test_gunicorn(served: Project, tmp_path: Path, worker: str) -> None:
    port = free_port()
    hit_and_stop(
        served,
        tmp_path,
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-b",
            f"127.0.0.1:{port}",
            "-k",
            worker,
            "--threads",
            "2",
            "-w",
            "2",
            "testapp.wsgi:application",
        ],
        port,
    )


def test_default_command_is_gunicorn_on_wsgi_application(served: Project, tmp_path) -> None:
    port = free_port()
    proc = served.spawn(
        "litestream",
        "serve",
        env={"PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "e").open("w"),
    )
    try:
        wait_for(lambda: get(port) is not None or proc.poll() is not None, 60, "gunicorn")
        assert any("gunicorn" in p.cmdline for p in procs.children(proc.pid))
        assert stop(proc) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_uvicorn(served: Project, tmp_path: Path) -> None:
    """uvicorn shuts down gracefully, then re-raises SIGTERM on itself: serve reports 143."""
    port = free_port()
    hit_and_stop(
        served,
        tmp_path,
        [sys.executable, "-m", "uvicorn", "--port", str(port), "testapp.asgi:application"],
        port,
        expect=128 + signal.SIGTERM,
    )


def test_gunicorn_hup_reloads_workers_and_litestream_stays(served: Project, tmp_path) -> None:
    port = free_port()
    proc, err = serve(
        served,
        tmp_path,
        sys.executable,
        "-m",
        "gunicorn",
        "-b",
        f"127.0.0.1:{port}",
        "-w",
        "1",
        "testapp.wsgi:application",
    )
    try:
        wait_for(lambda: get(port) is not None, 60, "gunicorn")

        def master() -> psutil.Process | None:
            for p in procs.children(proc.pid, recursive=False):
                if "gunicorn" in p.cmdline:
                    return p.process
            return None

        def workers() -> set[int]:
            try:
                return {p.pid for p in master().children() if p.status() != "zombie"}
            except (psutil.Error, AttributeError):
                return set()

        before = wait_for(workers, 20, "a gunicorn worker")
        litestream = next(
            p.process
            for p in procs.children(proc.pid)
            if p.name == "litestream" and p.argv[1:2] == ("replicate",)  # not a check's ltx
        )
        os.kill(proc.pid, signal.SIGHUP)
        wait_for(lambda: workers() and not (workers() & before), 30, "new gunicorn workers")
        assert procs.alive(litestream)
        assert get(port).status_code == 200
        os.kill(proc.pid, signal.SIGTTIN)
        wait_for(lambda: len(workers()) == 2, 30, "a second worker after TTIN")
        assert stop(proc) == 0, err.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_gunicorn_exit_code_3_passes_through(served: Project, tmp_path: Path) -> None:
    """gunicorn exits 3 when its workers cannot boot (here: an unimportable app)."""
    result = served.run(
        "litestream",
        "serve",
        "--",
        sys.executable,
        "-m",
        "gunicorn",
        "-b",
        f"127.0.0.1:{free_port()}",
        "no_such_module:application",
        timeout=120,
    )
    assert result.returncode in (3, 4), result.stderr


def test_runserver_autoreload_and_ctrl_c(served: Project, tmp_path: Path) -> None:
    port = free_port()
    proc, err = serve(
        served, tmp_path, sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}"
    )
    try:
        wait_for(lambda: (r := get(port)) is not None and r.text == "ok", 60, "runserver")
        urls = served.root / "testapp" / "urls.py"
        urls.write_text(urls.read_text().replace("HttpResponse('ok')", "HttpResponse('reloaded')"))
        touched = [time.monotonic()]

        def reloaded() -> bool:
            response = get(port)
            if response is not None and response.text == "reloaded":
                return True
            # Django's StatReloader only compares against the mtime it saw on its first scan;
            # an edit made before that scan is not a change to it, so touch the file again.
            if time.monotonic() - touched[0] > 1.5:
                os.utime(urls)
                touched[0] = time.monotonic()
            return False

        wait_for(reloaded, 60, "the autoreloader to pick up the change")
        tree = procs.children(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal
        assert proc.wait(timeout=60) == 0, err.read_text()
        wait_for(
            lambda: not any(procs.alive(p) for p in tree),
            15,
            "runserver and its reloader to exit",
        )
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
