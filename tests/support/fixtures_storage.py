"""Pytest fixtures for real storage servers (see ``tests/storage.py``).

Servers start once per session, lazily, on the first test that asks for them.
Function-scoped fixtures hand each test its own bucket (or directory):

* ``s3_server``, ``gcs_server``, ``sftp_server``, ``abs_server``: the running
  server objects (``.replica(path, bucket=None)``, ``.env()``, ``.new_bucket()``,
  ``.port``, ``.base_url``).
* ``s3_replica``, ``gcs_replica``, ``sftp_replica``, ``abs_replica``: a
  ``ReplicaTarget`` with ``.replica`` (Litestream replica config dict for this
  test), ``.env`` (extra environment for litestream), ``.bucket``, ``.path``
  and ``.server``.

Every function-scoped fixture also applies ``.env`` to ``os.environ`` (so any
litestream a test starts inherits it) and removes ``AWS_CA_BUNDLE``, which makes
litestream's S3 client fail at start. ``sftp_*`` skip when ``/usr/sbin/sshd``
is absent and ``abs_*`` when ``azurite-blob`` is not on PATH;
``.ci/install-servers`` installs both.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field

import pytest

from tests.support import storage


@dataclass
class ReplicaTarget:
    replica: dict
    env: dict[str, str] = field(default_factory=dict)
    bucket: str = ""
    path: str = ""
    server: storage.Server | None = None


def _session_server(cls: type[storage.Server]):
    server = cls().start()
    try:
        yield server
    finally:
        server.stop()


def _prepare(server: storage.Server, monkeypatch: pytest.MonkeyPatch) -> storage.Server:
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    return server


def _target(server: storage.Server) -> ReplicaTarget:
    bucket = server.new_bucket()
    path = "db"
    return ReplicaTarget(server.replica(path, bucket), server.env(), bucket, path, server)


@pytest.fixture(scope="session")
def _s3_session():
    yield from _session_server(storage.MotoS3)


@pytest.fixture(scope="session")
def _gcs_session():
    yield from _session_server(storage.FakeGCS)


@pytest.fixture(scope="session")
def _sftp_session():
    if not os.path.exists(storage.OpenSSH.sshd):
        pytest.skip(
            f"{storage.OpenSSH.sshd} not found: apt-get install openssh-server "
            "(or run .ci/install-servers)"
        )
    yield from _session_server(storage.OpenSSH)


@pytest.fixture(scope="session")
def _abs_session():
    if shutil.which("azurite-blob") is None:
        pytest.skip(
            "azurite-blob not found: npm install -g azurite@3.35.0 (or run .ci/install-servers)"
        )
    yield from _session_server(storage.Azurite)


@pytest.fixture
def s3_server(_s3_session, monkeypatch):
    return _prepare(_s3_session, monkeypatch)


@pytest.fixture
def gcs_server(_gcs_session, monkeypatch):
    return _prepare(_gcs_session, monkeypatch)


@pytest.fixture
def sftp_server(_sftp_session, monkeypatch):
    return _prepare(_sftp_session, monkeypatch)


@pytest.fixture
def abs_server(_abs_session, monkeypatch):
    return _prepare(_abs_session, monkeypatch)


@pytest.fixture
def s3_replica(s3_server):
    return _target(s3_server)


@pytest.fixture
def gcs_replica(gcs_server):
    return _target(gcs_server)


@pytest.fixture
def sftp_replica(sftp_server):
    return _target(sftp_server)


@pytest.fixture
def abs_replica(abs_server):
    return _target(abs_server)
