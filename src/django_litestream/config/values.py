"""The project's own checks of values: what Litestream accepts but then reads differently.

The binary is the judge of what it refuses (:mod:`django_litestream.verdict`). These are
the cases it does not refuse: a relative ``file://`` URL written at the filesystem root, a
``type`` the URL's scheme overrides, a logging level it replaces by INFO, a blank bucket,
a ``$NAME`` it replaces by an empty string, and the older django-litestream's settings.
No Django here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from . import envref, keys
from .build import setting_path
from .locations import parse_url
from .types import Generated, Problem, Settings

LOG_LEVELS = ("trace", "debug", "info", "warn", "warning", "error")


def url_scheme(url: str) -> str | None:
    """The scheme of a replica URL as Litestream sees one (``^\\w+://``), or None."""
    match = re.match(r"^(\w+)://", url)
    return match.group(1) if match else None


def _misread(where: str, msg: str, hint: str) -> Problem:
    return Problem("django_litestream.E010", f"{where} {msg}", f"Hint: {hint}", True, where)


def replica_problems(replica: Mapping[str, Any], where: str) -> Iterator[Problem]:
    url = replica.get("url")
    scheme = url_scheme(url) if isinstance(url, str) else None
    if isinstance(url, str) and scheme == "file" and not url[len("file://") :].startswith("/"):
        read_as = parse_url(url).path
        yield _misread(
            f"{where}['url']",
            f"is {url!r}, which Litestream reads as the directory {read_as} at the root of "
            "the filesystem (the part after 'file://' is a host name).",
            f"write an absolute path with three slashes, 'file:///srv/app{read_as}', or "
            "{'type': 'file', 'path': str(BASE_DIR / 'replica')}.",
        )
    kind = replica.get("type")
    if isinstance(url, str) and scheme and kind:
        url_kind = "webdav" if scheme == "webdavs" else scheme
        if url_kind in keys.REPLICA_TYPES and url_kind != kind:
            yield _misread(
                f"{where}['type']",
                f"is {kind!r} but the 'url' {url!r} is a replica of type {url_kind!r}; "
                "Litestream goes by the URL and ignores 'type'.",
                f"remove 'type' (the URL says it), or write the URL of a {kind} replica.",
            )
    bucket = replica.get("bucket")
    if isinstance(bucket, str) and not bucket.strip():
        yield _misread(
            f"{where}['bucket']",
            f"is {bucket!r}, which names no bucket.",
            "write the bucket's name, or refer to a variable that holds it ('$MY_BUCKET').",
        )


def settings_problems(settings: Settings) -> list[Problem]:
    """E010 (values Litestream misreads), W010 (nothing to replicate), older settings."""
    found: list[Problem] = []
    for db in settings.dbs:
        if db.replica is not None:
            found.extend(replica_problems(db.replica, f"{db.where}['replica']"))
    logging = settings.options.get("logging")
    level = logging.get("level") if isinstance(logging, Mapping) else None
    if level is not None and str(level).lower() not in LOG_LEVELS:
        found.append(
            _misread(
                "LITESTREAM['logging']['level']",
                f"is {level!r}, a level Litestream does not know; it logs at INFO instead.",
                "use one of 'trace', 'debug', 'info', 'warn' or 'error'.",
            )
        )
    if not settings.dbs and not settings.vfs and not settings.under_test:
        found.append(nothing_to_replicate(settings))
    if "config_file" in settings.legacy:
        found.append(
            Problem(
                "django_litestream.W012",
                "LITESTREAM['config_file'] is a setting of the older django-litestream; this "
                "one generates the configuration for every command and writes no file.",
                "Hint: remove it. 'python manage.py litestream config' prints the "
                "configuration, and every command is given it without a file of yours.",
            )
        )
    if "extend_dbs" in settings.legacy and not settings.legacy["extend_dbs"]:
        found.append(
            Problem(
                "django_litestream.W012",
                "LITESTREAM['extend_dbs'] is a setting of the older django-litestream; it is "
                "empty, so nothing is lost, but this one reads only 'dbs'.",
                "Hint: remove it.",
            )
        )
    elif "extend_dbs" in settings.legacy:
        found.append(
            Problem(
                "django_litestream.E013",
                "LITESTREAM['extend_dbs'] is a setting of the older django-litestream, "
                "which added these databases to every SQLite database in DATABASES; this "
                "one replicates only what 'dbs' lists, so as written they are not "
                "replicated.",
                "Hint: move the entries of 'extend_dbs' into 'dbs', next to the databases "
                f"they extended: 'dbs': [{_alias_entries(settings)}, ...].",
                error=True,
                where="LITESTREAM['extend_dbs']",
            )
        )
    return found


def _alias_entries(settings: Settings) -> str:
    aliases = sorted(settings.aliases) or ["default"]
    return ", ".join(f"{{'path': {alias!r}}}" for alias in aliases)


def nothing_to_replicate(settings: Settings) -> Problem:
    what = "LITESTREAM['dbs'] is empty" if settings.defined else "LITESTREAM is not set"
    return Problem(
        "django_litestream.W010",
        f"{what}, so nothing is replicated. (The older django-litestream replicated every "
        "SQLite database in DATABASES when 'dbs' was absent; this one replicates only the "
        "databases 'dbs' lists.)",
        f"Hint: list them, LITESTREAM = {{'dbs': [{_alias_entries(settings)}]}}; if this "
        "project only reads replicas, configure 'vfs'.",
    )


def unset_references(
    settings: Settings, generated: Generated, environ: Mapping[str, str]
) -> list[Problem]:
    """W011: a ``$NAME`` whose variable is not set becomes an empty string in Litestream."""
    found = []
    for path, text, name in envref.written(generated.data):
        if name == "PID" or name in environ:
            continue
        where = setting_path(settings, path)
        secret = bool(path) and str(path[-1]) in keys.SECRETS
        literal = (
            " If the value is the secret itself, put it in an environment variable and "
            "write '$THAT_VARIABLE' instead: Litestream has no escape for a literal '$'."
            if secret
            else ""
        )
        found.append(
            Problem(
                "django_litestream.W011",
                f"{where} is {text!r}: Litestream replaces ${name} by the environment "
                f"variable {name}, which is not set here, so it reads an empty value.",
                f"Hint: set {name} where Litestream runs.{literal}",
                where=where,
            )
        )
    return found
