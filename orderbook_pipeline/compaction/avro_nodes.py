"""The Avro types bronze uses, each as a node that decodes all cursors at once (see avro_arrow.py).

A node's decode() steps every cursor's byte position over one value and records where it went
(a sink per leaf: the value or the byte position, keyed by record or item slot); arrow() later
builds the Arrow column for any selection of records, in any order, straight from the
decompressed buffer. So a caller can sort and deduplicate on a few narrow columns and build the
wide ones (levels, bids, asks) already in the final order: no wide take afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

_K = np.arange(10, dtype=np.int64)
_SHIFTS = (7 * _K).astype(np.uint64)
_ITEM = np.int64(32)  # item keys: record slot << 32 | item index within the record
_LOW = np.int64(0xFFFFFFFF)
_RUNS_AT_ONCE = 4096  # fixed-size array runs copied out per step (a few MB of bytes)

Slots = Callable[[np.ndarray], np.ndarray]  # sink keys -> slots 0..size-1


@dataclass(frozen=True)
class Source:
    """The decompressed records: as an Arrow buffer (for takes) and as uint8 numpy."""

    buffer: pa.Buffer
    buf: np.ndarray


# -- vectorized primitives over cursors -----------------------------------------------------------


_HIGH_BITS = np.uint64(0x8080808080808080)
_LOW_BITS = np.uint64(0x7F7F7F7F7F7F7F7F)
# Pairs of 7-bit groups merged into 14, then 28, then 56 bits: (mask kept, mask shifted, shift).
_MERGES = [
    (np.uint64(0x007F007F007F007F), np.uint64(0x7F007F007F007F00), np.uint64(1)),
    (np.uint64(0x00003FFF00003FFF), np.uint64(0x3FFF00003FFF0000), np.uint64(2)),
    (np.uint64(0x000000000FFFFFFF), np.uint64(0x0FFFFFFF00000000), np.uint64(4)),
]
_ONE, _ZERO = np.uint64(1), np.uint64(0)


def longs(buf: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The zigzag varint at every position: (values int64, positions after them)."""
    first = buf[pos]
    if not first.size or first.max() < 0x80:  # one byte each (lengths, small counts, flags)
        v = first.astype(np.int64)
        return (v >> 1) ^ -(v & 1), pos + 1
    # Up to 8 bytes (ids, µs timestamps): the 8 bytes at each position as one little-endian
    # word; the first byte without a continuation bit ends the varint.
    word = _every_byte(buf, "<u8")[pos]
    stops = ~word & _HIGH_BITS
    if not stops.all():  # some varint is 9-10 bytes long
        return _long_windows(buf, pos)
    last = stops & (_ZERO - stops)  # bit 7 of each varint's final byte
    v = word & ((last << _ONE) - _ONE) & _LOW_BITS
    for keep, move, shift in _MERGES:
        v = (v & keep) | ((v & move) >> shift)
    n_bytes = np.frexp(last.astype(np.float64))[1] >> 3  # last == 2**(8 * n_bytes - 1)
    value = (v >> _ONE) ^ (_ZERO - (v & _ONE))
    return value.view(np.int64), pos + n_bytes


def _long_windows(buf: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """longs() for varints of any length (up to 10 bytes), byte by byte."""
    window = buf[pos[:, None] + _K]  # the 10 bytes a 64-bit varint may span
    last = window < 0x80
    if not last.any(axis=1).all():
        raise ValueError("corrupt Avro varint (longer than 10 bytes)")
    n = last.argmax(axis=1)  # index of each varint's final byte
    parts = (window & 0x7F).astype(np.uint64) << _SHIFTS
    raw = np.where(n[:, None] >= _K, parts, np.uint64(0)).sum(axis=1, dtype=np.uint64)
    value = (raw >> np.uint64(1)) ^ (np.uint64(0) - (raw & np.uint64(1)))
    return value.view(np.int64), pos + n + 1


def _every_byte(buf: np.ndarray, dtype: str) -> np.ndarray:
    """A read-only view with one value of `dtype` starting at every byte of `buf` (stride 1):
    indexing it with byte positions gathers the unaligned values in one numpy call."""
    width = np.dtype(dtype).itemsize
    return np.ndarray((len(buf) - width + 1,), dtype, buf, 0, (1,))


def _pick(values: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
    return values if rows is None else values[rows]


class Spans:
    """Values buffer[starts[i]:ends[i]] (ordered, disjoint spans), taken out in any order.

    One array laid over the whole buffer with the offsets start0, end0, start1, end1... has
    the values at even indices and the gaps between them at odd ones; Arrow's take copies the
    wanted ones out.
    """

    def __init__(self, src: Source, starts: np.ndarray, ends: np.ndarray, typ: pa.DataType):
        n = self.n = len(starts)
        if n and ((ends < starts).any() or (starts[1:] < ends[:-1]).any()):
            raise ValueError("corrupt Avro lengths (values overlap)")
        if src.buffer.size >= 2**31:
            raise ValueError("Avro file too large for 32-bit offsets")
        offsets = np.empty(2 * n + 1, np.int32)
        offsets[0:-1:2] = starts
        offsets[1::2] = ends
        offsets[-1] = ends[-1] if n else 0
        self.typ = typ
        self.laid = pa.Array.from_buffers(typ, 2 * n, [None, pa.py_buffer(offsets), src.buffer])

    def take(self, order: np.ndarray | None) -> pa.Array:
        """The values `order` (all, in order, when None)."""
        wanted = np.arange(self.n) if order is None else order
        if not len(wanted):
            return pa.array([], self.typ)
        out = self.laid.take(pa.array(2 * wanted.astype(np.int32)))
        if self.typ == pa.string():
            out.validate(full=True)  # UTF-8, as fastavro insists
        return out


def _binary_values(array: pa.Array) -> np.ndarray:
    """The values of a binary array, concatenated, as uint8 (a view, no copy)."""
    data = array.buffers()[2]
    if data is None or not len(array):
        return np.empty(0, np.uint8)
    offsets = np.frombuffer(array.buffers()[1], np.int32, len(array) + 1, 4 * array.offset)
    return np.frombuffer(data, np.uint8, int(offsets[-1] - offsets[0]), int(offsets[0]))


def item_ranges(first: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenated ranges first[i] .. first[i] + counts[i] - 1."""
    before = np.cumsum(counts) - counts
    return np.repeat(first - before, counts) + np.arange(int(counts.sum()))


def _enum_strings(symbols: list[str], index: np.ndarray) -> pa.Array:
    encoded = [s.encode() for s in symbols]
    width = len(encoded[0]) if encoded else 0
    if any(len(e) != width for e in encoded) or not width:
        return pa.array(symbols, pa.string()).take(pa.array(index))
    # Symbols of one length (bid/ask): the string data is a plain gather of fixed-size items.
    table = np.frombuffer(b"".join(encoded), f"V{width}")
    data = table[index]
    offsets = np.arange(0, width * (len(index) + 1), width, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.string(), len(index), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


# -- sinks: where decoded values go --------------------------------------------------------------


class Sink:
    """Values of one leaf in decode order, with the key (slot) of each: keys + step, so a
    loop over items can hand in a view of its cursors' keys and the item index.

    A node's slots never change once decoded, so the slot order is computed on the first
    ordered() and kept (the decode-order arrays are dropped): a caller building columns for
    many selections of one decoded batch (a refresh's directories) pays the scatter once."""

    def __init__(self) -> None:
        self.keys: list[np.ndarray] = []
        self.steps: list[int] = []
        self.values: list[tuple[np.ndarray, ...]] = []
        self._ordered: tuple[int, list[np.ndarray]] | None = None

    def put(self, keys: np.ndarray, *values: np.ndarray, step: int = 0) -> None:
        self.keys.append(keys)
        self.steps.append(step)
        self.values.append(values)

    def all_keys(self) -> np.ndarray:
        keys = np.concatenate(self.keys)
        if any(self.steps):
            keys += np.repeat(np.array(self.steps, np.int64), [len(k) for k in self.keys])
        return keys

    def ordered(self, slots_of: Slots, size: int, width: int = 1) -> list[np.ndarray]:
        """Each of the `width` value columns scattered into slot order (computed once)."""
        if self._ordered is not None:
            if self._ordered[0] != size or len(self._ordered[1]) != width:
                raise AssertionError("a sink is ordered for one set of slots only")
            return self._ordered[1]
        if not self.keys:
            out = [np.zeros(size, np.int64) for _ in range(width)]
        else:
            slots = slots_of(self.all_keys())
            out = []
            for i in range(width):
                vals = np.concatenate([v[i] for v in self.values])
                col = np.empty(size, vals.dtype)
                col[slots] = vals
                out.append(col)
        self._ordered = (size, out)
        self.keys, self.steps, self.values = [], [], []
        return out


# -- schema nodes --------------------------------------------------------------------------------


class Node:
    """One Avro type: decode() steps all cursors over it; arrow() builds the column of the slots
    `rows` (all slots 0..size-1 in order when None)."""

    fixed_size: int | None = None  # bytes, when every value has the same encoded size

    def __init__(self) -> None:
        self.sink = Sink()

    def decode(self, buf: np.ndarray, pos: np.ndarray, keys: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def arrow(self, src: Source, slots_of: Slots, size: int, rows: np.ndarray | None) -> pa.Array:
        raise NotImplementedError


class Long(Node):
    def __init__(self, typ: pa.DataType) -> None:
        super().__init__()
        self.typ = typ

    def decode(self, buf: np.ndarray, pos: np.ndarray, keys: np.ndarray) -> np.ndarray:
        values, pos = longs(buf, pos)
        self.sink.put(keys, values)
        return pos

    def arrow(self, src: Source, slots_of: Slots, size: int, rows: np.ndarray | None) -> pa.Array:
        values = _pick(self.sink.ordered(slots_of, size)[0], rows)
        if self.typ == pa.int32():
            if values.size and (values.min() < -(2**31) or values.max() >= 2**31):
                raise ValueError("Avro int out of 32-bit range")
            return pa.array(values.astype(np.int32), pa.int32())
        return pa.array(values, pa.int64()).view(self.typ)


class Bytes(Node):
    """string or bytes: the sink keeps where each length is; the values are cut out at the end."""

    def __init__(self, typ: pa.DataType) -> None:
        super().__init__()
        self.typ = typ
        self._spans: tuple[np.ndarray, Spans] | None = None  # (where, its spans), built once

    def decode(self, buf: np.ndarray, pos: np.ndarray, keys: np.ndarray) -> np.ndarray:
        self.sink.put(keys, pos.copy())
        length, start = longs(buf, pos)
        end: np.ndarray = start + length
        return end

    def arrow(self, src: Source, slots_of: Slots, size: int, rows: np.ndarray | None) -> pa.Array:
        return self.from_lengths_at(src, self.sink.ordered(slots_of, size)[0], rows)

    def from_lengths_at(self, src: Source, where: np.ndarray, rows: np.ndarray | None) -> pa.Array:
        """The strings whose lengths are at byte positions `where` (buffer order), picked."""
        if self._spans is not None and self._spans[0] is where:  # another selection, same slots
            return self._spans[1].take(rows)
        first = src.buf[where]
        if not (first & 0x81).any():  # one-byte, non-negative lengths: no zigzag to undo
            starts = where + 1
            ends = starts + (first >> 1)
        else:
            length, starts = longs(src.buf, where)
            if (length < 0).any():
                raise ValueError("corrupt Avro string length")
            ends = starts + length
        spans = Spans(src, starts, ends, self.typ)
        self._spans = (where, spans)
        return spans.take(rows)


class Fixed(Node):
    """double, float, boolean, or an enum of at most 64 symbols (its index is one byte)."""

    def __init__(self, kind: str, symbols: Sequence[str] = ()) -> None:
        super().__init__()
        self.kind = kind
        self.symbols = list(symbols)
        self.fixed_size = {"double": 8, "float": 4, "boolean": 1, "enum": 1}[kind]

    @property
    def dtype(self) -> str:
        return {"double": "<f8", "float": "<f4"}.get(self.kind, "u1")

    def decode(self, buf: np.ndarray, pos: np.ndarray, keys: np.ndarray) -> np.ndarray:
        self.sink.put(keys, pos)
        return pos + self.fixed_size

    def arrow(self, src: Source, slots_of: Slots, size: int, rows: np.ndarray | None) -> pa.Array:
        pos = _pick(self.sink.ordered(slots_of, size)[0], rows)
        return self.from_values(_every_byte(src.buf, self.dtype)[pos])

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


class Nullable(Node):
    """Union of null and one other type."""

    def __init__(self, inner: Node, null_index: int) -> None:
        super().__init__()
        self.inner = inner
        self.null_index = null_index

    def decode(self, buf: np.ndarray, pos: np.ndarray, keys: np.ndarray) -> np.ndarray:
        branch, pos = longs(buf, pos)
        if ((branch != 0) & (branch != 1)).any():
            raise ValueError("corrupt Avro union index")
        present = branch != self.null_index
        self.sink.put(keys, present)
        if present.any():
            idx = np.flatnonzero(present)
            pos[idx] = self.inner.decode(buf, pos[idx], keys[idx])
        return pos

    def arrow(self, src: Source, slots_of: Slots, size: int, rows: np.ndarray | None) -> pa.Array:
        present = self.sink.ordered(slots_of, size)[0].astype(bool, copy=False)
        # The inner values fill only the present slots: they are numbered 0..k-1 in slot order.
        rank = np.cumsum(present) - 1
        picked = _pick(present, rows)
        inner_rows = None if rows is None else rank[rows][picked]
        values = self.inner.arrow(src, lambda k: rank[slots_of(k)], int(present.sum()), inner_rows)
        if picked.all():
            return values
        where = np.where(picked, np.cumsum(picked) - 1, 0)
        return values.take(pa.array(where, mask=~picked))


class Record(Node):
    def __init__(self, names: list[str], fields: list[Node]) -> None:
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

    def arrow(self, src: Source, slots_of: Slots, size: int, rows: np.ndarray | None) -> pa.Array:
        columns = [f.arrow(src, slots_of, size, rows) for f in self.fields]
        return pa.StructArray.from_arrays(columns, names=self.names)


class Array(Node):
    def __init__(self, items: Node) -> None:
        super().__init__()
        self.items = items
        self.runs = Sink()  # fixed-size items: (key of the first item, start, count) per run
        self.strings = Sink()  # string-only items: where each field's length is, per item
        self.counts = Sink()  # items per record, per array block
        self._items_per_record: np.ndarray | None = None
        self._runs: tuple[np.ndarray, np.ndarray] | None = None  # (starts, counts) in slot order
        fields = items.fields if isinstance(items, Record) else [items]
        # Items made of strings only (the diff lane's [px, qty]) get a loop of their own.
        self.string_fields = (
            [f for f in fields if isinstance(f, Bytes)]
            if all(isinstance(f, Bytes) for f in fields)
            else []
        )

    def decode(self, buf: np.ndarray, pos: np.ndarray, keys: np.ndarray) -> np.ndarray:
        pos = pos.copy()
        cursors = np.arange(len(pos))  # cursors still inside their array
        done = np.zeros(len(pos), np.int64)  # items read so far per cursor
        while cursors.size:
            count, at = longs(buf, pos[cursors])
            negative = count < 0
            if negative.any():  # a negative count is followed by the block's byte size
                count = np.abs(count)
                _, at[negative] = longs(buf, at[negative])
            pos[cursors] = at  # cursors whose count was 0 have ended their array here
            more = count > 0
            cursors, at, count = cursors[more], at[more], count[more]
            if not cursors.size:
                break
            first = (keys[cursors] << _ITEM) | done[cursors]
            self.counts.put(keys[cursors], count)
            if self.items.fixed_size is not None:
                self.runs.put(first, at, count)
                at = at + count * self.items.fixed_size
            else:
                at = self._items(buf, at, first, count)
            done[cursors] += count
            pos[cursors] = at
        return pos

    def _items(
        self, buf: np.ndarray, at: np.ndarray, first: np.ndarray, count: np.ndarray
    ) -> np.ndarray:
        """Step variable-size items: item j of every cursor at once, longest cursors first."""
        order = np.argsort(-count, kind="stable")
        pos, keys, cnt = at[order], first[order], count[order]
        # active[j]: cursors with more than j items (a prefix, as cursors are sorted by count).
        active = len(cnt) - np.searchsorted(cnt[::-1], np.arange(int(cnt[0])), side="right")
        if self.string_fields:
            pos = _string_items(buf, pos, keys, active, self.strings, len(self.string_fields))
        else:
            for j, m in enumerate(active.tolist()):
                pos[:m] = self.items.decode(buf, pos[:m], keys[:m] + j)
        out = np.empty_like(pos)
        out[order] = pos
        return out

    def _per_record(self, slots_of: Slots, size: int) -> np.ndarray:
        """Items per record slot (computed once: the slots never change)."""
        if self._items_per_record is None:
            per_record = np.zeros(size, np.int64)
            if self.counts.keys:
                # bincount sums the counts of a record's array blocks (one, from fastavro).
                slots = slots_of(np.concatenate(self.counts.keys))
                counts = np.concatenate([v[0] for v in self.counts.values])
                per_record = np.bincount(slots, weights=counts, minlength=size).astype(np.int64)
            self._items_per_record = per_record
        return self._items_per_record

    def arrow(self, src: Source, slots_of: Slots, size: int, rows: np.ndarray | None) -> pa.Array:
        per_record = self._per_record(slots_of, size)
        first_item = np.cumsum(per_record) - per_record
        total = int(per_record.sum())
        picked = _pick(per_record, rows)
        if picked.sum() >= 2**31:
            raise ValueError("too many Avro array items for 32-bit list offsets")
        offsets = np.zeros(len(picked) + 1, np.int32)
        np.cumsum(picked, out=offsets[1:])
        # The items of the picked records, in order (None: all of them).
        item_rows = None if rows is None else item_ranges(first_item[rows], picked)

        def item_slots(k: np.ndarray) -> np.ndarray:
            slots: np.ndarray = first_item[slots_of(k >> _ITEM)] + (k & _LOW)
            return slots

        if self.string_fields:
            where = self.strings.ordered(item_slots, total, len(self.string_fields))
            columns = [
                f.from_lengths_at(src, w, item_rows)
                for f, w in zip(self.string_fields, where, strict=True)
            ]
            items = (
                pa.StructArray.from_arrays(columns, names=self.items.names)
                if isinstance(self.items, Record)
                else columns[0]
            )
        elif self.items.fixed_size is None:
            items = self.items.arrow(src, item_slots, total, item_rows)
        else:
            items = self._fixed_items(src, item_slots, per_record, rows, item_rows)
        return pa.ListArray.from_arrays(pa.array(offsets), items)

    def _fixed_items(
        self,
        src: Source,
        item_slots: Slots,
        per_record: np.ndarray,
        rows: np.ndarray | None,
        item_rows: np.ndarray | None,
    ) -> pa.Array:
        """Fixed-size items. Each record's array is one run of bytes (fastavro writes arrays
        as one block): the runs are copied out in the picked order (Arrow take), and every
        field is a strided view of those bytes. Arrays of several blocks: item by item."""
        size = self.items.fixed_size or 0
        if self._runs is None:
            starts = counts = np.empty(0, np.int64)
            if self.runs.keys:
                order = np.argsort(item_slots(np.concatenate(self.runs.keys)), kind="stable")
                starts = np.concatenate([v[0] for v in self.runs.values])[order]
                counts = np.concatenate([v[1] for v in self.runs.values])[order]
            self._runs = (starts, counts)
        starts, counts = self._runs
        if len(starts) == np.count_nonzero(per_record):  # one run per non-empty record
            run_of = np.cumsum(per_record > 0) - 1  # records -> their run (in slot order)
            picked = np.arange(len(starts)) if rows is None else run_of[rows][per_record[rows] > 0]
            return self._copy_runs(src, starts, counts, picked)
        # Several runs per record: every item's position, then gathers.
        pos = item_ranges(np.zeros(len(starts), np.int64), counts) * size
        pos += np.repeat(starts, counts)
        if item_rows is not None:
            pos = pos[item_rows]
        fields = self.items.fields if isinstance(self.items, Record) else [self.items]
        columns, at = [], 0
        for f in fields:
            assert isinstance(f, Fixed)
            columns.append(f.from_values(_every_byte(src.buf, f.dtype)[pos + at]))
            at += f.fixed_size or 0
        if isinstance(self.items, Record):
            return pa.StructArray.from_arrays(columns, names=self.items.names)
        return columns[0]

    def _copy_runs(
        self, src: Source, starts: np.ndarray, counts: np.ndarray, picked: np.ndarray
    ) -> pa.Array:
        """Items of the runs `picked`, in that order: a few thousand runs at a time are copied
        out (Arrow take) and each field is copied from its strided view into the output, so
        the bytes of all runs never sit in memory at once next to the columns."""
        fields = self.items.fields if isinstance(self.items, Record) else [self.items]
        size = self.items.fixed_size or 0
        assert all(isinstance(f, Fixed) for f in fields)
        layout = np.dtype(
            {
                "names": [f"f{i}" for i in range(len(fields))],
                "formats": [f.dtype for f in fields if isinstance(f, Fixed)],
                "offsets": np.cumsum([0] + [f.fixed_size or 0 for f in fields])[:-1].tolist(),
                "itemsize": size,
            }
        )
        n_items = int(counts[picked].sum())
        out = [np.empty(n_items, f.dtype) for f in fields if isinstance(f, Fixed)]
        spans = Spans(src, starts, starts + counts * size, pa.binary())
        at = 0
        for lo in range(0, len(picked), _RUNS_AT_ONCE):
            records = _binary_values(spans.take(picked[lo : lo + _RUNS_AT_ONCE])).view(layout)
            for i, column in enumerate(out):
                column[at : at + len(records)] = records[f"f{i}"]
            at += len(records)
        columns = [
            f.from_values(c) for f, c in zip(fields, out, strict=True) if isinstance(f, Fixed)
        ]
        if isinstance(self.items, Record):
            return pa.StructArray.from_arrays(columns, names=self.items.names)
        return columns[0]


def _string_items(
    buf: np.ndarray,
    pos: np.ndarray,
    keys: np.ndarray,
    active: np.ndarray,
    sink: Sink,
    fields: int,
) -> np.ndarray:
    """Array._items for items made of strings only, without the per-node calls: a short
    string has a one-byte length, so each is a gather, a test and three operations. The sink
    gets, per item, where each field's length is (the strings are cut out at the end)."""
    for j, m in enumerate(active.tolist()):
        p = pos[:m].copy()
        where = []
        for _ in range(fields):
            where.append(p)
            length = buf[p]
            if (length & 0x81).any():  # a multi-byte or negative length: the general reader
                n, start = longs(buf, p)
                p = start + n
            else:
                p = p + 1 + (length >> 1)
        sink.put(keys[:m], *where, step=j)
        pos[:m] = p
    return pos


# -- schema compilation --------------------------------------------------------------------------

_TIMESTAMPS = {
    "timestamp-micros": pa.timestamp("us", tz="UTC"),
    "timestamp-millis": pa.timestamp("ms", tz="UTC"),
}


def _fullname(name: str, namespace: str | None) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def compile_schema(
    schema: Any, names: dict[str, Any] | None = None, namespace: str | None = None
) -> Node:
    """A fresh node tree for a writer schema (named types resolved through `names`)."""
    return _compile(schema, {} if names is None else names, namespace, False)


def _compile(schema: Any, names: dict[str, Any], namespace: str | None, nested: bool) -> Node:
    if isinstance(schema, list):
        branches = [b for b in schema if b != "null"]
        if len(schema) != 2 or len(branches) != 1:
            raise NotImplementedError(f"Avro union {schema!r}: only [null, T] is supported")
        inner = _compile(branches[0], names, namespace, nested)
        return Nullable(inner, schema.index("null"))
    if isinstance(schema, str):
        return _compile_name(schema, names, namespace, nested)
    kind = schema["type"]
    if kind in ("record", "enum", "fixed"):
        full = _fullname(schema["name"], schema.get("namespace", namespace))
        names[full] = schema
        namespace = full.rpartition(".")[0] or None
    logical = schema.get("logicalType")
    if kind == "long" and logical in _TIMESTAMPS:
        return Long(_TIMESTAMPS[logical])
    if kind in ("long", "int", "string", "bytes", "double", "float", "boolean"):
        if logical is not None:
            raise NotImplementedError(f"Avro logical type {logical!r} is not supported")
        return _compile(kind, names, namespace, nested)
    if kind == "enum":
        if len(schema["symbols"]) > 64:
            raise NotImplementedError("Avro enums of more than 64 symbols are not supported")
        return Fixed("enum", schema["symbols"])
    if kind == "record":
        fields = [_compile(f["type"], names, namespace, nested) for f in schema["fields"]]
        return Record([f["name"] for f in schema["fields"]], fields)
    if kind == "array":
        if nested:
            raise NotImplementedError("Avro arrays inside arrays are not supported")
        return Array(_compile(schema["items"], names, namespace, True))
    raise NotImplementedError(f"Avro type {kind!r} is not supported")


def _compile_name(schema: str, names: dict[str, Any], namespace: str | None, nested: bool) -> Node:
    """A primitive type's name, or the name of a type the schema defined before."""
    if schema in ("long", "int"):
        return Long(pa.int64() if schema == "long" else pa.int32())
    if schema in ("string", "bytes"):
        return Bytes(pa.string() if schema == "string" else pa.binary())
    if schema in ("double", "float", "boolean"):
        return Fixed(schema)
    named = names.get(_fullname(schema, namespace)) or names.get(schema)
    if named is None:
        raise NotImplementedError(f"Avro type {schema!r} is not supported")
    return _compile(named, names, namespace, nested)
