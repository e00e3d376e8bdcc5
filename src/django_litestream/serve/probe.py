"""Is Litestream ready? Its metrics address answers and every replica confirms a sync.

An answer on the metrics address proves only that Litestream opened its store;
``litestream sync -wait`` over the control socket proves the replica holds everything
the database had at that moment (``txid == replica_txid``).
"""

from __future__ import annotations

import json
import subprocess
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
    binary: str, socket_path: str, db: str, timeout: float, env: Mapping[str, str] | None = None
) -> str | None:
    """Force a sync of ``db`` and wait for the replica; None when confirmed, else why not."""
    seconds = max(1, int(timeout))
    try:
        proc = subprocess.run(
            [
                binary,
                "sync",
                "-wait",
                "-json",
                "-timeout",
                str(seconds),
                "-socket",
                socket_path,
                db,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 5,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"sync of {db} did not finish within {seconds}s"
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        return lines[-1] if lines else f"litestream sync exited {proc.returncode}"
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        return f"unexpected answer from litestream sync: {proc.stdout.strip()[:200]}"
    if result.get("txid") != result.get("replica_txid"):
        replica, local = result.get("replica_txid"), result.get("txid")
        return f"replica of {db} is at txid {replica}, database at {local}"
    return None
