"""What the Django side hands to the supervisor: a JSON file, no secrets.

Secrets travel only in the environment of the processes that need them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from ..config.secrets import SECRET_ENV_PREFIX
from ..litestream.process import write_private


class PlanDB(NamedTuple):
    path: str
    label: str
    replica: str  # a description for messages, never credentials
    meta_path: str = ""  # Litestream's local state directory for this database
    max_sync_wal_bytes: int = 64 << 20  # Litestream's max-sync-wal-bytes (0: no limit)
    monitor_interval: float = 1.0  # Litestream's monitor-interval, in seconds
    sync_interval: float = 1.0  # the replica's sync-interval, in seconds
    alias: str | None = None  # the Django alias, when the database has one
    replica_dir: str = ""  # a file replica's directory, when known without the environment


class Plan(NamedTuple):
    runtime_dir: str
    binary: str
    config_path: str
    socket_path: str
    metrics_addr: str  # the user's own LITESTREAM['addr'] ("" when none: serve opens none)
    dbs: tuple[PlanDB, ...]
    command: tuple[str, ...]
    pre: tuple[tuple[str, ...], ...]
    graceful_timeout: float
    ready_timeout: float
    restore_timeout: float
    require_replica: bool
    shutdown_sync_timeout: float
    replica_check_interval: float = 30.0  # 0: no checks while the server runs
    server_env: Mapping[str, str] = MappingProxyType({})  # added to the server's env
    adopt_local: bool = False  # replicate a database that is not the replica's continuation
    restore_over_local: bool = False  # or move it aside and restore the replica instead
    umask: int = 0o077  # serve's and Litestream's (what they create is private by default)
    server_umask: int | None = None  # the server's and --pre commands': serve's own at start
    alert_webhook: str = ""  # POST a JSON event when a replica outage starts and ends
    wait_for_replica: bool = False  # before the server starts, every replica holds its db
    boot_early: bool = True  # gunicorn may boot during the restore (earlyboot.py)
    config_check_pid: int = 0  # the child asking the binary about the configuration
    error_prefix: str = ""  # how the entry point prints an error ("CommandError: ")
    # A head start before the exec (earlyboot.head_start): the locks the Django side took
    # (one fd per database, in order), and the server it booted with its gate's write end.
    lock_fds: tuple[int, ...] = ()
    restoring: tuple[tuple[str, int, int], ...] = ()  # (database, pid, its output's fd)
    booted_pid: int = 0
    gate_fd: int = -1

    @property
    def path(self) -> str:
        """Where :meth:`save` writes the plan; the supervisor reads it there."""
        return os.path.join(self.runtime_dir, "plan.json")

    @property
    def state_path(self) -> str:
        """The replica checks' latest findings (serve/state.py), for status and health."""
        return os.path.join(self.runtime_dir, "state.json")

    def lock_record(self) -> dict[str, Any]:
        """What the lock beside each database says of its holder (serve's PID: the same
        before and after the ``exec``)."""
        return {
            "pid": os.getpid(),
            "socket": self.socket_path,
            "metrics": self.metrics_addr,  # the user's own metrics address, if any
            "state": self.state_path,  # the replica checks' findings (serve/state.py)
        }

    @property
    def go_path(self) -> str:
        """The early-booted server's go (earlyboot.Gate)."""
        return os.path.join(self.runtime_dir, "server.go")

    def server_environ(self, environ: Mapping[str, str]) -> dict[str, str]:
        """The server's environment: never the configuration's secrets."""
        env = {k: v for k, v in environ.items() if not k.startswith(SECRET_ENV_PREFIX)}
        env.update(self.server_env)
        return env

    @property
    def server_pid_path(self) -> str:
        return os.path.join(self.runtime_dir, "server.pid")

    @property
    def confirm_timeout(self) -> float:
        """Seconds to confirm that the replica holds what pre-serve commands wrote (with
        ``--wait-for-replica``): Litestream's own retry budget for a sync
        (``shutdown-sync-timeout``) plus the two monitor ticks before a sync of Litestream's
        own that began after they exited has finished."""
        return self.shutdown_sync_timeout + 2 * max(
            (db.monitor_interval for db in self.dbs), default=1.0
        )

    def save(self) -> str:
        data = {
            **self._asdict(),
            "dbs": [db._asdict() for db in self.dbs],
            "server_env": dict(self.server_env),
        }
        write_private(self.path, json.dumps(data))
        return self.path

    @classmethod
    def load(cls, path: str) -> Plan:
        with open(path) as handle:
            data = json.load(handle)
        data["dbs"] = tuple(PlanDB(**db) for db in data["dbs"])
        data["command"] = tuple(data["command"])
        data["pre"] = tuple(tuple(c) for c in data["pre"])
        data["lock_fds"] = tuple(data.get("lock_fds", ()))
        data["restoring"] = tuple(tuple(r) for r in data.get("restoring", ()))
        return cls(**data)


def write_json_atomic(path: str, data: object) -> None:
    """Write ``data`` so a reader sees either nothing or the whole file."""
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    os.replace(tmp, path)


def read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None
