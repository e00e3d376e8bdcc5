"""The older django-litestream-vfs names, kept so that copied settings keep working.

The read replicas are part of ``django_litestream`` now:

- ``from django_litestream_vfs import get_vfs_databases`` works, warns
  (``DeprecationWarning``) and makes the system check ``django_litestream.W020`` say where
  it moved: ``from django_litestream import get_vfs_databases``;
- ``"django_litestream_vfs"`` in ``INSTALLED_APPS`` works (it registers the checks) and
  gets ``django_litestream.W019``;
- the ``ENGINE`` ``django_litestream_vfs.backends.sqlite_vfs`` explains what replaced it.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping
from typing import Any

__all__ = ["get_vfs_databases"]

#: Set when get_vfs_databases() was called through this module (read by check W020).
used = False


def get_vfs_databases(litestream: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """:func:`django_litestream.get_vfs_databases`, under its older module."""
    global used
    from django_litestream.vfs import get_vfs_databases as moved

    used = True
    warnings.warn(
        "django_litestream_vfs.get_vfs_databases moved: use "
        "'from django_litestream import get_vfs_databases'.",
        DeprecationWarning,
        stacklevel=2,
    )
    if litestream is None:
        caller = sys._getframe(1).f_globals
        if "LITESTREAM" in caller:
            litestream = caller["LITESTREAM"]
    return moved(litestream, _depth=2)
