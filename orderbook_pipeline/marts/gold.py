"""The marts as analysts read them: each mart partition also published as one Parquet file.

The pipeline's DuckDB file has one writer, and DuckDB's file lock lets no reader in beside it
(even a read-only one blocks the writer). So every partition build, once committed, writes the
partition's rows to `gold/{table}/market=…/symbol=…/dt=…/hour=…/data.parquet` (atomically, as
silver is written), local or on S3; `orderbook_pipeline.lake` reads them beside silver. A rebuilt
partition replaces its file, an emptied one leaves a file of no rows.
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb

from orderbook_pipeline.compaction.parquet_io import write_parquet
from orderbook_pipeline.marts.sql_files import bound_params, sql_statements
from orderbook_pipeline.storage.layout import gold_file
from orderbook_pipeline.storage.store import Store


def publish_partition(
    conn: duckdb.DuckDBPyConnection,
    store: Store,
    table: str,
    params: Mapping[str, object],
    hour_start_us: int,
) -> str:
    """Write the committed rows of one partition of `table` (params: venue, symbol, hour
    bounds) as its gold Parquet file; the file's relative path."""
    name = f"select_{table}_partition.sql"
    (stmt,) = sql_statements(name)
    rows = conn.sql(stmt, params=bound_params(stmt, params, name)).to_arrow_table()
    rel = gold_file(table, str(params["venue"]), str(params["symbol"]), hour_start_us)
    write_parquet(store, rel, rows)
    return rel
