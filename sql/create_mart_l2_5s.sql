-- The 5-second L2 mart (design.md "5-second mart"): one row per (venue, symbol, depth,
-- bucket_start) for every 5 s UTC bucket of event_ts holding at least one record.
-- bucket_start is a TIMESTAMP without time zone that holds UTC, so no session time zone
-- setting can shift it.
CREATE TABLE IF NOT EXISTS mart_l2_5s (
    bucket_start TIMESTAMP NOT NULL,
    venue VARCHAR NOT NULL,
    symbol VARCHAR NOT NULL,
    depth INTEGER NOT NULL,
    n_updates BIGINT NOT NULL,
    mid_open DOUBLE NOT NULL,
    mid_close DOUBLE NOT NULL,
    mid_high DOUBLE NOT NULL,
    mid_low DOUBLE NOT NULL,
    return_bps DOUBLE NOT NULL,
    realized_vol_bps DOUBLE NOT NULL,
    spread_bps_mean DOUBLE NOT NULL,
    spread_bps_max DOUBLE NOT NULL,
    imbalance_mean DOUBLE NOT NULL,
    has_gap BOOLEAN NOT NULL,
    PRIMARY KEY (venue, symbol, depth, bucket_start)
)
