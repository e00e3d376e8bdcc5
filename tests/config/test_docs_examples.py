"""Every example of docs/configuration.rst: ``check`` and a real ``litestream replicate``
start agree, both ways. A setting ``check`` passes starts; one ``check`` refuses does not.

Each example is executed as a settings file would be (``BASE_DIR`` a fresh directory), judged
by ``check`` in-process, and the configuration the commands would hand Litestream is started
with ``litestream replicate -exec`` inside private user, network and mount namespaces
(``unshare -rnm``): no network at all, and every name lookup answers "no such host" at once
(``hosts: files``), so a replica client fails at its first call instead of retrying. A start
that reaches the ``-exec`` child has passed everything Litestream checks; one that fails only
for want of storage (``cannot open store`` with a network or credential-file error) is
started again with every replica a file replica, so that the rest of the start (``addr``,
``-exec``) is judged too. Nothing is written anywhere: the start is killed (SIGKILL, no final
sync) once its child runs.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core import checks
from django.test import override_settings

from django_litestream import checks as ls_checks
from django_litestream import conf
from django_litestream.config import build, verdict

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.rst"
LITESTREAM = str(Path(sys.executable).parent / "litestream")
MARKER = "LITESTREAM-EXEC-STARTED"
# A start that failed only for want of storage: the configuration stage passed.
NO_STORAGE = (
    "no such host",
    "dial tcp",
    "network is unreachable",
    "cannot read sftp key",
    "failed to create GCS client",
    "cannot create shared key credential",
)
pytestmark = pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line, source) of every ``.. code-block:: python`` body, dedented."""
    lines = text.splitlines()
    found = []
    i = 0
    while i < len(lines):
        match = re.match(r"^(\s*)\.\. code-block:: python\s*$", lines[i])
        i += 1
        if not match:
            continue
        indent, start, body = len(match.group(1)), i, []
        while i < len(lines) and (
            not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent
        ):
            body.append(lines[i])
            i += 1
        found.append((start, textwrap.dedent("\n".join(body)).strip()))
    return found


EXAMPLES = [
    (f"line-{line}", source)
    for line, source in python_blocks(DOCS.read_text())
    if "LITESTREAM" in source or source.startswith('"replica"')
]
# The cases (and the reverse: what check refuses must not start either).
CASES = [
    (
        "dir-with-meta-dir",
        'LITESTREAM = {"dbs": [{"dir": str(BASE_DIR / "dbs"), "pattern": "*.db", "recursive": '
        'True, "meta-dir": str(BASE_DIR / "meta"), "replica": {"type": "file", "path": '
        'str(BASE_DIR / "dirrep")}}]}',
    ),
    (
        "addr-without-port",
        'LITESTREAM = {"addr": 9090, "dbs": [{"path": "default", "replica": {"type": "file", '
        '"path": str(BASE_DIR / "r")}}]}',
    ),
    (
        "timedelta",
        'import datetime\nLITESTREAM = {"sync_interval": datetime.timedelta(milliseconds=1500), '
        '"dbs": [{"path": "default", "replica": {"type": "file", "path": str(BASE_DIR / "r")}}]}',
    ),
    (
        "part-size-words",
        'LITESTREAM = {"dbs": [{"path": "default", "replica": {"type": "s3", "bucket": "b", '
        '"path": "db", "part_size": "10 megabytes"}}]}',
    ),
]


def test_the_docs_still_have_their_examples() -> None:
    """A change of formatting must not empty the test below."""
    assert len(EXAMPLES) >= 18


def settings_of(source: str, base: Path) -> tuple[Any, dict[str, Any]]:
    """Execute one example: its LITESTREAM, and DATABASES (its own, else the default)."""
    if source.startswith('"replica"'):
        source = f'LITESTREAM = {{"dbs": [{{"path": "default", {source}}}]}}'
    source = source.replace(
        "from django_litestream import get_vfs_databases", "get_vfs_databases = lambda: {}"
    )  # read replicas are not Litestream's configuration
    namespace: dict[str, Any] = {"BASE_DIR": base, "os": os}
    exec(compile(source, "<example>", "exec"), namespace)
    default = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": base / "db.sqlite3"}}
    return namespace["LITESTREAM"], namespace.get("DATABASES", default)


def start(
    config: Path, env: dict[str, str], where: Path, timeout: float = 15.0
) -> tuple[bool, str]:
    """(whether ``replicate`` started its -exec child, its error line), without any network."""
    nss = where / "nsswitch.conf"
    nss.write_text("hosts: files\n")
    resolv = where / "resolv.conf"
    resolv.write_text("")
    command = [
        LITESTREAM,
        "replicate",
        "-config",
        str(config),
        "-exec",
        f"sh -c 'echo {MARKER}; exec sleep 30'",
    ]
    inner = (
        f"mount --bind {nss} /etc/nsswitch.conf && mount --bind {resolv} /etc/resolv.conf && "
        + shlex.join(command)
    )
    proc = subprocess.Popen(
        ["unshare", "-rnm", "sh", "-c", inner],
        env=env,
        cwd=where,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if not selector.select(timeout=0.2):
                    if proc.poll() is not None:
                        break
                    continue
                line = proc.stdout.readline()
                if not line:
                    break
                lines.append(line.rstrip())
                if MARKER in line:
                    return True, ""
        try:  # its output has ended: it exits now
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise AssertionError(f"replicate neither started nor exited: {lines[-5:]}") from None
        return False, next(
            (ln for ln in lines if ln.startswith("Error")), lines[-1] if lines else ""
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # no final sync: nothing written anywhere
        proc.wait()


def starts(litestream: Any, databases: dict[str, Any], base: Path) -> tuple[bool, str]:
    """Does Litestream start with the configuration the commands would give it?"""
    environ = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    generated = build.build(conf.parse(litestream, databases, project_dir=str(base)), environ)
    env = {**environ, **generated.secret_env, **verdict.placeholders(generated, environ)}
    config = base / "litestream.yml"
    config.write_text(generated.render())
    started, why = start(config, env, base)
    if started:
        return True, ""
    if not (why.startswith("Error: cannot open store:") and any(s in why for s in NO_STORAGE)):
        return False, why
    # The storage stage failed for want of storage: judge the rest of the start with file
    # replicas in their place (top-level and database options kept).
    data = yaml.safe_load(generated.render())
    for i, entry in enumerate(data.get("dbs") or []):
        entry["replica"] = {"type": "file", "path": str(base / f"replica-{i}")}
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    return start(config, env, base)


@pytest.mark.skipif(shutil.which("unshare") is None, reason="no unshare here")
@pytest.mark.parametrize(("name", "source"), EXAMPLES + CASES, ids=[n for n, _ in EXAMPLES + CASES])
def test_check_and_a_real_start_agree(name: str, source: str, tmp_path: Path) -> None:
    probe = subprocess.run(["unshare", "-rnm", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"unshare -rnm is not permitted here ({probe.stderr.decode().strip()})")
    base = tmp_path / "project"
    (base / "dbs" / "sub").mkdir(parents=True)
    for path in (
        base / "db.sqlite3",
        base / "cache.sqlite3",
        base / "dbs" / "a.db",
        base / "dbs" / "sub" / "b.db",
    ):
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE IF NOT EXISTS t (x)")
    litestream, databases = settings_of(source, base)
    with override_settings(LITESTREAM=litestream, DATABASES=databases, BASE_DIR=base):
        errors = [m for m in ls_checks.check_settings() if m.level >= checks.ERROR]
    refused = bool(errors)
    if not refused:  # (a setting check refuses may not even build)
        started, why = starts(litestream, databases, base)
    else:
        try:
            started, why = starts(litestream, databases, base)
        except conf.SettingError:
            started, why = False, "refused by the setting's reader"
    assert refused == (not started), (
        f"{name}: check {'refuses' if refused else 'passes'} "
        f"({[m.msg for m in errors]}), Litestream {'started' if started else 'refused'} ({why})"
    )
