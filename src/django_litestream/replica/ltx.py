"""Read Litestream's local LTX files: the header, one page, and where they live.

Litestream 0.5 keeps, beside each database, a state directory (``.<name>-litestream``, or
the database's ``meta-path``) whose ``ltx/0/<min>-<max>.ltx`` files are the transactions it
has read from the WAL, the newest one being its position. The format is the ``superfly/ltx``
module's version 3: a 100-byte big-endian header, pages (a 6-byte page header, a 4-byte
size, an LZ4 *block*), an empty page header, a page index of uvarints, its 8-byte size, and
a 16-byte trailer. Only what the guard needs is read; nothing here writes. No Django here.
"""

from __future__ import annotations

import os
import re
import struct
from typing import NamedTuple

MAGIC = b"LTX1"
HEADER_SIZE = 100
TRAILER_SIZE = 16
PAGE_HEADER_SIZE = 6
PAGE_FLAG_SIZE = 1  # a 4-byte size follows the page header: an LZ4 block, not a frame
_NAME = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{16})\.ltx$")


def parse_name(name: str) -> tuple[int, int] | None:
    """(min txid, max txid) of an LTX file's name ``<min>-<max>.ltx``; None for another name."""
    match = _NAME.match(name)
    return (int(match[1], 16), int(match[2], 16)) if match else None


def file_name(min_txid: int, max_txid: int) -> str:
    """The name Litestream gives the LTX file of these transactions."""
    return f"{min_txid:016x}-{max_txid:016x}.ltx"


def txid_hex(txid: int) -> str:
    """A txid as Litestream prints it and as ``restore -txid`` reads it."""
    return f"{txid:016x}"


def default_meta_path(db_path: str) -> str:
    """Where Litestream keeps a database's local state unless ``meta-path`` says otherwise."""
    head, name = os.path.split(db_path)
    return os.path.join(head, f".{name}-litestream")


class LTXError(Exception):
    """The file is not an LTX file this module can read."""


class Header(NamedTuple):
    flags: int
    page_size: int
    commit: int  # database size in pages after the transaction(s)
    min_txid: int
    max_txid: int
    timestamp_ms: int
    wal_offset: int  # where in the WAL the file's frames began; 0 for compactions
    wal_size: int
    wal_salt1: int
    wal_salt2: int

    @property
    def wal_end(self) -> int:
        """The WAL offset Litestream continues reading from after this file."""
        return self.wal_offset + self.wal_size


class LocalFile(NamedTuple):
    min_txid: int
    max_txid: int
    path: str

    @property
    def size(self) -> int:
        return os.path.getsize(self.path)


def read_header(path: str) -> Header:
    with open(path, "rb") as handle:
        data = handle.read(HEADER_SIZE)
    if len(data) < HEADER_SIZE or data[:4] != MAGIC:
        raise LTXError(f"{path} is not an LTX file")
    (flags, page_size, commit, min_txid, max_txid, ts, _pre, wal_offset, wal_size, s1, s2) = (
        struct.unpack(">IIIQQQQQQII", data[4:72])
    )
    return Header(flags, page_size, commit, min_txid, max_txid, ts, wal_offset, wal_size, s1, s2)


def level0(meta_path: str) -> list[LocalFile]:
    """Litestream's local level-0 files, oldest first (none when there is no state)."""
    folder = os.path.join(meta_path, "ltx", "0")
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for name in names:
        txids = parse_name(name)
        if txids:
            found.append(LocalFile(*txids, os.path.join(folder, name)))
    return sorted(found, key=lambda f: (f.max_txid, f.min_txid))


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise LTXError("truncated page index")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def page(path: str, pgno: int) -> bytes | None:
    """The content of page ``pgno`` in the LTX file, or None when the file lacks it."""
    header = read_header(path)
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        end = handle.tell()
        handle.seek(end - TRAILER_SIZE - 8)
        (index_size,) = struct.unpack(">Q", handle.read(8))
        start = end - TRAILER_SIZE - 8 - index_size
        if index_size <= 0 or start < HEADER_SIZE:
            raise LTXError(f"{path} has no page index")
        handle.seek(start)
        index = handle.read(index_size)
        pos = 0
        while True:
            number, pos = _uvarint(index, pos)
            if number == 0:
                return None
            offset, pos = _uvarint(index, pos)
            _size, pos = _uvarint(index, pos)
            if number == pgno:
                break
        handle.seek(offset)
        got, flags = struct.unpack(">IH", handle.read(PAGE_HEADER_SIZE))
        if got != pgno or not flags & PAGE_FLAG_SIZE:
            raise LTXError(f"{path}: page {pgno} is not an LZ4 block")
        (length,) = struct.unpack(">I", handle.read(4))
        return lz4_block_decompress(handle.read(length), header.page_size)


def lz4_block_decompress(src: bytes, size: int) -> bytes:
    """Decode one LZ4 block (the format Litestream writes each page in) of ``size`` bytes.

    Only one page is ever decoded (the last one Litestream read from the WAL), so a short
    pure-Python decoder is enough and no compression library is needed.
    """
    out = bytearray()
    pos = 0
    try:
        while pos < len(src):
            token = src[pos]
            pos += 1
            literals = token >> 4
            if literals == 15:
                while True:
                    extra = src[pos]
                    pos += 1
                    literals += extra
                    if extra != 255:
                        break
            out += src[pos : pos + literals]
            pos += literals
            if pos >= len(src):
                break  # the last sequence has literals only
            distance = src[pos] | src[pos + 1] << 8
            pos += 2
            if distance == 0 or distance > len(out):
                raise LTXError("corrupt LZ4 block")
            length = (token & 0x0F) + 4
            if token & 0x0F == 15:
                while True:
                    extra = src[pos]
                    pos += 1
                    length += extra
                    if extra != 255:
                        break
            # A match may overlap what it copies: it then repeats the last `distance` bytes.
            chunk = bytes(out[len(out) - distance :])
            out += (chunk * (length // distance + 1))[:length]
    except IndexError:
        raise LTXError("truncated LZ4 block") from None
    if len(out) != size:
        raise LTXError(f"LZ4 block decoded to {len(out)} bytes, expected {size}")
    return bytes(out)
