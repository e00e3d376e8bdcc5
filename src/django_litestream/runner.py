"""Run one Litestream process in the foreground: private config, signals once, exit code.

The config file lives in a fresh private directory (0700, file 0600) that is removed when
the command ends, by signal too. Litestream runs in its own process group so that a
terminal's Ctrl-C reaches only this process, which forwards it exactly once: Litestream
skips its final sync when it receives a second INT/TERM.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

FORWARDED = (signal.SIGINT, signal.SIGTERM)
_PR_SET_PDEATHSIG = 1


def make_private_dir(prefix: str = "django-litestream-") -> str:
    """A new directory only this user can enter (mode 0700)."""
    path = tempfile.mkdtemp(prefix=prefix)
    os.chmod(path, 0o700)
    return path


@contextlib.contextmanager
def private_dir(prefix: str = "django-litestream-") -> Iterator[str]:
    """A directory only this user can enter, removed on exit."""
    path = make_private_dir(prefix)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write_private(path: str, text: str) -> str:
    """Create ``path`` with mode 0600 (never briefly world-readable) and write ``text``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    return path


def _die_with_parent() -> None:
    """In the child before exec: own process group; TERM when the parent dies (Linux)."""
    os.setpgid(0, 0)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def spawn(argv: Sequence[str], env: Mapping[str, str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start a child in its own process group that will not outlive this process."""
    proc: subprocess.Popen[bytes] = subprocess.Popen(
        list(argv), env=dict(env), preexec_fn=_die_with_parent, **kwargs
    )
    return proc


def signame(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def describe_status(status: int, *, killed_by: str = "") -> str:
    """'exit status N', or 'killed by SIGNAME' for a shell-style 128+N.

    ``killed_by`` names who sent the signal when that is known (``"serve"``); an unexplained
    SIGKILL gets the usual hint that the kernel's out-of-memory killer may have sent it.
    """
    if status > 128 and status - 128 < signal.NSIG:
        if killed_by:
            hint = f" from {killed_by}"
        else:
            hint = " (out of memory?)" if status - 128 == signal.SIGKILL else ""
        return f"killed by {signame(status - 128)}{hint}"
    return f"exit status {status}"


def exit_status(returncode: int) -> int:
    """A shell's view of a return code: N, or 128+N for death by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def run_foreground(argv: Sequence[str], env: Mapping[str, str]) -> int:
    """Run ``argv`` to completion, forwarding the first INT/TERM once; return its exit status.

    A second signal is not forwarded (it would make Litestream skip its final sync); a third
    kills the child.
    """
    events: queue.SimpleQueue[int | None] = queue.SimpleQueue()

    def handler(signum: int, _frame: object) -> None:
        events.put_nowait(signum)

    previous = {sig: signal.signal(sig, handler) for sig in FORWARDED}
    try:
        proc = spawn(argv, env)

        def wait_child() -> None:
            proc.wait()
            events.put_nowait(None)

        threading.Thread(target=wait_child, daemon=True).start()
        received = 0
        while True:
            try:
                item = events.get(timeout=1.0)
            except queue.Empty:
                continue
            if item is None:
                break
            received += 1
            if received == 1:
                # Litestream may have exited (and been reaped) since the signal arrived.
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(item)
            elif received == 2:
                print(
                    "Litestream is finishing its final sync; signal again to kill it "
                    "(the final sync is then lost).",
                    file=sys.stderr,
                    flush=True,
                )
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
        return exit_status(proc.returncode)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
