"""gunicorn boots while serve restores, and accepts only after (``serve/earlyboot.py``).

The restore is held (a ``bin_path`` wrapper that runs the real binary, but holds
``restore`` until the test releases it), so the order is the test's to see: both workers
import the application during the restore, a request sent then is answered only after
it, from the restored database, and every acknowledged id is in the replica at the end.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import sys
import threading
import urllib.request
from pathlib import Path

import psutil
import pytest

from django_litestream.serve import earlyboot, exitcodes, gunicorn_gate, lock
from django_litestream.serve.restore import APPEARED
from tests.support import procs
from tests.support.durability import listen_port
from tests.support.project import Project, wait_for
from tests.support.serving import LITESTREAM, SERVING, fresh_machine

ROWS = 30
HELD = """#!/bin/sh
if [ "$1" = restore ]; then
    : > "$HOLD_DIR/restore-started"
    while [ ! -e "$HOLD_DIR/release" ]; do sleep 0.02; done
fi
exec "$REAL_LITESTREAM" "$@"
"""
# The application, as imported by each gunicorn worker; it says so with a file.
MARKED = (
    "import os\n"
    "from testapp.wsgi import application\n"
    "{touch}"
    "open(os.path.join(os.environ['HOLD_DIR'], f'booted-{{os.getpid()}}'), 'w').close()\n"
)
TOUCHES_DB = "from django.db import connection\nconnection.ensure_connection()\n"


class Held:
    """serve with gunicorn (2 workers) on a cold start whose restore is held."""

    def __init__(self, project: Project, tmp: Path, *opts: str, touch: bool = False) -> None:
        self.project = project
        self.hold = tmp / "hold"
        self.hold.mkdir(exist_ok=True)
        for left in self.hold.glob("booted-*"):  # an earlier run's
            left.unlink()
        wrapper = tmp / "litestream-held"
        wrapper.write_text(HELD)
        wrapper.chmod(0o755)
        replica = {"type": "file", "path": str(tmp / "replica")}
        project.configure(
            {"bin_path": str(wrapper), "dbs": [{"path": "default", "replica": replica}]}
        )
        (project.root / "testapp" / "marked.py").write_text(
            MARKED.format(touch=TOUCHES_DB if touch else "")
        )
        self.env = {"HOLD_DIR": str(self.hold), "REAL_LITESTREAM": LITESTREAM}
        self.port = listen_port()
        self.err = tmp / f"serve-{os.urandom(3).hex()}.err"
        self.opts = opts
        self.app = "testapp.marked:application"

    def backup(self) -> None:
        """ROWS acknowledged rows in the replica; then the machine loses its disk."""
        conn = sqlite3.connect(self.project.db)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE acks (id INTEGER PRIMARY KEY, v TEXT)")
        with conn:
            conn.executemany("INSERT INTO acks (v) VALUES (?)", [("x",)] * ROWS)
        conn.close()
        (self.hold / "release").touch()
        done = self.project.run("litestream", "replicate", "-once", env=self.env)
        assert done.returncode == 0, done.stderr
        (self.hold / "release").unlink()
        fresh_machine(self.project)

    def start(self) -> Held:
        gunicorn = [
            sys.executable, "-m", "gunicorn", self.app,
            "-b", f"127.0.0.1:{self.port}", "-w", "2", "--no-control-socket",
        ]  # fmt: skip
        with self.err.open("w") as err:
            self.proc = self.project.spawn(
                "litestream", "serve", *self.opts, "--", *gunicorn,
                env=self.env, stdout=err, stderr=err,
            )  # fmt: skip
        return self

    def booted(self) -> list[Path]:
        return sorted(self.hold.glob("booted-*"))

    def release(self) -> None:
        (self.hold / "release").touch()

    def stderr(self) -> str:
        return self.err.read_text()

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)

    def answer_then_stop(self) -> None:
        """Once both workers have imported the application: one /insert is answered with the
        restored database's next id, and a SIGTERM ends serve with 0."""
        try:
            answers: list[str] = []
            wait_for(lambda: len(self.booted()) == 2, 60, "both workers to import the app")
            self.insert(answers).join(60)
            assert answers == [str(ROWS + 1)], self.stderr()
            self.proc.send_signal(signal.SIGTERM)
            assert self.wait() == 0, self.stderr()
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)

    def insert(self, answers: list[str]) -> threading.Thread:
        def post() -> None:
            request = urllib.request.Request(f"http://127.0.0.1:{self.port}/insert", b"")
            with urllib.request.urlopen(request, timeout=120) as response:
                answers.append(response.read().decode())

        thread = threading.Thread(target=post, daemon=True)
        thread.start()
        return thread


def replica_ids(project: Project, tmp: Path) -> list[int]:
    out = tmp / f"restored-{os.urandom(3).hex()}.db"
    (tmp / "hold" / "release").touch()
    env = {"HOLD_DIR": str(tmp / "hold"), "REAL_LITESTREAM": LITESTREAM}
    result = project.run("litestream", "restore", "-o", str(out), "default", env=env)
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(out) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM acks ORDER BY id")]


@pytest.mark.parametrize(
    "opts", [(), ("--pre", f"{sys.executable} manage.py write_rows 3")], ids=["plain", "pre"]
)
def test_gunicorn_boots_during_the_restore_and_answers_only_after_it(
    project: Project, tmp_path: Path, opts: tuple[str, ...]
) -> None:
    held = Held(project, tmp_path, *opts)
    held.backup()
    held.start()
    try:
        wait_for(lambda: len(held.booted()) == 2, 60, "both workers to import the application")
        assert (held.hold / "restore-started").exists()
        assert not project.db.exists()  # the restore has not even begun writing
        answers: list[str] = []
        # The socket is bound, so the request waits in its backlog; had a worker taken it,
        # Django would have created an empty database, and the restore would refuse it.
        thread = held.insert(answers)
        held.release()
        thread.join(60)
        assert answers == [str(ROWS + 1)], held.stderr()  # the restored database's next id
        assert "Booting the server during the restore" in held.stderr()
        held.proc.send_signal(signal.SIGTERM)
        assert held.wait() == 0, held.stderr()
    finally:
        held.release()
        if held.proc.poll() is None:
            os.killpg(held.proc.pid, signal.SIGKILL)
    assert "replica confirmed in sync" in held.stderr()
    assert replica_ids(project, tmp_path) == list(range(1, ROWS + 2))


def test_an_application_that_opens_the_database_at_import_is_refused_then_boots_after(
    project: Project, tmp_path: Path
) -> None:
    held = Held(project, tmp_path, touch=True)
    held.backup()
    held.start()
    try:
        wait_for(lambda: len(held.booted()) == 2, 60, "both workers to import the application")
        assert project.db.exists()  # created by the import, during the restore
        held.release()
        assert held.wait() == exitcodes.RESTORE_FAILED, held.stderr()
    finally:
        held.release()
    err = held.stderr()
    assert APPEARED in err and "--boot-after-restore" in err, err
    assert "Traceback" not in err
    assert not procs.children(held.proc.pid)
    assert replica_ids(project, tmp_path) == list(range(1, ROWS + 1))  # the replica is intact

    # The option the message names: the server starts after the restore, and serves.
    (project.root / "db.sqlite3").unlink()
    after = Held(project, tmp_path, "--boot-after-restore", touch=True)
    after.start().answer_then_stop()
    assert "Booting the server during the restore" not in after.stderr()
    assert replica_ids(project, tmp_path) == list(range(1, ROWS + 2))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["term", "kill"])
def test_a_stop_during_the_restore_leaves_no_server(
    project: Project, tmp_path: Path, sig: int
) -> None:
    held = Held(project, tmp_path)
    held.backup()
    held.start()
    try:
        wait_for(lambda: len(held.booted()) == 2, 60, "both workers to import the application")
        server = [p.process for p in procs.children(held.proc.pid) if "gunicorn" in p.cmdline]
        assert len(server) == 3, server  # the master and its two workers
        held.proc.send_signal(sig)
        code = held.wait()
        assert code == (-signal.SIGKILL if sig == signal.SIGKILL else 128 + sig), held.stderr()
        gone, alive = psutil.wait_procs(server, timeout=30)
        assert not alive, alive
    finally:
        held.release()
    assert not project.db.exists()
    assert "Traceback" not in held.stderr()


def test_a_warm_start_boots_gunicorn_before_the_exec_and_keeps_the_lock(
    project: Project, tmp_path: Path
) -> None:
    """The head start: the Django side takes the locks and boots gunicorn before it execs
    the supervisor, which adopts both. A second serve is still refused, and gunicorn was
    started before Litestream."""
    held = Held(project, tmp_path)
    held.backup()
    held.release()  # nothing is held: the restore below is a normal one
    first = project.run("litestream", "restore", "default", env=held.env)
    assert first.returncode == 0, first.stderr
    held.start()
    try:
        answers: list[str] = []
        wait_for(lambda: len(held.booted()) == 2, 60, "both workers to import the application")
        held.insert(answers).join(60)
        assert answers == [str(ROWS + 1)], held.stderr()
        tree = procs.children(held.proc.pid, recursive=False)
        (master,) = [p.process for p in tree if "gunicorn" in p.cmdline]
        (litestream,) = [p.process for p in tree if p.argv[1:2] == ("replicate",)]
        assert master.create_time() < litestream.create_time()
        record = lock.holder(str(project.db))  # the lock the Django side took, adopted
        assert record is not None and record["pid"] == held.proc.pid
        plan = Path(record["state"]).parent / "plan.json"
        assert json.loads(plan.read_text())["booted_pid"] == master.pid
        second = project.run(
            "litestream", "serve", "--", sys.executable, "-c", "pass", env=held.env
        )
        assert second.returncode == exitcodes.LOCKED, second.stderr
        assert f"(PID {held.proc.pid}) is already serving" in second.stderr
        held.proc.send_signal(signal.SIGTERM)
        assert held.wait() == 0, held.stderr()
    finally:
        if held.proc.poll() is None:
            os.killpg(held.proc.pid, signal.SIGKILL)
    assert "Booting the server during the restore" not in held.stderr()
    assert replica_ids(project, tmp_path) == list(range(1, ROWS + 2))


# The application, for a worker that imports it only once the test releases it.
IMPORT_HELD = """import os, pathlib, time
hold = pathlib.Path(os.environ["HOLD_DIR"])
(hold / f"importing-{os.getpid()}").touch()
deadline = time.monotonic() + 60
while not (hold / "import-release").exists() and time.monotonic() < deadline:
    time.sleep(0.02)
from testapp.wsgi import application
(hold / f"imported-{os.getpid()}").touch()
"""


def test_the_start_up_line_comes_when_a_worker_accepts_not_when_gunicorn_binds(
    project: Project, tmp_path: Path
) -> None:
    """gunicorn listens from its master's boot on, long before a worker can answer (here
    the workers' import of the application is held past the go): the start-up line comes
    only once a worker is past the gate, names where it accepts, and the server answers."""
    held = Held(project, tmp_path)
    held.backup()
    held.release()
    first = project.run("litestream", "restore", "default", env=held.env)
    assert first.returncode == 0, first.stderr
    (project.root / "testapp" / "held_import.py").write_text(IMPORT_HELD)
    held.app = "testapp.held_import:application"
    held.start()
    try:
        wait_for(lambda: "starting the server:" in held.stderr(), 60, "the go")
        with socket.create_connection(("127.0.0.1", held.port), timeout=10):
            pass  # the master listens: its socket takes the connection into its backlog
        wait_for(lambda: len(list(held.hold.glob("importing-*"))) == 2, 60, "both workers")
        assert "after start (" not in held.stderr()  # no worker is past the gate yet
        (held.hold / "import-release").touch()

        def line_then_imported() -> tuple[re.Match[str], bool] | None:
            found = SERVING.search(held.stderr())  # read first: the import was before it
            return found and (found, any(held.hold.glob("imported-*")))

        line, imported = wait_for(line_then_imported, 60, "the start-up line")
        assert imported, "the line came before any worker had imported the application"
        assert int(line.group(8)) == held.port, line.group(0)
        answers: list[str] = []
        held.insert(answers).join(60)
        assert answers == [str(ROWS + 1)], held.stderr()
        held.proc.send_signal(signal.SIGTERM)
        assert held.wait() == 0, held.stderr()
    finally:
        (held.hold / "import-release").touch()
        if held.proc.poll() is None:
            os.killpg(held.proc.pid, signal.SIGKILL)
    assert held.stderr().count("after start (") == 1
    assert replica_ids(project, tmp_path) == list(range(1, ROWS + 2))


def test_the_gate_says_where_a_worker_accepts() -> None:
    assert gunicorn_gate.address(("127.0.0.1", 8000)) == "127.0.0.1:8000"
    assert gunicorn_gate.address(("::1", 8000, 0, 0)) == "[::1]:8000"
    assert gunicorn_gate.address("/run/app.sock") == "unix:/run/app.sock"


def test_an_empty_database_file_is_restored_with_the_server_booting_after(
    project: Project, tmp_path: Path
) -> None:
    """An empty file counts as missing, but something may have it open: the supervisor
    restores it (not the head start), and the server boots after."""
    held = Held(project, tmp_path)
    held.backup()
    project.db.touch()
    held.release()
    held.start().answer_then_stop()
    assert "Booting the server during the restore" not in held.stderr()
    assert replica_ids(project, tmp_path) == list(range(1, ROWS + 2))


# -- when the server may boot early ---------------------------------------------------------

PY = sys.executable
GUNICORN = str(Path(PY).parent / "gunicorn")


@pytest.mark.parametrize(
    ("command", "env", "expected"),
    [
        ([PY, "-m", "gunicorn", "app.wsgi"], {}, (True, "")),
        ([GUNICORN, "-w", "2", "app.wsgi"], {}, (True, "")),
        ([PY, "-m", "gunicorn", "-c", "conf.py", "app.wsgi"], {}, (True, "configuration")),
        ([PY, "-m", "gunicorn", "-cconf.py", "app.wsgi"], {}, (True, "configuration")),
        ([PY, "-m", "gunicorn", "--conf=x.py", "app.wsgi"], {}, (True, "configuration")),
        ([PY, "-m", "gunicorn", "app.wsgi"], {"GUNICORN_CMD_ARGS": "-c x"}, (True, "config")),
        (["/nonexistent/python3", "-m", "gunicorn", "app.wsgi"], {}, (True, "environment")),
        ([PY, "manage.py", "runserver"], {}, (False, "not gunicorn")),
        (["uvicorn", "app.asgi:application"], {}, (False, "not gunicorn")),
    ],
)
def test_when_gunicorn_may_boot_during_the_restore(
    tmp_path: Path, command: list[str], env: dict[str, str], expected: tuple[bool, str]
) -> None:
    gunicorn, why = earlyboot.refusal(
        command, {"PATH": os.environ["PATH"], **env}, str(tmp_path), PY
    )
    assert gunicorn == expected[0]
    assert (expected[1] in why) if expected[1] else why == ""


def test_a_gunicorn_conf_py_in_the_working_directory_keeps_the_boot_after(tmp_path: Path) -> None:
    (tmp_path / "gunicorn.conf.py").write_text("workers = 2\n")
    assert earlyboot.refusal([PY, "-m", "gunicorn", "app.wsgi"], {}, str(tmp_path), PY) == (
        True,
        "gunicorn reads gunicorn.conf.py from the working directory",
    )


def test_the_gate_module_sets_no_gunicorn_setting_but_its_hook() -> None:
    from gunicorn.config import KNOWN_SETTINGS

    settings = {s.name for s in KNOWN_SETTINGS}
    assert set(vars(gunicorn_gate)) & settings == {"post_worker_init"}
