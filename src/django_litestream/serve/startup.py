"""Where a start-up's time goes: one line once the server listens.

``serve``'s PID is the one the user started (``manage.py`` ``exec``\\ s the supervisor), so
the process's start time is when ``python manage.py litestream serve`` began. The
supervisor marks the end of each phase (up to when the server may start and when it
started it), and a thread here watches the server's process
tree until one of its processes has a listening socket, then logs::

    Serving 0.61s after start (Django 0.21s, guard 0.04s, restore 0.00s, Litestream 0.14s,
    pre-serve 0.00s, server 0.22s); listening on 127.0.0.1:8000

A server that never listens (a one-off job) gets no such line. A gunicorn booted early
(``earlyboot.py``) has listened since long before its go: its first worker past the gate
says where it accepts (``gunicorn_gate.say_accepting``), and that is when it listens here;
no process table is read for it. No Django here.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from .gunicorn_gate import accepting_path, address
from .plan import Plan, read_json

log = logging.getLogger("django_litestream.serve")

FAST_POLL = 0.01  # seconds between looks during the first FAST_FOR seconds
FAST_FOR = 5.0
SLOW_POLL = 0.2
LIMIT = 3600.0  # a server that has not listened within an hour is not watched any more

# (label, phase that begins it, phase that ends it)
PHASES = (
    ("Django", "start", "supervisor"),
    ("guard", "supervisor", "guard"),
    ("restore", "guard", "restore"),
    ("Litestream", "restore", "ready"),
    ("pre-serve", "ready", "server"),
    ("server", "server", "listening"),
)


def process_start() -> float | None:
    """When this process (the PID ``manage.py`` ran in) started, on the wall clock.

    On Linux from its start in clock ticks since boot against ``CLOCK_BOOTTIME`` (psutil's
    ``create_time`` adds the boot time in whole seconds, up to a second off the wall clock).
    """
    try:
        with open("/proc/self/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        since_boot = int(fields[19]) / os.sysconf("SC_CLK_TCK")
        return time.time() - (time.clock_gettime(time.CLOCK_BOOTTIME) - since_boot)
    except (OSError, ValueError, IndexError, AttributeError):
        import psutil

        try:
            return float(psutil.Process().create_time())
        except psutil.Error:
            return None


class Timeline:
    """Wall-clock ends of the supervisor's phases."""

    def __init__(self) -> None:
        self.marks: dict[str, float] = {"supervisor": time.time()}
        start = process_start()
        if start is not None:
            self.marks["start"] = start

    def mark(self, phase: str) -> None:
        self.marks[phase] = time.time()


def summary(marks: dict[str, float], address: str) -> str:
    parts = [
        f"{label} {max(0.0, marks[end] - marks[begin]):.2f}s"
        for label, begin, end in PHASES
        if begin in marks and end in marks
    ]
    total = marks["listening"] - marks.get("start", marks["supervisor"])
    return f"Serving {total:.2f}s after start ({', '.join(parts)}); listening on {address}"


def listening_address(pid: int, *, descendants: bool = True) -> str | None:
    """``host:port`` of a socket that the process ``pid`` (or a descendant) listens on."""
    import psutil  # not at the top: see Listening.run

    try:
        top = psutil.Process(pid)
        tree = [top, *top.children(recursive=True)] if descendants else [top]
    except psutil.Error:
        return None
    for proc in tree:
        try:
            connections = getattr(proc, "net_connections", None) or proc.connections
            found = connections(kind="inet")
        except psutil.Error:
            continue
        for conn in found:
            if conn.status == psutil.CONN_LISTEN and conn.laddr:
                return address(conn.laddr)
    return None


class Listening(threading.Thread):
    """Log :func:`summary` once the server listens; give up when it exits first."""

    def __init__(self, plan: Plan, timeline: Timeline) -> None:
        super().__init__(name="listening", daemon=True)
        self.plan = plan
        self.timeline = timeline

    def run(self) -> None:
        gated = bool(self.plan.booted_pid)
        if not gated:
            # psutil costs ~12 ms to import: here, in this thread while Litestream starts,
            # not before the supervisor's first step nor in the first look at the server.
            import psutil  # noqa: F401

        began = time.monotonic()
        looks = 0
        while time.monotonic() - began < LIMIT:
            time.sleep(FAST_POLL if time.monotonic() - began < FAST_FOR else SLOW_POLL)
            state = read_json(self.plan.server_pid_path)
            pid = None if state is None else state.get("pid")
            if state is not None and not isinstance(pid, int):
                return  # the server has exited (or never started)
            if gated:
                where = accepting(self.plan.go_path)
            elif isinstance(pid, int):
                # The server itself at each look (about 0.3 ms), its descendants (a scan of
                # every process) at every fifth: a runserver's child, say, listens for it.
                looks += 1
                where = listening_address(pid, descendants=looks % 5 == 0)
            else:
                continue
            if where is not None:
                marks = dict(self.timeline.marks)
                marks["listening"] = time.time()
                log.info("%s", summary(marks, where))
                return


def accepting(go: str) -> str | None:
    """Where the early-booted gunicorn's first worker past the gate accepts, once it does."""
    try:
        with open(accepting_path(go)) as handle:
            return handle.read() or None
    except OSError:
        return None
