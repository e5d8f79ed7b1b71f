-- Build one partition of mart_l2_5s from the Arrow relation partition_l2 (silver L2 of every
-- depth whose bucket_ts, the time-basis clock, lies in the hour; registered by marts/l2_5s.py,
-- times already naive UTC) and the gap_windows table.
-- Records are ordered by (event_ts, last_update_id) inside a bucket: open/close are the first
-- and last, and the realized-volatility returns are taken between consecutive records.
-- has_gap: the bucket holds a gap_detected record or overlaps a gap window (bucket_has_gap,
-- sql/create_macro_bucket_has_gap.sql).
INSERT INTO mart_l2_5s
WITH recs AS (
    SELECT
        time_bucket(INTERVAL 5 SECOND, bucket_ts, TIMESTAMP '1970-01-01') AS bucket_start,
        depth,
        event_ts,
        last_update_id,
        mid,
        spread_bps,
        imbalance,
        gap_detected
    FROM partition_l2
    WHERE venue = $venue
      AND symbol = $symbol
      AND bucket_ts >= $hour_start
      AND bucket_ts < $hour_end
),
steps AS (
    SELECT
        *,
        ln(mid / lag(mid) OVER (
            PARTITION BY depth, bucket_start ORDER BY event_ts, last_update_id
        )) AS r
    FROM recs
),
buckets AS (
    SELECT
        bucket_start,
        depth,
        count(*) AS n_updates,
        first(mid ORDER BY event_ts, last_update_id) AS mid_open,
        last(mid ORDER BY event_ts, last_update_id) AS mid_close,
        max(mid) AS mid_high,
        min(mid) AS mid_low,
        1e4 * sqrt(coalesce(sum(r * r), 0)) AS realized_vol_bps,
        avg(spread_bps) AS spread_bps_mean,
        max(spread_bps) AS spread_bps_max,
        avg(imbalance) AS imbalance_mean,
        bool_or(gap_detected) AS holds_gap_record,
        min(event_ts) AS event_min,
        max(event_ts) AS event_max
    FROM steps
    GROUP BY bucket_start, depth
)
SELECT
    b.bucket_start,
    $venue AS venue,
    $symbol AS symbol,
    b.depth,
    b.n_updates,
    b.mid_open,
    b.mid_close,
    b.mid_high,
    b.mid_low,
    1e4 * ln(b.mid_close / b.mid_open) AS return_bps,
    b.realized_vol_bps,
    b.spread_bps_mean,
    b.spread_bps_max,
    b.imbalance_mean,
    b.holds_gap_record
        OR bucket_has_gap($venue, $symbol, b.bucket_start, b.event_min, b.event_max) AS has_gap
FROM buckets AS b
