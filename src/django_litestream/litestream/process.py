"""Running Litestream (and other children): private directories, bounded runs, signals once.

The config file lives in a fresh private directory (0700, file 0600) that is removed when
the command ends, by signal too. Litestream runs in its own process group so that a
terminal's Ctrl-C reaches only this process, which forwards it exactly once: Litestream
skips its final sync when it receives a second INT/TERM.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

FORWARDED = (signal.SIGINT, signal.SIGTERM)
_PR_SET_PDEATHSIG = 1

# Children that a thread of this process started and waits for itself (``litestream ltx``
# listings): the serve supervisor, which reaps orphans re-parented to it, leaves these alone.
THREAD_CHILDREN: set[int] = set()

CLI_PREFIX = "django-litestream-"
SERVE_PREFIX = "django-litestream-serve-"


def make_private_dir(prefix: str = CLI_PREFIX, base: str | None = None) -> str:
    """A new directory only this user can enter (mode 0700), named after this process.

    The PID in the name (``<prefix><pid>-XXXX``) lets :func:`sweep_dead_dirs` remove the
    directories of processes that were killed before they could remove their own.
    """
    import tempfile

    path = tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=base)
    os.chmod(path, 0o700)
    namespace = _pid_namespace()
    if namespace:
        write_private(os.path.join(path, PID_NAMESPACE_FILE), namespace)
    return path


# A private directory records the PID namespace its PID belongs to: a process in another
# one (a container sharing /tmp, `unshare --pid`) cannot tell whether that PID is alive.
PID_NAMESPACE_FILE = ".pid-namespace"


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def _same_pid_namespace(path: str) -> bool:
    """Is the directory's PID one of this PID namespace (or of no recorded one)?"""
    try:
        with open(os.path.join(path, PID_NAMESPACE_FILE)) as handle:
            recorded = handle.read()
    except OSError:
        return True  # none recorded: an older directory, judged by its PID alone
    return recorded == _pid_namespace()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_dead_dirs(prefix: str, base: str | None = None) -> list[str]:
    """Remove this user's ``<prefix><pid>-*`` directories whose process no longer exists.

    A directory whose PID is alive (even if reused by another program) is left alone, and
    so is one whose PID belongs to another PID namespace (its process may well be alive:
    a serve in a container sharing /tmp, say).
    """
    import shutil
    import tempfile

    removed: list[str] = []
    pattern = re.compile(rf"^{re.escape(prefix)}(\d+)-[^/]+$")
    base = base or tempfile.gettempdir()
    try:
        names = os.listdir(base)
    except OSError:
        return removed
    for name in names:
        match = pattern.match(name)
        if not match or _alive(int(match.group(1))):
            continue
        path = os.path.join(base, name)
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and _same_pid_namespace(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def sweep_dead_private_dirs() -> None:
    """Remove what commands and serves killed by SIGKILL left in the temporary directory."""
    import tempfile

    for base in dict.fromkeys((tempfile.gettempdir(), "/tmp")):
        for prefix in (SERVE_PREFIX, CLI_PREFIX):
            sweep_dead_dirs(prefix, base)


@contextlib.contextmanager
def private_dir(prefix: str = CLI_PREFIX) -> Iterator[str]:
    """A directory only this user can enter, removed on exit."""
    import shutil

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


def _die_with_parent(libc: Any) -> Callable[[], None]:
    """In the child before exec: own process group; TERM when the parent dies (Linux)."""

    def setup() -> None:
        os.setpgid(0, 0)
        if libc is not None:
            with contextlib.suppress(OSError):
                libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)

    return setup


def spawn(argv: Sequence[str], env: Mapping[str, str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start a child in its own process group that will not outlive this process."""
    libc = None
    if sys.platform.startswith("linux"):
        import ctypes  # here, not in the forked child (and not in every importer's memory)

        with contextlib.suppress(OSError):
            libc = ctypes.CDLL(None, use_errno=True)
    proc: subprocess.Popen[bytes] = subprocess.Popen(
        list(argv), env=dict(env), preexec_fn=_die_with_parent(libc), **kwargs
    )
    return proc


def kill_group(proc: subprocess.Popen[Any] | Adopted) -> None:
    """SIGKILL ``proc``'s process group (:func:`spawn` made it the leader of its own)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


class Adopted:
    """A child this process started before an ``exec`` (so no Popen of it here), with what
    :func:`bounded` and the serve supervisor ask of a Popen: ``pid``, ``returncode``,
    ``poll``, ``wait``, ``kill`` and, when its output comes through a pipe, ``stdout``."""

    def __init__(self, pid: int, output_fd: int = -1) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.stdout = os.fdopen(output_fd, "rb", buffering=0) if output_fd >= 0 else None
        if output_fd >= 0:
            os.set_inheritable(output_fd, False)

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: its status is lost
                self.returncode = 255
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0.0)
            time.sleep(0.005)
        return code

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)


def run_bounded(
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    *,
    timeout: float,
    cancel: threading.Event | None = None,
) -> tuple[int | None, str]:
    """Run ``argv`` with stdout and stderr captured together, for at most ``timeout`` seconds.

    Returns (exit status, output); the status is None when the deadline (or ``cancel``) cut
    the run short. The whole process group is killed then, and the output is not waited
    for beyond the deadline: a grandchild that holds the pipe open cannot hang the caller.
    """
    return bounded(start_bounded(argv, env), timeout=timeout, cancel=cancel)


def start_bounded(
    argv: Sequence[str], env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start what :func:`bounded` waits for: stdout and stderr into one pipe, own session."""
    # Its own session (so its own process group, for kill_group), set up in C: no Python
    # preexec_fn, which would cost a slow fork of this whole process on every call.
    return subprocess.Popen(
        list(argv),
        env=dict(os.environ if env is None else env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def bounded(
    proc: subprocess.Popen[bytes] | Adopted,
    *,
    timeout: float,
    cancel: threading.Event | None = None,
) -> tuple[int | None, str]:
    """Wait for a child of :func:`start_bounded` as :func:`run_bounded` says."""
    chunks: list[bytes] = []
    done = threading.Event()

    def read() -> None:
        stream = proc.stdout
        assert stream is not None
        with contextlib.suppress(OSError):
            for chunk in iter(lambda: os.read(stream.fileno(), 65536), b""):
                chunks.append(chunk)
        done.set()

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + timeout
    cut = False
    # The output's end (the pipe closing) is the prompt sign that the program exited;
    # Popen.wait(timeout) would poll with growing sleeps.
    while not done.wait(min(0.05, max(0.0, deadline - time.monotonic()))):
        if time.monotonic() > deadline or (cancel is not None and cancel.is_set()):
            cut = True
            break
        if proc.poll() is not None:
            # Exited, but a grandchild may hold the pipe: give it a moment, never more.
            done.wait(max(0.0, min(1.0, deadline - time.monotonic())))
            break
    if not cut:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            cut = True
    if cut or not done.is_set():
        kill_group(proc)
        proc.wait()
    if isinstance(proc, Adopted) and proc.stdout is not None and done.is_set():
        proc.stdout.close()  # (still read by a thread otherwise: left open, never reused)
    text = b"".join(chunks).decode(errors="replace").strip()
    assert proc.returncode is not None
    return (None if cut else exit_status(proc.returncode)), text


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
