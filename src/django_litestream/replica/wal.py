"""A SQLite database as its files hold it: the main file plus the frames of its ``-wal``.

Read-only and without SQLite, so that nothing here checkpoints, truncates or locks the
database that Litestream is about to replicate. A database file and the ``-wal`` beside it
are taken as one database, as SQLite takes them. No Django here.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from typing import NamedTuple

WAL_HEADER_SIZE = 32
FRAME_HEADER_SIZE = 24
_MAGICS = (0x377F0682, 0x377F0683)
_CHUNK_PAGES = 256


class WALHeader(NamedTuple):
    page_size: int
    salt1: int
    salt2: int


class Frame(NamedTuple):
    offset: int
    pgno: int
    commit: int  # the database size in pages after this commit, 0 inside a transaction
    data: bytes


def page_size(db_path: str) -> int | None:
    """The page size recorded in a database file's header, or None when it has none."""
    try:
        with open(db_path, "rb") as handle:
            head = handle.read(100)
    except FileNotFoundError:
        return None
    if len(head) < 100 or not head.startswith(b"SQLite format 3\x00"):
        return None
    (size,) = struct.unpack(">H", head[16:18])
    return 65536 if size == 1 else size


def read_header(wal_path: str) -> WALHeader | None:
    try:
        with open(wal_path, "rb") as handle:
            data = handle.read(WAL_HEADER_SIZE)
    except FileNotFoundError:
        return None
    if len(data) < WAL_HEADER_SIZE:
        return None
    magic, _version, size, _seq, salt1, salt2 = struct.unpack(">IIIIII", data[:24])
    if magic not in _MAGICS:
        return None
    return WALHeader(size, salt1, salt2)


def read_frame(wal_path: str, offset: int, page_size: int) -> Frame | None:
    with open(wal_path, "rb") as handle:
        handle.seek(offset)
        data = handle.read(FRAME_HEADER_SIZE + page_size)
    if len(data) < FRAME_HEADER_SIZE + page_size:
        return None
    pgno, commit, _s1, _s2 = struct.unpack(">IIII", data[:16])
    return Frame(offset, pgno, commit, data[FRAME_HEADER_SIZE:])


def frame_salts(wal_path: str, offset: int) -> tuple[int, int] | None:
    with open(wal_path, "rb") as handle:
        handle.seek(offset + 8)
        data = handle.read(8)
    if len(data) != 8:
        return None
    salt1, salt2 = struct.unpack(">II", data)
    return salt1, salt2


def frames(wal_path: str, header: WALHeader, start: int = WAL_HEADER_SIZE) -> Iterator[Frame]:
    """The frames of the WAL's current generation (salts equal to the header's), in order,
    from the frame at offset ``start`` (the first one by default).

    Frame checksums are not recomputed: a torn last frame can only make the comparison
    below fail, never succeed, because success needs every page equal to the replica's.
    """
    size = header.page_size + FRAME_HEADER_SIZE
    with open(wal_path, "rb") as handle:
        handle.seek(start)
        offset = start
        while True:
            data = handle.read(size)
            if len(data) < size:
                return
            pgno, commit, salt1, salt2 = struct.unpack(">IIII", data[:16])
            if (salt1, salt2) != (header.salt1, header.salt2):
                return
            yield Frame(offset, pgno, commit, data[FRAME_HEADER_SIZE:])
            offset += size


def commit_from(wal_path: str, header: WALHeader, start: int) -> bool:
    """True when the WAL's current generation holds a commit frame at ``start`` or later.

    Salts only, no checksums: a frame SQLite would discard as torn counts as a commit
    here, so the answer errs towards "there is a transaction", never away from it.
    """
    return any(frame.commit for frame in frames(wal_path, header, start))


def lock_pgno(page_size: int) -> int:
    """SQLite's lock-byte page: never holds data, so it is never compared."""
    return 0x40000000 // page_size + 1


def equal_at_some_commit(db_path: str, copy_path: str) -> bool:
    """True when the database, at one of the states its files hold, equals ``copy_path``.

    The states are the main file alone and the main file with the WAL applied up to each
    commit frame. One of them equal to the replica's newest state (restored into
    ``copy_path``) proves the database holds the replica's history; later commits in the
    WAL are then transactions made after it. Both files are read once, in chunks.
    """
    size = page_size(db_path)
    if size is None or size != page_size(copy_path):
        return False
    db_pages = os.path.getsize(db_path) // size
    copy_pages = os.path.getsize(copy_path) // size
    lock = lock_pgno(size)
    # Pages, up to the copy's size, where the current state differs from the copy; pages past
    # it need no tracking, since a state can only be equal when it has the copy's size.
    differ: set[int] = set()
    with open(db_path, "rb") as local, open(copy_path, "rb") as copy:
        pgno = 1
        while pgno <= db_pages:
            a = local.read(size * _CHUNK_PAGES)
            b = copy.read(size * _CHUNK_PAGES)
            if a == b and len(a) == size * _CHUNK_PAGES:
                pgno += _CHUNK_PAGES
                continue
            for i in range(len(a) // size):
                number = pgno + i
                if (
                    number <= copy_pages
                    and number != lock
                    and a[i * size : (i + 1) * size] != b[i * size : (i + 1) * size]
                ):
                    differ.add(number)
            pgno += len(a) // size

        def copy_page(number: int) -> bytes:
            copy.seek((number - 1) * size)
            return copy.read(size) if number <= copy_pages else b""

        if db_pages == copy_pages and not differ:
            return True
        header = read_header(f"{db_path}-wal")
        if header is None or header.page_size != size:
            return False
        current = db_pages
        written: set[int] = set()
        for frame in frames(f"{db_path}-wal", header):
            written.add(frame.pgno)
            if frame.pgno > copy_pages or frame.pgno == lock:
                pass
            elif frame.data != copy_page(frame.pgno):
                differ.add(frame.pgno)
            else:
                differ.discard(frame.pgno)
            if not frame.commit:
                continue
            current = frame.commit
            if (
                current == copy_pages
                and not differ
                and all(p in written for p in range(db_pages + 1, current + 1) if p != lock)
            ):
                return True
    return False
