"""Gold layer: DuckDB marts built from silver Parquet with the SQL files of `sql/`."""

from orderbook_pipeline.marts.depth_bands_5s import build_depth_bands_partition
from orderbook_pipeline.marts.l2_5s import build_mart_partition
from orderbook_pipeline.marts.partition import TIME_BASES, TimeBasisMismatch, ensure_tables
from orderbook_pipeline.marts.sql_files import SQL_DIR, run_sql_file

__all__ = [
    "SQL_DIR",
    "TIME_BASES",
    "TimeBasisMismatch",
    "build_depth_bands_partition",
    "build_mart_partition",
    "ensure_tables",
    "run_sql_file",
]
