"""Silver layer: hourly bronze Avro compacted into deduplicated Parquet, and gap windows."""
