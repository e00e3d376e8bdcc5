"""What serve shows other local users: no TCP listener of Litestream's, no keys in the
sleeper's environment. serve reads Litestream's figures from its control socket, a Unix
socket in its private (0700) directory; a metrics address serves Go's profiling and debug
pages beside the metrics, to anyone who can connect."""

from __future__ import annotations

import signal
from pathlib import Path

import psutil

from tests.support import procs
from tests.support.project import Project, write_rows
from tests.support.serving import Served, restored_rows

SECRET_NAMES = ("LITESTREAM_", "AWS_", "DJANGO_LITESTREAM_SECRET_")


def listening(process: psutil.Process) -> list[str]:
    return [
        f"{c.laddr.ip}:{c.laddr.port}"
        for c in process.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    ]


def sleeper(run: Served) -> procs.Proc:
    """Litestream's -exec child (it reads the FIFO in serve's private directory)."""
    return next(
        p
        for p in run.tree()
        if p.name != "litestream" and p.argv and p.argv[-1].endswith("exec.fifo")
    )


def test_litestream_listens_on_no_tcp_port_and_the_sleeper_gets_no_keys(
    project: Project, s3_replica, tmp_path: Path, monkeypatch
) -> None:
    replica = dict(s3_replica.replica)
    env_keys = {  # the secret key from the environment, the key id written in the setting
        "LITESTREAM_SECRET_ACCESS_KEY": replica.pop("secret-access-key"),
        "LITESTREAM_ACCESS_KEY_ID": "ignored-the-setting-wins",
    }
    for name, value in env_keys.items():
        monkeypatch.setitem(project.env, name, value)
    replica["secret-access-key"] = "$LITESTREAM_SECRET_ACCESS_KEY"
    project.configure({"dbs": [{"path": "default", "replica": replica}]})
    write_rows(project.db, 9)
    run = Served(project, tmp_path).wait_ready()
    litestream = run.litestream()
    assert listening(litestream) == []
    environ = Path(f"/proc/{sleeper(run).pid}/environ").read_bytes().split(b"\0")
    names = [e.split(b"=", 1)[0].decode() for e in environ if e]
    assert not [n for n in names if n.startswith(SECRET_NAMES)], names
    assert run.stop(signal.SIGTERM) == 0, run.stderr()
    assert "replica confirmed in sync" in run.stderr()
    assert restored_rows(project, tmp_path) == 9


def test_a_metrics_address_of_the_users_own_stays(
    project: Project, file_replica, tmp_path: Path
) -> None:
    from tests.support.storage import free_port

    port = free_port()
    project.configure(
        {"addr": f"127.0.0.1:{port}", "dbs": [{"path": "default", "replica": file_replica}]}
    )
    run = Served(project, tmp_path).wait_ready()
    assert listening(run.litestream()) == [f"127.0.0.1:{port}"]
    assert run.stop(signal.SIGTERM) == 0, run.stderr()
