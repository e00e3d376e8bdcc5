"""When does Litestream's txid cover every write made before the server exited?

``Settle`` decides it from Litestream's report on its latest sync (the control socket's
``/debug/sync-status``) alone: serve never asks Litestream to sync. Scripted reports here;
the end-to-end proof is in tests/serve/test_durability.py.
"""

from __future__ import annotations

from django_litestream.litestream.probe import Settle, SyncView

MIB = 1 << 20
T0 = 1000.0  # when the writers stopped (epoch seconds)


def done(txid: int, started: float, *, error: str = "", wal: int = 4096) -> SyncView:
    """A finished sync: clean (it went through its last phase) unless ``error``."""
    phase = "sync_ltx" if error else "update_metrics"
    return SyncView(False, "sync", phase, started, txid, wal, error)


def running(started: float) -> SyncView:
    return SyncView(True, "sync", "sync_ltx", started, 0, 4096, "")


def settle(start: SyncView | None, *, wal_bytes: int = 8192, limit: int = 64 * MIB) -> Settle:
    return Settle.begin(start, now=T0, wal_bytes=wal_bytes, max_sync_wal_bytes=limit)


def test_a_sync_that_began_before_the_writers_stopped_does_not_count() -> None:
    s = settle(running(T0 - 0.05))  # may read the WAL before the last commit
    assert s.update(running(T0 - 0.05)) is None
    assert s.update(done(8, T0 - 0.05)) is None
    assert s.update(running(T0 + 0.9)) is None  # began after: but not finished
    assert s.update(done(8, T0 + 0.9)) == 8


def test_a_failed_sync_starts_the_wait_again() -> None:
    s = settle(done(7, T0 - 1))
    assert s.update(done(7, T0 + 1, error="disk full")) is None
    assert s.update(done(7, T0 + 1, error="disk full")) is None  # the same failed attempt
    assert s.update(done(8, T0 + 2)) == 8


def test_a_backlog_larger_than_one_sync_needs_a_sync_that_finds_nothing_new() -> None:
    """Over max-sync-wal-bytes Litestream syncs in chunks, each a new txid."""
    s = settle(done(7, T0 - 1), wal_bytes=200 * MIB)
    assert s.update(done(8, T0 + 1)) is None
    assert s.update(done(9, T0 + 2)) is None  # a chunk, not necessarily the last
    assert s.update(done(10, T0 + 3)) is None
    assert s.update(done(10, T0 + 3)) is None  # the same report, read again
    assert s.update(done(10, T0 + 4)) == 10  # a later sync found nothing new


def test_no_limit_means_one_sync_reads_everything() -> None:
    s = settle(done(7, T0 - 1), wal_bytes=200 * MIB, limit=0)
    assert s.update(done(9, T0 + 1)) == 9


def test_never_settles_before_litestream_has_a_txid() -> None:
    s = settle(None)
    assert s.update(done(0, T0 + 1)) is None
    assert s.update(done(3, T0 + 2)) == 3


def test_a_report_of_another_operation_is_no_sync() -> None:
    s = settle(done(7, T0 - 1))
    assert s.update(SyncView(False, "checkpoint", "checkpoint_exec", T0 + 1, 0, 0, "")) is None
    assert s.update(done(7, T0 + 2)) == 7
