"""The Django side of ``serve``: validate, write a private plan, exec the supervisor.

After ``exec`` the process keeps its PID (what a Procfile or container runtime signals)
but no longer holds the user's project in memory, and nothing has opened a database.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from .. import binary, cli, keys
from ..config import Settings
from ..errors import ConfigurationError
from ..runner import make_private_dir, write_private
from . import options
from .plan import Plan, PlanDB, default_meta_path


def shutdown_sync_timeout(value: Any) -> float:
    """Litestream's final-sync budget in seconds (its default is 30s)."""
    seconds = keys.duration_seconds(value)
    return 30.0 if seconds is None else seconds


def server_env(settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """Variables the server needs besides serve's own environment.

    The Litestream VFS extension (read replicas) logs to stdout unless LITESTREAM_LOG_FILE
    is set when the process starts; send it to stderr so stdout stays the server's.
    """
    if settings.vfs and not environ.get("LITESTREAM_LOG_FILE"):
        return {"LITESTREAM_LOG_FILE": "/dev/stderr"}
    return {}


def max_sync_wal_bytes(value: Any) -> int:
    """Litestream's ``max-sync-wal-bytes`` for one database (64 MiB unless set; 0: no limit)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return 64 << 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def default_command() -> tuple[str, ...]:
    from django.conf import settings

    wsgi = getattr(settings, "WSGI_APPLICATION", None)
    if not wsgi or importlib.util.find_spec("gunicorn") is None:
        missing = "gunicorn is not installed" if wsgi else "WSGI_APPLICATION is not set"
        raise ConfigurationError(
            f"serve has no server command to run ({missing}). Give one after '--' "
            "(python manage.py litestream serve -- gunicorn myproject.wsgi), or set "
            "LITESTREAM['serve']['command']."
        )
    module, _, attr = wsgi.rpartition(".")
    return (sys.executable, "-m", "gunicorn", f"{module}:{attr}")


def describe_replica(replica: Mapping[str, Any]) -> str:
    if replica.get("url"):
        return str(replica["url"])
    kind = replica.get("type", "s3")
    where = "/".join(str(replica[k]).strip("/") for k in ("bucket", "path") if replica.get(k))
    return f"{kind}://{where}" if kind != "file" else f"file://{replica.get('path', '')}"


def probe_addr(addr: str) -> str:
    host, _, port = addr.rpartition(":")
    return f"127.0.0.1:{port}" if host in ("", "0.0.0.0", "[::]", "::") else addr


def prepare(
    settings: Settings, args: Sequence[str], environ: Mapping[str, str]
) -> tuple[Plan, dict[str, str]]:
    opts = options.parse(args, settings.serve)
    if not settings.dbs:
        raise ConfigurationError(
            "LITESTREAM['dbs'] is empty, so serve has no database to restore or replicate. "
            "Add one, e.g. LITESTREAM = {'dbs': [{'path': 'default'}]}."
        )
    command = opts.command or default_command()
    generated = cli.generate(settings, environ, strict=True)
    exe = binary.resolve(
        settings.bin_path, download_url=settings.download_url, progress=cli.print_stderr
    )
    # Not a context manager: the directory outlives this process; the supervisor removes it.
    runtime = make_private_dir("django-litestream-serve-")
    data = generated.data
    data["addr"] = addr = str(data.get("addr") or f"127.0.0.1:{free_port()}")
    user_socket = cli.configured_socket(settings)
    socket_path = user_socket or os.path.join(runtime, "litestream.sock")
    if not user_socket:
        data["socket"] = {"enabled": True, "path": socket_path}
    logging_conf = dict(data.get("logging") or {})
    logging_conf.setdefault("stderr", True)
    data["logging"] = logging_conf
    config_path = write_private(os.path.join(runtime, "litestream.yml"), generated.render())
    plan = Plan(
        runtime_dir=runtime,
        binary=exe,
        config_path=config_path,
        socket_path=socket_path,
        metrics_addr=probe_addr(addr),
        dbs=tuple(
            PlanDB(
                db.path,
                db.label,
                describe_replica(entry["replica"]),
                meta_path=os.path.abspath(
                    os.path.expanduser(str(entry.get("meta-path") or default_meta_path(db.path)))
                ),
                max_sync_wal_bytes=max_sync_wal_bytes(entry.get("max-sync-wal-bytes")),
                monitor_interval=keys.duration_seconds(entry.get("monitor-interval")) or 1.0,
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
        shutdown_sync_timeout=shutdown_sync_timeout(data.get("shutdown-sync-timeout")),
        server_env=server_env(settings, environ),
    )
    plan.save()
    return plan, {**environ, **generated.secret_env}


def run(settings: Settings, args: Sequence[str]) -> int:
    plan, env = prepare(settings, args, os.environ)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(
        sys.executable, [sys.executable, "-m", "django_litestream.serve.supervisor", plan.path], env
    )
    return 0  # not reached
