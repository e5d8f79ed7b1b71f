"""Silver compaction: one hourly bronze partition of a lane -> deduplicated, sorted Parquet parts.

Bursts overlap on purpose (a new burst starts before the old one ends), so the same exchange
event arrives in several bronze files. Silver keeps exactly one row per key of the lane, the
preferred copy, in the lane's order: all of it said once, in the lane registry (lanes.py).
Every tie is broken, so the result depends only on the set of bronze files, and re-running
gives the same table and the same bytes. Files are written zstd through the store (temporary,
then publish), so a reader sees the old file or the new one, never a half-written one.

An hour is compacted in settled parts (parts.py): each call compacts the rows below `cut_us`
that no earlier call compacted, reading only the bronze files that are new or still hold such
rows; without `cut_us` (a closed hour) everything left is compacted. Every lane goes through the
same `compact_partition`; L2 has one directory per depth.

Everything is columnar: bronze Avro files are decoded once, straight into numpy and Arrow
(avro_arrow.py, no Python object per row); the time range, dedup and sort look at the narrow
columns only (dedup.py); then the wide columns (levels, bids, asks) are cut out of the decoded
bronze directly in the final order, so neither duplicates nor reordering cost a second copy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from orderbook_pipeline.compaction.arrow_schemas import TS
from orderbook_pipeline.compaction.avro_arrow import Decoded, decode_files, read_avro_tables
from orderbook_pipeline.compaction.dedup import (
    EVENT_ORDER,
    SRC,
    dedup_rows,
    deduplicate,
    narrow_columns,
    positions,
)
from orderbook_pipeline.compaction.lanes import LANES, Lane, lane
from orderbook_pipeline.compaction.parquet_io import (
    SOURCE_FILES_KEY,
    read_parquet,
    silver_source_files,
    write_parquet,
)
from orderbook_pipeline.compaction.parts import (
    PartsState,
    add_counters,
    data_files,
    live_files,
    next_seq,
    part_name,
    part_path,
    read_state,
    write_state,
)
from orderbook_pipeline.storage.layout import HOUR_US, Partition, burst_id_of, partition_of
from orderbook_pipeline.storage.store import Store

__all__ = [  # the names other modules (and benchmarks/stages.py) import from here
    "DIFF_KEY",
    "DIFF_PREFERENCE",
    "DIFF_SCHEMA",
    "L2_KEY",
    "L2_PREFERENCE",
    "L2_SCHEMA",
    "ORDER",
    "SOURCE_FILES_KEY",
    "TS",
    "CompactionResult",
    "bronze_files",
    "compact_diffs",
    "compact_l2",
    "compact_lane",
    "compact_partition",
    "dedup_rows",
    "deduplicate",
    "l2_files_by_depth",
    "read_lane_files",
    "read_parquet",
    "read_silver_diffs",
    "read_silver_l2",
    "read_silver_lane",
    "read_with_positions",
    "silver_l2_depths",
    "silver_source_files",
    "write_parquet",
]

L2_SCHEMA = LANES["l2"].schema
DIFF_SCHEMA = LANES["diffs"].schema
L2_KEY, L2_PREFERENCE = LANES["l2"].key, LANES["l2"].preference
DIFF_KEY, DIFF_PREFERENCE = LANES["diffs"].key, LANES["diffs"].preference
ORDER = EVENT_ORDER


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


# -- reading bronze ---------------------------------------------------------------------------


def bronze_files(store: Store, lane: str, venue: str, symbol: str, hour_start_us: int) -> list[str]:
    """Final .avro files of one hourly bronze partition (all depths for l2), path-sorted."""
    prefix = Partition(lane, venue, symbol, hour_start_us).directory("bronze") + "/"
    return store.list_files(prefix, suffix=".avro")


def l2_files_by_depth(
    store: Store, venue: str, symbol: str, hour_start_us: int
) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for rel in bronze_files(store, "l2", venue, symbol, hour_start_us):
        p = partition_of(rel)
        if p is not None and p.depth is not None:
            out.setdefault(p.depth, []).append(rel)
    return dict(sorted(out.items()))


def _directory_files(store: Store, partition: Partition) -> list[str]:
    """Bronze files directly in one partition directory (one depth of l2), path-sorted."""
    directory = partition.directory("bronze")
    return [
        rel
        for rel in store.list_files(directory + "/", suffix=".avro")
        if rel.rsplit("/", 1)[0] == directory
    ]


def read_lane_files(store: Store, paths: Sequence[str], schema: pa.Schema) -> pa.Table:
    """All records of `paths`, in path then record order, as one table of `schema` (a subset
    of the lane's fields: the others are stepped over, never materialized)."""
    table = read_avro_tables((store.read_bytes(rel) for rel in paths), schema.names)
    return schema.empty_table() if table is None else table.cast(schema)


def read_with_positions(store: Store, paths: Sequence[str], schema: pa.Schema) -> pa.Table:
    """read_lane_files plus the input-position column dedup breaks its last ties with."""
    table = read_lane_files(store, paths, schema)
    return table.append_column(SRC, positions(table.num_rows))


# -- compaction -------------------------------------------------------------------------------


@dataclass
class _Read:
    """Bronze files decoded for one call: per group, the partition time of every row, and per
    file its smallest and largest partition time."""

    paths: list[str]
    decoded: list[Decoded]
    times: list[np.ndarray]
    first: dict[str, int]
    last: dict[str, int]

    @classmethod
    def of(cls, store: Store, paths: Sequence[str], ts_field: str) -> _Read:
        decoded = decode_files(store.read_bytes(rel) for rel in paths)
        times = [_micros(d.table([ts_field]).column(0)) for d in decoded]
        first: dict[str, int] = {}
        last: dict[str, int] = {}
        names = iter(paths)
        for d, ts in zip(decoded, times, strict=True):
            at = 0
            for n in d.file_rows:
                rel = next(names)
                if n:
                    first[rel], last[rel] = int(ts[at : at + n].min()), int(ts[at : at + n].max())
                at += n
        return cls(list(paths), decoded, times, first, last)

    def picks(self, lo: int, hi: int) -> list[np.ndarray]:
        """Per group, the rows with lo <= partition time < hi, in input order."""
        return [np.flatnonzero((ts >= lo) & (ts < hi)) for ts in self.times]


def _micros(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(column.cast(pa.int64()).fill_null(-1).to_numpy(), np.int64)


def _deduplicated(read: _Read, picks: list[np.ndarray], spec: Lane) -> pa.Table:
    """One row per key among the picked rows, the preferred copy, in the lane's order. The
    wide columns are built once, straight in the final order, when one group holds them all."""
    schema = spec.schema
    groups = [(d, rows) for d, rows in zip(read.decoded, picks, strict=True) if len(rows)]
    if len(groups) == 1:
        d, rows = groups[0]
        narrow = d.table(narrow_columns(spec.key, spec.preference, spec.order), rows)
        kept = dedup_rows(narrow, spec.key, spec.preference, spec.order)
        final = rows if kept is None else rows[kept]
        return d.table(schema.names, final).cast(schema)
    tables = [d.table(schema.names, rows).cast(schema) for d, rows in groups]
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    return deduplicate(table, spec.key, spec.preference, spec.order)


def _distinct_keys(read: _Read, picks: list[np.ndarray], spec: Lane) -> int:
    """Distinct keys among the picked rows, counted by a hash group-by (not the dedup's sort),
    so the reconcile check compares two independent countings."""
    tables = [
        d.table(list(spec.key), rows)
        for d, rows in zip(read.decoded, picks, strict=True)
        if len(rows)
    ]
    if not tables:
        return 0
    return pa.concat_tables(tables).group_by(list(spec.key)).aggregate([]).num_rows


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


# Looks at each new part's table before it is written; what it counts is kept in the state.
Inspect = Callable[[pa.Table], Mapping[str, int]]


def compact_partition(
    store: Store,
    spec: Lane,
    partition: Partition,
    cut_us: int | None = None,
    inspect: Inspect | None = None,
) -> CompactionResult | None:
    """Compact the settled rows of one silver partition directory that are not compacted yet
    into a new part (see parts.py); `cut_us` None compacts the whole hour. None when the
    partition has no bronze at all. `inspect` sees every part written (a check counting
    something in it: the counts add up in the state, so nothing is read twice)."""
    paths = _directory_files(store, partition)
    if not paths:
        return None
    hour_end = partition.hour_start_us + HOUR_US
    cut = hour_end if cut_us is None else max(partition.hour_start_us, min(cut_us, hour_end))
    existing = data_files(store, partition)
    old = read_state(store, partition)
    bursts = sorted({burst_id_of(p) for p in paths})
    digest = "" if spec.incremental else _digest(store, paths)
    if not spec.incremental:
        if (
            old is not None
            and old.digest == digest
            and old.cut_us >= cut
            and old.files.keys() == set(paths)
        ):
            return CompactionResult(0, 0, 0, bursts, "", old, False)
        old = None  # rewritten in place: compacted whole every time it changed
    # From scratch: no state, a bronze file gone, or a live part gone (deleted by hand).
    full = (
        old is None
        or not set(old.files) <= set(paths)
        or not {part_path(partition, n) for n in old.parts} <= set(existing)
    )
    read: _Read | None = None
    if old is not None and not full:
        new = [p for p in paths if p not in old.files]
        if not new and cut <= old.cut_us:
            _remove_leftovers(store, partition, existing, old)
            return CompactionResult(0, 0, 0, bursts, "", old, False)
        read = _Read.of(store, sorted({*new, *old.pending_files()}), spec.partition_ts)
        # A new file with rows below the cut arrived late (salvaged temporaries): the parts
        # already written lack them, so the directory is compacted again from all its bronze.
        full = any(read.first.get(p, cut) < old.cut_us for p in new)
    if full or old is None:
        read = _Read.of(store, paths, spec.partition_ts)
        base = PartsState(cut_us=partition.hour_start_us)
        lo = -(2**62)  # every row below the cut, whatever its time
    else:
        base, lo = old, old.cut_us
    assert read is not None
    picks = read.picks(lo, cut)
    table = _deduplicated(read, picks, spec)
    if not full:
        table = _without_earlier_keys(store, table, partition, base, spec)
    if spec.finish is not None:
        table = spec.finish(table, None if full else base.carry)
    rows_in = int(sum(len(p) for p in picks))
    files = {**({} if full else base.files), **read.last}
    for rel in paths:  # an empty file (no records) has nothing to give either
        files.setdefault(rel, -1)
    parts = () if full else base.parts
    carry = base.carry if not full else None
    rel = ""
    counters = {} if full else base.counters
    if table.num_rows and inspect is not None:
        counters = add_counters(counters, dict(inspect(table)))
    if table.num_rows:
        rel = part_path(partition, part_name(next_seq(existing)))
        write_parquet(store, rel, table, source_files=read.paths)
        parts = (*parts, rel.rsplit("/", 1)[1])
        if spec.carry is not None:
            carry = int(table.column(spec.carry)[-1].as_py())
    state = PartsState(
        cut_us=cut,
        parts=parts,
        files=files,
        rows=(0 if full else base.rows) + table.num_rows,
        bronze_rows=(0 if full else base.bronze_rows) + rows_in,
        bronze_keys=(0 if full else base.bronze_keys) + _distinct_keys(read, picks, spec),
        carry=carry,
        counters=counters,
        digest=digest,
    )
    write_state(store, partition, state)
    _remove_leftovers(store, partition, [*existing, rel] if rel else existing, state)
    return CompactionResult(rows_in, table.num_rows, len(read.paths), bursts, rel, state, full)


def _digest(store: Store, paths: Sequence[str]) -> str:
    sha = hashlib.sha1()
    for rel in paths:
        sha.update(rel.encode())
        sha.update(store.read_bytes(rel))
    return sha.hexdigest()


def _remove_leftovers(
    store: Store, partition: Partition, existing: list[str], state: PartsState
) -> None:
    """Delete the directory's Parquet files the state does not name (parts replaced by a full
    compaction, a part whose refresh died before its state was written, a legacy data.parquet)."""
    live = {part_path(partition, n) for n in state.parts}
    for rel in existing:
        if rel and rel not in live:
            store.delete(rel)


def compact_l2(
    store: Store,
    venue: str,
    symbol: str,
    hour_start_us: int,
    cut_us: int | None = None,
    inspect: Inspect | None = None,
) -> dict[int, CompactionResult]:
    """Compact every depth of the bronze L2 partition into silver (one directory per depth);
    {} if there is no bronze."""
    results: dict[int, CompactionResult] = {}
    for depth in l2_files_by_depth(store, venue, symbol, hour_start_us):
        partition = Partition("l2", venue, symbol, hour_start_us, depth)
        result = compact_partition(store, LANES["l2"], partition, cut_us, inspect)
        if result is not None:
            results[depth] = result
    return results


def compact_lane(
    store: Store,
    name: str,
    venue: str,
    symbol: str,
    hour_start_us: int,
    cut_us: int | None = None,
    inspect: Inspect | None = None,
) -> CompactionResult | None:
    """Compact the bronze partition of any lane but l2 (compact_l2: one directory per depth)
    into `silver/<lane>/.../part-NNNNN.parquet`; None if there is no bronze."""
    spec = lane(name)
    if spec.per_depth:
        raise ValueError(f"lane {name!r} is compacted per depth: use compact_l2")
    partition = Partition(name, venue, symbol, hour_start_us)
    return compact_partition(store, spec, partition, cut_us, inspect)


def compact_diffs(
    store: Store, venue: str, symbol: str, hour_start_us: int, cut_us: int | None = None
) -> CompactionResult | None:
    return compact_lane(store, "diffs", venue, symbol, hour_start_us, cut_us)


# -- reading silver ---------------------------------------------------------------------------


def _columns(schema: pa.Schema, columns: Sequence[str] | None) -> pa.Schema:
    return schema if columns is None else pa.schema([schema.field(c) for c in columns])


def _read_partition(store: Store, partition: Partition, schema: pa.Schema) -> list[pa.Table]:
    tables = [read_parquet(store, rel, schema) for rel in live_files(store, partition)]
    return [t for t in tables if t is not None]


def silver_l2_depths(store: Store, venue: str, symbol: str, hour_start_us: int) -> list[int]:
    """Depths that have silver L2 for the partition, ascending."""
    prefix = Partition("l2", venue, symbol, hour_start_us).directory("silver") + "/"
    depths = set()
    for rel in store.list_files(prefix, suffix=".parquet"):
        p = partition_of(rel)
        if p is not None and p.depth is not None:
            depths.add(p.depth)
    return sorted(depths)


def read_silver_l2(
    store: Store,
    venue: str,
    symbol: str,
    hour_start_us: int,
    depth: int | None = None,
    columns: Sequence[str] | None = None,
) -> pa.Table:
    """Silver L2 of one depth, or of every depth (ascending depth) when depth is None; only
    `columns` if given (the levels are most of the file: skip them when not needed).

    An absent partition gives an empty table with the silver schema (or those columns).
    """
    schema = _columns(L2_SCHEMA, columns)
    depths = [depth] if depth is not None else silver_l2_depths(store, venue, symbol, hour_start_us)
    tables = []
    for d in depths:
        tables += _read_partition(store, Partition("l2", venue, symbol, hour_start_us, d), schema)
    return pa.concat_tables(tables) if tables else schema.empty_table()


def read_silver_lane(
    store: Store,
    name: str,
    venue: str,
    symbol: str,
    hour_start_us: int,
    columns: Sequence[str] | None = None,
) -> pa.Table:
    """Silver of one lane's partition (l2: every depth), only `columns` if given; an empty
    table of the silver schema (or those columns) when the partition has no silver file."""
    if lane(name).per_depth:
        return read_silver_l2(store, venue, symbol, hour_start_us, columns=columns)
    schema = _columns(LANES[name].schema, columns)
    tables = _read_partition(store, Partition(name, venue, symbol, hour_start_us), schema)
    return pa.concat_tables(tables) if tables else schema.empty_table()


def read_silver_diffs(store: Store, venue: str, symbol: str, hour_start_us: int) -> pa.Table:
    return read_silver_lane(store, "diffs", venue, symbol, hour_start_us)
