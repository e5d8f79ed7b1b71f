"""Build one hourly stream partition of the DuckDB 5-second percent-band depth mart.

`mart_depth_bands_5s` (sql/create_mart_depth_bands_5s.sql): from silver depth_bands, one row
per (venue, symbol, band_pct, bucket_start) for every 5 s bucket with a sample:

| column | meaning |
|---|---|
| bucket_start | TIMESTAMP (UTC), start of the 5 s bucket on the time-basis clock (mart_settings) |
| venue, symbol | |
| band_pct | the band: levels within band_pct % of mid (bids >= mid·(1 − pct/100), asks <= mid·(1 + pct/100)) |
| n_samples | depth_bands samples in the bucket (about one a second per burst: overlapping bursts sample apart) |
| bid_qty_mean, ask_qty_mean | mean over the samples of the quantity within the band, per side |
| bid_notional_mean, ask_notional_mean | mean of Σ px·qty within the band, per side |
| bid_qty_last, ask_qty_last, bid_notional_last, ask_notional_last | the bucket's last sample (by event_ts, then last_update_id) |
| complete | every sample's band lay within the levels the book knew exactly (else its sums are a floor) |
| has_gap | the bucket overlaps a gap window or holds a gap_detected sample (as in mart_l2_5s) |

Rebuilt per partition with delete + insert in one transaction (with the partition's gap
windows, which has_gap reads); how partitions, times and the time basis work: partition.py.
"""

from __future__ import annotations

from orderbook_pipeline.marts.partition import Mart

DEPTH_BANDS_5S = Mart(
    table="mart_depth_bands_5s",
    lane="depth_bands",
    relation="partition_depth_bands",
    columns=("venue", "symbol", "event_ts", "last_update_id", "bands", "gap_detected"),
)

build_depth_bands_partition = DEPTH_BANDS_5S.build
