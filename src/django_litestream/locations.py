"""Where each replica lives, so that two databases never share one replica location.

Two databases replicated to one location overwrite each other's backup, and a restore
returns whichever wrote last. :func:`collisions` finds them (``django_litestream.E008``);
:func:`auto_paths` gives databases without a ``replica`` distinct auto-generated paths
(``django_litestream.W008`` when it has to derive one). No Django here.
"""

from __future__ import annotations

import os
import posixpath
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .config import Database, EnvRef, Problem

_REF = re.compile(r"\$(\w+)|\$\{(\w+)\}")
# Replica types whose location is a bucket (or container) plus a key prefix.
_BUCKETS = {"s3": ("endpoint",), "gs": (), "oss": ("endpoint",), "abs": ("account-name",)}


@dataclass(frozen=True)
class Location:
    kind: str
    where: str  # the bucket, host or server, with what tells two of them apart
    path: str

    def __str__(self) -> str:
        if self.kind == "file":
            return f"file://{self.path}"
        return f"{self.kind}://{self.where}/{self.path}".rstrip("/")


def _text(value: Any, environ: Mapping[str, str]) -> str:
    """A setting's value as Litestream reads it; an unset variable stays a reference."""
    if isinstance(value, EnvRef):
        return environ.get(value.name) or f"${value.name}"
    return _REF.sub(lambda m: environ.get(m[1] or m[2]) or m[0], str(value or ""))


def _key(path: str) -> str:
    """An object-store key prefix, normalized: 'a//b/' and '/a/b' are 'a/b'."""
    clean = posixpath.normpath("/" + path.strip()).strip("/")
    return "" if clean == "." else clean


def resolve(replica: Mapping[str, Any], environ: Mapping[str, str]) -> Location:
    """The location a replica configuration points at.

    For NATS it is the server and the bucket: Litestream 0.5.17 ignores a NATS replica's
    ``path`` and keeps every database's files at the bucket's root.
    """
    values = {str(k): _text(v, environ) for k, v in replica.items()}
    url = values.get("url", "")
    if url:
        parts = urllib.parse.urlsplit(url)
        kind = {"gcs": "gs", "webdavs": "webdav"}.get(parts.scheme, parts.scheme)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        if kind == "file":
            return Location("file", "", os.path.normpath(parts.path or "/"))
        if kind == "nats":  # 'url' is the server; the bucket is its path or 'bucket'
            return Location("nats", host, _key(parts.path) or values.get("bucket", ""))
        where = parts.netloc.rsplit("@", 1)[-1] if kind in _BUCKETS else host
        return Location(kind, where, _key(parts.path))
    kind = values.get("type") or "file"
    kind = {"gcs": "gs", "azure": "abs", "webdavs": "webdav"}.get(kind, kind)
    path = values.get("path", "")
    if kind == "file":
        return Location("file", "", os.path.normpath(os.path.abspath(os.path.expanduser(path))))
    if kind == "nats":  # no server URL given (Litestream's default server)
        return Location("nats", "", values.get("bucket", ""))
    if kind in _BUCKETS:
        extra = [values.get(k, "") for k in _BUCKETS[kind] if values.get(k)]
        where = " at ".join([values.get("bucket", ""), *extra])
        return Location(kind, where, _key(path))
    if kind == "sftp":
        return Location("sftp", values.get("host", ""), _key(path))
    return Location(kind, values.get("webdav-url", ""), _key(path))


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
                f"{names} replicate to the same location, {location}: each would overwrite "
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
