"""Silver compaction: one hourly bronze partition of a lane -> one deduplicated, sorted Parquet.

Bursts overlap on purpose (a new burst starts before the old one ends), so the same exchange
event arrives in several bronze files. Silver keeps exactly one row per key of the lane, the
preferred copy, in the lane's order: all of it said once, in the lane registry (lanes.py).
Every tie is broken, so the result depends only on the set of bronze files, and re-running
gives the same table and the same bytes. Files are written zstd through the store (temporary,
then publish), so a reader sees the old file or the new one, never a half-written one.

Every lane goes through the same `_compact`; L2 is compacted per depth (one file each).

Everything is columnar: a partition's bronze Avro files are decoded once, straight into numpy
and Arrow (avro_arrow.py, no Python object per row); dedup and sort look at the narrow key
columns only (dedup.py); then the wide columns (levels, bids, asks) are cut out of the decoded
bronze directly in the final order, so neither duplicates nor reordering cost a second copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import pyarrow as pa

from orderbook_pipeline.compaction.arrow_schemas import TS
from orderbook_pipeline.compaction.avro_arrow import decode_files, read_avro_tables
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
from orderbook_pipeline.storage.layout import Partition, burst_id_of, partition_of
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
    "dedup_rows",
    "deduplicate",
    "l2_files_by_depth",
    "read_lane_files",
    "read_parquet",
    "read_silver_diffs",
    "read_silver_l2",
    "read_silver_lane",
    "read_with_positions",
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
    rows_in: int  # bronze records read (all copies)
    rows_out: int  # silver rows written (one per distinct key)
    files_in: int
    bursts: list[str] = field(default_factory=list)  # burst ids of the files read, sorted
    path: str = ""  # relative path of the silver file


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


def _compact(store: Store, paths: list[str], spec: Lane) -> tuple[pa.Table, int]:
    """(deduplicated table, bronze rows read). Dedup and order are decided on the narrow
    columns; the wide ones (levels, bids, asks) are then built in that order straight from the
    decoded bronze, so duplicates never cost a second copy of them."""
    schema = spec.schema
    decoded = decode_files(store.read_bytes(rel) for rel in paths)
    rows_in = sum(d.num_rows for d in decoded)
    if len(decoded) != 1:  # no bronze, or files of different writer schemas
        parts = [d.table(schema.names).cast(schema) for d in decoded]
        table = pa.concat_tables(parts) if parts else schema.empty_table()
        table = deduplicate(table, spec.key, spec.preference, spec.order)
    else:
        (part,) = decoded
        narrow = part.table(narrow_columns(spec.key, spec.preference, spec.order))
        rows = dedup_rows(narrow, spec.key, spec.preference, spec.order)
        table = part.table(schema.names, rows).cast(schema)
    return (table if spec.finish is None else spec.finish(table)), rows_in


def _result(rows_in: int, table: pa.Table, paths: list[str], rel: str) -> CompactionResult:
    bursts = sorted({burst_id_of(p) for p in paths})
    return CompactionResult(rows_in, table.num_rows, len(paths), bursts, rel)


def compact_l2(
    store: Store, venue: str, symbol: str, hour_start_us: int
) -> dict[int, CompactionResult]:
    """Compact every depth of the bronze L2 partition into silver; {} if there is no bronze.

    Depths go deepest first, and each depth's Parquet write (Arrow C++, GIL released) runs in a
    second thread while the next depth is decoded: two cores busy, and never more than one
    table being written and one being decoded in memory.
    """
    results: dict[int, CompactionResult] = {}
    by_depth = l2_files_by_depth(store, venue, symbol, hour_start_us)
    with ThreadPoolExecutor(1, thread_name_prefix="silver-write") as writer:
        writing: Future[None] | None = None
        for depth, paths in sorted(by_depth.items(), reverse=True):
            table, rows_in = _compact(store, paths, LANES["l2"])
            rel = Partition("l2", venue, symbol, hour_start_us, depth).silver_file()
            if writing is not None:
                writing.result()  # raises the previous depth's write error, if any
            writing = writer.submit(write_parquet, store, rel, table, paths)
            results[depth] = _result(rows_in, table, paths, rel)
            del table
        if writing is not None:
            writing.result()
    return dict(sorted(results.items()))


def compact_lane(
    store: Store, name: str, venue: str, symbol: str, hour_start_us: int
) -> CompactionResult | None:
    """Compact the bronze partition of any lane but l2 (compact_l2: one file per depth) into
    `silver/<lane>/.../data.parquet`; None if there is no bronze."""
    spec = lane(name)
    if spec.per_depth:
        raise ValueError(f"lane {name!r} is compacted per depth: use compact_l2")
    paths = bronze_files(store, name, venue, symbol, hour_start_us)
    if not paths:
        return None
    table, rows_in = _compact(store, paths, spec)
    rel = Partition(name, venue, symbol, hour_start_us).silver_file()
    write_parquet(store, rel, table, source_files=paths)
    return _result(rows_in, table, paths, rel)


def compact_diffs(
    store: Store, venue: str, symbol: str, hour_start_us: int
) -> CompactionResult | None:
    return compact_lane(store, "diffs", venue, symbol, hour_start_us)


# -- reading silver ---------------------------------------------------------------------------


def _columns(schema: pa.Schema, columns: Sequence[str] | None) -> pa.Schema:
    return schema if columns is None else pa.schema([schema.field(c) for c in columns])


def silver_l2_depths(store: Store, venue: str, symbol: str, hour_start_us: int) -> list[int]:
    """Depths that have a silver L2 file for the partition, ascending."""
    prefix = Partition("l2", venue, symbol, hour_start_us).directory("silver") + "/"
    depths = set()
    for rel in store.list_files(prefix, suffix=".parquet"):
        p = partition_of(rel)
        if p is not None and p.depth is not None and rel == p.silver_file():
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
        rel = Partition("l2", venue, symbol, hour_start_us, d).silver_file()
        t = read_parquet(store, rel, schema)
        if t is not None:
            tables.append(t)
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
    t = read_parquet(store, Partition(name, venue, symbol, hour_start_us).silver_file(), schema)
    return t if t is not None else schema.empty_table()


def read_silver_diffs(store: Store, venue: str, symbol: str, hour_start_us: int) -> pa.Table:
    return read_silver_lane(store, "diffs", venue, symbol, hour_start_us)
