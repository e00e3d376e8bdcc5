"""Read replicas on S3 end to end: the moto server, per-replica endpoint and region,
credentials from the environment, AWS_CA_BUNDLE, an S3 that stops answering, time travel,
and ``manage.py litestream vfs``."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.project import wait_for
from tests.support.storage import MotoS3
from tests.support.vfs_site import Site


def _cloud(site: Site, server: MotoS3, bucket: str) -> dict[str, Any]:
    """Replicate 'default' to ``bucket`` and point the alias 'cloud' at it (dict form)."""
    config = site.tmp / "s3.yml"
    replica = server.replica("db", bucket)
    config.write_text(
        yaml.safe_dump({"dbs": [{"path": str(site.paths["default"]), "replica": replica}]})
    )
    site.s3_config = config  # type: ignore[attr-defined]
    # Credentials come from the environment, as for replication (LITESTREAM_* or AWS_*).
    site.project.env.update(
        LITESTREAM_ACCESS_KEY_ID=server.access_key_id,
        LITESTREAM_SECRET_ACCESS_KEY=server.secret_access_key,
    )
    for name in ("AWS_CA_BUNDLE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        site.project.env.pop(name, None)
    return {
        "url": f"s3://{bucket}/db",
        "endpoint": server.base_url,
        "region": server.region,
        "force_path_style": True,
    }


def test_reads_an_s3_replica_with_its_own_endpoint_and_region(s3_server, site: Site):
    cloud = _cloud(site, s3_server, s3_server.new_bucket())
    site.ask(("add", "default", 6))
    site.replicate(site.s3_config)  # type: ignore[attr-defined]
    site.configure(cloud=cloud)
    with site.reader() as ask:
        assert ask(("count", "cloud", 0))["count"] == 6
        site.ask(("add", "default", 2))
        site.replicate(site.s3_config)  # type: ignore[attr-defined]
        wait_for(lambda: ask(("count", "cloud", 0))["count"] == 8, 30, "new rows over S3")


def test_time_travel_on_an_s3_replica(s3_server, site: Site):
    cloud = _cloud(site, s3_server, s3_server.new_bucket())
    site.configure(cloud=cloud)
    site.ask(("add", "default", 3))
    site.replicate(site.s3_config)  # type: ignore[attr-defined]
    deadline = time.time() + 1.2
    wait_for(lambda: time.time() > deadline, 10, "the clock to move on")
    moment = datetime.now(timezone.utc).isoformat()
    deadline = time.time() + 1.2
    wait_for(lambda: time.time() > deadline, 10, "the clock to move on")
    site.ask(("add", "default", 4))
    site.replicate(site.s3_config)  # type: ignore[attr-defined]
    past, now = site.ask(("travel", "cloud", 0, moment), ("travel", "cloud", 0, "now"))
    assert (past["count"], past["bound"], past["after"]) == (3, None, 7)
    assert (now["count"], now["bound"]) == (7, "newest")


def test_aws_ca_bundle_is_named_when_the_open_fails(s3_server, site: Site, tmp_path: Path):
    cloud = _cloud(site, s3_server, s3_server.new_bucket())
    site.ask(("add", "default", 1))
    site.replicate(site.s3_config)  # type: ignore[attr-defined]
    site.configure(cloud=cloud)
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    with site.reader(env={"AWS_CA_BUNDLE": str(bundle)}) as ask:
        answer = ask(("count", "cloud", 0))
    assert answer["error"] == "django.db.utils.OperationalError"
    assert answer["message"].startswith("Cannot open the Litestream VFS replica 'cloud' (s3://"), (
        answer["message"]
    )
    assert "SQL logic error; listing the replica failed (" in answer["message"]
    assert answer["message"].endswith(
        "; unset AWS_CA_BUNDLE, which Litestream's S3 client cannot use)."
    )
    done = site.manage("check", "--tag", "litestream")
    assert "W018" not in done.stderr  # this shell has no AWS_CA_BUNDLE
    site.project.env["AWS_CA_BUNDLE"] = str(bundle)
    done = site.manage("check", "--tag", "litestream")
    assert "(django_litestream.W018) AWS_CA_BUNDLE is set and the read replica 'cloud'" in (
        done.stderr
    )


@pytest.fixture
def own_s3(monkeypatch) -> Iterator[MotoS3]:
    """A moto server of this test's own, so that it can be stopped (SIGSTOP) and resumed."""
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    server = MotoS3().start()
    try:
        yield server
    finally:
        if server.proc is not None and server.proc.poll() is None:
            os.kill(server.proc.pid, signal.SIGCONT)
        server.stop()


def test_an_s3_that_stops_answering_bounds_every_open_and_recovers(own_s3: MotoS3, site: Site):
    """Opened once, then the server stops answering (SIGSTOP: the kernel still accepts
    connections, nobody replies). A reopen fails within open_timeout instead of waiting
    for the server; once it answers again, the alias reads again."""
    cloud = _cloud(site, own_s3, own_s3.new_bucket())
    site.ask(("add", "default", 4))
    site.replicate(site.s3_config)  # type: ignore[attr-defined]
    site.configure(cloud=cloud, open_timeout=4)
    assert own_s3.proc is not None
    with site.reader() as ask:
        assert ask(("count", "cloud", 0))["count"] == 4
        ask(("close", "cloud", 0))
        os.kill(own_s3.proc.pid, signal.SIGSTOP)
        try:
            for _ in range(2):
                stuck = ask(("count", "cloud", 0))
                assert stuck["error"] == "django.db.utils.OperationalError"
                assert stuck["message"].startswith(
                    "Cannot open the Litestream VFS replica 'cloud' (s3://"
                )
                assert "did not answer within 4s" in stuck["message"]
                assert stuck["seconds"] < 6
        finally:
            os.kill(own_s3.proc.pid, signal.SIGCONT)
        back = wait_for(
            lambda: (a := ask(("count", "cloud", 0))).get("count") == 4 and a,
            60,
            "the alias to read again once S3 answers",
        )
        assert back["seconds"] < 6


def test_the_vfs_command_lists_each_alias(s3_server, site: Site):
    cloud = _cloud(site, s3_server, s3_server.new_bucket())
    site.ask(("add", "default", 2), ("add", "other", 3))
    site.replicate()
    site.replicate(site.s3_config)  # type: ignore[attr-defined]
    site.configure(cloud=cloud)
    done = site.manage("litestream", "vfs", "replica_a", "replica_b", "cloud")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == [
        "ALIAS", "TXID", "TIME", "(UTC)", "LAG", "STORAGE", "TXID", "PRIMARY", "PRIMARY",
        "TXID", "MISSING",
    ]  # fmt: skip
    assert [line.split()[0] for line in lines[1:]] == ["replica_a", "replica_b", "cloud"]
    replica_b = lines[2].split()
    assert "other" in replica_b  # replica_b copies 'other'
    assert replica_b[-1] == "nothing"
    done = site.manage("litestream", "vfs", "--json")
    assert done.returncode == 1  # 'empty' and 'missing' cannot be opened
    report = {row["alias"]: row for row in json.loads(done.stdout)}
    assert report["cloud"]["txid"] == report["cloud"]["storage_txid"]
    assert report["replica_a"]["primary"] == "default"
    assert report["replica_a"]["missing_since"] is None
    assert report["replica_a"]["primary_txid"] == report["replica_a"]["txid"]
    assert "the replica is empty or missing" in report["empty"]["error"]
    done = site.manage("litestream", "vfs", "nope")
    assert done.returncode == 2
    assert done.stderr.strip().endswith(
        "Not a Litestream VFS alias: nope. The VFS aliases are: replica_a, replica_b, empty, "
        "missing, cloud (see LITESTREAM['vfs'])."
    )
