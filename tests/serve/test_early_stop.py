"""A stop signal in the first moments of a cold start: 128 + the signal, nothing left running.

Two windows, each held still to be hit every time: serve is frozen (SIGSTOP) as soon as
``/proc`` shows it in the window, signalled, then resumed.

* A: the Django side, before the ``exec``, with a ``litestream restore`` child started;
* B: the supervisor's interpreter after the ``exec``, before its handlers are installed.

The replica is S3 on a closed port, so the restore retries (``--restore-timeout 30``)
instead of finishing on its own.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.support.project import Project, wait_for
from tests.support.storage import free_port


def caught(pid: int, signum: int) -> bool:
    """Whether ``pid`` has a handler for ``signum`` (``SigCgt`` in /proc)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


def in_window(serve: psutil.Process, window: str) -> bool:
    try:
        command = " ".join(serve.cmdline())
        if window == "A":
            return "manage.py" in command and any(
                "restore" in " ".join(c.cmdline()) for c in serve.children()
            )
        return "serve.supervisor" in command and not caught(serve.pid, signal.SIGTERM)
    except (psutil.Error, OSError):
        return False


def leftovers(root: Path) -> list[str]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        line = " ".join(proc.info["cmdline"] or [])
        if proc.info["status"] != psutil.STATUS_ZOMBIE and str(root) in line:
            found.append(f"{proc.pid} {line[:100]}")
    return found


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
@pytest.mark.parametrize("window", ["A", "B"])
def test_stop_signal_in_each_window_of_a_cold_start(
    project: Project, tmp_path: Path, window: str, sig: int
) -> None:
    closed = free_port()
    project.configure(
        {
            "dbs": [
                {
                    "path": "default",
                    "replica": {
                        "type": "s3",
                        "bucket": "b",
                        "path": "db",
                        "endpoint": f"http://127.0.0.1:{closed}",
                        "region": "us-east-1",
                        "access-key-id": "x",
                        "secret-access-key": "y",
                    },
                }
            ]
        }
    )
    err = tmp_path / "serve.err"
    proc = project.spawn(
        "litestream",
        "serve",
        "--restore-timeout",
        "30",
        "--",
        sys.executable,
        "-m",
        "gunicorn",
        "-b",
        f"127.0.0.1:{free_port()}",
        "testapp.wsgi:application",
        stdout=subprocess.DEVNULL,
        stderr=err.open("w"),
    )
    serve = psutil.Process(proc.pid)
    try:
        deadline = time.monotonic() + 30
        hit = False
        while not hit and time.monotonic() < deadline and proc.poll() is None:
            if in_window(serve, window):  # (no pause between looks: the window is short)
                proc.send_signal(signal.SIGSTOP)
                hit = in_window(serve, window)
                if not hit:
                    proc.send_signal(signal.SIGCONT)
        assert hit, f"window {window} not seen: {err.read_text()}"
        proc.send_signal(sig)
        proc.send_signal(signal.SIGCONT)
        assert proc.wait(60) == 128 + sig, err.read_text()
        assert "Traceback" not in err.read_text()
        wait_for(lambda: not leftovers(project.root), 10, "serve's children to be gone")
        assert not project.db.exists() and not list(project.root.glob("*.restoring*"))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
        for line in leftovers(project.root):
            psutil.Process(int(line.split()[0])).kill()
