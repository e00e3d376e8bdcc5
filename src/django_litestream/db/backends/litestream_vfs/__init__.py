"""Read-only SQLite served from a Litestream replica through the Litestream VFS.

Use :func:`django_litestream.get_vfs_databases` to build its ``DATABASES`` entries.
"""
