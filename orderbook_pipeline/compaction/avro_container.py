"""Avro object container files taken apart: header, then every block decompressed into one buffer.

Blocks always end on a record boundary, so the buffer is the records back to back, and each
block's start offset and record count tell the column decoder (avro_arrow.py) where it may start
decoding in parallel. Sync markers are checked after every block, as fastavro does.
"""

from __future__ import annotations

import bz2
import json
import lzma
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import cramjam
import numpy as np

MAGIC = b"Obj\x01"
SYNC_SIZE = 16
# Zero bytes after the last record: the vectorized varint reader looks up to 10 bytes ahead.
PADDING = 16


def _snappy(block: bytes | memoryview) -> Any:
    # Avro's snappy blocks are raw snappy followed by a 4-byte CRC32 of the uncompressed data.
    return cramjam.snappy.decompress_raw(block[:-4])


_CODECS: dict[str, Callable[[Any], Any]] = {
    "null": lambda block: block,
    "deflate": lambda block: zlib.decompress(block, -15),  # raw deflate, no zlib header
    "snappy": _snappy,
    "zstandard": lambda block: cramjam.zstd.decompress(block),
    "bzip2": lambda block: bz2.decompress(block),
    "xz": lambda block: lzma.decompress(block),
}


def read_long(data: bytes, pos: int) -> tuple[int, int]:
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
class Container:
    """Records of one file: `buffer` holds them back to back (plus PADDING zero bytes)."""

    schema: dict[str, Any] | list[Any] | str
    buffer: bytes
    block_starts: np.ndarray  # int64 offset of each block's first record in `buffer`
    block_counts: np.ndarray  # int64 records per block

    @property
    def data_size(self) -> int:
        return len(self.buffer) - PADDING

    @property
    def num_records(self) -> int:
        return int(self.block_counts.sum())


def _read_header(data: bytes) -> tuple[dict[str, bytes], bytes, int]:
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
    if len(sync) != SYNC_SIZE:
        raise ValueError("truncated Avro header")
    return meta, sync, pos + SYNC_SIZE


def _blocks(data: bytes) -> tuple[bytes, list[Any], list[int]]:
    """(schema JSON, decompressed blocks, records per block) of a whole container file."""
    meta, sync, pos = _read_header(data)
    codec = meta.get("avro.codec", b"null").decode()
    decompress = _CODECS.get(codec)
    if decompress is None:
        raise ValueError(f"unsupported Avro codec {codec!r}")
    view = memoryview(data)
    parts: list[Any] = []
    counts: list[int] = []
    end = len(data)
    while pos < end:
        count, pos = read_long(data, pos)
        size, pos = read_long(data, pos)
        if count < 0 or size < 0 or pos + size + SYNC_SIZE > end:
            raise ValueError("truncated or corrupt Avro block")
        parts.append(decompress(view[pos : pos + size]))
        counts.append(count)
        pos += size
        if data[pos : pos + SYNC_SIZE] != sync:
            raise ValueError("Avro sync marker mismatch")
        pos += SYNC_SIZE
    return meta["avro.schema"], parts, counts


def _container(schema: bytes, parts: list[Any], counts: list[int]) -> Container:
    sizes = [len(p) for p in parts]
    starts = np.zeros(len(sizes), np.int64)
    if sizes:
        np.cumsum(sizes[:-1], out=starts[1:])
    return Container(
        schema=json.loads(schema),
        buffer=b"".join([*parts, bytes(PADDING)]),
        block_starts=starts,
        block_counts=np.array(counts, np.int64),
    )


def open_containers(files: Iterable[bytes]) -> Iterator[Container]:
    """Containers of the files' records in order, consecutive files with the same writer schema
    merged into one (more blocks decode side by side; see avro_arrow.py)."""
    schema: bytes | None = None
    parts: list[Any] = []
    counts: list[int] = []
    for data in files:
        file_schema, file_parts, file_counts = _blocks(data)
        if schema is not None and file_schema != schema:
            yield _container(schema, parts, counts)
            parts, counts = [], []
        schema = file_schema
        parts += file_parts
        counts += file_counts
    if schema is not None:
        yield _container(schema, parts, counts)


def open_container(data: bytes) -> Container:
    """One whole container file (final files only: a torn one raises ValueError)."""
    return next(open_containers([data]))
