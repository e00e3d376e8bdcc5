"""Reading what a replica holds with the real binary (django_litestream.replica)."""

from __future__ import annotations

import sqlite3
import stat
import subprocess
import time
from pathlib import Path

import pytest

from django_litestream.litestream import binary
from django_litestream.replica import listing, ltx

LITESTREAM = binary.find(None)


def replicate_once(tmp_path: Path, rows: int) -> tuple[Path, Path]:
    db = tmp_path / "db.sqlite3"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("CREATE TABLE IF NOT EXISTS t (x)")
    conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(rows)])
    conn.commit()
    conn.close()
    config = tmp_path / "litestream.yml"
    config.write_text(f"dbs:\n- path: {db}\n  replica:\n    type: file\n    path: {tmp_path}/r\n")
    subprocess.run(
        [LITESTREAM, "replicate", "-once", "-config", str(config)], check=True, capture_output=True
    )
    return db, config


def test_a_replica_lists_its_files_newest_txid_and_times(tmp_path: Path) -> None:
    assert LITESTREAM
    before = time.time()
    db, config = replicate_once(tmp_path, 3)
    by_url = listing.list_files(LITESTREAM, f"file://{tmp_path}/r")
    by_db = listing.list_files(LITESTREAM, str(db), config_path=str(config))
    assert by_url == by_db
    assert not by_url.empty
    assert by_url.newest_txid == 1
    assert by_url.bytes == sum(f.size for f in by_url.files) > 0
    assert by_url.newest_at is not None and by_url.oldest_at is not None
    assert before - 1 <= by_url.newest_at.timestamp() <= time.time() + 1
    assert ltx.txid_hex(by_url.newest_txid) == "0000000000000001"


def test_an_empty_or_missing_replica_is_empty(tmp_path: Path) -> None:
    assert LITESTREAM
    (tmp_path / "empty").mkdir()
    for url in (f"file://{tmp_path}/empty", f"file://{tmp_path}/missing"):
        contents = listing.list_files(LITESTREAM, url)
        assert contents.empty and contents.newest_txid is None and contents.newest_at is None


def test_an_unreachable_s3_endpoint_is_bounded(tmp_path: Path, monkeypatch) -> None:
    assert LITESTREAM
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    url = "s3://bucket/db?endpoint=http://127.0.0.1:9&region=us-east-1&forcePathStyle=true"
    started = time.monotonic()
    with pytest.raises(listing.ReplicaUnreachable) as info:
        listing.list_files(LITESTREAM, url, timeout=2)
    assert time.monotonic() - started < 10
    assert "within 2s" in str(info.value)


def test_an_error_of_the_binary_is_its_last_line(tmp_path: Path) -> None:
    assert LITESTREAM
    with pytest.raises(listing.ReplicaUnreachable) as info:
        listing.list_files(LITESTREAM, str(tmp_path / "x.db"), config_path=str(tmp_path / "no.yml"))
    assert "config file not found" in str(info.value)


def test_output_that_is_not_litestreams_is_refused(tmp_path: Path) -> None:
    # A stand-in binary: the real one cannot be made to print garbage and exit 0.
    fake = tmp_path / "fake-litestream-garbage"
    fake.write_text("#!/bin/sh\necho 'hello, world'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(listing.ReplicaUnreachable) as info:
        listing.list_files(str(fake), "file:///nowhere")
    assert "unexpected output" in str(info.value)


def test_a_grandchild_holding_the_pipe_does_not_hang_the_call(tmp_path: Path) -> None:
    # A stand-in binary whose child keeps stdout open: the real one never does this.
    fake = tmp_path / "fake-litestream-grandchild"
    fake.write_text("#!/bin/sh\nsleep 60 &\nsleep 60\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    started = time.monotonic()
    with pytest.raises(listing.ReplicaUnreachable):
        listing.list_files(str(fake), "file:///nowhere", timeout=1)
    assert time.monotonic() - started < 5


def test_parse_reads_hex_txids() -> None:
    text = (
        '[{"level": 9, "min_txid": "0000000000000001", "max_txid": "00000000000000ff", '
        '"size": 10, "timestamp": "2026-11-29T02:46:02Z"}]'
    )
    contents = listing.parse(text)
    assert contents.newest_txid == 255
    assert contents.files[0].level == 9
    with pytest.raises(ValueError):
        listing.parse('{"not": "a list"}')
