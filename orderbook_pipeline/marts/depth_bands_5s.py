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

import duckdb

from orderbook_pipeline.compaction.gaps import read_gap_windows
from orderbook_pipeline.compaction.silver import read_silver_lane
from orderbook_pipeline.marts.partition import (
    GAP_DELETE,
    GAP_INSERT,
    GAPS_RELATION,
    TIME_BASES,
    build_partition,
    ensure_tables,
    partition_params,
    records_of_hour,
)
from orderbook_pipeline.storage.store import Store

BANDS_RELATION = "partition_depth_bands"
BUILD_FILES = (
    GAP_DELETE,
    "delete_mart_depth_bands_5s_partition.sql",
    GAP_INSERT,
    "insert_mart_depth_bands_5s.sql",
)
_COLUMNS = ("venue", "symbol", "event_ts", "last_update_id", "bands", "gap_detected")
_COUNT = (
    "SELECT count(*) FROM mart_depth_bands_5s WHERE venue = $venue AND symbol = $symbol"
    " AND bucket_start >= $hour_start AND bucket_start < $hour_end"
)


def build_depth_bands_partition(
    conn: duckdb.DuckDBPyConnection,
    store: Store,
    venue: str,
    symbol: str,
    hour_start_us: int,
    time_basis: str = "exchange",
) -> int:
    """(Re)build the partition's rows of `gap_windows` and `mart_depth_bands_5s`; return the
    mart rows."""
    ensure_tables(conn, time_basis)
    columns = list(dict.fromkeys([*_COLUMNS, TIME_BASES[time_basis]]))
    bands = records_of_hour(
        lambda h: read_silver_lane(store, "depth_bands", venue, symbol, h, columns),
        hour_start_us,
        time_basis,
    )
    relations = {
        BANDS_RELATION: bands,
        GAPS_RELATION: read_gap_windows(store, venue, symbol, hour_start_us),
    }
    params = partition_params(venue, symbol, hour_start_us)
    return build_partition(conn, relations, BUILD_FILES, params, _COUNT)
