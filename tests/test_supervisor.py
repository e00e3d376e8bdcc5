"""The supervisor's deadlines, driven by a scripted clock instead of waiting them out.

The processes are real (``sleep`` in its own process group stands in for the server); only
time is scripted, through the clock the supervisor takes as an argument.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from django_litestream.serve.plan import Plan, write_json_atomic
from django_litestream.serve.supervisor import Supervisor


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "60"], preexec_fn=os.setpgrp)
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def make(tmp_path: Path, server: subprocess.Popen[bytes], clock: Clock) -> Supervisor:
    plan = Plan(
        runtime_dir=str(tmp_path),
        binary="litestream",
        config_path="unused",
        socket_path="unused",
        metrics_addr="127.0.0.1:9",
        dbs=(),
        command=("true",),
        pre=(),
        graceful_timeout=5.0,
        ready_timeout=1.0,
        restore_timeout=1.0,
        require_replica=False,
        shutdown_sync_timeout=3.0,
    )
    write_json_atomic(plan.server_pid_path, {"pid": server.pid})
    return Supervisor(plan, clock=clock)


def test_graceful_timeout_kills_the_server_group_then_bounds_the_final_sync(
    tmp_path: Path, server: subprocess.Popen[bytes]
) -> None:
    clock = Clock()
    supervisor = make(tmp_path, server, clock)
    supervisor.begin_stop(signal.SIGTERM)
    clock.now += 4.9
    supervisor.tick()
    assert server.poll() is None  # still within --graceful-timeout
    clock.now += 0.2
    supervisor.tick()
    assert server.wait(timeout=10) == -signal.SIGKILL
    # the gate exits at once; Litestream's own final sync (shutdown-sync-timeout 3s), then
    # 10s to spare
    assert supervisor.litestream_deadline == pytest.approx(clock.now + 3.0 + 10)


def test_second_stop_signal_kills_the_server_at_once(
    tmp_path: Path, server: subprocess.Popen[bytes]
) -> None:
    supervisor = make(tmp_path, server, Clock())
    supervisor.on_stop(signal.SIGTERM)
    assert server.poll() is None
    supervisor.on_stop(signal.SIGINT)
    assert server.wait(timeout=10) == -signal.SIGKILL


def test_stop_signal_goes_to_the_gate_never_to_litestream(
    tmp_path: Path, server: subprocess.Popen[bytes]
) -> None:
    """Litestream must see its -exec child exit by itself: it then runs its own final sync,
    which a second INT/TERM would skip."""
    litestream = subprocess.Popen(  # a stand-in parent with one child, the "gate"
        ["sh", "-c", "sleep 60 & echo $! ; wait"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert litestream.stdout is not None
        gate = int(litestream.stdout.readline())
        supervisor = make(tmp_path, server, Clock())
        supervisor.litestream = litestream
        write_json_atomic(supervisor.plan.gate_pid_path, {"pid": gate})
        supervisor.on_stop(signal.SIGTERM)
        assert litestream.wait(timeout=10) == 0  # its child died of the TERM; it got none
        assert supervisor.stopping == signal.SIGTERM
    finally:
        if litestream.poll() is None:
            litestream.kill()
            litestream.wait()


def test_second_stop_signal_after_the_server_exited_is_a_fast_stop(
    tmp_path: Path, server: subprocess.Popen[bytes]
) -> None:
    """During Litestream's own final sync (it reads no INT or TERM then): killed at once."""
    litestream = subprocess.Popen(["sleep", "60"])  # stands in for Litestream's final sync
    try:
        supervisor = make(tmp_path, server, Clock())
        supervisor.on_stop(signal.SIGTERM)  # no Litestream yet: nothing gets this one
        supervisor.litestream = litestream
        server.kill()
        server.wait()
        write_json_atomic(supervisor.plan.server_pid_path, {"exited": 0})
        supervisor.on_stop(signal.SIGTERM)
        assert litestream.wait(timeout=10) == -signal.SIGKILL
        assert supervisor.fast
        assert supervisor.final_sync() == {
            "synced": False,
            "txids": {},
            "detail": "not waited for: a second stop signal asked serve to stop at once",
        }
    finally:
        if litestream.poll() is None:
            litestream.kill()
            litestream.wait()


def test_relayed_signal_reaches_the_recorded_server(
    tmp_path: Path, server: subprocess.Popen[bytes]
) -> None:
    supervisor = make(tmp_path, server, Clock())
    supervisor.on_relay(signal.SIGUSR1)  # sleep dies of USR1: proof it arrived
    assert server.wait(timeout=10) == -signal.SIGUSR1
    Path(supervisor.plan.server_pid_path).unlink()
    supervisor.on_relay(signal.SIGUSR1)  # no server recorded: nothing to signal, no error
