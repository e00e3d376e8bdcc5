"""Is Litestream ready? Its metrics address answers and every replica confirms a sync.

An answer on the metrics address proves only that Litestream opened its store;
``litestream sync -wait`` over the control socket proves the replica holds everything
the database had at that moment (``txid == replica_txid``).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Mapping

import httpx


def metrics_answer(addr: str, timeout: float = 1.0) -> str | None:
    """None when the metrics endpoint answers like Litestream; else why not."""
    try:
        response = httpx.get(f"http://{addr}/metrics", timeout=timeout)
    except httpx.HTTPError as exc:
        return f"metrics address {addr} did not answer ({exc.__class__.__name__})"
    if response.status_code != 200 or "litestream_" not in response.text:
        return f"metrics address {addr} answered HTTP {response.status_code}, not Litestream"
    return None


def confirm_sync(
    binary: str,
    socket_path: str,
    db: str,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cancel: threading.Event | None = None,
) -> str | None:
    """Force a sync of ``db`` and wait for the replica; None when confirmed, else why not.

    Confirmed means the replica holds at least the transaction the database was at when the
    sync began (``replica_txid >= txid``; later writes may already have reached it too).
    ``cancel`` stops the wait early (the answer is then a reason, not a confirmation).
    """
    seconds = max(1, int(timeout))
    argv = [binary, "sync", "-wait", "-json", "-timeout", str(seconds), "-socket", socket_path, db]
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=None if env is None else dict(env),
    )
    deadline = time.monotonic() + seconds + 5
    try:
        while True:
            try:
                stdout, stderr = proc.communicate(timeout=0.1)
                break
            except subprocess.TimeoutExpired:
                if cancel is not None and cancel.is_set():
                    return "cancelled"
                if time.monotonic() > deadline:
                    return f"sync of {db} did not finish within {seconds}s"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    if proc.returncode != 0:
        lines = (stderr or stdout).strip().splitlines()
        return lines[-1] if lines else f"litestream sync exited {proc.returncode}"
    try:
        result = json.loads(stdout)
        local, replica = int(result["txid"]), int(result["replica_txid"])
    except (ValueError, KeyError, TypeError):
        return f"unexpected answer from litestream sync: {stdout.strip()[:200]}"
    if replica < local:
        return f"replica of {db} is at txid {replica}, database at {local}"
    return None
