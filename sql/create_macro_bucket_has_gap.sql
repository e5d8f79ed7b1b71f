-- The has_gap rule every 5 s mart shares: does a bucket of one venue and symbol overlap a gap
-- window (from_ts before the bucket's end, to_ts at or after its start)? Gap windows are in
-- exchange time, so the bucket spans [bucket_start, bucket_start + 5 s) and the exchange times
-- of its records [event_min, event_max]: on the exchange basis these lie inside the bucket (the
-- bucket alone counts), on the receive basis both clocks count. The marts OR it with "holds a
-- gap_detected record".
CREATE OR REPLACE MACRO bucket_has_gap(m_venue, m_symbol, bucket_start, event_min, event_max) AS
EXISTS (
    SELECT 1
    FROM gap_windows AS g
    WHERE g.venue = m_venue
      AND g.symbol = m_symbol
      AND g.from_ts < greatest(bucket_start + INTERVAL 5 SECOND, event_max + INTERVAL 1 MICROSECOND)
      AND g.to_ts >= least(bucket_start, event_min)
)
