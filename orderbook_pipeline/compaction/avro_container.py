"""Avro object container files taken apart: header, then every block decompressed into one buffer.

Blocks always end on a record boundary, so the buffer is the records back to back, and each
block's start offset and record count tell the column decoder (avro_arrow.py) where it may start
decoding in parallel. Sync markers are checked after every block, as fastavro does. Snappy blocks
(the bronze codec) are decompressed straight into the one buffer: no per-block copies to join.
"""

from __future__ import annotations

import bz2
import json
import lzma
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import cramjam
import numpy as np

MAGIC = b"Obj\x01"
SYNC_SIZE = 16
# Zero bytes after the last record: the vectorized varint reader looks up to 10 bytes ahead.
PADDING = 16

_CODECS: dict[str, Callable[[Any], Any]] = {
    "null": bytes,
    "deflate": lambda block: zlib.decompress(block, -15),  # raw deflate, no zlib header
    # Avro's snappy blocks are raw snappy followed by a 4-byte CRC32 of the uncompressed data.
    "snappy": lambda block: cramjam.snappy.decompress_raw(block[:-4]),
    "zstandard": lambda block: cramjam.zstd.decompress(block),
    "bzip2": bz2.decompress,
    "xz": lzma.decompress,
}


def read_long(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """One zigzag varint long at `pos`: (value, position after it)."""
    shift = result = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated Avro file (varint runs past the end)")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
        if shift > 63:
            raise ValueError("corrupt Avro varint (longer than 10 bytes)")


@dataclass(frozen=True)
class FileBlocks:
    """One container file, parsed but not yet decompressed."""

    schema: bytes  # the writer schema's JSON, as in the header
    codec: str
    data: bytes
    spans: list[tuple[int, int]]  # (start, end) of each block's compressed bytes in `data`
    counts: list[int]  # records per block


def read_blocks(data: bytes) -> FileBlocks:
    """Header and block layout of a whole container file (final files only: a torn or
    corrupt one raises ValueError)."""
    if data[:4] != MAGIC:
        raise ValueError("not an Avro object container file (bad magic)")
    meta: dict[str, bytes] = {}
    pos = 4
    while True:
        count, pos = read_long(data, pos)
        if count == 0:
            break
        if count < 0:  # a negative count is followed by the block's byte size
            count = -count
            _, pos = read_long(data, pos)
        for _ in range(count):
            size, pos = read_long(data, pos)
            key = data[pos : pos + size].decode()
            pos += size
            size, pos = read_long(data, pos)
            meta[key] = data[pos : pos + size]
            pos += size
    sync = data[pos : pos + SYNC_SIZE]
    pos += SYNC_SIZE
    if len(sync) != SYNC_SIZE:
        raise ValueError("truncated Avro header")
    codec = meta.get("avro.codec", b"null").decode()
    if codec not in _CODECS:
        raise ValueError(f"unsupported Avro codec {codec!r}")
    spans: list[tuple[int, int]] = []
    counts: list[int] = []
    end = len(data)
    while pos < end:
        count, pos = read_long(data, pos)
        size, pos = read_long(data, pos)
        if count < 0 or size < 0 or pos + size + SYNC_SIZE > end:
            raise ValueError("truncated or corrupt Avro block")
        spans.append((pos, pos + size))
        counts.append(count)
        pos += size
        if data[pos : pos + SYNC_SIZE] != sync:
            raise ValueError("Avro sync marker mismatch")
        pos += SYNC_SIZE
    return FileBlocks(meta["avro.schema"], codec, data, spans, counts)


@dataclass(frozen=True)
class Container:
    """Records of one or more files: `buffer` holds them back to back (+ PADDING zero bytes)."""

    schema: dict[str, Any] | list[Any] | str
    buffer: np.ndarray  # uint8
    block_starts: np.ndarray  # int64 offset of each block's first record in `buffer`
    block_counts: np.ndarray  # int64 records per block

    @property
    def data_size(self) -> int:
        return len(self.buffer) - PADDING

    @property
    def num_records(self) -> int:
        return int(self.block_counts.sum())


def decompress(files: Sequence[FileBlocks]) -> Container:
    """The records of `files` (same writer schema) in one buffer, in file then block order."""
    if not files:
        raise ValueError("no Avro files")
    if any(f.schema != files[0].schema for f in files):
        raise ValueError("Avro files with different writer schemas cannot share a buffer")
    sizes: list[int] = []
    others: list[Any] = []  # decompressed blocks of codecs that cannot write in place
    for f in files:
        view = memoryview(f.data)
        for start, end in f.spans:
            if f.codec == "snappy":
                sizes.append(cramjam.snappy.decompress_raw_len(view[start : end - 4]))
            else:
                others.append(_CODECS[f.codec](view[start:end]))
                sizes.append(len(others[-1]))
    starts = np.zeros(len(sizes), np.int64)
    if sizes:
        np.cumsum(sizes[:-1], out=starts[1:])
    # Not zero-filled: every byte but the padding is written by the decompression.
    buffer = np.empty(sum(sizes) + PADDING, np.uint8)
    buffer[len(buffer) - PADDING :] = 0
    out = buffer.data  # a writable memoryview of the array
    pending = iter(others)
    at = block = 0
    for f in files:
        view = memoryview(f.data)
        for start, end in f.spans:
            size = sizes[block]
            if f.codec != "snappy":
                out[at : at + size] = next(pending)
            elif (
                cramjam.snappy.decompress_raw_into(view[start : end - 4], out[at : at + size])
                != size
            ):
                raise ValueError("corrupt Avro snappy block")
            at += size
            block += 1
    return Container(
        schema=json.loads(files[0].schema),
        buffer=buffer,
        block_starts=starts,
        block_counts=np.array([c for f in files for c in f.counts], np.int64),
    )


def open_container(data: bytes) -> Container:
    """One whole container file, decompressed."""
    return decompress([read_blocks(data)])
