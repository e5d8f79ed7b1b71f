-- One stream partition's rows (the buckets of an hour of one venue and symbol, every band), as
-- the gold Parquet file of the partition publishes them for analysts (marts/gold.py).
SELECT *
FROM mart_depth_bands_5s
WHERE venue = $venue
  AND symbol = $symbol
  AND bucket_start >= $hour_start
  AND bucket_start < $hour_end
ORDER BY band_pct, bucket_start
