-- Remove one stream partition (the buckets of an hour of one venue and symbol, every band)
-- before it is rebuilt, in the same transaction as the insert.
DELETE FROM mart_depth_bands_5s
WHERE venue = $venue
  AND symbol = $symbol
  AND bucket_start >= $hour_start
  AND bucket_start < $hour_end
