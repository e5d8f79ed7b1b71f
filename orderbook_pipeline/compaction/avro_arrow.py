"""Decode bronze Avro files straight into Arrow tables: numpy over the bytes, no object per row.

Avro's binary encoding is sequential (where a record ends is known only once all its fields are
read), but every container block starts on a record boundary at a known offset. So each block has
a cursor, and record k of every block is decoded at once: field by field, one vectorized numpy
operation over all cursors' byte positions (avro_nodes.py). Arrays whose items have a fixed size
(the L2 levels: enum byte + two doubles) are stepped over in one go; arrays of variable-size
items (the diff lane's string pairs) advance item by item, again across cursors. Values are cut
out of the decompressed buffer only when a column is asked for, for any selection of records in
any order: strings and level runs by laying an Arrow array over the buffer and taking from it.
All files of a partition are decoded as one buffer (more cursors, fewer numpy calls).

Why not polars.read_avro (2.1): it refuses a boolean with a default and named-type references
(ComputeError "OutOfSpec": our L2 flags and the diff lane's `asks: "StringLevel"`) and panics
on an enum inside an array of records (the L2 `levels.side`). Why not fastavro: one dict per
record and per level costs ~30 µs a record and ~1 GB per busy symbol-hour.

Supported writer schemas: a record of null-unions, booleans, ints, longs (timestamp-micros/millis
logical types), floats, doubles, strings, bytes, enums, and arrays of those or of records of
them; anything else is refused with NotImplementedError. Output types match what
`pa.Table.from_pylist` makes of fastavro's records (enums as strings, timestamps in UTC).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pyarrow as pa

from orderbook_pipeline.compaction.avro_container import (
    Container,
    FileBlocks,
    decompress,
    open_container,
    read_blocks,
)
from orderbook_pipeline.compaction.avro_nodes import Record, Source, compile_schema


def _identity(keys: np.ndarray) -> np.ndarray:
    return keys


class Decoded:
    """The records of one container, decoded once; tables are built from it on demand."""

    def __init__(self, container: Container) -> None:
        root = compile_schema(container.schema)
        if not isinstance(root, Record):
            raise NotImplementedError("top-level Avro schema must be a record")
        self.root = root
        self.num_rows = container.num_records
        # Records per input file, in order (decode_files sets it when files share a buffer).
        self.file_rows = [self.num_rows]
        buf = container.buffer
        self.source = Source(pa.py_buffer(buf), buf)
        counts = container.block_counts
        ends = np.append(container.block_starts[1:], container.data_size)
        # Cursors = blocks, longest first, so the blocks still holding a record k are a prefix.
        order = np.argsort(-counts, kind="stable")
        first_record = (np.cumsum(counts) - counts)[order]
        pos = container.block_starts[order].copy()
        cursor_counts = counts[order]
        steps = int(cursor_counts[0]) if self.num_rows else 0
        active = len(order) - np.searchsorted(cursor_counts[::-1], np.arange(steps), side="right")
        try:
            for k, m in enumerate(active.tolist()):
                pos[:m] = root.decode(buf, pos[:m], first_record[:m] + k)
        except IndexError as exc:  # a position ran past the buffer: not this schema's bytes
            raise ValueError("corrupt Avro data (a record runs past its block)") from exc
        if not np.array_equal(pos, ends[order]):
            raise ValueError("corrupt Avro data (records do not end where their block ends)")

    @property
    def names(self) -> list[str]:
        return list(self.root.names)

    def table(
        self, columns: Sequence[str] | None = None, rows: np.ndarray | None = None
    ) -> pa.Table:
        """`columns` (all fields by default) of the records `rows` (indices, in that order;
        all records in file order by default)."""
        wanted = self.names if columns is None else list(columns)
        missing = [c for c in wanted if c not in self.root.names]
        if missing:
            raise KeyError(f"Avro file has no field(s) {missing}")
        by_name = dict(zip(self.root.names, self.root.fields, strict=True))
        arrays = [by_name[c].arrow(self.source, _identity, self.num_rows, rows) for c in wanted]
        return pa.Table.from_arrays(arrays, names=wanted)


def decode_files(files: Iterable[bytes]) -> list[Decoded]:
    """The records of container files, in order: one Decoded per run of consecutive files
    sharing a writer schema (one, for the files of a partition)."""
    groups: list[list[FileBlocks]] = []
    for blocks in map(read_blocks, files):  # (no loop variable keeps a file's bytes alive)
        if groups and groups[-1][0].schema == blocks.schema:
            groups[-1].append(blocks)
        else:
            groups.append([blocks])
    decoded = []
    while groups:  # free each group's compressed bytes once decompressed, before decoding
        group = groups.pop(0)
        rows = [sum(f.counts) for f in group]
        container = decompress(group)
        del group
        d = Decoded(container)
        d.file_rows = rows
        decoded.append(d)
    return decoded


def read_avro_table(data: bytes, columns: Sequence[str] | None = None) -> pa.Table:
    """Decode one Avro container file (bytes) into an Arrow table; see the module doc."""
    return Decoded(open_container(data)).table(columns)


def read_avro_tables(files: Iterable[bytes], columns: Sequence[str]) -> pa.Table | None:
    """The records of several container files, in order, as one table of `columns` (the other
    fields are stepped over, never built); None if there are no files."""
    tables = [d.table(columns) for d in decode_files(files)]
    return pa.concat_tables(tables) if tables else None
