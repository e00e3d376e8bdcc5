"""The binary's complaint in the setting's own words: which key, what it takes.

:mod:`django_litestream.verdict` finds where a complaint of Litestream points (a
:class:`Refusal`); :func:`translate` makes it ``django_litestream.E009`` with a hint.
No Django here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..litestream.binary import SERIES
from ..text import did_you_mean
from . import envref, keys
from .build import setting_path
from .envref import EnvRef
from .types import Generated, Problem, Settings

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Refusal:
    """One complaint of the binary, located (``path`` empty when it names no key)."""

    message: str
    path: Path = ()
    db: int | None = None


# -- what to tell the user ---------------------------------------------------------------

_UNMARSHAL = re.compile(r"cannot unmarshal !!(\w+) `(.*)` into (\S+)")
_GO_TYPES = {
    "time.Duration": "a duration",
    "uint32": "a whole number",
    "int": "a whole number",
    "int64": "a whole number",
    "bool": "True or False",
}


def _value(data: Any, path: Path) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def translate(
    refusal: Refusal, settings: Settings, generated: Generated, environ: Mapping[str, str]
) -> Problem:
    path = _own_path(_replica_key(refusal, generated), generated)
    where = setting_path(settings, path) if path else "LITESTREAM"
    value = _value(generated.data, path) if path else None
    message = refusal.message
    if isinstance(value, EnvRef):
        shown = f"${value.name}"
    elif isinstance(value, str | int | float | bool):
        shown = repr(value)
    else:
        shown = ""
    unset = [n for n in envref.names(shown) if n != "PID" and not environ.get(n, "").strip()]
    if unset:
        shown += f" (and {unset[0]} is not set here)"
    if (m := _UNMARSHAL.search(message)) and shown:
        expected = _GO_TYPES.get(m.group(3))
        if m.group(3) == "main.RetentionConfig":
            msg = f"{where} is {shown}, a Litestream 0.3 habit: in 0.5 it is a section"
        else:
            msg = f"{where} is {shown}, which Litestream cannot read as {expected or m.group(3)}"
    elif shown:
        msg = f"{where} is {shown}, which Litestream {SERIES} refuses"
    else:
        msg = f"Litestream {SERIES} refuses {where}"
    hint = _hint(message, path)
    through_replica = len(path) >= 3 and path[0] == "dbs" and path[2] == "replica"
    replica = _value(generated.data, path[:3]) if through_replica else None
    if isinstance(replica, Mapping) and not ({"type", "url"} & set(replica)):
        hint = (
            "the replica has neither 'type' nor 'url', so Litestream takes it for a file "
            "replica; give it a 'url' ('s3://BUCKET/PATH', 'file:///srv/app/replica') or "
            "a 'type' and that type's settings."
        )
    if unset:
        hint = f"set {unset[0]} where Litestream runs, or write the value itself."
    return Problem(
        "django_litestream.E009", f"{msg}: {message}.", f"Hint: {hint}", error=True, where=where
    )


def _replica_key(refusal: Refusal, generated: Generated) -> Path:
    """Point a complaint about a database's replica at the replica key it is about."""
    path = refusal.path
    if len(path) != 2 or path[0] != "dbs" or "replica" not in refusal.message:
        return path
    replica = _value(generated.data, (*path, "replica"))
    if not isinstance(replica, Mapping):
        return path
    message = refusal.message
    for key, pattern in (
        ("url", "unknown replica type"),
        ("type", "unknown replica type"),
        ("url", "replica url scheme required"),
        ("bucket", "bucket required"),
        ("url", "bucket required"),
        ("path", "replica path cannot be a url"),
    ):
        if pattern in message and key in replica:
            return (*path, "replica", key)
    return (*path, "replica")


def _own_path(path: Path, generated: Generated) -> Path:
    """A replica key Litestream complains about may be a top-level default."""
    if len(path) == 4 and path[0] == "dbs" and path[2] == "replica":
        replica = _value(generated.data, path[:3])
        if isinstance(replica, Mapping) and path[3] not in replica and path[3] in generated.data:
            return (path[3],)
    return path


def _hint(message: str, path: Path) -> str:
    key = str(path[-1]) if path else ""
    if "time.Duration" in message or key in keys.DURATIONS and "greater than" in message:
        return (
            "write a Go duration such as '10s', '1m30s' or '24h' (units ns, us, ms, s, m, "
            "h; no days), greater than zero."
        )
    if "main.RetentionConfig" in message:
        return (
            "keep history with 'snapshot': {'retention': '24h'}; 'retention' is "
            "{'enabled': True} in 0.5."
        )
    if key == "type" and path[:1] == ("logging",):
        return "use 'text', 'json' or 'pretty'."
    if match := re.search(r'unknown replica type in config: "([^"]*)"', message):
        return _scheme_hint(match.group(1))
    if message.startswith("replica url scheme required"):
        return (
            "a replica URL starts with its scheme: 's3://BUCKET/PATH', "
            "'file:///absolute/path', 'gs://', 'abs://', 'sftp://', 'webdavs://', 'nats://'."
        )
    if match := re.search(r"bucket required for (\w+) replica", message):
        return (
            f"add 'bucket' to the replica, or write it in the URL "
            f"('{match.group(1).lower()}://BUCKET/PATH')."
        )
    if message == "file replica path required":
        return "add 'path', an absolute directory (str(BASE_DIR / 'replica')), or 'url': 'file:///srv/app/replica'."
    if message.startswith("replica path cannot be a url"):
        return "write the URL as 'url', not 'path'."
    if match := re.match(r"cannot specify both '([\w-]+)' and '([\w-]+)'", message):
        return f"keep one of '{match.group(1)}' and '{match.group(2)}'."
    if match := re.match(r"cannot specify url & ([\w-]+)", message):
        return f"keep either 'url' or '{match.group(1)}', not both."
    if match := re.match(r"([\w-]+) required for (\w+) replica", message):
        return f"add '{match.group(1)}' to the replica."
    if message.startswith("heartbeat interval must be at least"):
        return "write '1m' or more."
    if message.startswith("heartbeat URL"):
        return "write an http:// or https:// URL."
    if message.startswith("must specify port for bind address"):
        return "write 'HOST:PORT', e.g. '127.0.0.1:9090' (':9090' listens on every interface)."
    if match := re.match(r'invalid value for query parameter "(\w+)"', message):
        name = match.group(1)
        instead = " (a size in bytes, 10485760; the key 'part-size' takes '10MB')"
        return (
            f"the URL's '{name}' takes a positive whole number"
            f"{instead if name == 'partSize' else ''}; or write the setting as a key of the "
            "replica beside the URL."
        )
    if message.startswith("invalid size format"):
        return "write a size such as '5MB' or '64MiB'."
    if message.startswith("yaml:"):
        return (
            "after Litestream substitutes $VARIABLES into the configuration text it is no "
            "longer valid YAML there: check the value of the variable this key refers to."
        )
    return "see https://litestream.io/reference/config/ for what this key takes."


def _scheme_hint(kind: str) -> str:
    known = sorted(keys.URL_SCHEMES)
    if kind in ("http", "https"):
        return (
            "an http(s):// address is not a replica URL: for S3-compatible storage write "
            "'url': 's3://BUCKET/PATH' with 'endpoint': 'https://...'; for WebDAV write "
            "'webdavs://HOST/PATH'."
        )
    if kind in keys.REPLICA_TYPE_ALIASES:
        return f"Litestream calls it '{keys.REPLICA_TYPE_ALIASES[kind]}' ('{keys.REPLICA_TYPE_ALIASES[kind]}://BUCKET/PATH')."
    suggestion = did_you_mean(kind, known, cutoff=0.5)
    return f"{suggestion}Litestream {SERIES} reads the schemes {', '.join(known)}."
