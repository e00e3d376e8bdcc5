"""The configuration keys Litestream 0.5 reads, for catching typos before Litestream ignores them.

Litestream parses its YAML non-strictly: a misspelled key is silently dropped. This module
lists what 0.5.17 reads (from the ``yaml:`` tags of its config structs), so that
:mod:`django_litestream.config` can warn about anything else and suggest the closest key.
"""

from __future__ import annotations

from ..text import suggest as closest

# Keys shared by every replica; each may also stand at top level as a default.
REPLICA_SETTINGS = frozenset(
    {
        "sync-interval",
        "validation-interval",
        "max-sync-ltx-files",
        "auto-recover",
        # s3
        "access-key-id",
        "secret-access-key",
        "region",
        "bucket",
        "endpoint",
        "force-path-style",
        "sign-payload",
        "require-content-md5",
        "skip-verify",
        "storage-class",
        "part-size",
        "concurrency",
        "sse-customer-algorithm",
        "sse-customer-key",
        "sse-customer-key-path",
        "sse-kms-key-id",
        # abs
        "account-name",
        "account-key",
        "sas-token",
        # sftp
        "host",
        "user",
        "password",
        "key-path",
        "concurrent-writes",
        "host-key",
        # webdav
        "webdav-url",
        "webdav-username",
        "webdav-password",
        # nats
        "jwt",
        "seed",
        "creds",
        "nkey",
        "username",
        "token",
        "tls",
        "root-cas",
        "client-cert",
        "client-key",
        "max-reconnects",
        "reconnect-wait",
        "timeout",
    }
)

REPLICA = REPLICA_SETTINGS | {"type", "path", "url"}

DB = frozenset(
    {
        "path",
        "dir",
        "pattern",
        "recursive",
        "watch",
        "snapshot",
        "meta-path",
        "meta-dir",
        "monitor-interval",
        "checkpoint-interval",
        "busy-timeout",
        "min-checkpoint-page-count",
        "truncate-page-n",
        "max-sync-wal-bytes",
        "restore-if-db-not-exists",
        "replica",
        "replicas",
    }
)

# Per-database keys besides the two that conf.py takes apart itself.
DB_OPTIONS = DB - {"path", "replica"}

TOP = REPLICA_SETTINGS | {
    "addr",
    "socket",
    "levels",
    "snapshot",
    "validation",
    "l0-retention",
    "l0-retention-check-interval",
    "verify-compaction",
    "retention",
    "heartbeat-url",
    "heartbeat-interval",
    "dbs",
    "exec",
    "logging",
    "mcp-addr",
    "shutdown-sync-timeout",
    "shutdown-sync-interval",
}

# Nested sections: section name -> keys it reads.
SECTIONS = {
    "socket": frozenset({"enabled", "path", "permissions"}),
    "logging": frozenset({"level", "type", "stderr", "source"}),
    "snapshot": frozenset({"interval", "retention"}),
    "validation": frozenset({"interval"}),
    "retention": frozenset({"enabled"}),
}
LEVEL = frozenset({"interval"})

# Keys that Litestream 0.3 read and 0.5 silently ignores (or rejects), with what to do instead.
LEGACY = {
    "retention": "0.5 keeps history by 'snapshot: {retention: ...}' at top level",
    "retention-check-interval": "0.5 has no replacement; remove it",
    "snapshot-interval": "use 'snapshot: {interval: ...}' at top level",
    "name": "0.5 allows one replica per database; remove it",
    "age": "0.5 has no built-in encryption and refuses to start with 'age'",
}

# django-litestream's own keys of LITESTREAM; every other key goes to Litestream.
OWN_KEYS = ("path_prefix", "bin_path", "download_url", "vfs", "serve", "health")

# Keys whose values are Go durations ("1s", "5m"); Litestream reads a bare number as nanoseconds.
DURATIONS = frozenset(
    {
        "sync-interval",
        "validation-interval",
        "monitor-interval",
        "checkpoint-interval",
        "busy-timeout",
        "l0-retention",
        "l0-retention-check-interval",
        "heartbeat-interval",
        "shutdown-sync-timeout",
        "shutdown-sync-interval",
        "interval",
        "retention",
        "reconnect-wait",
        "timeout",
    }
)

# Keys whose values must never be written literally into a config file or shown in output.
SECRETS = frozenset(
    {
        "access-key-id",
        "secret-access-key",
        "account-key",
        "sas-token",
        "password",
        "webdav-password",
        "sse-customer-key",
        "jwt",
        "seed",
        "nkey",
        "token",
    }
)

# The spec's spellings that Litestream reads differently.
REPLICA_TYPE_ALIASES = {"gcs": "gs", "azure": "abs"}
REPLICA_TYPES = frozenset({"file", "s3", "gs", "abs", "sftp", "webdav", "nats", "oss"})
# The URL schemes Litestream 0.5.17 reads (litestream.ReplicaTypeFromURL).
URL_SCHEMES = frozenset({"file", "s3", "gs", "abs", "sftp", "webdav", "webdavs", "nats", "oss"})

# Names people write for a key, from other tools' settings and from memory, that difflib
# alone does not find (too short or too different); each maps to the key it means.
SYNONYMS = {
    "address": "addr",
    "adress": "addr",
    "addres": "addr",
    "bucket-name": "bucket",
    "bucketname": "bucket",
    "secret-key": "secret-access-key",
    "secret": "secret-access-key",
    "aws-secret-access-key": "secret-access-key",
    "access-key": "access-key-id",
    "aws-access-key-id": "access-key-id",
    "account": "account-name",
    "account-id": "account-name",
    "container": "bucket",
    "prefix": "path_prefix",
    "key": "key-path",
    "databases": "dbs",
    "database": "dbs",
    "db": "dbs",
    "pathprefix": "path_prefix",
    "path-prefix": "path_prefix",
    "binpath": "bin_path",
    "bin-path": "bin_path",
    "binary": "bin_path",
    "binary-path": "bin_path",
}


# Keys people write that Litestream does not have, whose value belongs in another key of
# that replica type: key -> {replica type: where to write it}.
MISSING_KEY_HINTS = {
    "port": {
        "sftp": "write the port in 'host' ('sftp.example.com:2222') or in the URL "
        "('sftp://USER@HOST:2222/PATH')",
        "s3": "write it in 'endpoint' ('https://HOST:9000')",
        "oss": "write it in 'endpoint' ('https://HOST:9000')",
        "abs": "write it in 'endpoint' ('https://HOST:10000/ACCOUNT')",
        "webdav": "write it in 'webdav-url' ('https://HOST:8443/PATH') or the URL",
        "nats": "write it in the URL ('nats://HOST:4222/BUCKET')",
    },
}


def missing_key_hint(key: str, kind: str) -> str | None:
    """Where the value of ``key``, which Litestream lacks, goes for a ``kind`` replica."""
    return MISSING_KEY_HINTS.get(key, {}).get(kind)


def suggest(key: str, known: frozenset[str] | set[str]) -> str | None:
    """The closest known key to ``key`` (in any case: 'DBS' is 'dbs'), or None."""
    lowered = key.lower()
    synonym = SYNONYMS.get(lowered)
    if synonym is not None and synonym in known and synonym != key:
        return synonym
    return closest(lowered, known, cutoff=0.75)
