"""Compaction of many silver directories at once, each by what is new in it (parts.py).

A refresh compacts a few minutes of every stream. Decoding each stream's few new files alone
would waste the columnar decoder, which works across Avro blocks (one a second per file): a
handful of files is a few hundred blocks, and its per-item steps (tens to hundreds a record)
then cost more in Python than in numpy. So the new files of many directories of one lane are
decoded together, in batches of up to BATCH_FILES files, and each directory then takes its
own rows from the batch: its dedup, order and Parquet part are its alone, exactly as if it had
been compacted by itself.

Per directory (a `_Plan`): which bronze files to read (new ones, and those still holding rows
at or after the last cut), from which time on, and whether it must be compacted again from
scratch (no state, a file or a live part gone, or a late file: one whose rows fall below the
last cut, found once decoded).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import io
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from orderbook_pipeline.compaction.avro_arrow import Decoded, decode_files
from orderbook_pipeline.compaction.dedup import (
    SRC,
    dedup_rows,
    deduplicate,
    narrow_columns,
    positions,
)
from orderbook_pipeline.compaction.parquet_io import plain_leaves, read_parquet, write_parquet
from orderbook_pipeline.compaction.parts import (
    PartsState,
    add_counters,
    data_files,
    next_seq,
    part_name,
    part_path,
    part_seq,
    read_state,
    write_state,
)
from orderbook_pipeline.lanes.spec import Lane
from orderbook_pipeline.storage.layout import HOUR_US, Partition, burst_id_of
from orderbook_pipeline.storage.store import Store

# Bronze files decoded together: thousands of Avro blocks (a few minutes of ~15 streams of a
# lane), while the decoded batch stays within a few hundred MB even for depth-50 L2.
BATCH_FILES = 120
_EVERYTHING = -(2**62)  # a lower bound below every row's time

# Looks at each new part's table before it is written; what it counts is kept in the state.
Inspect = Callable[[pa.Table], Mapping[str, int]]


@dataclass(frozen=True)
class CompactionResult:
    rows_in: int  # bronze records compacted by this call (all copies)
    rows_out: int  # silver rows this call added (the new part's)
    files_in: int  # bronze files this call read
    bursts: list[str] = field(default_factory=list)  # burst ids of the partition's files
    path: str = ""  # relative path of the part written, "" when nothing was new
    state: PartsState | None = None  # the directory's state after the call
    recompacted: bool = False  # the whole directory was compacted again (first time, late file)

    @property
    def rows_total(self) -> int:
        """Silver rows of the partition after the call."""
        return self.state.rows if self.state is not None else self.rows_out


@dataclass(frozen=True)
class Request:
    """Compact one directory up to `cut_us` (None: the whole hour); `copies` names the bronze
    columns to keep of every copy compacted (all bursts' rows, before dedup), beside the part."""

    spec: Lane
    partition: Partition
    cut_us: int | None = None
    inspect: Inspect | None = None
    copies: tuple[str, ...] = ()


@dataclass
class _Plan:
    request: Request
    cut: int
    paths: list[str]  # every bronze file of the directory
    existing: list[str]  # its Parquet files
    old: PartsState | None
    full: bool
    new: list[str]
    read: list[str]  # the files to decode
    digest: str

    @property
    def base(self) -> PartsState:
        if self.full or self.old is None:
            return PartsState(cut_us=self.request.partition.hour_start_us)
        return self.old

    @property
    def lo(self) -> int:
        return _EVERYTHING if self.full or self.old is None else self.old.cut_us


def _directory_files(store: Store, partition: Partition) -> list[str]:
    """Bronze files directly in one partition directory (one depth of l2), path-sorted."""
    directory = partition.directory("bronze")
    return [
        rel
        for rel in store.list_files(directory + "/", suffix=".avro")
        if rel.rsplit("/", 1)[0] == directory
    ]


def _digest(store: Store, paths: Sequence[str]) -> str:
    sha = hashlib.sha1()
    for rel in paths:
        sha.update(rel.encode())
        sha.update(store.read_bytes(rel))
    return sha.hexdigest()


def _plan(store: Store, request: Request) -> _Plan | CompactionResult | None:
    """What compacting one directory takes; a result at once when nothing is new; None when
    the directory has no bronze."""
    spec, partition = request.spec, request.partition
    paths = _directory_files(store, partition)
    if not paths:
        return None
    hour_end = partition.hour_start_us + HOUR_US
    cut_us = request.cut_us
    cut = hour_end if cut_us is None else max(partition.hour_start_us, min(cut_us, hour_end))
    existing = data_files(store, partition)
    old = read_state(store, partition)
    bursts = sorted({burst_id_of(p) for p in paths})
    digest = "" if spec.incremental else _digest(store, paths)
    if not spec.incremental:
        unchanged = old is not None and old.digest == digest and old.files.keys() == set(paths)
        if unchanged and old is not None and old.cut_us >= cut:
            return CompactionResult(0, 0, 0, bursts, "", old, False)
        old = None  # rewritten in place: compacted whole every time it changed
    # From scratch: no state, a bronze file gone, or a live part gone (deleted by hand).
    full = (
        old is None
        or not set(old.files) <= set(paths)
        or not {part_path(partition, n) for n in old.parts} <= set(existing)
    )
    if old is None or full:
        return _Plan(request, cut, paths, existing, old, True, [], paths, digest)
    new = [p for p in paths if p not in old.files]
    if not new and cut <= old.cut_us:
        _remove_leftovers(store, partition, existing, old)
        return CompactionResult(0, 0, 0, bursts, "", old, False)
    read = sorted({*new, *old.pending_files()})
    return _Plan(request, cut, paths, existing, old, False, new, read, digest)


@dataclass
class _Batch:
    """Bronze files of several directories of one lane, decoded together: per group (files
    sharing a writer schema), the partition time of every row; per file, where its rows are
    and their smallest and largest time."""

    decoded: list[Decoded]
    times: list[np.ndarray]
    spans: dict[str, tuple[int, int, int]]  # file -> (group, first row, end row)
    first: dict[str, int]
    last: dict[str, int]

    def table(self, group: int, columns: Sequence[str], rows: np.ndarray) -> pa.Table:
        """`columns` of the rows `rows` of a group, built straight in that order (the nodes
        keep their slot order, so each directory's selection costs its own rows only)."""
        decoded = self.decoded[group]
        whole = len(rows) == decoded.num_rows and np.array_equal(rows, np.arange(len(rows)))
        return decoded.table(list(columns), None if whole else rows)

    @classmethod
    def of(cls, store: Store, paths: Sequence[str], ts_field: str) -> _Batch:
        decoded = decode_files(store.read_bytes(rel) for rel in paths)
        times = [_micros(d.table([ts_field]).column(0)) for d in decoded]
        spans: dict[str, tuple[int, int, int]] = {}
        first: dict[str, int] = {}
        last: dict[str, int] = {}
        names = iter(paths)
        for g, (d, ts) in enumerate(zip(decoded, times, strict=True)):
            at = 0
            for n in d.file_rows:
                rel = next(names)
                spans[rel] = (g, at, at + n)
                if n:
                    first[rel], last[rel] = int(ts[at : at + n].min()), int(ts[at : at + n].max())
                at += n
        return cls(decoded, times, spans, first, last)

    def picks(self, files: Sequence[str], lo: int, hi: int) -> list[np.ndarray]:
        """Per group, the rows of `files` with lo <= partition time < hi, in input order."""
        out: list[list[np.ndarray]] = [[] for _ in self.decoded]
        for rel in files:
            g, start, end = self.spans[rel]
            ts = self.times[g][start:end]
            out[g].append(start + np.flatnonzero((ts >= lo) & (ts < hi)))
        return [np.concatenate(p) if p else np.zeros(0, np.int64) for p in out]


def _micros(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(column.cast(pa.int64()).fill_null(-1).to_numpy(), np.int64)


def compact_batch(
    store: Store, requests: Sequence[Request], writes: Writes | None = None
) -> list[CompactionResult | None]:
    """Compact every requested directory, decoding the new files of a lane's directories
    together; one result per request, in order (None: the directory has no bronze). With
    `writes` (the caller closes it), the last directory's files may still be being written
    on return, and the next call's decoding overlaps them."""
    if writes is None:
        own = Writes()
        try:
            done = compact_batch(store, requests, own)
        except BaseException:
            own.close(quiet=True)  # the write in flight finishes; this error is the one raised
            raise
        own.close()
        return done
    if any(r.partition in writes.busy for r in requests):
        writes.wait()  # a directory's state is read only once its last write is done
    results: list[CompactionResult | None] = [None] * len(requests)
    todo: list[tuple[int, _Plan]] = []
    for i, request in enumerate(requests):
        plan = _plan(store, request)
        if isinstance(plan, _Plan):
            todo.append((i, plan))
        else:
            results[i] = plan
    late: list[tuple[int, _Plan]] = []
    for chunk in _chunks(todo):
        batch = _Batch.of(store, [p for _, plan in chunk for p in plan.read], _ts(chunk))
        for i, plan in chunk:
            assert plan.old is not None or plan.full
            # A new file with rows below the last cut arrived late (salvaged temporaries):
            # the parts lack them, so the directory is compacted again from all its bronze.
            if not plan.full and any(batch.first.get(p, plan.cut) < plan.lo for p in plan.new):
                plan.full, plan.read = True, plan.paths
                late.append((i, plan))
                continue
            results[i] = _finish(store, plan, batch, writes)
        del batch  # its buffers, before the next chunk's are decoded
        release_memory()
    for chunk in _chunks(late):
        batch = _Batch.of(store, [p for _, plan in chunk for p in plan.read], _ts(chunk))
        for i, plan in chunk:
            results[i] = _finish(store, plan, batch, writes)
        del batch
        release_memory()
    return results


def _ts(chunk: list[tuple[int, _Plan]]) -> str:
    return chunk[0][1].request.spec.partition_ts


def _chunks(plans: list[tuple[int, _Plan]]) -> list[list[tuple[int, _Plan]]]:
    """Plans grouped by lane, and so that a group's files to decode stay within BATCH_FILES
    (a directory is never split)."""
    out: list[list[tuple[int, _Plan]]] = []
    size, lane = 0, ""
    for item in sorted(plans, key=lambda p: p[1].request.spec.name):
        n, name = len(item[1].read), item[1].request.spec.name
        if not out or name != lane or (out[-1] and size + n > BATCH_FILES):
            out.append([])
            size, lane = 0, name
        out[-1].append(item)
        size += n
    return out


def _finish(store: Store, plan: _Plan, batch: _Batch, writes: Writes) -> CompactionResult:
    """Build the directory's new part from the batch, then hand its files to `writes`."""
    request, base, full = plan.request, plan.base, plan.full
    spec, partition = request.spec, request.partition
    picks = batch.picks(plan.read, plan.lo, plan.cut)
    table = _deduplicated(batch, picks, spec)
    if not full:
        table = _without_earlier_keys(store, table, partition, base, spec)
    if spec.finish is not None:
        table = spec.finish(table, None if full else base.carry)
    rows_in = int(sum(len(p) for p in picks))
    files = {**base.files, **{p: batch.last[p] for p in plan.read if p in batch.last}}
    for rel in plan.paths:  # an empty file (no records) has nothing to give either
        files.setdefault(rel, -1)
    parts, carry, counters = base.parts, base.carry, base.counters
    if table.num_rows and request.inspect is not None:
        counters = add_counters(counters, dict(request.inspect(table)))
    rel = ""
    copies = None
    if table.num_rows:
        rel = part_path(partition, part_name(next_seq(plan.existing)))
        if request.copies:
            copies = _copies(batch, picks, request.copies)
        parts = (*parts, rel.rsplit("/", 1)[1])
        if spec.carry is not None:
            carry = int(table.column(spec.carry)[-1].as_py())
    state = PartsState(
        cut_us=plan.cut,
        parts=parts,
        files=files,
        rows=base.rows + table.num_rows,
        bronze_rows=base.bronze_rows + rows_in,
        bronze_keys=base.bronze_keys + _distinct_keys(batch, picks, spec),
        carry=carry,
        counters=counters,
        digest=plan.digest,
    )
    existing = [*plan.existing, rel] if rel else plan.existing
    plain = plain_leaves(spec.avro["fields"])

    def publish() -> None:
        if rel:
            # Not fsynced: a part, copies or state lost in a crash is noticed (a live part
            # gone, a state behind the parts) and compacted again from bronze.
            write_parquet(store, rel, table, plan.read, durable=False, plain=plain)
            if copies is not None:
                store.write_bytes(copies_path(rel), _ipc(copies), durable=False)
        # After the part: a state never names a part that is not there.
        write_state(store, partition, state)
        _remove_leftovers(store, partition, existing, state)
        release_memory()  # the table is freed once this returns; the writer's buffers are

    writes.submit(publish, partition)
    bursts = sorted({burst_id_of(p) for p in plan.paths})
    return CompactionResult(rows_in, table.num_rows, len(plan.read), bursts, rel, state, full)


def _malloc_trim() -> Callable[[], object] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to do
        return None
    return lambda: trim(0)


_TRIM = _malloc_trim()


def release_memory() -> None:
    """Give the freed heap back to the system (glibc keeps it: the decoded batches are
    numpy arrays of tens of MB, freed in an order that fragments the heap; without this a
    symbol-hour's L2 held ~100 MB more at its peak)."""
    if _TRIM is not None:
        _TRIM()


class Writes:
    """Each directory's files are written on a thread of their own while the next directory
    is built (Parquet encoding and zstd release the GIL: it is half of compaction's CPU), one
    at a time, so at most two directories' tables are in memory. A failed write is raised by
    the next submit() or by wait()."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="silver-write")
        self._pending: Future[None] | None = None
        self.busy: set[Partition] = set()  # the directory being written

    def submit(self, publish: Callable[[], None], partition: Partition) -> None:
        self.wait()
        self.busy = {partition}
        self._pending = self._pool.submit(publish)

    def wait(self) -> None:
        pending, self._pending, self.busy = self._pending, None, set()
        if pending is not None:
            pending.result()

    def close(self, quiet: bool = False) -> None:
        try:
            self.wait()
        except Exception:
            if not quiet:
                raise
        finally:
            self._pool.shutdown(wait=True)


def _deduplicated(batch: _Batch, picks: list[np.ndarray], spec: Lane) -> pa.Table:
    """One row per key among the picked rows, the preferred copy, in the lane's order: decided
    on the narrow columns, then the wide ones taken once, in the final order."""
    schema = spec.schema
    groups = [(g, rows) for g, rows in enumerate(picks) if len(rows)]
    if len(groups) == 1:
        g, rows = groups[0]
        narrow = batch.table(g, narrow_columns(spec.key, spec.preference, spec.order), rows)
        kept = dedup_rows(narrow, spec.key, spec.preference, spec.order)
        final = rows if kept is None else rows[kept]
        return batch.table(g, schema.names, final).cast(schema)
    tables = [batch.table(g, schema.names, rows).cast(schema) for g, rows in groups]
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    return deduplicate(table, spec.key, spec.preference, spec.order)


def _distinct_keys(batch: _Batch, picks: list[np.ndarray], spec: Lane) -> int:
    """Distinct keys among the picked rows, counted by a hash group-by (not the dedup's sort),
    so the reconcile check compares two independent countings."""
    tables = [batch.table(g, spec.key, rows) for g, rows in enumerate(picks) if len(rows)]
    if not tables:
        return 0
    return int(pa.concat_tables(tables).group_by(list(spec.key)).aggregate([]).num_rows)


def _copies(batch: _Batch, picks: list[np.ndarray], columns: Sequence[str]) -> pa.Table:
    tables = [batch.table(g, columns, rows) for g, rows in enumerate(picks) if len(rows)]
    return pa.concat_tables(tables)


def _without_earlier_keys(
    store: Store, table: pa.Table, partition: Partition, state: PartsState, spec: Lane
) -> pa.Table:
    """Drop the rows whose key an earlier part holds (copies with other partition times)."""
    if spec.copies_share_ts or not state.parts or not table.num_rows:
        return table
    key_schema = pa.schema([spec.schema.field(k) for k in spec.key])
    earlier = [read_parquet(store, part_path(partition, n), key_schema) for n in state.parts]
    held = [t for t in earlier if t is not None and t.num_rows]
    if not held:
        return table
    # Join the narrow key columns only (Acero takes no nested payload columns), with each row's
    # position, then take the survivors in their original order.
    keys = table.select(list(spec.key)).append_column(SRC, positions(table.num_rows))
    kept = keys.join(pa.concat_tables(held), list(spec.key), join_type="left anti")
    return table.take(np.sort(kept.column(SRC).to_numpy()))


def _remove_leftovers(
    store: Store, partition: Partition, existing: list[str], state: PartsState
) -> None:
    """Delete the directory's Parquet files the state does not name (parts replaced by a full
    compaction, a part whose refresh died before its state was written, a legacy data.parquet),
    with their copies."""
    live = {part_path(partition, n) for n in state.parts}
    for rel in existing:
        if rel and rel not in live:
            store.delete(rel)
            if part_seq(rel) is not None:
                store.delete(copies_path(rel))


# -- copies: every burst's rows of a part, before dedup (what the gap windows need) -----------


def copies_path(part_rel: str) -> str:
    """The copies file beside a part: not Parquet, so readers of `*.parquet` never see it."""
    directory, name = part_rel.rsplit("/", 1)
    return f"{directory}/_copies-{name.removesuffix('.parquet')}.arrow"


def _ipc(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    options = ipc.IpcWriteOptions(compression="zstd")
    with ipc.new_file(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return sink.getvalue()


def read_copies(store: Store, partition: Partition, columns: Sequence[str]) -> pa.Table | None:
    """The copies of every live part of the directory (None: no part yet, or one without
    copies, e.g. written before copies were kept: read bronze instead)."""
    state = read_state(store, partition)
    if state is None or not state.parts:
        return None
    tables = []
    for name in state.parts:
        try:
            data = store.read_bytes(copies_path(part_path(partition, name)))
        except FileNotFoundError:
            return None
        tables.append(ipc.open_file(pa.py_buffer(data)).read_all().select(list(columns)))
    return pa.concat_tables(tables) if tables else None
