"""The marts as analysts read them: each mart partition also published as one Parquet file.

The pipeline's DuckDB file has one writer, and DuckDB's file lock lets no reader in beside it
(even a read-only one blocks the writer). So every partition build, once committed, writes the
partition's rows to `gold/{table}/market=…/symbol=…/dt=…/hour=…/data.parquet` (atomically, as
silver is written), local or on S3; `orderbook_pipeline.lake` reads them beside silver. A rebuilt
partition replaces its file, an emptied one leaves a file of no rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from orderbook_pipeline.compaction.parquet_io import write_parquet
from orderbook_pipeline.marts.sql_files import bound_params, sql_statements
from orderbook_pipeline.storage.layout import gold_file
from orderbook_pipeline.storage.store import Store

PREVIEW_ROWS = 5


@dataclass(frozen=True)
class MartPartition:
    """What one partition build published: what the UI shows of it (assets/refresh_events.py)."""

    path: str  # the gold Parquet file, relative to the data root
    rows: int
    gap_buckets: int  # rows with has_gap
    first_bucket: datetime | None  # bucket_start, UTC
    last_bucket: datetime | None
    schema: pa.Schema
    preview: list[dict[str, Any]]  # the first PREVIEW_ROWS rows


def publish_partition(
    conn: duckdb.DuckDBPyConnection,
    store: Store,
    table: str,
    params: Mapping[str, object],
    hour_start_us: int,
) -> MartPartition:
    """Write the committed rows of one partition of `table` (params: venue, symbol, hour
    bounds) as its gold Parquet file."""
    name = f"select_{table}_partition.sql"
    (stmt,) = sql_statements(name)
    rows = conn.sql(stmt, params=bound_params(stmt, params, name)).to_arrow_table()
    rel = gold_file(table, str(params["venue"]), str(params["symbol"]), hour_start_us)
    write_parquet(store, rel, rows)
    starts = rows.column("bucket_start")
    first, last = pc.min(starts).as_py(), pc.max(starts).as_py()
    return MartPartition(
        path=rel,
        rows=rows.num_rows,
        gap_buckets=int(pc.sum(rows.column("has_gap").cast(pa.int64())).as_py() or 0),
        first_bucket=None if first is None else first.replace(tzinfo=UTC),
        last_bucket=None if last is None else last.replace(tzinfo=UTC),
        schema=rows.schema,
        preview=rows.slice(0, PREVIEW_ROWS).to_pylist(),
    )
