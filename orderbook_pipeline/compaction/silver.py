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

from collections.abc import Sequence

import pyarrow as pa

from orderbook_pipeline.compaction.avro_arrow import read_avro_tables
from orderbook_pipeline.compaction.dedup import (
    SRC,
    dedup_rows,
    deduplicate,
    positions,
)
from orderbook_pipeline.compaction.increments import (
    CompactionResult,
    Inspect,
    Request,
    Writes,
    compact_batch,
)
from orderbook_pipeline.compaction.parquet_io import (
    SOURCE_FILES_KEY,
    read_parquet,
    silver_source_files,
    write_parquet,
)
from orderbook_pipeline.compaction.parts import live_files
from orderbook_pipeline.lanes.arrow import TS
from orderbook_pipeline.lanes.registry import LANES, lane
from orderbook_pipeline.lanes.spec import EVENT_ORDER, Lane
from orderbook_pipeline.storage.layout import Partition, partition_of
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
    "compact_batch",
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


# -- compaction (increments.py does it; these are the one-directory entry points) -------------


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
    (result,) = compact_batch(store, [Request(spec, partition, cut_us, inspect)])
    return result


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
    # A depth at a time (its decoded bronze alone in memory), each written while the next
    # is decoded and built; the deepest first, while the heap is still unfragmented.
    writes = Writes()
    try:
        for depth in sorted(l2_files_by_depth(store, venue, symbol, hour_start_us), reverse=True):
            partition = Partition("l2", venue, symbol, hour_start_us, depth)
            (result,) = compact_batch(
                store, [Request(LANES["l2"], partition, cut_us, inspect)], writes
            )
            if result is not None:
                results[depth] = result
    except BaseException:
        writes.close(quiet=True)
        raise
    writes.close()
    return dict(sorted(results.items()))


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
