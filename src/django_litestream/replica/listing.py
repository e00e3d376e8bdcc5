"""What a replica holds: its LTX files, read with ``litestream ltx -json -level all``.

One bounded call of the binary (an unreachable S3 endpoint makes ``ltx`` retry for
minutes), used wherever the project needs the replica's position: the newest txid and the
time of the newest and oldest files. No Django here.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import NamedTuple

from ..litestream.process import THREAD_CHILDREN, run_bounded
from . import ltx


class ReplicaUnreachable(Exception):
    """The replica could not be listed; ``str()`` says why, in one line."""


class LTXFile(NamedTuple):
    level: int
    min_txid: int
    max_txid: int
    size: int
    created: datetime  # aware, UTC; Litestream records whole seconds


class Contents(NamedTuple):
    files: tuple[LTXFile, ...]

    @property
    def empty(self) -> bool:
        return not self.files

    @property
    def newest_txid(self) -> int | None:
        return max((f.max_txid for f in self.files), default=None)

    @property
    def newest_at(self) -> datetime | None:
        """When the replica last received a file (of any level)."""
        return max((f.created for f in self.files), default=None)

    @property
    def oldest_at(self) -> datetime | None:
        return min((f.created for f in self.files), default=None)

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)


def parse(text: str) -> Contents:
    """Parse ``ltx -json`` output; ValueError when it is not what Litestream prints."""
    data = json.loads(text)
    if not isinstance(data, list):
        raise ValueError("expected a JSON list")
    files = []
    for item in data:
        created = datetime.fromisoformat(str(item["timestamp"]).replace("Z", "+00:00"))
        files.append(
            LTXFile(
                level=int(item["level"]),
                min_txid=int(str(item["min_txid"]), 16),
                max_txid=int(str(item["max_txid"]), 16),
                size=int(item["size"]),
                created=created.astimezone(timezone.utc),
            )
        )
    return Contents(tuple(files))


SNAPSHOT_LEVEL = 9  # Litestream's levels are 0-9; ``ltx -level all`` lists each


def list_directory(directory: str, levels: Sequence[int] = range(SNAPSHOT_LEVEL + 1)) -> Contents:
    """The LTX files of a ``file`` replica, read as ``ltx -json -level all`` reads them.

    Litestream's file client lists ``<directory>/ltx/<level>/<min>-<max>.ltx`` and takes a
    file's modification time (which it sets to the LTX header's timestamp) as its creation
    time, printed in whole seconds. The same answer without starting a Go process (about
    20 ms of every start).
    """
    files = []
    for level in levels:
        folder = os.path.join(directory, "ltx", str(level))
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise ReplicaUnreachable(
                f"cannot list the replica's directory {folder}: {exc.strerror or exc}"
            ) from None
        for entry in entries:
            txids = ltx.parse_name(entry.name)
            if txids is None:
                continue
            try:
                info = entry.stat()
            except FileNotFoundError:  # removed by a compaction meanwhile
                continue
            created = datetime.fromtimestamp(int(info.st_mtime), timezone.utc)
            files.append(LTXFile(level, *txids, info.st_size, created))
    return Contents(tuple(files))


def list_files(
    binary: str,
    target: str,
    *,
    config_path: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> Contents:
    """The LTX files of ``target`` (a replica URL, or a database path of ``config_path``).

    Bounded by ``timeout`` (:func:`process.run_bounded`: a grandchild holding the output
    cannot keep the call waiting).
    """
    argv: Sequence[str] = [binary, "ltx", "-json", "-level", "all"]
    if config_path:
        argv = [*argv, "-config", config_path]
    code, output = run_bounded([*argv, target], env, timeout=timeout)
    if code is None:
        raise ReplicaUnreachable(
            f"listing the replica did not finish within {timeout:g}s (storage unreachable?)"
        )
    if code != 0:
        lines = output.splitlines()
        # Litestream's own "Error: " prefix would read oddly inside this project's sentences.
        last = lines[-1].removeprefix("Error: ") if lines else ""
        raise ReplicaUnreachable(last or f"litestream ltx exited {code}")
    # stderr is merged in: the listing is what follows any log lines.
    listing = output[output.find("[") :] if "[" in output else output
    try:
        return parse(listing)
    except (ValueError, KeyError, TypeError):
        raise ReplicaUnreachable(f"unexpected output from {binary} ltx: {output[:200]!r}") from None


def replica_txid(
    binary: str,
    config_path: str,
    db: str,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> int | str:
    """The highest txid the replica of ``db`` holds (0: none), or why it could not be read."""
    argv = [binary, "ltx", "-config", config_path, "-json", "-level", "0", db]
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=None if env is None else dict(env),
    )
    THREAD_CHILDREN.add(proc.pid)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                stdout, stderr = proc.communicate(timeout=0.05)
                break
            except subprocess.TimeoutExpired:
                if cancelled():
                    return "cancelled"
                if time.monotonic() > deadline:
                    return f"listing the replica of {db} took more than {timeout:g}s"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        THREAD_CHILDREN.discard(proc.pid)
    if proc.returncode != 0:
        lines = (stderr or stdout).strip().splitlines()
        return lines[-1] if lines else f"litestream ltx exited {proc.returncode}"
    try:
        return parse(stdout).newest_txid or 0
    except (ValueError, KeyError, TypeError):
        return f"unexpected answer from litestream ltx: {stdout.strip()[:200]}"


def file_replica_txid(directory: str) -> int | str:
    """The highest level-0 txid in a ``file`` replica (0: none), or why it cannot be read.

    Litestream's file client lists ``<directory>/ltx/0/<min>-<max>.ltx`` (written to a
    temporary name and renamed): :func:`replica_txid`'s answer without a Go process.
    """
    try:
        return list_directory(directory, levels=(0,)).newest_txid or 0
    except ReplicaUnreachable as exc:
        return str(exc)
