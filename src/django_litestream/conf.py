"""The only reader of Django's settings: ``LITESTREAM`` validated into a :class:`Settings`.

Every mistake raises :class:`SettingError` whose message names the key that is wrong and
how to fix it; the same errors surface as system checks (``django_litestream.E00x``).
What the rest of the package needs of the project's settings (``DATABASES``, ``BASE_DIR``,
``WSGI_APPLICATION``) is read here too, into the same object.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from .config import durations, envref, keys
from .config.types import Database, Settings
from .errors import SettingError
from .text import did_you_mean

# The older django-litestream-vfs name of LITESTREAM["vfs"]["extension_path"], honoured
# there (see docs/vfs.rst, "Coming from django-litestream-vfs"); never passed to Litestream.
LEGACY_VFS_KEYS = ("vfs_extension_path",)
SQLITE_ENGINES = ("sqlite3", "spatialite")


def _malformed(msg: str, hint: str) -> SettingError:
    return SettingError("django_litestream.E001", msg, hint)


def plain(value: Any) -> Any:
    """A copy of ``value`` with every ``os.PathLike`` (``BASE_DIR / "replica"``) as its string.

    Django settings are written with ``pathlib.Path``; Litestream's YAML needs strings.
    """
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


# Values Litestream's YAML can carry as they are; a timedelta is converted, a PathLike was.
_YAML_SCALARS = (str, int, float, bool, type(None))


def readable(value: Any, where: str, *, seconds: bool = False) -> Any:
    """``value`` with every ``datetime.timedelta`` as what its reader takes; E001 for a
    value that has no meaning in a configuration.

    In Litestream's part of the setting a timedelta becomes a Go duration string
    (``timedelta(seconds=10)`` is ``10s``); in django-litestream's own sections
    (``seconds``: ``serve``, ``health``, ``vfs``, which read numbers of seconds) it becomes
    its seconds. Anything else that is not a string, number, boolean, ``None``, dict or list
    (a ``date``, a ``Decimal``, a set, bytes ...) would reach Litestream as text it misreads,
    or end the YAML writer: one error naming the key instead.
    """
    if isinstance(value, datetime.timedelta):
        return value.total_seconds() if seconds else durations.of_timedelta(value)
    if isinstance(value, Mapping):
        return {k: readable(v, f"{where}[{k!r}]", seconds=seconds) for k, v in value.items()}
    if isinstance(value, list | tuple):
        items = [readable(v, f"{where}[{i}]", seconds=seconds) for i, v in enumerate(value)]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, _YAML_SCALARS) or seconds:
        return value  # the own sections check their values themselves
    raise _malformed(
        f"{where} is {value!r} ({type(value).__name__}), which the Litestream configuration "
        "cannot hold.",
        "Hint: write a string, a number, True/False, a dict or a list (a duration as "
        "'10s' or datetime.timedelta(seconds=10)).",
    )


def _one_spelling(
    mapping: Mapping[Any, Any], where: str, spelling: Callable[[Any], str]
) -> dict[str, Any]:
    """``mapping`` with each key in its one spelling; E001 when two keys are one setting
    (``'sync-interval'`` and ``'sync_interval'``): no value is silently dropped."""
    out: dict[str, Any] = {}
    written: dict[str, Any] = {}
    for key, value in mapping.items():
        name = spelling(key)
        if name in out:
            raise _malformed(
                f"{where} has both {written[name]!r} and {key!r}, the same setting.",
                f"Hint: keep one of them ({name!r}).",
            )
        out[name] = value
        written[name] = key
    return out


def _hyphenate(mapping: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Litestream spells its keys with hyphens; accept the spec's underscores too."""
    return _one_spelling(mapping, where, lambda k: str(k).replace("_", "-"))


def sqlite_aliases(databases: Mapping[str, Any], base_dir: str | None = None) -> dict[str, str]:
    """Map each on-disk SQLite alias of ``DATABASES`` to its absolute path."""
    out = {}
    for alias, conf in databases.items():
        if _is_sqlite(conf) and not _is_memory(conf.get("NAME")):
            out[alias] = _absolute(conf["NAME"], base_dir)
    return out


class _TestDatabase(Exception):
    """The alias is Django's in-memory test database (``manage.py test`` swapped it in)."""


def _is_test_database(name: Any, alias: str) -> bool:
    """Django's test runner names an in-memory SQLite test database like this."""
    return str(name or "").startswith(f"file:memorydb_{alias}?") and "mode=memory" in str(name)


def _is_sqlite(conf: Mapping[str, Any]) -> bool:
    return str(conf.get("ENGINE", "")).rsplit(".", 1)[-1] in SQLITE_ENGINES


def _is_memory(name: Any) -> bool:
    text = str(name or "")
    return (
        not text or text == ":memory:" or "mode=memory" in text or text.startswith("file::memory:")
    )


def _absolute(name: Any, base_dir: str | None) -> str:
    path: str = os.path.expanduser(os.fspath(name))
    if not os.path.isabs(path) and base_dir:
        path = os.path.join(base_dir, path)
    return os.path.abspath(path)


def _resolve_path(
    value: Any, where: str, databases: Mapping[str, Any], base_dir: str | None
) -> tuple[str, str | None]:
    """Return (absolute path, alias or None) for a ``dbs[i]['path']`` value."""
    if not isinstance(value, str | os.PathLike) or not os.fspath(value):
        raise _malformed(
            f"{where}['path'] must be a DATABASES alias or a file path, not {value!r}.",
            "Hint: write {'path': 'default'} or {'path': '/srv/app/db.sqlite3'}.",
        )
    text = strip_sqlite_prefix(os.fspath(value))
    if text in databases:
        conf = databases[text]
        if not _is_sqlite(conf):
            raise SettingError(
                "django_litestream.E003",
                f"{where}['path'] names the database alias '{text}', whose ENGINE "
                f"{conf.get('ENGINE')!r} is not SQLite.",
                "Hint: Litestream replicates only SQLite; remove this entry or point "
                "it at a SQLite database.",
            )
        if _is_test_database(conf.get("NAME"), text):
            raise _TestDatabase(text)
        if _is_memory(conf.get("NAME")):
            raise SettingError(
                "django_litestream.E004",
                f"{where}['path'] names the database alias '{text}', which is an "
                "in-memory SQLite database and has no file to replicate.",
                f"Hint: set DATABASES['{text}']['NAME'] to a file path.",
            )
        return _absolute(conf["NAME"], base_dir), text
    if os.sep in text or "." in text or text.startswith("~"):
        return _absolute(text, base_dir), None
    known = sorted(databases)
    suggestion = did_you_mean(text, known)
    raise SettingError(
        "django_litestream.E002",
        f"{where}['path'] is '{text}', which is not an alias in DATABASES "
        f"(aliases: {', '.join(repr(a) for a in known) or 'none'}).",
        f"Hint: {suggestion}Use a DATABASES alias or an absolute file path.",
    )


def strip_sqlite_prefix(path: str) -> str:
    """``sqlite3:///data/app.db`` (a ``DATABASE_URL``) is the file ``/data/app.db``.

    Litestream strips these prefixes from a database path itself; so does this project.
    """
    for prefix in ("sqlite3://", "sqlite://"):
        if path.startswith(prefix):
            return path[len(prefix) :]
    return path


def _replica(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise _malformed(
            f"{where} must be a dict, not {type(raw).__name__}.",
            "Hint: write {'type': 's3', 'bucket': '...', 'path': '...'}.",
        )
    replica = _hyphenate(raw, where)
    kind = replica.get("type")
    if kind is not None:
        kind = keys.REPLICA_TYPE_ALIASES.get(str(kind), str(kind))
        if kind == "webdavs":
            raise _malformed(
                f"{where}['type'] is 'webdavs', which Litestream 0.5 does not know as a type "
                "(only as a URL scheme).",
                "Hint: write 'type': 'webdav' with 'webdav-url': 'https://HOST/PATH', or "
                "'url': 'webdavs://HOST/PATH'.",
            )
        if kind not in keys.REPLICA_TYPES:
            raise _malformed(
                f"{where}['type'] is {replica['type']!r}, which Litestream 0.5 does not know.",
                f"Hint: use one of {', '.join(sorted(keys.REPLICA_TYPES))}, or give a 'url'.",
            )
        replica["type"] = kind
    return replica


# A database entry's file paths: this project resolves them itself (serve's locks, restores
# and state need the real path), so their $VARIABLES are expanded here, as Litestream would.
PATH_KEYS = ("path", "dir", "meta-path", "meta-dir")


def _expanded(text: str, where: str) -> str:
    """``text`` with its ``$NAME``/``${NAME}`` replaced from the environment, as Litestream
    expands its configuration text; E001 for a variable that is not set here (Litestream
    would read an empty string and put the database somewhere else)."""
    names = envref.names(text)
    if "PID" in names:
        raise _malformed(
            f"{where} is {text!r}: $PID is Litestream's own process ID, a different one at "
            "every start.",
            "Hint: write a path that stays the same.",
        )
    unset = [name for name in names if not os.environ.get(name, "").strip()]
    if unset:
        empty = envref.REFERENCE.sub(lambda m: os.environ.get(m.group(1) or m.group(2), ""), text)
        raise _malformed(
            f"{where} is {text!r} and {unset[0]} is not set here, so the path would be {empty!r}.",
            f"Hint: set {unset[0]} in the environment of every command (check, serve, "
            "restore ...), or write the path itself.",
        )
    return envref.expand(text, os.environ)


def _database(raw: Any, index: int, databases: Mapping[str, Any], base_dir: str | None) -> Database:
    where = f"LITESTREAM['dbs'][{index}]"
    if isinstance(raw, str | os.PathLike):
        raw = {"path": raw}
    if not isinstance(raw, Mapping):
        raise _malformed(
            f"{where} must be a dict, not {type(raw).__name__}.",
            "Hint: write {'path': 'default'}.",
        )
    entry = _hyphenate(raw, where)
    for key in PATH_KEYS:
        if isinstance(entry.get(key), str) and "$" in entry[key]:
            entry[key] = _expanded(entry[key], f"{where}['{key}']")
    replica = entry.pop("replica", None)
    legacy = entry.pop("replicas", None)
    if legacy is not None:
        if not isinstance(legacy, list | tuple) or len(legacy) != 1:
            count = len(legacy) if isinstance(legacy, list | tuple) else "no"
            raise _malformed(
                f"{where}['replicas'] lists {count} replicas; Litestream 0.5 replicates "
                "each database to exactly one.",
                "Hint: replace 'replicas': [...] with one 'replica': {...}.",
            )
        if replica is not None:
            raise _malformed(
                f"{where} has both 'replica' and 'replicas'.", "Hint: keep only 'replica'."
            )
        replica = legacy[0]
    if "dir" in entry:
        path, alias = _absolute(entry["dir"], base_dir), None
        entry["dir"] = path
    else:
        if "path" not in entry:
            raise _malformed(
                f"{where} has no 'path'.",
                "Hint: add 'path': a DATABASES alias such as 'default', or a file path.",
            )
        path, alias = _resolve_path(entry.pop("path"), where, databases, base_dir)
    return Database(
        path=path,
        where=where,
        alias=alias,
        replica=None if replica is None else _replica(replica, f"{where}['replica']"),
        options=entry,
    )


def _socket_mode(options: dict[str, Any]) -> dict[str, Any]:
    """Accept ``socket.permissions`` as ``0o660`` or ``"0660"``; Litestream reads an integer.

    Litestream fails to start on a string ("cannot unmarshal !!str") and reads ``660`` as
    decimal (mode 1224), so both mistakes are caught here, naming the key.
    """
    sock = options.get("socket")
    if not isinstance(sock, Mapping) or "permissions" not in sock:
        return options
    value = sock["permissions"]
    mode: int | None = None
    if isinstance(value, str):
        match = re.fullmatch(r"(?:0o|0)?([0-7]{3})", value.strip())
        mode = int(match.group(1), 8) if match else None
    elif isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0o777:
        mode = value
    if mode is None:
        decimal = isinstance(value, int) and not isinstance(value, bool) and value > 0o777
        raise _malformed(
            f"LITESTREAM['socket']['permissions'] is {value!r}, not a file mode"
            + (" (an integer is read as decimal)." if decimal else "."),
            "Hint: write an octal mode such as 0o660 or '0660'.",
        )
    return {**options, "socket": {**sock, "permissions": mode}}


# django-litestream's own sections, whose durations are numbers of seconds.
SECONDS_SECTIONS = ("serve", "health", "vfs")

# Settings of the older django-litestream (0.3 and before) that this one replaced.
LEGACY_KEYS = ("config_file", "extend_dbs")


def _own_key(key: Any) -> str:
    """``bin-path`` is ``bin_path``: django-litestream's keys accept hyphens like Litestream's."""
    text = str(key)
    return text.replace("-", "_") if text.replace("-", "_") in keys.OWN_KEYS + LEGACY_KEYS else text


def parse(
    litestream: Any,
    databases: Mapping[str, Any],
    base_dir: str | None = None,
    *,
    project_dir: str | None = None,
    wsgi_application: str | None = None,
) -> Settings:
    """Validate a ``LITESTREAM`` value against ``DATABASES``; no Django needed.

    ``base_dir`` resolves relative ``DATABASES`` names (Django itself opens them relative to
    the current directory, so :func:`load` leaves it unset); ``project_dir`` (``BASE_DIR``)
    resolves a relative ``bin_path``, so that it works from any directory.
    """
    defined = litestream is not None
    if litestream is None:
        litestream = {}
    if not isinstance(litestream, Mapping):
        raise _malformed(
            f"LITESTREAM must be a dict, not {type(litestream).__name__}.",
            "Hint: write LITESTREAM = {'dbs': [{'path': 'default'}]}.",
        )
    litestream = {
        k: readable(v, f"LITESTREAM[{k!r}]", seconds=k in SECONDS_SECTIONS)
        for k, v in _one_spelling(plain(litestream), "LITESTREAM", _own_key).items()
    }
    raw_dbs = litestream.get("dbs", [])
    if not isinstance(raw_dbs, list | tuple):
        raise _malformed(
            f"LITESTREAM['dbs'] must be a list, not {type(raw_dbs).__name__}.",
            "Hint: write 'dbs': [{'path': 'default'}].",
        )
    for key, kind in (
        ("path_prefix", str),
        ("bin_path", str),
        ("download_url", str),
        ("vfs", Mapping),
        ("serve", Mapping),
        ("health", Mapping),
    ):
        value = litestream.get(key)
        if value is not None and not isinstance(value, kind):
            raise _malformed(
                f"LITESTREAM['{key}'] has the wrong type ({type(value).__name__}).",
                f"Hint: see the '{key}' setting in the django-litestream docs.",
            )
    entries = []
    under_test = False
    for i, raw in enumerate(raw_dbs):
        try:
            entries.append(_database(raw, i, databases, base_dir))
        except _TestDatabase:
            under_test = True  # nothing to replicate while tests run in memory
    dbs = tuple(entries)
    seen: dict[str, str] = {}
    for db in dbs:
        if db.path in seen:
            raise _malformed(
                f"{db.where} and {seen[db.path]} are the same database ({db.path}).",
                "Hint: list each database once.",
            )
        seen[db.path] = db.where
    bin_path = litestream.get("bin_path")
    taken = keys.OWN_KEYS + LEGACY_KEYS + ("dbs",)
    return Settings(
        dbs=dbs,
        path_prefix=litestream.get("path_prefix") or "",
        bin_path=_absolute(bin_path, project_dir) if bin_path else None,
        download_url=litestream.get("download_url"),
        vfs=dict(litestream.get("vfs") or {})
        | {k: litestream[k] for k in LEGACY_VFS_KEYS if litestream.get(k) is not None},
        serve=dict(litestream.get("serve") or {}),
        health=dict(litestream.get("health") or {}),
        options=_socket_mode(
            _hyphenate(
                {k: v for k, v in litestream.items() if k not in taken + LEGACY_VFS_KEYS},
                "LITESTREAM",
            )
        ),
        aliases=sqlite_aliases(databases, base_dir),
        defined=defined,
        under_test=under_test,
        legacy={k: litestream[k] for k in LEGACY_KEYS if k in litestream},
        wsgi_application=wsgi_application,
    )


def load() -> Settings:
    """Read ``settings.LITESTREAM`` (at call time, so ``override_settings`` works)."""
    from django.conf import settings

    base = getattr(settings, "BASE_DIR", None)
    return parse(
        getattr(settings, "LITESTREAM", None),
        settings.DATABASES,
        project_dir=os.fspath(base) if isinstance(base, str | os.PathLike) else None,
        wsgi_application=getattr(settings, "WSGI_APPLICATION", None) or None,
    )
