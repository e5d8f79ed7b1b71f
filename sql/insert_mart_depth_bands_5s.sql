-- Build one partition of mart_depth_bands_5s from the Arrow relation partition_depth_bands
-- (silver depth_bands records whose bucket_ts, the time-basis clock, lies in the hour;
-- registered by marts/depth_bands_5s.py, times already naive UTC) and the gap_windows table.
-- Each record's bands are unnested into one sample per band. complete: every sample of the
-- bucket was complete (its band lay within the levels the book knows exactly).
-- has_gap, as in mart_l2_5s: the bucket holds a gap_detected record or overlaps a gap window
-- (bucket_has_gap, sql/create_macro_bucket_has_gap.sql).
INSERT INTO mart_depth_bands_5s
WITH samples AS (
    SELECT
        time_bucket(INTERVAL 5 SECOND, bucket_ts, TIMESTAMP '1970-01-01') AS bucket_start,
        event_ts,
        last_update_id,
        gap_detected,
        unnest(bands, recursive := true)
    FROM partition_depth_bands
    WHERE venue = $venue
      AND symbol = $symbol
      AND bucket_ts >= $hour_start
      AND bucket_ts < $hour_end
),
buckets AS (
    SELECT
        bucket_start,
        pct AS band_pct,
        count(*) AS n_samples,
        avg(bid_qty) AS bid_qty_mean,
        avg(ask_qty) AS ask_qty_mean,
        avg(bid_notional) AS bid_notional_mean,
        avg(ask_notional) AS ask_notional_mean,
        last(bid_qty ORDER BY event_ts, last_update_id) AS bid_qty_last,
        last(ask_qty ORDER BY event_ts, last_update_id) AS ask_qty_last,
        last(bid_notional ORDER BY event_ts, last_update_id) AS bid_notional_last,
        last(ask_notional ORDER BY event_ts, last_update_id) AS ask_notional_last,
        bool_and(complete) AS complete,
        bool_or(gap_detected) AS holds_gap_record,
        min(event_ts) AS event_min,
        max(event_ts) AS event_max
    FROM samples
    GROUP BY bucket_start, pct
)
SELECT
    b.bucket_start,
    $venue AS venue,
    $symbol AS symbol,
    b.band_pct,
    b.n_samples,
    b.bid_qty_mean,
    b.ask_qty_mean,
    b.bid_notional_mean,
    b.ask_notional_mean,
    b.bid_qty_last,
    b.ask_qty_last,
    b.bid_notional_last,
    b.ask_notional_last,
    b.complete,
    b.holds_gap_record
        OR bucket_has_gap($venue, $symbol, b.bucket_start, b.event_min, b.event_max) AS has_gap
FROM buckets AS b
