"""The ``ENGINE`` ``django_litestream.db.backends.litestream_vfs``: Django loads this module.

The backend itself lives with the rest of the read replicas' wing, in
:mod:`django_litestream.vfs.backend`.
"""

from __future__ import annotations

from ....vfs.backend import DatabaseWrapper

__all__ = ["DatabaseWrapper"]
