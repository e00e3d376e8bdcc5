"""When does Litestream's txid cover every write made before the server exited?

``Settle`` decides it from the metrics address alone (serve never asks Litestream to
sync). Scripted figures here; the end-to-end proof is in tests/test_serve_durability.py.
"""

from __future__ import annotations

from django_litestream.litestream.probe import DBMetrics, Settle

MIB = 1 << 20


def figures(txid: int, syncs: int, errors: int = 0, wal_size: int = 4096) -> DBMetrics:
    return DBMetrics(txid=txid, syncs=syncs, errors=errors, wal_size=wal_size)


def settle(start: DBMetrics, *, idle: bool = False, wal_bytes: int = 8192) -> Settle:
    return Settle.begin(start, idle=idle, wal_bytes=wal_bytes, max_sync_wal_bytes=64 * MIB)


def test_a_sync_may_have_been_running_when_the_server_exited_so_two_must_finish() -> None:
    s = settle(figures(7, 100))
    assert s.update(figures(8, 101)) is None  # may have read the WAL before the last commit
    assert s.update(figures(8, 102)) == 8  # began after the first read: covers everything


def test_one_sync_is_enough_when_none_was_running() -> None:
    s = settle(figures(7, 100), idle=True)
    assert s.update(figures(7, 100)) is None
    assert s.update(figures(8, 101)) == 8


def test_a_failed_sync_starts_the_count_again() -> None:
    s = settle(figures(7, 100), idle=True)
    assert s.update(figures(7, 101, errors=1)) is None
    assert s.update(figures(7, 102, errors=1)) is None  # one clean sync, maybe begun earlier
    assert s.update(figures(8, 103, errors=1)) == 8


def test_a_backlog_larger_than_one_sync_needs_a_sync_that_finds_nothing_new() -> None:
    """Over max-sync-wal-bytes Litestream syncs in chunks, each a new txid."""
    s = settle(figures(7, 100, wal_size=4096), wal_bytes=200 * MIB)
    assert s.update(figures(8, 101)) is None
    assert s.update(figures(9, 102)) is None  # a chunk, not necessarily the last
    assert s.update(figures(10, 103)) is None
    assert s.update(figures(10, 104)) is None
    assert s.update(figures(10, 105)) == 10  # two finished syncs found nothing new


def test_no_limit_means_one_sync_reads_everything() -> None:
    s = Settle.begin(figures(7, 100), idle=True, wal_bytes=200 * MIB, max_sync_wal_bytes=0)
    assert s.update(figures(9, 101)) == 9


def test_never_settles_before_litestream_has_a_txid() -> None:
    s = settle(figures(0, 0), idle=True)
    assert s.update(figures(0, 3)) is None
