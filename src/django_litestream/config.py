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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import keys
from .runner import SECRET_ENV_PREFIX

# Environment variables that hold the auto-generated replica's bucket and credentials,
# in order of preference (spec: LITESTREAM_* first, then the AWS-compatible names).
BUCKET_VARS = ("LITESTREAM_REPLICA_BUCKET", "AWS_BUCKET")
ACCESS_KEY_VARS = ("LITESTREAM_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID")
SECRET_KEY_VARS = ("LITESTREAM_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY")
# django-litestream's own keys of LITESTREAM (conf.OWN_KEYS), as a typo's candidates.
OWN_KEYS = frozenset({"path_prefix", "bin_path", "download_url", "vfs", "serve", "health"})
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
    health: Mapping[str, Any] = field(default_factory=dict)  # the health endpoint's options
    options: Mapping[str, Any] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)
    defined: bool = True  # False when settings.LITESTREAM does not exist
    under_test: bool = False  # an entry named Django's in-memory test database, left out
    legacy: Mapping[str, Any] = field(default_factory=dict)  # the older release's keys

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
    where: str = ""  # the key path it is about, when one; two findings there are one

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
        import yaml  # not at the top: serve's start imports this module before its server boots

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
    return next((name for name in candidates if environ.get(name, "").strip()), candidates[0])


def auto_replica_bucket_set(environ: Mapping[str, str]) -> bool:
    """True when a bucket variable holds a name (a blank one names no bucket)."""
    return any(environ.get(name, "").strip() for name in BUCKET_VARS)


class _Builder:
    def __init__(self, settings: Settings, environ: Mapping[str, str]) -> None:
        self.settings = settings
        self.environ = environ
        self.secret_env: dict[str, str] = {}
        self.secret_values: dict[str, str] = {}
        self.problems: list[Problem] = []
        self.auto_paths: dict[str, str] = {}

    # -- findings -------------------------------------------------------------
    def warn(self, id: str, msg: str, hint: str, *, error: bool = False, where: str = "") -> None:
        self.problems.append(Problem(id, msg, hint, error=error, where=where))

    def check_keys(
        self,
        mapping: Mapping[str, Any],
        known: frozenset[str],
        where: str,
        *,
        candidates: frozenset[str] | None = None,
        has_replica: bool = True,
    ) -> None:
        """W001-W003 for the keys of ``mapping``; ``candidates`` are what a typo may mean."""
        for key, value in mapping.items():
            if key not in known:
                if key in keys.LEGACY:
                    self.warn(
                        "django_litestream.W002",
                        f"{where}['{key}'] is a Litestream 0.3 key that Litestream 0.5 ignores.",
                        f"Hint: {keys.LEGACY[key]}.",
                    )
                    continue
                close = keys.suggest(key, candidates or known)
                if close == "dbs" and not self.settings.dbs:
                    self.warn(
                        "django_litestream.E011",
                        f"{where}['{key}'] looks like a misspelled 'dbs': as written, no "
                        "database is replicated.",
                        f"Hint: rename it to 'dbs': {where}['dbs'] = [{{'path': 'default'}}].",
                        error=True,
                        where=f"{where}['{key}']",
                    )
                    continue
                if close == "replica" and not has_replica:
                    self.warn(
                        "django_litestream.E011",
                        f"{where}['{key}'] looks like a misspelled 'replica': as written, the "
                        "database replicates to the auto-generated S3 replica instead.",
                        "Hint: rename it to 'replica'.",
                        error=True,
                        where=f"{where}['{key}']",
                    )
                    continue
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
            elif where == "LITESTREAM" and key == "retention":
                continue  # a section in 0.5; the binary refuses a value (E009 says how)
            elif (
                key in keys.DURATIONS
                and isinstance(value, int | float)
                and not isinstance(value, bool)
                and value != 0  # zero is zero in any unit
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
        self.check_keys(
            db.options,
            keys.DB_OPTIONS,
            db.where,
            candidates=keys.DB - {"replicas"},
            has_replica=db.replica is not None,
        )
        entry: dict[str, Any] = {}
        if "dir" not in db.options:
            entry["path"] = db.path
        entry.update(db.options)
        entry["replica"] = self.replica(db) if db.replica is not None else self.auto_replica(db)
        return entry

    def build(self) -> Generated:
        options = dict(self.settings.options)
        self.check_keys(options, keys.TOP - {"dbs"}, "LITESTREAM", candidates=keys.TOP | OWN_KEYS)
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


AUTO_KEYS = ("access-key-id", "secret-access-key")


def setting_path(settings: Settings, path: Sequence[str | int]) -> str:
    """Where a value of the generated configuration comes from, in the setting's own terms.

    ``("dbs", 0, "replica", "sync-interval")`` is ``LITESTREAM['dbs'][0]['replica']
    ['sync-interval']``; a value of an auto-generated replica names that replica.
    """
    text = "LITESTREAM"
    rest = list(path)
    if len(rest) >= 2 and rest[0] == "dbs" and isinstance(rest[1], int):
        index = rest[1]
        dbs = settings.dbs
        text = dbs[index].where if index < len(dbs) else f"LITESTREAM['dbs'][{index}]"
        rest = rest[2:]
        if rest[:1] == ["replica"] and index < len(dbs) and dbs[index].replica is None:
            detail = f"'{rest[1]}'" if len(rest) > 1 else "settings"
            return f"the auto-generated replica's {detail} of {text}"
    elif rest and rest[0] in AUTO_KEYS and rest[0] not in settings.options:
        return f"the auto-generated replicas' '{rest[0]}'"
    return text + "".join(f"[{p}]" if isinstance(p, int) else f"['{p}']" for p in rest)


BUCKET_REQUIRED = "django_litestream.E006"


def bucket_problem(settings: Settings, environ: Mapping[str, str], *, required: bool) -> Problem:
    """No bucket variable for the auto-generated replica: W009, or E006 where it is needed."""
    auto = [db for db in settings.dbs if db.replica is None]
    blank = [name for name in BUCKET_VARS if name in environ and not environ[name].strip()]
    state = f"${blank[0]} is blank" if blank else "neither is set"
    msg = (
        f"{auto[0].where} has no 'replica', so it replicates to the S3 bucket named by "
        f"$LITESTREAM_REPLICA_BUCKET (or $AWS_BUCKET), and {state}."
    )
    hint = (
        "Hint: export LITESTREAM_REPLICA_BUCKET=your-bucket, or give the database a "
        "'replica' (for example {'type': 'file', 'path': '/var/backups/db'})."
    )
    if required:
        return Problem(BUCKET_REQUIRED, msg, hint, error=True)
    return Problem(
        "django_litestream.W009",
        msg + " That is fine for development and tests; the commands that hand this "
        "configuration to Litestream refuse to start (django_litestream.E006, also under "
        "'check --deploy').",
        hint,
    )


def environment_problems(
    settings: Settings, environ: Mapping[str, str], *, bucket_required: bool = False
) -> list[Problem]:
    """Findings that depend on the environment rather than on the settings' shape.

    A missing bucket variable is the warning W009 unless ``bucket_required`` (a command that
    hands the configuration to Litestream, or ``check --deploy``): then it is E006.
    """
    found = []
    auto = [db for db in settings.dbs if db.replica is None]
    if auto and not auto_replica_bucket_set(environ):
        found.append(bucket_problem(settings, environ, required=bucket_required))
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
