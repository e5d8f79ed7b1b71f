"""Silver layer: hourly bronze Avro compacted into deduplicated Parquet, and gap windows.

What each lane's compaction does (key, preference, order, finish) is defined with the lane, in
lanes/."""
