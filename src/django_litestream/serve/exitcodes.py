"""Exit codes of ``manage.py litestream serve`` besides the server's own status.

The server's exit status passes through unchanged (gunicorn's 3 and 4 included); a server
killed by signal N gives 128+N. The codes below are ``serve``'s own and are documented in
docs/serve.rst (a test keeps the two in step).
"""

from __future__ import annotations

USAGE = 2
NOT_CONTINUATION = 65
REPLICA_EMPTY = 66
RESTORE_FAILED = 69
LITESTREAM_DIED = 70
LOCKED = 73
SYNC_UNCONFIRMED = 74
NOT_READY = 75
CONFIG = 78

EXIT_CODES = {
    USAGE: "bad command-line arguments to serve",
    NOT_CONTINUATION: "the local database is not a continuation of its replica (a database "
    "migrate just created, a file replaced by hand): replicating it would replace the backup; "
    "see --restore-over-local and --adopt-local",
    REPLICA_EMPTY: "--require-replica was given and a missing database's replica holds no backup",
    RESTORE_FAILED: "a missing database could not be restored (replica unreachable or "
    "broken after retrying for --restore-timeout, the restored copy failed its integrity "
    "check, or the restore could not write beside the database), or an existing database "
    "could not be checked against its unreachable replica",
    LITESTREAM_DIED: "Litestream exited while the server was running; the server was "
    "stopped so that it does not serve unreplicated",
    LOCKED: "another serve holds the lock on one of the databases, or the lock file beside "
    "a database cannot be created",
    SYNC_UNCONFIRMED: "the server exited but the replica could not be shown to hold its last "
    "write within Litestream's shutdown-sync-timeout plus two monitor intervals (or a second "
    "stop signal asked serve not to wait); the newest writes may not be in the replica, only "
    "in the local database",
    NOT_READY: "Litestream did not become ready (its monitor syncing every database and "
    "each replica holding that) within --ready-timeout",
    CONFIG: "bad configuration, said at once: the LITESTREAM setting (what the Litestream "
    "binary refuses included), an executable that is not Litestream 0.5, a database path "
    "that is a directory or not a SQLite database, or no server command to run",
}
