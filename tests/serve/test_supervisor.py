"""The supervisor's deadlines, driven by a scripted clock instead of waiting them out.

The processes are real (``sleep`` in its own process group stands in for the server); only
time is scripted, through the clock the supervisor takes as an argument.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from django_litestream.serve.plan import Plan, write_json_atomic
from django_litestream.serve.sleeper import Sleeper
from django_litestream.serve.supervisor import SERVING, Supervisor
from tests.support.project import wait_for


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server() -> Iterator[subprocess.Popen[bytes]]:
    # It ignores TERM, as a server busy finishing its requests would for a while.
    proc = subprocess.Popen(["sh", "-c", 'trap "" TERM; exec sleep 60'], start_new_session=True)
    wait_for(lambda: psutil.Process(proc.pid).name() == "sleep", 10, "the trap to be set")
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def reaped(supervisor: Supervisor, server: subprocess.Popen[bytes]) -> None:
    """Wait until the server has exited, then let the supervisor reap it (as its loop would)."""
    wait_for(
        lambda: psutil.Process(server.pid).status() == psutil.STATUS_ZOMBIE,
        10,
        "the server to exit",
    )
    supervisor.reap()
    assert server.returncode is not None


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
    supervisor = Supervisor(plan, clock=clock)
    supervisor.server = supervisor.child = server  # as start_server leaves them
    supervisor.stage = SERVING
    write_json_atomic(plan.server_pid_path, {"pid": server.pid})
    return supervisor


def test_graceful_timeout_kills_the_server_group_then_bounds_the_final_sync(
    tmp_path: Path, server: subprocess.Popen[bytes]
) -> None:
    clock = Clock()
    supervisor = make(tmp_path, server, clock)
    supervisor.sleeper = Sleeper(str(tmp_path))
    supervisor.begin_stop(signal.SIGTERM)
    clock.now += 4.9
    supervisor.tick()
    assert server.poll() is None  # still within --graceful-timeout
    clock.now += 0.2
    supervisor.tick()
    reaped(supervisor, server)
    assert server.returncode == -signal.SIGKILL
    # the server has exited: the sleeper may go, and Litestream's own final sync
    # (shutdown-sync-timeout 3s) gets 10s to spare
    assert supervisor.sleeper.fd is None
    assert supervisor.litestream_deadline == pytest.approx(clock.now + 3.0 + 10)


def test_second_stop_signal_kills_the_server_at_once(
    tmp_path: Path, server: subprocess.Popen[bytes]
) -> None:
    supervisor = make(tmp_path, server, Clock())
    supervisor.on_stop(signal.SIGTERM)
    assert server.poll() is None
    supervisor.on_stop(signal.SIGINT)
    assert server.wait(timeout=10) == -signal.SIGKILL


def test_litestream_is_released_only_after_the_server_has_exited(
    tmp_path: Path, server: subprocess.Popen[bytes]
) -> None:
    """Litestream's -exec child (the sleeper) exits only when serve closes its FIFO: a TERM
    to it (as Litestream forwards one from a group signal) changes nothing, and serve
    closes the FIFO once the server is gone, never before."""
    supervisor = make(tmp_path, server, Clock())
    supervisor.sleeper = Sleeper(str(tmp_path))
    sleeper = subprocess.Popen(supervisor.sleeper.argv())
    try:
        # Not before its trap is set (a TERM then ends it; serve's reaping of orphans then
        # collects it, and this Popen reads exit 0).
        wait_for(lambda: sleeping(sleeper.pid), 10, "the sleeper to wait on its FIFO")
        sleeper.send_signal(signal.SIGTERM)
        supervisor.on_stop(signal.SIGTERM)  # forwarded to the server, which goes on for now
        supervisor.reap()
        assert sleeper.poll() is None and supervisor.sleeper.fd is not None
        server.kill()
        reaped(supervisor, server)
        assert sleeper.wait(timeout=10) == 0
        assert supervisor.stopping == signal.SIGTERM
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()


def test_second_stop_signal_after_the_server_exited_is_a_fast_stop(
    tmp_path: Path, server: subprocess.Popen[bytes]
) -> None:
    """During Litestream's own final sync (it reads no INT or TERM then): killed at once."""
    litestream = subprocess.Popen(["sleep", "60"])  # stands in for Litestream's final sync
    try:
        supervisor = make(tmp_path, server, Clock())
        supervisor.litestream = litestream
        supervisor.on_stop(signal.SIGTERM)  # to the server only
        server.kill()
        reaped(supervisor, server)
        assert litestream.poll() is None
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
    supervisor.reap()  # the server's exit is recorded: no later signal reaches its PID
    supervisor.on_relay(signal.SIGUSR1)  # nothing to signal, no error


@pytest.mark.parametrize("shell", [True, False], ids=["sh", "python"])
def test_the_sleeper_ignores_group_signals_and_exits_0_when_released(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shell: bool
) -> None:
    """Litestream's -exec child: sh when there is one, else this Python without site; with
    an empty environment either way (env -i, when there is an env)."""
    if not shell:
        monkeypatch.setattr("django_litestream.serve.sleeper.shutil.which", lambda _name: None)
    sleeper = Sleeper(str(tmp_path))
    argv = sleeper.argv()
    assert (Path(argv[2 if shell else 0]).name == "sh") is shell
    assert argv[:2] == ([shutil.which("env"), "-i"] if shell else [sys.executable, "-I"])
    proc = subprocess.Popen(argv, env={**os.environ, "AWS_SECRET_ACCESS_KEY": "not-for-it"})
    try:
        wait_for(lambda: sleeping(proc.pid), 10, "the sleeper to wait on its FIFO")
        if shell:
            assert Path(f"/proc/{proc.pid}/environ").read_bytes().strip(b"\0") == b""
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
            proc.send_signal(sig)
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=0.3)  # none of them ended it
        sleeper.release()
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def sleeping(pid: int) -> bool:
    """True once the sleeper has its FIFO open: it ignores the signals by then (both forms
    set the dispositions before they open it)."""
    try:
        return any(
            os.readlink(f"/proc/{pid}/fd/{fd}").endswith("exec.fifo")
            for fd in os.listdir(f"/proc/{pid}/fd")
        )
    except OSError:
        return False


@pytest.mark.parametrize("shell", [True, False], ids=["sh", "python"])
def test_a_sleeper_released_before_it_starts_exits_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shell: bool
) -> None:
    """A stop right after the start: serve lets go before Litestream has started its -exec
    child. The child must not wait forever for a writer of the FIFO."""
    if not shell:
        monkeypatch.setattr("django_litestream.serve.sleeper.shutil.which", lambda _name: None)
    sleeper = Sleeper(str(tmp_path))
    argv = sleeper.argv()
    sleeper.release()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    assert (done.returncode, done.stderr) == (0, "")
