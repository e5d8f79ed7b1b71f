-- Remove one stream partition's gap windows before they are reloaded.
DELETE FROM gap_windows
WHERE venue = $venue
  AND symbol = $symbol
  AND hour_start >= $hour_start
  AND hour_start < $hour_end
