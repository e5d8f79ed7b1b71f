-- One stream partition's rows (an hour of one venue and symbol, every depth), as the gold
-- Parquet file of the partition publishes them for analysts (marts/gold.py).
SELECT *
FROM mart_l2_5s
WHERE venue = $venue
  AND symbol = $symbol
  AND bucket_start >= $hour_start
  AND bucket_start < $hour_end
ORDER BY depth, bucket_start
