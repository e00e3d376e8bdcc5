"""Turn parsed settings into a Litestream 0.5 configuration (a dict, then YAML).

No Django here: :mod:`django_litestream.conf` reads the settings and hands over a
:class:`Settings`; this module only builds. Secrets never become values in the output:
credentials the user keeps in the environment are written as ``$VARIABLE`` references, and a
secret written literally in the settings is moved into a private environment variable that
only the Litestream child process receives.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from . import keys

# Environment variables that hold the auto-generated replica's bucket and credentials,
# in order of preference (spec: LITESTREAM_* first, then the AWS-compatible names).
BUCKET_VARS = ("LITESTREAM_REPLICA_BUCKET", "AWS_BUCKET")
ACCESS_KEY_VARS = ("LITESTREAM_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID")
SECRET_KEY_VARS = ("LITESTREAM_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY")
SECRET_ENV_PREFIX = "DJANGO_LITESTREAM_SECRET_"
# A value that is only a reference ("$NAME" or "${NAME}") is left for Litestream to expand.
_ENV_REF = re.compile(r"\$(\w+|\{\w+\})")


@dataclass(frozen=True)
class Database:
    """One entry of ``LITESTREAM["dbs"]``, with its alias resolved to an absolute path."""

    path: str
    where: str
    alias: str | None = None
    replica: Mapping[str, Any] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.alias!r} ({self.path})" if self.alias else self.path


@dataclass(frozen=True)
class Settings:
    """The ``LITESTREAM`` setting, validated. Built by :func:`django_litestream.conf.load`."""

    dbs: tuple[Database, ...] = ()
    path_prefix: str = ""
    bin_path: str | None = None
    download_url: str | None = None
    vfs: Mapping[str, Any] = field(default_factory=dict)
    serve: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)

    def resolve_db(self, name: str) -> str | None:
        """Absolute path for a Django alias, or None when ``name`` is not an alias."""
        return self.aliases.get(name)


@dataclass(frozen=True)
class Problem:
    """A finding about the settings; becomes a system check message or a CLI warning."""

    id: str
    msg: str
    hint: str = ""
    error: bool = False

    def __str__(self) -> str:
        return f"{self.msg} {self.hint}".strip()


@dataclass(frozen=True)
class EnvRef:
    """A value Litestream reads from the environment: rendered as ``$NAME``."""

    name: str


@dataclass
class Generated:
    """A built configuration: the data, the private environment it needs, and findings."""

    data: dict[str, Any]
    secret_env: dict[str, str]
    problems: list[Problem]
    # The literal secrets by variable name; ``secret_env`` holds them YAML-quoted, because
    # Litestream substitutes variables into the YAML text before parsing it.
    secret_values: dict[str, str] = field(default_factory=dict)

    def render(self, *, expand: Mapping[str, str] | None = None) -> str:
        """YAML text. With ``expand`` (for ``-no-expand-env``) references become values."""
        if expand is not None:
            expand = {**expand, **self.secret_values}
        return yaml.safe_dump(_materialize(self.data, expand), sort_keys=False)


def _materialize(value: Any, expand: Mapping[str, str] | None) -> Any:
    if isinstance(value, EnvRef):
        return f"${value.name}" if expand is None else expand.get(value.name, "")
    if isinstance(value, Mapping):
        return {k: _materialize(v, expand) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_materialize(v, expand) for v in value]
    return value


def env_var(candidates: tuple[str, ...], environ: Mapping[str, str]) -> str:
    """The first of ``candidates`` set in the environment, else the first one."""
    return next((name for name in candidates if environ.get(name)), candidates[0])


def auto_replica_bucket_set(environ: Mapping[str, str]) -> bool:
    return any(environ.get(name) for name in BUCKET_VARS)


class _Builder:
    def __init__(self, settings: Settings, environ: Mapping[str, str]) -> None:
        self.settings = settings
        self.environ = environ
        self.secret_env: dict[str, str] = {}
        self.secret_values: dict[str, str] = {}
        self.problems: list[Problem] = []
        self.auto_paths: dict[str, str] = {}

    # -- findings -------------------------------------------------------------
    def warn(self, id: str, msg: str, hint: str) -> None:
        self.problems.append(Problem(id, msg, hint))

    def check_keys(self, mapping: Mapping[str, Any], known: frozenset[str], where: str) -> None:
        for key, value in mapping.items():
            if key not in known:
                if key in keys.LEGACY:
                    self.warn(
                        "django_litestream.W002",
                        f"{where}['{key}'] is a Litestream 0.3 key that Litestream 0.5 ignores.",
                        f"Hint: {keys.LEGACY[key]}.",
                    )
                else:
                    close = keys.suggest(key, known)
                    if close:
                        hint = f"Did you mean '{close}'?"
                    elif key in keys.REPLICA and known is keys.DB_OPTIONS:
                        hint = f"'{key}' is a replica setting: move it into {where}['replica']."
                    else:
                        hint = "Remove it."
                    self.warn(
                        "django_litestream.W001",
                        f"{where}['{key}'] is not a Litestream 0.5 setting; "
                        "Litestream would silently ignore it.",
                        f"Hint: {hint}",
                    )
            elif where == "LITESTREAM" and key == "retention" and not isinstance(value, Mapping):
                self.warn(
                    "django_litestream.W002",
                    f"LITESTREAM['retention'] is {value!r}, a Litestream 0.3 habit; in 0.5 "
                    "it is a section {'enabled': True/False}.",
                    "Hint: keep history with 'snapshot': {'retention': '24h'}.",
                )
            elif (
                key in keys.DURATIONS
                and isinstance(value, int | float)
                and not isinstance(value, bool)
            ):
                self.warn(
                    "django_litestream.W003",
                    f"{where}['{key}'] is the bare number {value!r}, which Litestream reads "
                    "as nanoseconds.",
                    f"Hint: write a duration string such as '{value}s' or '{value}m'.",
                )

    # -- values -----------------------------------------------------------------
    def secretize(self, mapping: Mapping[str, Any]) -> dict[str, Any]:
        """Copy ``mapping``, moving literal secrets into the child's private environment."""
        out: dict[str, Any] = {}
        for key, value in mapping.items():
            literal = isinstance(value, str) and value and not _ENV_REF.fullmatch(value)
            if key in keys.SECRETS and literal:
                name = f"{SECRET_ENV_PREFIX}{len(self.secret_env)}"
                # A double-quoted YAML scalar, so that '@', '*', ': ', '$' ... survive.
                self.secret_env[name] = json.dumps(value, ensure_ascii=False)
                self.secret_values[name] = value
                out[key] = EnvRef(name)
            else:
                out[key] = value
        return out

    def auto_replica(self, db: Database) -> dict[str, Any]:
        return {
            "type": "s3",
            "bucket": EnvRef(env_var(BUCKET_VARS, self.environ)),
            "path": self.auto_paths[db.path],
        }

    def replica(self, db: Database) -> dict[str, Any]:
        assert db.replica is not None
        where = f"{db.where}['replica']"
        self.check_keys(db.replica, keys.REPLICA, where)
        return self.secretize(db.replica)

    def database(self, db: Database) -> dict[str, Any]:
        self.check_keys(db.options, keys.DB_OPTIONS, db.where)
        entry: dict[str, Any] = {}
        if "dir" not in db.options:
            entry["path"] = db.path
        entry.update(db.options)
        entry["replica"] = self.replica(db) if db.replica is not None else self.auto_replica(db)
        return entry

    def build(self) -> Generated:
        options = dict(self.settings.options)
        self.check_keys(options, keys.TOP - {"dbs"}, "LITESTREAM")
        for section, known in keys.SECTIONS.items():
            if isinstance(options.get(section), Mapping):
                self.check_keys(options[section], known, f"LITESTREAM['{section}']")
        for i, level in enumerate(options.get("levels") or ()):
            if isinstance(level, Mapping):
                self.check_keys(level, keys.LEVEL, f"LITESTREAM['levels'][{i}]")
        data: dict[str, Any] = {}
        if any(db.replica is None for db in self.settings.dbs):
            data["access-key-id"] = EnvRef(env_var(ACCESS_KEY_VARS, self.environ))
            data["secret-access-key"] = EnvRef(env_var(SECRET_KEY_VARS, self.environ))
        data.update(self.secretize(options))
        from .locations import auto_paths  # distinct paths where file names repeat

        self.auto_paths, derived = auto_paths(self.settings.dbs, self.settings.path_prefix)
        self.problems.extend([derived] if derived else [])
        data["dbs"] = [self.database(db) for db in self.settings.dbs]
        return Generated(data, self.secret_env, self.problems, self.secret_values)


def build(settings: Settings, environ: Mapping[str, str] | None = None) -> Generated:
    """Build the Litestream configuration for ``settings``.

    ``environ`` (default ``os.environ``) only decides which variable *names* the
    auto-generated replica refers to; no value from it is written into the result.
    """
    return _Builder(settings, os.environ if environ is None else environ).build()


def _is_s3(replica: Mapping[str, Any]) -> bool:
    return replica.get("type") == "s3" or str(replica.get("url", "")).startswith("s3://")


def _loopback(addr: str) -> bool:
    host = addr.rsplit(":", 1)[0].strip("[]") if ":" in addr else addr
    return host == "localhost" or host.startswith("127.") or host == "::1"


def environment_problems(settings: Settings, environ: Mapping[str, str]) -> list[Problem]:
    """Findings that depend on the environment rather than on the settings' shape."""
    found = []
    auto = [db for db in settings.dbs if db.replica is None]
    if auto and not auto_replica_bucket_set(environ):
        found.append(
            Problem(
                "django_litestream.E006",
                f"{auto[0].where} has no 'replica', so it replicates to the S3 bucket named "
                "by $LITESTREAM_REPLICA_BUCKET (or $AWS_BUCKET), and neither is set.",
                "Hint: export LITESTREAM_REPLICA_BUCKET=your-bucket, or give the database "
                "a 'replica' (for example {'type': 'file', 'path': '/var/backups/db'}).",
                error=True,
            )
        )
    if environ.get("AWS_CA_BUNDLE") and (
        auto or any(db.replica is not None and _is_s3(db.replica) for db in settings.dbs)
    ):
        found.append(
            Problem(
                "django_litestream.W004",
                "AWS_CA_BUNDLE is set and an S3 replica is configured; Litestream 0.5 then "
                "fails to start ('unable to add custom RootCAs HTTPClient').",
                "Hint: unset AWS_CA_BUNDLE for the Litestream process, for example "
                "'env -u AWS_CA_BUNDLE python manage.py litestream ...'; add the CA to the "
                "system trust store instead if your endpoint needs it.",
            )
        )
    for key in ("addr", "mcp-addr"):
        addr = settings.options.get(key)
        if isinstance(addr, str) and addr and not _loopback(addr):
            found.append(
                Problem(
                    "django_litestream.W005",
                    f"LITESTREAM['{key}'] is {addr!r}, which listens beyond this machine. "
                    + (
                        "Its MCP tools are unauthenticated and can restore and reset files."
                        if key == "mcp-addr"
                        else "It serves metrics and debug endpoints without authentication."
                    ),
                    f"Hint: bind it to loopback, e.g. '127.0.0.1:{addr.rsplit(':', 1)[-1]}'.",
                )
            )
    return found
