"""Decode bronze Avro files straight into Arrow tables: numpy over the bytes, no object per row.

Avro's binary encoding is sequential (where a record ends is known only once all its fields are
read), but every container block starts on a record boundary at a known offset. So each block is
a lane, and record k of every block is decoded at once: field by field, one vectorized numpy
operation over all lanes' byte positions. Arrays whose items have a fixed size (the L2 levels:
enum byte + two doubles) are stepped over in one go and cut out of the buffer afterwards; arrays
of variable-size items (the diff lane's string pairs) advance item by item, again across lanes.
Values are gathered from the decompressed buffer at the end; strings by laying an Arrow string
array over the buffer (value, gap, value, gap...) and taking every other element, so the copy
runs in Arrow's C++.

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

import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from orderbook_pipeline.compaction.avro_container import (
    Container,
    FileBlocks,
    decompress,
    open_container,
    read_blocks,
)

_K = np.arange(10, dtype=np.int64)
_SHIFTS = (7 * _K).astype(np.uint64)
MERGE_BYTES = 32 << 20  # compressed input decoded together, for files with item loops
_ITEM = np.int64(32)  # item keys: record index << 32 | item index within the record
_LOW = np.int64(0xFFFFFFFF)


# -- vectorized primitives over lanes -----------------------------------------------------------


def _longs(buf: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The zigzag varint at every position: (values int64, positions after them)."""
    first = buf[pos]
    if not first.size or first.max() < 0x80:  # one byte each (lengths, small counts, flags)
        v = first.astype(np.int64)
        return (v >> 1) ^ -(v & 1), pos + 1
    window = buf[pos[:, None] + _K]  # the 10 bytes a 64-bit varint may span
    last = window < 0x80
    if not last.any(axis=1).all():
        raise ValueError("corrupt Avro varint (longer than 10 bytes)")
    n = last.argmax(axis=1)  # index of each varint's final byte
    parts = (window & 0x7F).astype(np.uint64) << _SHIFTS
    raw = np.where(n[:, None] >= _K, parts, np.uint64(0)).sum(axis=1, dtype=np.uint64)
    value = (raw >> np.uint64(1)) ^ (np.uint64(0) - (raw & np.uint64(1)))
    return value.view(np.int64), pos + n + 1


def _slices(buffer: pa.Buffer, starts: np.ndarray, ends: np.ndarray, typ: pa.DataType) -> pa.Array:
    """Array of typ (string or binary) whose values are buffer[starts[i]:ends[i]].

    The spans are ordered and disjoint, so one array laid over the whole buffer with the
    offsets start0, end0, start1, end1... has the values at even indices and the gaps between
    them at odd ones; Arrow's take copies the even ones out.
    """
    n = len(starts)
    if n == 0:
        return pa.array([], typ)
    if buffer.size >= 2**31:
        raise ValueError("Avro file too large for 32-bit string offsets")
    offsets = np.empty(2 * n + 1, np.int32)
    offsets[0:-1:2] = starts
    offsets[1::2] = ends
    offsets[-1] = ends[-1]
    laid = pa.Array.from_buffers(typ, 2 * n, [None, pa.py_buffer(offsets), buffer])
    out = laid.take(pa.array(np.arange(0, 2 * n, 2, dtype=np.int32)))
    if typ == pa.string():
        out.validate(full=True)  # UTF-8, as fastavro insists
    return out


# -- sinks: where decoded values go --------------------------------------------------------------


class _Sink:
    """Values of one leaf in decode order, with the key (slot) of each: keys + step, so a
    loop over items can hand in a view of its lanes' keys and the item index."""

    def __init__(self) -> None:
        self.keys: list[np.ndarray] = []
        self.steps: list[int] = []
        self.values: list[tuple[np.ndarray, ...]] = []

    def put(self, keys: np.ndarray, *values: np.ndarray, step: int = 0) -> None:
        self.keys.append(keys)
        self.steps.append(step)
        self.values.append(values)

    def all_keys(self) -> np.ndarray:
        keys = np.concatenate(self.keys)
        if any(self.steps):
            keys += np.repeat(np.array(self.steps, np.int64), [len(k) for k in self.keys])
        return keys

    def ordered(self, slots_of: Any, size: int, width: int = 1) -> list[np.ndarray]:
        """Each of the `width` value columns scattered into slot order (`slots_of` maps keys
        to slots 0..size-1)."""
        if not self.keys:
            return [np.zeros(size, np.int64) for _ in range(width)]
        slots = slots_of(self.all_keys())
        out = []
        for i in range(width):
            vals = np.concatenate([v[i] for v in self.values])
            col = np.empty(size, vals.dtype)
            col[slots] = vals
            out.append(col)
        return out


# -- schema nodes --------------------------------------------------------------------------------


class _Node:
    """One Avro type: decode() steps all lanes over it, arrow() builds the column at the end."""

    fixed_size: int | None = None  # bytes, when every value has the same encoded size

    def __init__(self) -> None:
        self.sink = _Sink()

    def decode(self, buf: np.ndarray, pos: np.ndarray, keys: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def arrow(self, buffer: pa.Buffer, buf: np.ndarray, slots_of: Any, size: int) -> pa.Array:
        raise NotImplementedError


class _Long(_Node):
    def __init__(self, typ: pa.DataType) -> None:
        super().__init__()
        self.typ = typ

    def decode(self, buf: np.ndarray, pos: np.ndarray, keys: np.ndarray) -> np.ndarray:
        values, pos = _longs(buf, pos)
        self.sink.put(keys, values)
        return pos

    def arrow(self, buffer: pa.Buffer, buf: np.ndarray, slots_of: Any, size: int) -> pa.Array:
        (values,) = self.sink.ordered(slots_of, size)
        if self.typ == pa.int32():
            if values.size and (values.min() < -(2**31) or values.max() >= 2**31):
                raise ValueError("Avro int out of 32-bit range")
            return pa.array(values.astype(np.int32), pa.int32())
        return pa.array(values, pa.int64()).view(self.typ)


class _Bytes(_Node):
    def __init__(self, typ: pa.DataType) -> None:
        super().__init__()
        self.typ = typ

    def decode(self, buf: np.ndarray, pos: np.ndarray, keys: np.ndarray) -> np.ndarray:
        self.sink.put(keys, pos.copy())  # where the length is: the string is re-read at the end
        length, start = _longs(buf, pos)
        return start + length

    def arrow(self, buffer: pa.Buffer, buf: np.ndarray, slots_of: Any, size: int) -> pa.Array:
        (where,) = self.sink.ordered(slots_of, size)
        return self.spans_arrow(buffer, buf, where)

    def spans_arrow(self, buffer: pa.Buffer, buf: np.ndarray, where: np.ndarray) -> pa.Array:
        """The strings whose lengths are at byte positions `where` (in buffer order)."""
        first = buf[where]
        if not (first & 0x81).any():  # one-byte, non-negative lengths: no zigzag to undo
            starts = where + 1
            ends = starts + (first >> 1)
        else:
            length, starts = _longs(buf, where)
            ends = starts + length
            if (length < 0).any():
                raise ValueError("corrupt Avro string length")
        if starts.size > 1 and (starts[1:] < ends[:-1]).any():
            raise ValueError("corrupt Avro string lengths")
        return _slices(buffer, starts, ends, self.typ)


class _Fixed(_Node):
    """double, float, boolean, or an enum of at most 64 symbols (its index is one byte)."""

    def __init__(self, kind: str, symbols: Sequence[str] = ()) -> None:
        super().__init__()
        self.kind = kind
        self.symbols = list(symbols)
        self.fixed_size = {"double": 8, "float": 4, "boolean": 1, "enum": 1}[kind]

    def decode(self, buf: np.ndarray, pos: np.ndarray, keys: np.ndarray) -> np.ndarray:
        self.sink.put(keys, pos)
        return pos + self.fixed_size

    @property
    def dtype(self) -> str:
        return {"double": "<f8", "float": "<f4"}.get(self.kind, "u1")

    def arrow(self, buffer: pa.Buffer, buf: np.ndarray, slots_of: Any, size: int) -> pa.Array:
        (pos,) = self.sink.ordered(slots_of, size)
        return self.from_values(_every_byte(buf, self.dtype)[pos])

    def from_values(self, raw: np.ndarray) -> pa.Array:
        """The column from its encoded values (numpy, of `dtype`; may be a strided view)."""
        if self.kind in ("double", "float"):
            return pa.array(np.ascontiguousarray(raw))
        if self.kind == "boolean":
            return pa.array(raw != 0, pa.bool_())
        # Enum: zigzag index 2k in one byte.
        if raw.size and ((raw & 1).any() or raw.max() >= 2 * len(self.symbols)):
            raise ValueError("corrupt Avro enum index")
        return _enum_strings(self.symbols, raw >> 1)


def _every_byte(buf: np.ndarray, dtype: str) -> np.ndarray:
    """A read-only view with one value of `dtype` starting at every byte of `buf` (stride 1):
    indexing it with byte positions gathers the unaligned values in one numpy call."""
    width = np.dtype(dtype).itemsize
    return np.ndarray((len(buf) - width + 1,), dtype, buf, 0, (1,))


def _enum_strings(symbols: list[str], index: np.ndarray) -> pa.Array:
    encoded = [s.encode() for s in symbols]
    width = len(encoded[0]) if encoded else 0
    if any(len(e) != width for e in encoded) or not width:
        return pa.array(symbols, pa.string()).take(pa.array(index))
    # Symbols of one length (bid/ask): the string data is a plain gather of byte rows.
    table = np.frombuffer(b"".join(encoded), f"V{width}")
    data = table[index]
    offsets = np.arange(0, width * (len(index) + 1), width, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.string(), len(index), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


class _Nullable(_Node):
    """Union of null and one other type."""

    def __init__(self, inner: _Node, null_index: int) -> None:
        super().__init__()
        self.inner = inner
        self.null_index = null_index

    def decode(self, buf: np.ndarray, pos: np.ndarray, keys: np.ndarray) -> np.ndarray:
        branch, pos = _longs(buf, pos)
        if ((branch != 0) & (branch != 1)).any():
            raise ValueError("corrupt Avro union index")
        present = branch != self.null_index
        self.sink.put(keys, present)
        if present.any():
            idx = np.flatnonzero(present)
            pos[idx] = self.inner.decode(buf, pos[idx], keys[idx])
        return pos

    def arrow(self, buffer: pa.Buffer, buf: np.ndarray, slots_of: Any, size: int) -> pa.Array:
        (present,) = self.sink.ordered(slots_of, size)
        present = present.astype(bool, copy=False)
        # The inner values fill only the present slots: compact them to 0..k-1 in slot order.
        rank = np.cumsum(present) - 1
        values = self.inner.arrow(buffer, buf, lambda k: rank[slots_of(k)], int(present.sum()))
        if present.all():
            return values
        where = pa.array(np.where(present, rank, -1).astype(np.int64), mask=~present)
        return values.take(where)


class _Record(_Node):
    def __init__(self, names: list[str], fields: list[_Node]) -> None:
        super().__init__()
        self.names = names
        self.fields = fields
        sizes = [f.fixed_size for f in fields]
        if all(s is not None for s in sizes):
            self.fixed_size = sum(s for s in sizes if s is not None)

    def decode(self, buf: np.ndarray, pos: np.ndarray, keys: np.ndarray) -> np.ndarray:
        for f in self.fields:
            pos = f.decode(buf, pos, keys)
        return pos

    def arrow(self, buffer: pa.Buffer, buf: np.ndarray, slots_of: Any, size: int) -> pa.Array:
        columns = [f.arrow(buffer, buf, slots_of, size) for f in self.fields]
        return pa.StructArray.from_arrays(columns, names=self.names)

    def from_rows(self, rows: np.ndarray) -> pa.Array:
        """Struct array of fixed-size records from their encoded bytes back to back (uint8)."""
        if not all(isinstance(f, _Fixed) for f in self.fields):
            raise NotImplementedError("nested records inside an array are not supported")
        fields = [f for f in self.fields if isinstance(f, _Fixed)]
        # A packed structured dtype over the bytes: each field is a strided view, copied once.
        layout = np.dtype(
            {
                "names": [f"f{i}" for i in range(len(fields))],
                "formats": [f.dtype for f in fields],
                "offsets": np.cumsum([0] + [f.fixed_size or 0 for f in fields])[:-1].tolist(),
                "itemsize": self.fixed_size or 0,
            }
        )
        records = rows.reshape(-1).view(layout)
        columns = [f.from_values(records[f"f{i}"]) for i, f in enumerate(fields)]
        return pa.StructArray.from_arrays(columns, names=self.names)


class _Array(_Node):
    def __init__(self, items: _Node) -> None:
        super().__init__()
        self.items = items
        self.runs = _Sink()  # fixed-size items: (key of the first item, start, count) per run
        self.strings = _Sink()  # string-only items: where each field's length is, per item
        self.counts = _Sink()  # items per record, per array block

    def decode(self, buf: np.ndarray, pos: np.ndarray, keys: np.ndarray) -> np.ndarray:
        pos = pos.copy()
        lanes = np.arange(len(pos))  # lanes still inside their array
        done = np.zeros(len(pos), np.int64)  # items read so far per lane
        while lanes.size:
            count, at = _longs(buf, pos[lanes])
            negative = count < 0
            if negative.any():  # a negative count is followed by the block's byte size
                count = np.abs(count)
                _, at[negative] = _longs(buf, at[negative])
            pos[lanes] = at  # lanes whose count was 0 have ended their array here
            more = count > 0
            lanes, at, count = lanes[more], at[more], count[more]
            if not lanes.size:
                break
            first = (keys[lanes] << _ITEM) | done[lanes]
            self.counts.put(keys[lanes], count)
            if self.items.fixed_size is not None:
                self.runs.put(first, at, count)
                at = at + count * self.items.fixed_size
            else:
                at = self._items(buf, at, first, count)
            done[lanes] += count
            pos[lanes] = at
        return pos

    def _items(
        self, buf: np.ndarray, at: np.ndarray, first: np.ndarray, count: np.ndarray
    ) -> np.ndarray:
        """Step variable-size items: item j of every lane at once, longest lanes first."""
        order = np.argsort(-count, kind="stable")
        pos, keys, cnt = at[order], first[order], count[order]
        # active[j]: lanes with more than j items (a prefix, as lanes are sorted by count).
        active = len(cnt) - np.searchsorted(cnt[::-1], np.arange(int(cnt[0])), side="right")
        if self._string_fields():
            pos = _string_items(buf, pos, keys, active, self.strings, len(self._string_fields()))
        else:
            for j, m in enumerate(active.tolist()):
                pos[:m] = self.items.decode(buf, pos[:m], keys[:m] + j)
        out = np.empty_like(pos)
        out[order] = pos
        return out

    def _string_fields(self) -> list[_Bytes]:
        """The fields of items made only of strings/bytes (the diff lane's [px, qty]), else []."""
        fields = self.items.fields if isinstance(self.items, _Record) else [self.items]
        return (
            [f for f in fields if isinstance(f, _Bytes)]
            if all(isinstance(f, _Bytes) for f in fields)
            else []
        )

    def arrow(self, buffer: pa.Buffer, buf: np.ndarray, slots_of: Any, size: int) -> pa.Array:
        per_record = np.zeros(size, np.int64)
        if self.counts.keys:
            # bincount sums the counts of a record's array blocks (one block, from fastavro).
            slots = slots_of(np.concatenate(self.counts.keys))
            counts = np.concatenate([v[0] for v in self.counts.values])
            per_record = np.bincount(slots, weights=counts, minlength=size).astype(np.int64)
        offsets = np.zeros(size + 1, np.int64)
        np.cumsum(per_record, out=offsets[1:])
        total = int(offsets[-1])
        if total >= 2**31:
            raise ValueError("too many Avro array items for 32-bit list offsets")

        def item_slots(k: np.ndarray) -> np.ndarray:
            return offsets[slots_of(k >> _ITEM)] + (k & _LOW)

        strings = self._string_fields()
        if strings:
            # One ordering for all fields of an item (they share keys).
            where = self.strings.ordered(item_slots, total, len(strings))
            columns = [f.spans_arrow(buffer, buf, w) for f, w in zip(strings, where, strict=True)]
            items = (
                pa.StructArray.from_arrays(columns, names=self.items.names)
                if isinstance(self.items, _Record)
                else columns[0]
            )
        elif self.items.fixed_size is None:
            items = self.items.arrow(buffer, buf, item_slots, total)
        else:
            items = self._fixed_items(buffer, item_slots, total)
        return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), items)

    def _fixed_items(self, buffer: pa.Buffer, item_slots: Any, total: int) -> pa.Array:
        """Items of fixed size: each array is one run of bytes; copy the runs out in item
        order (Arrow take), then read every field as a strided view of those rows."""
        size = self.items.fixed_size or 0
        starts = counts = np.empty(0, np.int64)
        if self.runs.keys:
            order = np.argsort(item_slots(np.concatenate(self.runs.keys)), kind="stable")
            starts = np.concatenate([v[0] for v in self.runs.values])[order]
            counts = np.concatenate([v[1] for v in self.runs.values])[order]
        rows = _bytes(_slices(buffer, starts, starts + counts * size, pa.binary()))
        rows = rows.reshape(total, size)
        if isinstance(self.items, _Record):
            return self.items.from_rows(rows)
        assert isinstance(self.items, _Fixed)
        return self.items.from_values(rows.view(self.items.dtype).reshape(-1))


def _string_items(
    buf: np.ndarray,
    pos: np.ndarray,
    keys: np.ndarray,
    active: np.ndarray,
    sink: _Sink,
    fields: int,
) -> np.ndarray:
    """_Array._items for items made of strings only, without the per-node calls: a short
    string has a one-byte length, so each is a gather, a test and three operations. The sink
    gets, per item, where each field's length is (the strings are cut out at the end)."""
    for j, m in enumerate(active.tolist()):
        p = pos[:m].copy()
        where = []
        for _ in range(fields):
            where.append(p)
            length = buf[p]
            if (length & 0x81).any():  # a multi-byte or negative length: the general reader
                n, start = _longs(buf, p)
                p = start + n
            else:
                p = p + 1 + (length >> 1)
        sink.put(keys[:m], *where, step=j)
        pos[:m] = p
    return pos


def _bytes(array: pa.Array) -> np.ndarray:
    """The values of a (fresh, offset 0) binary array, concatenated, as uint8 (no copy)."""
    data = array.buffers()[2]
    if data is None or not len(array):
        return np.empty(0, np.uint8)
    offsets = np.frombuffer(array.buffers()[1], np.int32, len(array) + 1, 4 * array.offset)
    return np.frombuffer(data, np.uint8, int(offsets[-1] - offsets[0]), int(offsets[0]))


# -- schema compilation --------------------------------------------------------------------------

_TIMESTAMPS = {
    "timestamp-micros": pa.timestamp("us", tz="UTC"),
    "timestamp-millis": pa.timestamp("ms", tz="UTC"),
}


def _fullname(name: str, namespace: str | None) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _compile(schema: Any, names: dict[str, Any], namespace: str | None, nested: bool) -> _Node:
    """A fresh node tree for `schema` (named types resolved through `names`)."""
    if isinstance(schema, list):
        branches = [b for b in schema if b != "null"]
        if len(schema) != 2 or len(branches) != 1:
            raise NotImplementedError(f"Avro union {schema!r}: only [null, T] is supported")
        inner = _compile(branches[0], names, namespace, nested)
        return _Nullable(inner, schema.index("null"))
    if isinstance(schema, str):
        if schema in ("long", "int"):
            return _Long(pa.int64() if schema == "long" else pa.int32())
        if schema in ("string", "bytes"):
            return _Bytes(pa.string() if schema == "string" else pa.binary())
        if schema in ("double", "float", "boolean"):
            return _Fixed(schema)
        named = names.get(_fullname(schema, namespace)) or names.get(schema)
        if named is None:
            raise NotImplementedError(f"Avro type {schema!r} is not supported")
        return _compile(named, names, namespace, nested)
    kind = schema["type"]
    if kind in ("record", "enum", "fixed"):
        full = _fullname(schema["name"], schema.get("namespace", namespace))
        names[full] = schema
        namespace = full.rpartition(".")[0] or None
    logical = schema.get("logicalType")
    if kind == "long" and logical in _TIMESTAMPS:
        return _Long(_TIMESTAMPS[logical])
    if kind in ("long", "int", "string", "bytes", "double", "float", "boolean"):
        if logical is not None:
            raise NotImplementedError(f"Avro logical type {logical!r} is not supported")
        return _compile(kind, names, namespace, nested)
    if kind == "enum":
        if len(schema["symbols"]) > 64:
            raise NotImplementedError("Avro enums of more than 64 symbols are not supported")
        return _Fixed("enum", schema["symbols"])
    if kind == "record":
        fields = [_compile(f["type"], names, namespace, nested) for f in schema["fields"]]
        return _Record([f["name"] for f in schema["fields"]], fields)
    if kind == "array":
        if nested:
            raise NotImplementedError("Avro arrays inside arrays are not supported")
        return _Array(_compile(schema["items"], names, namespace, True))
    raise NotImplementedError(f"Avro type {kind!r} is not supported")


# -- public --------------------------------------------------------------------------------------


def decode(container: Container, columns: Sequence[str] | None = None) -> pa.Table:
    """The records of an opened container as a table (all fields, or `columns` in that order)."""
    root = _compile(container.schema, {}, None, False)
    if not isinstance(root, _Record):
        raise NotImplementedError("top-level Avro schema must be a record")
    wanted = list(root.names) if columns is None else list(columns)
    missing = [c for c in wanted if c not in root.names]
    if missing:
        raise KeyError(f"Avro file has no field(s) {missing}")
    buf = np.frombuffer(container.buffer, np.uint8)
    size = container.num_records
    counts = container.block_counts
    ends = np.append(container.block_starts[1:], container.data_size)
    # Lanes = blocks, longest first, so the blocks still holding a record k are a prefix.
    order = np.argsort(-counts, kind="stable")
    first_record = (np.cumsum(counts) - counts)[order]
    pos = container.block_starts[order].copy()
    lane_counts = counts[order]
    active = len(order) - np.searchsorted(
        lane_counts[::-1], np.arange(int(lane_counts[0]) if size else 0), side="right"
    )
    try:
        for k, m in enumerate(active.tolist()):
            pos[:m] = root.decode(buf, pos[:m], first_record[:m] + k)
    except IndexError as exc:  # a position ran past the buffer: the bytes are not this schema
        raise ValueError("corrupt Avro data (record runs past its block)") from exc
    if not np.array_equal(pos, ends[order]):
        raise ValueError("corrupt Avro data (records do not end where their block ends)")
    buffer = pa.py_buffer(container.buffer)

    def identity(k: np.ndarray) -> np.ndarray:
        return k

    by_name = dict(zip(root.names, root.fields, strict=True))
    arrays = [by_name[c].arrow(buffer, buf, identity, size) for c in wanted]
    return pa.Table.from_arrays(arrays, names=wanted)


def read_avro_table(data: bytes, columns: Sequence[str] | None = None) -> pa.Table:
    """Decode one Avro container file (bytes) into an Arrow table; see the module doc."""
    return decode(open_container(data), columns)


def _has_item_loops(schema: Any) -> bool:
    """Does decoding step through array items one by one (variable-size items)?"""
    root = _compile(schema, {}, None, False)
    fields = root.fields if isinstance(root, _Record) else [root]
    return any(isinstance(f, _Array) and f.items.fixed_size is None for f in fields)


def read_avro_tables(files: Iterable[bytes], columns: Sequence[str]) -> pa.Table | None:
    """The records of several container files, in order, as one table of `columns`; None if
    there are no files.

    Memory stays near one file's worth: each file is decoded on its own, except that files
    whose records hold variable-size array items (the diff lane) are decoded together, up to
    MERGE_BYTES of compressed input, since their item loop costs per step, not per item.
    """
    tables: list[pa.Table] = []
    group: list[FileBlocks] = []
    merging = False
    for data in files:
        blocks = read_blocks(data)
        if group and (
            blocks.schema != group[0].schema
            or not merging
            or sum(len(g.data) for g in group) + len(blocks.data) > MERGE_BYTES
        ):
            tables.append(decode(decompress(group), columns))
            group = []
        if not group:
            merging = _has_item_loops(json.loads(blocks.schema))
        group.append(blocks)
    if group:
        tables.append(decode(decompress(group), columns))
    return pa.concat_tables(tables) if tables else None
