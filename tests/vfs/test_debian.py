"""Read replicas on a Python whose own sqlite3 CAN load extensions (Debian's /usr/bin/python3).

There, loading the VFS extension into the standard library's sqlite3 broke every other
SQLite connection of the process, ``DATABASES["default"]`` included (``automatic extension
loading failed:``). These tests run the project under Debian's interpreter, from a venv
made from it (``--without-pip``, so ``python3-venv`` is not needed) that borrows this
run's packages through a ``.pth`` file: no download. That works when Debian's Python has
the same major.minor version as this run (packages with compiled parts, sqlean.py among
them, are built for one); otherwise the tests skip, saying so. ``make test`` on this
machine runs on Python 3.11, as does Debian 12's /usr/bin/python3.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.support.vfs_site import Site, make_site

DEBIAN_PYTHON = Path("/usr/bin/python3")


def _skip(reason: str) -> None:
    print(f"skipping the Debian-Python VFS tests: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def debian_python(tmp_path_factory: pytest.TempPathFactory, vfs_loadable: None) -> str:
    if not DEBIAN_PYTHON.exists():
        _skip(f"{DEBIAN_PYTHON} does not exist (apt-get install python3)")
    probe = subprocess.run(
        [
            str(DEBIAN_PYTHON),
            "-c",
            "import sys, sqlite3; print('%d.%d' % sys.version_info[:2], "
            "hasattr(sqlite3.Connection, 'enable_load_extension'))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if probe.returncode != 0:
        _skip(f"{DEBIAN_PYTHON} does not run: {probe.stderr.strip()[-200:]}")
    version, can_load = probe.stdout.split()
    ours = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if version != ours:
        _skip(
            f"{DEBIAN_PYTHON} is Python {version} and this run is {ours}; the test borrows "
            "this run's compiled packages, so run it with a Python of the same version "
            "(make test, on Debian 12)"
        )
    if can_load != "True":
        _skip(f"{DEBIAN_PYTHON}'s sqlite3 cannot load extensions: nothing to show here")
    venv = tmp_path_factory.mktemp("debian-venv")
    made = subprocess.run(
        [str(DEBIAN_PYTHON), "-m", "venv", "--without-pip", str(venv)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if made.returncode != 0:
        _skip(
            f"'{DEBIAN_PYTHON} -m venv' failed (apt-get install python3-venv?): "
            f"{made.stderr.strip()[-200:]}"
        )
    paths = sysconfig.get_paths()
    site_dirs = dict.fromkeys([paths["purelib"], paths["platlib"]])
    [target] = venv.glob("lib/python*/site-packages")
    (target / "borrowed.pth").write_text(
        "".join(f"import site; site.addsitedir({d!r})\n" for d in site_dirs)
    )
    return str(venv / "bin" / "python")


def test_the_hazard_is_real_on_this_python(debian_python: str):
    """The extension loaded into the stdlib's sqlite3 breaks the next plain connection."""
    script = (
        "import sqlite3, litestream_vfs\n"
        "c = sqlite3.connect(':memory:'); c.enable_load_extension(True)\n"
        "c.execute('SELECT load_extension(?, ?)', (str(litestream_vfs.loadable_path()), "
        "'sqlite3_litestreamvfs_init'))\n"
        "try:\n"
        "    sqlite3.connect(':memory:').execute('SELECT 1')\n"
        "except sqlite3.DatabaseError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([debian_python, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "automatic extension loading failed:", done.stderr


@pytest.fixture
def debian_site(tmp_path: Path, debian_python: str) -> Site:
    # Only the project on PYTHONPATH: this run's sys.path would bring its own standard
    # library (and its sqlite3) into Debian's interpreter.
    return make_site(tmp_path, python=debian_python, env={"PYTHONPATH": str(tmp_path / "proj")})


def test_reads_and_every_other_sqlite_connection_work(debian_site: Site):
    site = debian_site
    site.ask(("add", "default", 3), ("add", "other", 2))
    site.replicate()
    answers = site.ask(
        ("binding", "", 0),
        ("count", "replica_a", 0),  # loads the extension
        ("close", "default", 0),
        ("count", "default", 0),  # a new stdlib connection: broken before the fix
        ("add", "default", 1),
        ("count", "other", 0),
        ("travel", "replica_a", 0, "now"),
    )
    binding, replica, _, primary, added, other, travel = answers
    assert binding["binding"] == "sqlean"
    assert binding["stdlib_can_load"] is True, binding
    assert binding["executable"].startswith(str(Path(site.python).parent.parent))
    assert replica["count"] == 3
    assert primary == {"count": 3, "seconds": primary["seconds"]}
    assert added["count"] == 4
    assert other["count"] == 2
    assert (travel["count"], travel["bound"]) == (3, "newest")


def test_a_router_and_requests_keep_working(debian_site: Site):
    """The issue's sequence under a router: /write 200, a replica read 200, /write 200."""
    site = debian_site
    site.configure(
        routers=("notes.routers.QuickRouter",),
        middleware=("django_litestream.middleware.ReadYourWritesMiddleware",),
        read_replica="replica_a",
    )
    site.ask(("add", "default", 3))
    site.replicate()
    first, read, second = site.ask(
        ("http", "", 0, ["post", "/add"]),
        ("http", "", 0, ["get", "/count"]),
        ("http", "", 0, ["post", "/add"]),
    )
    assert (first["status"], first["db"], first["count"]) == (200, "default", 4)
    assert (read["status"], read["db"], read["count"]) == (200, "replica_a", 3)
    assert (second["status"], second["db"], second["count"]) == (200, "default", 5)
