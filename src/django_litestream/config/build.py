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
                if (
                    close in ("type", "url")
                    and known is keys.REPLICA
                    and not ({"type", "url"} & set(mapping))
                ):
                    path = mapping.get("path")
                    read_as = (
                        f"a file replica in the directory {path!r}"
                        + ("" if str(path).startswith("/") else " (relative to where it runs)")
                        if isinstance(path, str) and path
                        else "a file replica"
                    )
                    self.warn(
                        "django_litestream.E011",
                        f"{where}['{key}'] looks like a misspelled '{close}': as written, the "
                        f"replica has neither 'type' nor 'url', and Litestream makes it {read_as}.",
                        f"Hint: rename it to '{close}'.",
                        error=True,
                        where=f"{where}['{key}']",
                    )
                    continue
                elsewhere = keys.missing_key_hint(key, _replica_kind(mapping))
                if close:
                    hint = f"Did you mean '{close}'?"
                elif elsewhere and known is keys.REPLICA:
                    hint = f"Litestream has no '{key}' key: {elsewhere}."
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
        # A top-level 'bucket' is every replica's default, this one's too (written here as
        # well, so that messages name it); else the variable that names the bucket.
        bucket = self.settings.options.get("bucket") if top_level_bucket(self.settings) else None
        return {
            "type": "s3",
            "bucket": bucket or EnvRef(env_var(BUCKET_VARS, self.environ)),
            "path": self.auto_paths[db.path],
        }

    def replica(self, db: Database) -> dict[str, Any]:
        assert db.replica is not None
        where = f"{db.where}['replica']"
        self.check_keys(db.replica, keys.REPLICA, where)
        return self.secretize(self.url_credentials(db.replica, where))

    def url_credentials(self, replica: Mapping[str, Any], where: str) -> Mapping[str, Any]:
        """The replica with the credentials of its ``url`` moved into the type's own keys.

        A password in ``sftp://USER:PASSWORD@HOST/...`` (``webdav(s)://``, ``nats://``)
        would be printed with the configuration and written where others read it; moved into
        the key Litestream reads it from (``password``, ``webdav-password``; for NATS, whose
        client ignores a URL's userinfo, ``username`` + ``password`` or ``token``), it
        becomes a private variable like every other secret. A credential Litestream would
        ignore (a key of the replica already gives one; a type that reads none from the
        URL) is left out and said (W032): never printed, never sent.
        """
        from .locations import parse_url

        url = replica.get("url")
        if not isinstance(url, str):
            return replica
        parsed = parse_url(url)
        kind = parsed.kind
        nats_user = kind == "nats" and parsed.username
        if parsed.password is None and not nats_user:
            return replica
        out = dict(replica)
        if kind == "nats":
            if parsed.password is None:
                moved = {"token": parsed.username or ""}
            else:
                moved = {"username": parsed.username or "", "password": parsed.password}
            out["url"] = _without_userinfo(url, keep_user=False)
        else:
            key = URL_PASSWORD_KEYS.get(kind)
            moved = {key: parsed.password or ""} if key else {}
            out["url"] = _without_userinfo(url, keep_user=True)
        given = set(replica) | set(self.settings.options)
        ignored = [k for k in moved if k in given] if moved else ["password"]
        for k, value in moved.items():
            if k not in given and value:
                out[k] = value
        if ignored:
            reason = (
                f"Litestream ignores it: {where}['{ignored[0]}'] (or the top-level default) "
                "gives that credential"
                if moved
                else f"Litestream reads no password from a {kind}:// URL"
            )
            self.warn(
                "django_litestream.W032",
                f"{where}['url'] holds a password, and {reason}; it is left out of the "
                "configuration.",
                f"Hint: remove it from the URL{URL_CREDENTIAL_FIX.get(kind, '')}.",
                where=f"{where}['url']",
            )
        return out

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


# The key a replica type reads the password of its URL from (Litestream 0.5.17's
# new*ReplicaClientFromConfig); NATS reads none from the URL (see url_credentials).
URL_PASSWORD_KEYS = {"sftp": "password", "webdav": "webdav-password"}
URL_CREDENTIAL_FIX = {
    "s3": " and give 'access-key-id' and 'secret-access-key' (or $AWS_ACCESS_KEY_ID ...)",
    "oss": " and give 'access-key-id' and 'secret-access-key'",
    "abs": " and give 'account-key' or 'sas-token'",
    "gs": " (Google Cloud Storage reads $GOOGLE_APPLICATION_CREDENTIALS)",
}


def _without_userinfo(url: str, *, keep_user: bool) -> str:
    """``url`` without the password of its userinfo (and without the user, unless kept)."""
    head, _, rest = url.partition("://")
    end = min([rest.find(c) for c in "/?#" if c in rest] or [len(rest)])
    userinfo, _, host = rest[:end].rpartition("@")
    user = userinfo.partition(":")[0] if keep_user else ""
    return f"{head}://{user + '@' if user else ''}{host}{rest[end:]}"


def _replica_kind(replica: Mapping[str, Any]) -> str:
    """A replica's type as Litestream reads it: the URL's scheme wins over 'type'."""
    url = replica.get("url")
    if isinstance(url, str) and "://" in url:
        scheme = url.partition("://")[0].lower()
        return "webdav" if scheme == "webdavs" else scheme
    return str(replica.get("type") or "file")


def top_level_bucket(settings: Settings) -> bool:
    """Whether the top level gives a ``bucket`` (Litestream's default for every replica)."""
    bucket = settings.options.get("bucket")
    return isinstance(bucket, str) and bool(bucket.strip())


def auto_bucket_given(settings: Settings, environ: Mapping[str, str]) -> bool:
    """Whether the auto-generated replica has a bucket: the top level's, or a variable's."""
    return top_level_bucket(settings) or auto_replica_bucket_set(environ)


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
