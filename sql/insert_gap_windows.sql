-- Load one partition's gap windows from the Arrow relation partition_gap_windows (registered
-- by marts/l2_5s.py, timestamps already naive UTC). The filter matches the delete exactly.
INSERT INTO gap_windows
SELECT venue, symbol, hour_start, from_update_id, to_update_id, from_ts, to_ts, cause, bursts
FROM partition_gap_windows
WHERE venue = $venue
  AND symbol = $symbol
  AND hour_start >= $hour_start
  AND hour_start < $hour_end
