"""Silver compaction: one hourly bronze partition -> one deduplicated, sorted Parquet file.

Bursts overlap on purpose (a new burst starts before the old one ends), so the same exchange
event arrives in several bronze files. Silver keeps exactly one row per event:

- L2 (per depth): key last_update_id; among copies prefer the one whose book never had to be
  rebuilt (recovered == False), then gap_detected == False, then the earliest ingest_ts, then the
  smallest burst_id, then the first in path order. Every tie is broken, so the result depends only
  on the set of bronze files, and re-running gives the same table and the same bytes.
- diffs: key (first_update_id, last_update_id); the earliest ingest copy, then smallest burst_id.

Rows are sorted by (event_ts, last_update_id) and written zstd through the store (temporary,
then publish), so a reader sees the old file or the new one, never a half-written one.

Everything is columnar: a partition's bronze Avro files are decoded once, straight into numpy
and Arrow (avro_arrow.py, no Python object per row); dedup and sort look at the narrow key
columns only (Arrow sort + a "first of group" mask, O(n log n)); then the wide columns (levels,
bids, asks) are cut out of the decoded bronze directly in the final order, so neither
duplicates nor reordering cost a second copy of them.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from orderbook_pipeline.compaction.avro_arrow import decode_files, read_avro_tables
from orderbook_pipeline.storage.layout import Partition, burst_id_of, partition_of
from orderbook_pipeline.storage.store import StorageError, Store

TS = pa.timestamp("us", tz="UTC")

# Same names and order as the Avro schemas (storage/schemas.py); nullable only where Avro is.
LEVEL_TYPE = pa.struct(
    [pa.field("side", pa.string()), pa.field("px", pa.float64()), pa.field("qty", pa.float64())]
)
L2_SCHEMA = pa.schema(
    [
        pa.field("venue", pa.string(), nullable=False),
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("event_ts", TS, nullable=False),
        pa.field("ingest_ts", TS, nullable=False),
        pa.field("first_update_id", pa.int64(), nullable=False),
        pa.field("last_update_id", pa.int64(), nullable=False),
        pa.field("prev_update_id", pa.int64()),
        pa.field("depth", pa.int32(), nullable=False),
        pa.field("levels", pa.list_(LEVEL_TYPE), nullable=False),
        pa.field("mid", pa.float64(), nullable=False),
        pa.field("spread_bps", pa.float64(), nullable=False),
        pa.field("imbalance", pa.float64(), nullable=False),
        pa.field("gap_detected", pa.bool_(), nullable=False),
        pa.field("recovered", pa.bool_(), nullable=False),
        pa.field("burst_id", pa.string(), nullable=False),
    ]
)
STRING_LEVEL_TYPE = pa.struct([pa.field("px", pa.string()), pa.field("qty", pa.string())])
DIFF_SCHEMA = pa.schema(
    [
        pa.field("venue", pa.string(), nullable=False),
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("event_ts", TS, nullable=False),
        pa.field("transaction_ts", TS),
        pa.field("ingest_ts", TS, nullable=False),
        pa.field("first_update_id", pa.int64(), nullable=False),
        pa.field("last_update_id", pa.int64(), nullable=False),
        pa.field("prev_update_id", pa.int64()),
        pa.field("bids", pa.list_(STRING_LEVEL_TYPE), nullable=False),
        pa.field("asks", pa.list_(STRING_LEVEL_TYPE), nullable=False),
        pa.field("burst_id", pa.string(), nullable=False),
    ]
)

# Copy preference within one dedup key: the first row after sorting by these wins.
L2_KEY = ("last_update_id",)
L2_PREFERENCE = ("recovered", "gap_detected", "ingest_ts", "burst_id")
DIFF_KEY = ("first_update_id", "last_update_id")
DIFF_PREFERENCE = ("ingest_ts", "burst_id")
ORDER = (("event_ts", "ascending"), ("last_update_id", "ascending"))
_SRC = "__src"  # input position (path order, then record order): the last tie-break


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


def _read_lane_files(store: Store, paths: Sequence[str], schema: pa.Schema) -> pa.Table:
    """read_lane_files plus the _SRC position column."""
    table = read_lane_files(store, paths, schema)
    return table.append_column(_SRC, _positions(table.num_rows))


def _positions(n: int) -> pa.Array:
    return pa.array(np.arange(n, dtype=np.int64))


# -- dedup ------------------------------------------------------------------------------------


def first_of_groups(sorted_table: pa.Table, key: Sequence[str]) -> pa.Array:
    """Boolean mask of the rows that start a new `key` group in a table sorted by `key`."""
    n = sorted_table.num_rows
    if n <= 1:
        return pa.array([True] * n, pa.bool_())
    differs = None
    for k in key:
        col = sorted_table.column(k).combine_chunks()
        step = pc.not_equal(col.slice(1), col.slice(0, n - 1))
        differs = step if differs is None else pc.or_(differs, step)
    return pa.concat_arrays([pa.array([True]), differs])


def _narrow(key: Sequence[str], preference: Sequence[str]) -> list[str]:
    """The columns dedup and ordering look at."""
    return list(dict.fromkeys([*key, *preference, *(c for c, _ in ORDER)]))


def dedup_rows(
    narrow: pa.Table, key: Sequence[str], preference: Sequence[str]
) -> np.ndarray | None:
    """Indices of the rows deduplicate() keeps, in its order; None when that is every row as
    it stands (one per key and in order already: nothing to reorder). The input order (or an
    _SRC column, if given) is the last tie-break."""
    n = narrow.num_rows
    if _SRC not in narrow.column_names:
        narrow = narrow.append_column(_SRC, _positions(n))
    by = [(k, "ascending") for k in (*key, *preference, _SRC)]
    ranked = pc.sort_indices(narrow, sort_keys=by)
    kept = ranked.filter(first_of_groups(narrow.take(ranked), key))
    final = kept.take(pc.sort_indices(narrow.take(kept), sort_keys=list(ORDER))).to_numpy()
    return None if len(final) == n and np.array_equal(final, np.arange(n)) else final


def deduplicate(table: pa.Table, key: Sequence[str], preference: Sequence[str]) -> pa.Table:
    """One row per `key` (the first by `preference`, then input order), sorted by ORDER.

    Only the key, preference and order columns are sorted; the full table is taken once at the
    end, and returned as is when it already was deduplicated and in order.
    """
    narrow_names = _narrow(key, preference) + ([_SRC] if _SRC in table.column_names else [])
    rows = dedup_rows(table.select(narrow_names), key, preference)
    if _SRC in table.column_names:
        table = table.drop_columns([_SRC])
    return table if rows is None else table.take(pa.array(rows))


# -- writing / reading silver -----------------------------------------------------------------


SOURCE_FILES_KEY = b"orderbook_pipeline.source_files"


def write_parquet(
    store: Store, rel_path: str, table: pa.Table, source_files: Sequence[str] = ()
) -> None:
    """Write `table` as zstd Parquet at `rel_path`, atomically (temporary, then publish).

    The bronze files it was compacted from are kept in the file's key-value metadata, so a
    check can reconcile silver with exactly those while bursts keep adding bronze.
    """
    if source_files:
        table = table.replace_schema_metadata({SOURCE_FILES_KEY: json.dumps(list(source_files))})
    temp = store.temp_path_for(rel_path)
    # Statistics only for the flat columns: the nested levels/bids/asks are never filtered on,
    # and their min/max cost a fifth of the write.
    flat = [f.name for f in table.schema if not pa.types.is_nested(f.type)]
    try:
        # One row group per hour keeps the file simple for DuckDB/Athena.
        pq.write_table(
            table, temp, compression="zstd", row_group_size=1 << 20, write_statistics=flat
        )
        store.publish(temp, rel_path)
    except BaseException as exc:
        # A failed write must leave nothing behind: no final file (publish never happened) and
        # no temporary (Parquet cannot be salvaged like bronze Avro).
        with contextlib.suppress(OSError):
            os.remove(temp)
        if isinstance(exc, OSError):
            raise StorageError(f"cannot write {rel_path}: {exc}") from exc
        raise


def read_parquet(store: Store, rel_path: str, schema: pa.Schema) -> pa.Table | None:
    """The table at `rel_path` cast to `schema` (only its columns are decoded), or None if
    there is no such file."""
    try:
        data = store.read_bytes(rel_path)
    except FileNotFoundError:
        return None
    return pq.read_table(io.BytesIO(data), columns=schema.names).cast(schema)


def _compact(
    store: Store, paths: list[str], schema: pa.Schema, key: Sequence[str], preference: Sequence[str]
) -> tuple[pa.Table, int]:
    """(deduplicated table, bronze rows read). Dedup and order are decided on the narrow
    columns; the wide ones (levels, bids, asks) are then built in that order straight from the
    decoded bronze, so duplicates never cost a second copy of them."""
    decoded = decode_files(store.read_bytes(rel) for rel in paths)
    rows_in = sum(d.num_rows for d in decoded)
    if len(decoded) != 1:  # no bronze, or files of different writer schemas
        parts = [d.table(schema.names).cast(schema) for d in decoded]
        table = pa.concat_tables(parts) if parts else schema.empty_table()
        return deduplicate(table, key, preference), rows_in
    (part,) = decoded
    rows = dedup_rows(part.table(_narrow(key, preference)), key, preference)
    return part.table(schema.names, rows).cast(schema), rows_in


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
            table, rows_in = _compact(store, paths, L2_SCHEMA, L2_KEY, L2_PREFERENCE)
            rel = Partition("l2", venue, symbol, hour_start_us, depth).silver_file()
            if writing is not None:
                writing.result()  # raises the previous depth's write error, if any
            writing = writer.submit(write_parquet, store, rel, table, paths)
            results[depth] = _result(rows_in, table, paths, rel)
            del table
        if writing is not None:
            writing.result()
    return dict(sorted(results.items()))


def compact_diffs(
    store: Store, venue: str, symbol: str, hour_start_us: int
) -> CompactionResult | None:
    """Compact the bronze diff partition into silver; None if there is no bronze."""
    paths = bronze_files(store, "diffs", venue, symbol, hour_start_us)
    if not paths:
        return None
    table, rows_in = _compact(store, paths, DIFF_SCHEMA, DIFF_KEY, DIFF_PREFERENCE)
    rel = Partition("diffs", venue, symbol, hour_start_us).silver_file()
    write_parquet(store, rel, table, source_files=paths)
    return _result(rows_in, table, paths, rel)


def silver_source_files(store: Store, rel_path: str) -> list[str] | None:
    """The bronze files a silver file was compacted from, or None (absent file or metadata)."""
    try:
        data = store.read_bytes(rel_path)
    except FileNotFoundError:
        return None
    meta = pq.read_schema(io.BytesIO(data)).metadata or {}
    raw = meta.get(SOURCE_FILES_KEY)
    return None if raw is None else list(json.loads(raw))


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
    schema = L2_SCHEMA if columns is None else pa.schema([L2_SCHEMA.field(c) for c in columns])
    depths = [depth] if depth is not None else silver_l2_depths(store, venue, symbol, hour_start_us)
    tables = []
    for d in depths:
        rel = Partition("l2", venue, symbol, hour_start_us, d).silver_file()
        t = read_parquet(store, rel, schema)
        if t is not None:
            tables.append(t)
    return pa.concat_tables(tables) if tables else schema.empty_table()


def read_silver_diffs(store: Store, venue: str, symbol: str, hour_start_us: int) -> pa.Table:
    rel = Partition("diffs", venue, symbol, hour_start_us).silver_file()
    t = read_parquet(store, rel, DIFF_SCHEMA)
    return t if t is not None else DIFF_SCHEMA.empty_table()
