"""The lake as analysts query it: one DuckDB connection with a table for each silver lane, the
gap windows and each mart, read from the Parquet files, never from the pipeline's DuckDB file.

`connect(store)` works the same on a local data root and on S3: every table is a pyarrow
dataset over the store's filesystem (DuckDB's httpfs extension is never needed, so nothing is
downloaded), registered in an in-memory DuckDB connection. DuckDB pushes column selections and
filters into the scan, and the hive folders (`market=`, `dt=`, `hour=`) prune whole files. The
pipeline keeps writing meanwhile: each file is published atomically, and a query sees the files
that existed when `connect` listed them.

Times are shown in UTC (the connection's TimeZone): silver times are UTC instants, the marts'
`bucket_start` a TIMESTAMP that holds UTC.
"""

from __future__ import annotations

import contextlib
import sys
from typing import IO

import duckdb
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as ds

from orderbook_pipeline.checks.specs import GAP_WINDOWS
from orderbook_pipeline.compaction.gaps import GAP_SCHEMA
from orderbook_pipeline.lanes.registry import LANES
from orderbook_pipeline.marts.sql_files import run_sql_file
from orderbook_pipeline.refresh.stream import MARTS
from orderbook_pipeline.storage.layout import lane_prefix
from orderbook_pipeline.storage.store import Store

# The folder levels every table shares beyond its own columns (venue and symbol are columns of
# every file already; l2's depth too): the hive keys a query can prune files by.
PARTITION_FIELDS = pa.schema([("market", pa.string()), ("dt", pa.date32()), ("hour", pa.int32())])
FORMATS = ("table", "csv", "jsonl")


def _dataset(store: Store, prefix: str, schema: pa.Schema | None) -> ds.Dataset | None:
    """The Parquet files under `prefix`, or None when there are none."""
    base = store.fs_path(prefix.rstrip("/"))
    if store.filesystem.get_file_info(base).type.name != "Directory":
        return None
    full = None if schema is None else pa.unify_schemas([schema, PARTITION_FIELDS])
    found = ds.dataset(
        base,
        schema=full,
        format="parquet",
        filesystem=store.filesystem,
        partitioning=ds.partitioning(PARTITION_FIELDS, flavor="hive"),
    )
    return found if found.files else None


def connect(store: Store) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a table per silver lane (`l2`, `diffs`, `trades`,
    …), `gap_windows` and each mart (`mart_l2_5s`, `mart_depth_bands_5s`). An empty one has
    its columns and no rows, so that a query over a lane not captured yet still runs."""
    conn = duckdb.connect()
    conn.execute("SET TimeZone = 'UTC'")
    silver = {lane: spec.schema for lane, spec in LANES.items()}
    silver[GAP_WINDOWS] = GAP_SCHEMA
    for name, schema in silver.items():
        found = _dataset(store, lane_prefix(name, "silver"), schema)
        empty = pa.unify_schemas([schema, PARTITION_FIELDS]).empty_table()
        conn.register(name, found if found is not None else empty)
    for table in MARTS:
        found = _dataset(store, lane_prefix(table, "gold"), None)
        if found is not None:
            conn.register(table, found)
        else:  # the mart's own columns, from the statement that creates it
            run_sql_file(conn, f"create_{table}.sql", {})
    return conn


def tables() -> list[str]:
    """Every table `connect` provides, in that order."""
    return [*LANES, GAP_WINDOWS, *MARTS]


def write_result(
    relation: duckdb.DuckDBPyRelation | None, fmt: str, max_rows: int, out: IO[str] = sys.stdout
) -> None:
    """Print a query's result: DuckDB's table rendering (at most `max_rows` rows shown, the
    count below), or every row as CSV or JSON lines. A statement without rows prints nothing."""
    if relation is None:
        return
    if fmt == "table":
        with contextlib.redirect_stdout(out):
            relation.show(max_rows=max_rows, max_width=10_000)
        return
    table = relation.to_arrow_table()
    if fmt == "csv":
        sink = pa.BufferOutputStream()
        pacsv.write_csv(table, sink)
        out.write(sink.getvalue().to_pybytes().decode())
    elif fmt == "jsonl":
        for row in table.to_pylist():
            out.write(orjson.dumps(row, default=str).decode() + "\n")
    else:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
