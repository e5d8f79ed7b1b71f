-- Remove one stream partition (an hour of one venue and symbol, every depth) before it is
-- rebuilt, in the same transaction as the insert.
DELETE FROM mart_l2_5s
WHERE venue = $venue
  AND symbol = $symbol
  AND bucket_start >= $hour_start
  AND bucket_start < $hour_end
