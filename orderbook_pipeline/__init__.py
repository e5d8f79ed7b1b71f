"""orderbook_pipeline: Binance order-book capture, bronze Avro, silver Parquet, DuckDB marts."""

from orderbook_pipeline.dagster_warnings import quiet_known_warnings

# Before any module builds a definition that warns (assets, checks, sensors).
quiet_known_warnings()
