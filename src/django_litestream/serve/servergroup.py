"""The server's process group after its master exited: nothing in it may write later.

The server runs in a process group of its own (its master leads it). When the master exits,
killed or not, its workers may live on: they inherited the listening socket and go on
accepting and acknowledging requests until they notice (gunicorn's within about a second,
some servers never). A write acknowledged after Litestream's final sync is in no replica,
and a cold start would lose it. So the supervisor keeps the master's exit unreaped (its
zombie keeps the group's ID reserved), stops what is left of the group (TERM, then KILL
after ``--graceful-timeout``), and only when the group holds no live process reaps the
master and lets the final sync run. Linux (``waitid``); elsewhere the master is reaped at
once, as before. No Django here.
"""

from __future__ import annotations

import contextlib
import os
import signal


def master_exited(pid: int) -> os.waitid_result | None:
    """How the master ``pid`` (our child) exited, without reaping it; None while it runs."""
    if not hasattr(os, "waitid"):
        return None
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return None


def left_in_group(pgid: int) -> list[int]:
    """The live processes of the group ``pgid`` other than its leader: serve's descendants
    only (the workers of a dead master are re-parented to serve, its subreaper)."""
    import psutil

    found = []
    for proc in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error, OSError):
            in_group = proc.pid != pgid and os.getpgid(proc.pid) == pgid
            if in_group and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
    return found


def describe(info: os.waitid_result) -> str:
    """``killed by SIGKILL`` or ``exit status 3``, from a :func:`master_exited` result."""
    if info.si_code in (os.CLD_KILLED, os.CLD_DUMPED):
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(info.si_status).name}"
        return f"killed by signal {info.si_status}"
    return f"exit status {info.si_status}"


def stop(pgid: int, signum: int) -> None:
    """``signum`` to the group (its zombie leader ignores it)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)
