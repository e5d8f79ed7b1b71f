-- The 5-second percent-band depth mart: one row per (venue, symbol, band_pct, bucket_start)
-- for every 5 s UTC bucket holding at least one depth_bands sample. band_pct: the band's
-- distance from mid in percent (bids >= mid * (1 - pct/100), asks <= mid * (1 + pct/100)).
-- Means are over the bucket's samples; *_last is the last sample by exchange order.
-- bucket_start is a TIMESTAMP without time zone that holds UTC (see mart_settings for the
-- clock it is cut on).
CREATE TABLE IF NOT EXISTS mart_depth_bands_5s (
    bucket_start TIMESTAMP NOT NULL,
    venue VARCHAR NOT NULL,
    symbol VARCHAR NOT NULL,
    band_pct DOUBLE NOT NULL,
    n_samples BIGINT NOT NULL,
    bid_qty_mean DOUBLE NOT NULL,
    ask_qty_mean DOUBLE NOT NULL,
    bid_notional_mean DOUBLE NOT NULL,
    ask_notional_mean DOUBLE NOT NULL,
    bid_qty_last DOUBLE NOT NULL,
    ask_qty_last DOUBLE NOT NULL,
    bid_notional_last DOUBLE NOT NULL,
    ask_notional_last DOUBLE NOT NULL,
    complete BOOLEAN NOT NULL,
    has_gap BOOLEAN NOT NULL,
    PRIMARY KEY (venue, symbol, band_pct, bucket_start)
)
