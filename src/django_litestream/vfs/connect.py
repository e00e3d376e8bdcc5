"""Open a replica through the Litestream VFS within a deadline. No Django here.

The extension's open has no deadline of its own: on an empty or missing replica it waits
for files to appear, and while the storage does not answer it waits as long as the storage
client retries (minutes). So every open goes through :func:`open_bounded`:

- the open runs in a worker thread (a call into the extension cannot be interrupted);
- after :data:`DIAGNOSE_AFTER` seconds without an answer, :func:`diagnose` lists the
  replica with ``litestream ltx`` (itself bounded); when that names a problem (empty,
  missing, refused, unreachable) the open fails with it at once;
- at the deadline the open fails. The attempt is kept ("parked"): the next open of the same
  replica waits on it instead of starting another thread, and takes its connection if it
  finished meanwhile, so that an outage never piles up blocked threads.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from ..errors import LitestreamError
from ..litestream import binary
from ..replica import listing

DIAGNOSE_AFTER = 1.0
T = TypeVar("T")


class ReplicaUnavailableError(LitestreamError):
    """A replica is empty, missing or unreachable, or did not answer in time."""


class _Attempt(Generic[T]):
    def __init__(self, connect: Callable[[], T], close: Callable[[T], Any]) -> None:
        self.done = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None
        self.orphan = False
        self.started = time.monotonic()
        self._close = close
        threading.Thread(
            target=self._run, args=(connect,), daemon=True, name="litestream-vfs-open"
        ).start()

    def _run(self, connect: Callable[[], T]) -> None:
        try:
            self.result = connect()
        except BaseException as exc:
            self.error = exc
        with _lock:
            self.done.set()
            orphan = self.orphan
        if orphan:
            self.discard()

    def discard(self) -> None:
        if self.result is not None:
            with contextlib.suppress(Exception):
                self._close(self.result)
            self.result = None


_parked: dict[str, _Attempt[Any]] = {}
_lock = threading.Lock()


def _park(key: str, attempt: _Attempt[Any]) -> None:
    with _lock:
        if key not in _parked:
            _parked[key] = attempt
            return
        if not attempt.done.is_set():
            attempt.orphan = True
            return
    attempt.discard()


def pending(key: str) -> float | None:
    """Seconds an earlier, abandoned open of ``key`` has been waiting, if one is."""
    with _lock:
        attempt = _parked.get(key)
        if attempt is None or attempt.done.is_set():
            return None
        return time.monotonic() - attempt.started


def open_bounded(
    key: str,
    connect: Callable[[], T],
    *,
    close: Callable[[T], Any],
    timeout: float,
    diagnose: Callable[[float], str | None],
) -> T:
    """``connect()`` within ``timeout`` seconds, or :class:`ReplicaUnavailableError`.

    ``key`` names what is opened (the VFS URI); ``diagnose(seconds)`` returns a one-line
    problem, or None when it finds none.
    """
    deadline = time.monotonic() + timeout
    with _lock:
        attempt: _Attempt[T] | None = _parked.pop(key, None)
    if attempt is not None and attempt.done.is_set() and attempt.error is not None:
        attempt = None  # an old failure: try again
    if attempt is None:
        attempt = _Attempt(connect, close)
    if not attempt.done.wait(min(DIAGNOSE_AFTER, timeout)):
        problem = diagnose(max(0.1, deadline - time.monotonic()))
        if problem is None:
            attempt.done.wait(max(0.0, deadline - time.monotonic()))
        if not attempt.done.is_set():
            _park(key, attempt)
            raise ReplicaUnavailableError(
                problem
                or f"the replica did not answer within {timeout:g}s; is the storage reachable "
                "and are its credentials set? (raise LITESTREAM['vfs']['open_timeout'] for "
                "slow storage)"
            )
    if attempt.error is not None:
        raise attempt.error
    assert attempt.result is not None
    return attempt.result


def diagnose(
    url: str,
    *,
    bin_path: str | None = None,
    timeout: float,
    environ: Mapping[str, str] | None = None,
) -> str | None:
    """What is wrong with the replica at ``url``, in one line, or None if nothing is found.

    Lists it with ``litestream ltx`` in the environment this process runs in, so that the
    binary meets what the extension meets (credentials, ``AWS_CA_BUNDLE``).
    """
    exe = binary.find(bin_path)
    if exe is None:
        return None
    try:
        contents = listing.list_files(exe, url, env=environ, timeout=timeout)
    except listing.ReplicaUnreachable as exc:
        detail = str(exc)
        if "did not finish within" in detail:
            return None
        if "RootCAs" in detail and (environ or os.environ).get("AWS_CA_BUNDLE"):
            detail += "; unset AWS_CA_BUNDLE, which Litestream's S3 client cannot use"
        return f"listing the replica failed ({detail})"
    if contents.empty:
        return (
            "the replica is empty or missing (no LTX files); run 'manage.py litestream "
            "replicate' on the primary first, and check the URL"
        )
    return None
