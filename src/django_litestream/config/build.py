"""Turn the validated setting into a Litestream 0.5 configuration (a dict, then YAML).

:mod:`django_litestream.conf` reads the settings and hands over a :class:`~.types.Settings`;
this module only builds, and notes the typos it sees (W001-W003, E011). Secrets never
become values in the output: credentials the user keeps in the environment are written as
``$VARIABLE`` references, and a secret written literally in the settings is moved into a
private environment variable that only the Litestream child process receives. No Django.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from . import envref, keys
from .envref import EnvRef
from .secrets import SECRET_ENV_PREFIX
from .types import Database, Generated, Problem, Settings

# Environment variables that hold the auto-generated replica's bucket and credentials,
# in order of preference (spec: LITESTREAM_* first, then the AWS-compatible names).
BUCKET_VARS = ("LITESTREAM_REPLICA_BUCKET", "AWS_BUCKET")
ACCESS_KEY_VARS = ("LITESTREAM_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID")
SECRET_KEY_VARS = ("LITESTREAM_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY")


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
            literal = isinstance(value, str) and value and not envref.is_reference(value)
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
        self.check_keys(
            options,
            keys.TOP - {"dbs"},
            "LITESTREAM",
            candidates=keys.TOP | frozenset(keys.OWN_KEYS),
        )
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
        from .locations import auto_paths

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
