"""Where a replica lives: the one reading of a replica's settings as a place.

:func:`resolve` reads a replica (its ``url``, or its type and that type's keys) as a
:class:`Location`, the way Litestream will; everything that names, compares or lists a
replica's place goes through it: messages (:func:`describe`), a ``file`` replica's
directory (:func:`file_directory`), two databases sharing one location (:func:`collisions`,
``django_litestream.E008``), the read replica that copies a database
(:meth:`Location.same_place`), and the auto-generated replicas' distinct paths
(:func:`auto_paths`, ``django_litestream.W008`` when it has to derive one). No Django here.
"""

from __future__ import annotations

import os
import posixpath
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import envref, secrets
from .envref import EnvRef
from .types import Database, Problem

# Replica types whose location is a bucket (or container) plus a key prefix.
_BUCKETS = {"s3": ("endpoint",), "gs": (), "oss": ("endpoint",), "abs": ("account-name",)}


@dataclass(frozen=True)
class Location:
    kind: str
    host: str  # the bucket, container, host or server ("" for a file replica)
    path: str  # the key prefix, or a file replica's directory
    extra: str = ""  # what else tells two apart: the endpoint or account, when given

    def __str__(self) -> str:
        """For messages: ``s3://bucket/path``, ``file:///srv/replica``."""
        if self.kind == "file":
            return f"file://{self.path}"
        return f"{self.kind}://{self.host}/{self.path}".rstrip("/")

    def full(self) -> str:
        """With what tells it apart from a namesake elsewhere: ``s3://b at ENDPOINT/path``."""
        if not self.extra:
            return str(self)
        return f"{self.kind}://{self.host} at {self.extra}/{self.path}".rstrip("/")

    def same_place(self, other: Location) -> bool:
        """The same replica, as far as both say (a read replica's URL names no endpoint)."""
        return (self.kind, self.host.lower(), self.path) == (
            other.kind,
            other.host.lower(),
            other.path,
        ) and (not self.extra or not other.extra or self.extra == other.extra)


@dataclass(frozen=True)
class ReplicaURL:
    """A replica URL as Litestream 0.5 reads it (``ParseReplicaURLWithQuery``)."""

    scheme: str  # lower case; "" when the URL has none
    host: str  # host[:port], the bucket or container; for an access point, its ARN
    path: str  # the key prefix, cleaned; a file URL's absolute directory
    query: str = ""
    username: str | None = None  # percent-decoded
    password: str | None = None  # percent-decoded; None when the URL has none

    @property
    def kind(self) -> str:
        """The replica type the scheme means (``webdavs`` is a ``webdav`` replica)."""
        return "webdav" if self.scheme == "webdavs" else self.scheme


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_ACCESS_POINT = ":accesspoint/"


def parse_url(url: str) -> ReplicaURL:
    """Read a replica URL the way Litestream does, never raising.

    ``s3://arn:aws:s3:REGION:ACCOUNT:accesspoint/NAME/KEY`` is an S3 access point (the
    bucket is the ARN up to the access point's name, the rest is the key); a ``file`` URL
    is a path (``file://relative/x`` is ``/relative/x``); any other URL is scheme, host
    (with its port), path and query, with the credentials of its userinfo apart. A URL
    Litestream cannot parse reads as its scheme alone; the binary says what is wrong.
    """
    if url.lower().startswith("s3://arn:"):
        rest, _, query = url[len("s3://") :].partition("?")
        marker = rest.lower().find(_ACCESS_POINT)
        if marker == -1:
            return ReplicaURL("s3", rest, "", query)
        slash = rest.find("/", marker + len(_ACCESS_POINT))
        if slash == -1:
            return ReplicaURL("s3", rest, "", query)
        return ReplicaURL("s3", rest[:slash], _key(rest[slash + 1 :]), query)
    match = _SCHEME.match(url)
    scheme = match.group(1).lower() if match else ""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # an unbalanced '[' in the host: Litestream refuses it too
        return ReplicaURL(scheme, "", "")
    userinfo, at, host = parts.netloc.rpartition("@")
    if scheme == "file":
        clean = posixpath.normpath(("//" + host if host else "") + parts.path).lstrip("/")
        return ReplicaURL("file", "", "/" + ("" if clean == "." else clean))
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = urllib.parse.unquote(user)
        password = urllib.parse.unquote(secret) if colon else None
    return ReplicaURL(scheme, host, _key(parts.path), parts.query, username, password)


def _key(path: str) -> str:
    """An object-store key prefix, normalized: 'a//b/' and '/a/b' are 'a/b'."""
    clean = posixpath.normpath("/" + path.strip()).strip("/")
    return "" if clean == "." else clean


def resolve(replica: Mapping[str, Any], environ: Mapping[str, str]) -> Location:
    """The location a replica configuration points at.

    For NATS it is the server and the bucket: Litestream 0.5.17 ignores a NATS replica's
    ``path`` and keeps every database's files at the bucket's root.
    """
    values = {str(k): envref.expand(v, environ) for k, v in replica.items()}
    url = values.get("url", "")
    if url:
        parsed = parse_url(url)
        kind = {"gcs": "gs", "webdavs": "webdav"}.get(parsed.scheme, parsed.scheme)
        if kind == "file":
            return Location("file", "", parsed.path or "/")
        if kind == "nats":  # 'url' is the server; the bucket is its path or 'bucket'
            return Location("nats", parsed.host.lower(), parsed.path or values.get("bucket", ""))
        host = parsed.host if kind in _BUCKETS else parsed.host.lower()
        return Location(kind, host, parsed.path)
    kind = values.get("type") or "file"
    kind = {"gcs": "gs", "azure": "abs", "webdavs": "webdav"}.get(kind, kind)
    path = values.get("path", "")
    if kind == "file":
        return Location("file", "", os.path.normpath(os.path.abspath(os.path.expanduser(path))))
    if kind == "nats":  # no server URL given (Litestream's default server)
        return Location("nats", "", values.get("bucket", ""))
    if kind in _BUCKETS:
        extra = next((values[k] for k in _BUCKETS[kind] if values.get(k)), "")
        return Location(kind, values.get("bucket", ""), _key(path), extra)
    if kind == "sftp":
        return Location("sftp", values.get("host", ""), _key(path))
    return Location(kind, values.get("webdav-url", ""), _key(path))


def describe(replica: Mapping[str, Any], environ: Mapping[str, str]) -> str:
    """Where a replica is, for messages: ``s3://my-bucket/db.sqlite3``, ``file:///srv/r``.

    References are resolved from ``environ`` (an unset one stays ``$NAME``); a URL is shown
    as written, its password masked; no other credential is ever part of a location.
    """
    if replica.get("url"):
        return secrets.mask_url(envref.expand(replica["url"], environ))
    return str(resolve(replica, environ))


def file_directory(replica: Mapping[str, Any]) -> str:
    """The directory of a ``file`` replica, as Litestream resolves it; "" when it is not one
    or depends on the environment (``$VAR``: Litestream expands those, the list may not)."""
    url = str(replica.get("url") or "")
    if url:
        parsed = parse_url(url)
        where = parsed.path if parsed.scheme == "file" else ""
    elif replica.get("type") == "file":
        where = str(replica.get("path") or "")
    else:
        return ""
    if not where or "$" in where or isinstance(replica.get("path"), EnvRef):
        return ""
    return os.path.abspath(os.path.expanduser(where))


def collisions(
    dbs: Sequence[Database], entries: Sequence[Mapping[str, Any]], environ: Mapping[str, str]
) -> list[Problem]:
    """One E008 per replica location that two or more databases share."""
    seen: dict[Location, list[Database]] = {}
    for db, entry in zip(dbs, entries, strict=True):
        if "dir" in db.options or not isinstance(entry.get("replica"), Mapping):
            continue  # a directory of databases: Litestream gives each its own sub-path
        seen.setdefault(resolve(entry["replica"], environ), []).append(db)
    problems = []
    for location, shared in seen.items():
        if len(shared) < 2:
            continue
        names = " and ".join(f"{db.where} ({db.label})" for db in shared)
        problems.append(
            Problem(
                "django_litestream.E008",
                f"{names} replicate to the same location, {location.full()}: each would overwrite "
                "the other's backup, and a restore would return whichever wrote last.",
                "Hint: give each database its own replica path (for NATS, its own bucket).",
                error=True,
            )
        )
    return problems


def auto_paths(dbs: Sequence[Database], prefix: str) -> tuple[dict[str, str], Problem | None]:
    """Replica paths for databases without a ``replica``, and a W008 if one was derived.

    The spec's ``<path_prefix>/<file name>`` wherever file names differ. Among databases
    with the same file name, the first in ``dbs`` keeps it and each later one gets
    ``<path_prefix>/<alias>/<file name>`` (or, without an alias, ``<path_prefix>/<first 8
    hex digits of the SHA-256 of its absolute path>/<file name>``): stable, and adding a
    database at the end of ``dbs`` never moves the replica of one already there.
    """
    prefix = prefix.strip("/")
    paths: dict[str, str] = {}
    taken: set[str] = set()
    derived: list[str] = []
    for db in dbs:
        if db.replica is not None:
            continue
        name = os.path.basename(db.path.rstrip("/"))
        path = f"{prefix}/{name}" if prefix else name
        if path in taken:
            import hashlib  # rare, and its OpenSSL costs ~3 ms at every serve start

            tag = db.alias or hashlib.sha256(db.path.encode()).hexdigest()[:8]
            path = "/".join(p for p in (prefix, tag, name) if p)
            derived.append(f"{db.where} ({db.label}) -> {path}")
        taken.add(path)
        paths[db.path] = path
    if not derived:
        return paths, None
    return paths, Problem(
        "django_litestream.W008",
        "Databases without a 'replica' share a file name, so their auto-generated replica "
        f"paths would collide; derived distinct ones: {'; '.join(derived)}.",
        "Hint: keep new databases at the end of 'dbs' so that no replica moves, or give "
        "each a 'replica' with the path you want.",
    )
