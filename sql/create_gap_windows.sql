-- Gap windows of every loaded partition (silver/gap_windows), for analysts and for the mart's
-- has_gap flag. Times are TIMESTAMP without time zone holding UTC, like mart_l2_5s.
-- Update ids are NULL for time holes at an hour's edges and for hours with no capture.
CREATE TABLE IF NOT EXISTS gap_windows (
    venue VARCHAR NOT NULL,
    symbol VARCHAR NOT NULL,
    hour_start TIMESTAMP NOT NULL,
    from_update_id BIGINT,
    to_update_id BIGINT,
    from_ts TIMESTAMP NOT NULL,
    to_ts TIMESTAMP NOT NULL,
    cause VARCHAR NOT NULL,
    bursts VARCHAR NOT NULL
)
