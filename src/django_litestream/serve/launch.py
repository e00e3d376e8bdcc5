"""``serve``'s start: validate, write a private plan, exec the supervisor.

After ``exec`` the process keeps its PID (what a Procfile or container runtime signals)
but no longer holds the user's project in memory, and nothing has opened a database.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import sysconfig
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..config import effective, locations
from ..config.generate import generate, print_stderr
from ..config.types import Generated, Settings
from ..errors import ConfigurationError
from ..litestream import binary
from ..litestream.process import (
    SERVE_PREFIX,
    make_private_dir,
    sweep_dead_private_dirs,
    write_private,
)
from ..replica import dbfile
from . import configverdict, earlysignals, options
from .plan import Plan, PlanDB

# A Unix socket's path must fit in sun_path (108 bytes on Linux, 104 on macOS).
MAX_SOCKET_PATH = 103


def runtime_dir() -> str:
    """serve's private directory; under /tmp when TMPDIR is too long for its socket."""
    runtime = make_private_dir(SERVE_PREFIX)
    if len(os.path.join(runtime, "litestream.sock").encode()) > MAX_SOCKET_PATH:
        shutil.rmtree(runtime, ignore_errors=True)
        runtime = make_private_dir(SERVE_PREFIX, base="/tmp")
    return runtime


def server_env(settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """Variables the server needs besides serve's own environment.

    The Litestream VFS extension (read replicas) logs to stdout unless LITESTREAM_LOG_FILE
    is set when the process starts; send it to stderr so stdout stays the server's.
    """
    if settings.vfs and not environ.get("LITESTREAM_LOG_FILE"):
        return {"LITESTREAM_LOG_FILE": "/dev/stderr"}
    return {}


# Litestream opens a database on its monitor's first tick and serve waits for that, so the
# interval is a floor under every start (and under the final sync of the plain recipe).
# 1s is Litestream's default; serve's is shorter unless the user sets one (docs/serve.rst,
# "Performance", has the measurements behind it).
MONITOR_INTERVAL = "100ms"

QUIET_LEVEL = "warn"
DETAILED_LEVELS = ("debug", "trace")


def litestream_logging(configured: Any, *, verbose: bool) -> dict[str, Any]:
    """The ``logging`` section serve gives Litestream: on stderr, and quiet by default.

    Litestream's routine INFO lines (about ten per start) are left out unless the user
    set ``LITESTREAM["logging"]["level"]`` or asked for ``--verbose``; its warnings and
    errors always show. (Litestream's own ``LOG_LEVEL`` variable overrides all of this.)
    """
    conf = dict(configured) if isinstance(configured, Mapping) else {}
    conf.setdefault("stderr", True)
    if verbose:
        if str(conf.get("level", "")).lower() not in DETAILED_LEVELS:
            conf["level"] = "info"
    else:
        conf.setdefault("level", QUIET_LEVEL)
    return conf


def default_command(wsgi: str | None) -> tuple[str, ...]:
    """gunicorn on the project's ``WSGI_APPLICATION`` (read by ``conf``, the settings' reader)."""
    if not wsgi:
        raise ConfigurationError(
            "serve has no server command to run (WSGI_APPLICATION is not set). Give one "
            "after '--' (python manage.py litestream serve -- gunicorn myproject.wsgi), or "
            "set LITESTREAM['serve']['command']."
        )
    if importlib.util.find_spec("gunicorn") is None:
        raise ConfigurationError(
            "serve has no server command to run: it runs gunicorn by default, and gunicorn "
            "is not installed. Install it (python -m pip install gunicorn, or install "
            "django-litestream with its 'serve' extra), or give a command after '--' "
            "(python manage.py litestream serve -- python manage.py runserver)."
        )
    module, _, attr = wsgi.rpartition(".")
    script = gunicorn_script()
    # gunicorn's USR2 binary upgrade re-executes sys.argv; started as "python -m gunicorn"
    # that is gunicorn/__main__.py, whose directory then shadows the standard library's
    # "http" package and the new master's workers die. Its own script re-executes cleanly.
    head = (script,) if script else (sys.executable, "-m", "gunicorn")
    return (*head, f"{module}:{attr}")


def gunicorn_script() -> str | None:
    """The ``gunicorn`` script of this environment (beside the interpreter), else on PATH."""
    for place in (Path(sys.executable).parent, Path(sysconfig.get_path("scripts") or ".")):
        script = place / "gunicorn"
        if script.is_file() and os.access(script, os.X_OK):
            return str(script)
    return shutil.which("gunicorn")


def prepare(
    settings: Settings, args: Sequence[str], environ: Mapping[str, str], error_prefix: str = ""
) -> tuple[Plan, dict[str, str], Generated]:
    """Validate everything and make the plan; the configuration file is not written yet
    (:func:`run` writes it once the server is booting: rendering it loads PyYAML)."""
    opts = options.parse(args, settings.serve)
    if not settings.dbs:
        raise ConfigurationError(
            "LITESTREAM['dbs'] is empty, so serve has no database to restore or replicate. "
            "Add one, e.g. LITESTREAM = {'dbs': [{'path': 'default'}]}."
        )
    exe = binary.resolve(
        settings.bin_path, download_url=settings.download_url, progress=print_stderr
    )
    # The configuration first: on a new project its errors (no bucket yet) are the ones
    # to fix first, and they would otherwise hide behind a missing server. The binary's own
    # verdict on it comes from a child while the supervisor starts (configverdict.py).
    generated = generate(settings, environ, strict=True)
    command = opts.command or default_command(settings.wsgi_application)
    for db in settings.dbs:
        if "dir" not in db.options and (why := dbfile.unusable_database(db.path)):
            raise ConfigurationError(f"{db.label} {why}")
    sweep_dead_private_dirs()
    # Not a context manager: the directory outlives this process; the supervisor removes it.
    runtime = runtime_dir()
    data = generated.data
    # No metrics address of serve's own: what serve reads comes from the control socket in
    # its private directory (a TCP listener would serve Go's profiling and debug pages to
    # every local user). A user's own 'addr' stays theirs.
    addr = str(data.get("addr") or "")
    user_socket = effective.configured_socket(settings)
    socket_path = user_socket or os.path.join(runtime, "litestream.sock")
    if not user_socket:
        data["socket"] = {"enabled": True, "path": socket_path}
    data["logging"] = litestream_logging(data.get("logging"), verbose=opts.verbose)
    for entry in data["dbs"]:
        entry.setdefault("monitor-interval", MONITOR_INTERVAL)
    config_path = os.path.join(runtime, "litestream.yml")
    plan = Plan(
        runtime_dir=runtime,
        binary=exe,
        config_path=config_path,
        socket_path=socket_path,
        metrics_addr=effective.probe_addr(addr) if addr else "",
        dbs=tuple(
            PlanDB(
                db.path,
                db.label,
                locations.describe(entry["replica"], environ),
                meta_path=effective.meta_path(db.path, entry),
                max_sync_wal_bytes=effective.max_sync_wal_bytes(entry.get("max-sync-wal-bytes")),
                monitor_interval=effective.monitor_interval(entry),
                sync_interval=effective.sync_interval(entry, data),
                alias=db.alias,
                replica_dir=locations.file_directory(entry["replica"]),
            )
            for db, entry in zip(settings.dbs, data["dbs"], strict=True)
        ),
        command=command,
        pre=opts.pre,
        graceful_timeout=opts.graceful_timeout,
        ready_timeout=opts.ready_timeout,
        restore_timeout=opts.restore_timeout,
        replica_check_interval=opts.replica_check_interval,
        require_replica=opts.require_replica,
        wait_for_replica=opts.wait_for_replica,
        boot_early=not opts.boot_after_restore,
        adopt_local=opts.adopt_local,
        restore_over_local=opts.restore_over_local,
        shutdown_sync_timeout=effective.shutdown_sync_timeout(data.get("shutdown-sync-timeout")),
        server_env=server_env(settings, environ),
        umask=opts.umask,
        server_umask=current_umask(),
        alert_webhook=opts.alert_webhook,
        error_prefix=error_prefix,
    )
    return plan, {**environ, **generated.secret_env}, generated


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def run(
    settings: Settings,
    args: Sequence[str],
    write: Callable[[str], Any] = print,
    *,
    error_prefix: str = "",
) -> int:
    """Prepare, then ``exec`` the supervisor. ``error_prefix``: how this entry point prints
    an error (``CommandError: `` under manage.py), for the ones the supervisor says."""
    earlysignals.record()  # a stop from here on is the supervisor's to carry out
    plan, env, generated = prepare(settings, args, os.environ, error_prefix)
    written: list[str] = []

    def write_config() -> None:
        if not written:
            written.append(write_private(plan.config_path, generated.render()))

    from . import earlyboot

    # The server boots first when no database is missing; the configuration file, the
    # binary's check of it (a fork) and the plan follow while it does.
    plan = earlyboot.head_start(plan, env, write_config)
    write_config()
    plan = plan._replace(
        config_check_pid=configverdict.start(
            plan.binary, settings, generated, os.environ, plan.runtime_dir
        )
    )
    plan.save()  # once, with what the head start adds
    sys.stdout.flush()
    sys.stderr.flush()
    # The supervisor, Litestream and the restores inherit it; the supervisor gives the server
    # and the --pre commands back the umask serve was started with (plan.server_umask).
    os.umask(plan.umask)
    earlysignals.hand_over()
    os.execve(
        sys.executable, [sys.executable, "-m", "django_litestream.serve.supervisor", plan.path], env
    )
    return 0  # not reached
