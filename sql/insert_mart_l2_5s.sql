-- Build one partition of mart_l2_5s from the Arrow relation partition_l2 (silver L2 of every
-- depth, registered by marts/l2_5s.py, event_ts already naive UTC) and the gap_windows table.
-- Records are ordered by (event_ts, last_update_id) inside a bucket: open/close are the first
-- and last, and the realized-volatility returns are taken between consecutive records.
-- has_gap: the bucket [start, start + 5 s) overlaps a gap window (from_ts before the bucket's
-- end, to_ts at or after its start) or holds a gap_detected record.
INSERT INTO mart_l2_5s
WITH recs AS (
    SELECT
        time_bucket(INTERVAL 5 SECOND, event_ts, TIMESTAMP '1970-01-01') AS bucket_start,
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
      AND event_ts >= $hour_start
      AND event_ts < $hour_end
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
        bool_or(gap_detected) AS holds_gap_record
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
    b.holds_gap_record OR EXISTS (
        SELECT 1
        FROM gap_windows AS g
        WHERE g.venue = $venue
          AND g.symbol = $symbol
          AND g.from_ts < b.bucket_start + INTERVAL 5 SECOND
          AND g.to_ts >= b.bucket_start
    ) AS has_gap
FROM buckets AS b
