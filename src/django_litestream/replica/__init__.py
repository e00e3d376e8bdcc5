"""Litestream's files, what a replica holds, and the guard that never replicates the wrong database.

``ltx`` and ``wal`` read Litestream's LTX files and SQLite's WAL without SQLite; ``listing``
lists a replica (``litestream ltx``, or a file replica's directory); ``position`` says
where a database stands against Litestream's state and its replica; ``dbfile`` whether a
database file is missing or unusable; ``guard`` and ``preflight`` whether a local database
continues its replica; ``moments`` reads points in time as people type them. No Django
here, and nothing of the configuration: callers hand over paths and descriptions.
"""
