"""Refreshing hours without Dagster: what `orderbook-pipeline compact` runs after CLI captures.

The same refresh as a Dagster refresh run (refresh/hour.py): every configured stream's silver,
gap windows, checks and marts (with their gold Parquet files), hour by hour. Hours that are over
are refreshed to their end. The current hour is refreshed up to now when no capture writes
into it (`settle=False`: the CLI checks that no burst on this machine holds its lock), else up
to what has settled, as a Dagster refresh would.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

from orderbook_pipeline.checks.specs import GAP_WINDOWS, checks_on
from orderbook_pipeline.config import PipelineConfig
from orderbook_pipeline.refresh.hour import HourReport, mart_session, refresh_hour
from orderbook_pipeline.refresh.scope import hour_scope, silver_lanes, venue_scopes
from orderbook_pipeline.refresh.stream import MARTS, Selection
from orderbook_pipeline.resources import MartDuckDB
from orderbook_pipeline.storage.layout import HOUR_US, lane_prefix, partition_of
from orderbook_pipeline.storage.store import Store


def everything(config: PipelineConfig) -> Selection:
    """Every silver lane the configuration fills, the gap windows, their marts and checks."""
    lanes = frozenset(silver_lanes(config))
    return Selection(
        lanes=lanes,
        gap_windows=True,
        marts=frozenset(t for t, mart in MARTS.items() if mart.lane in lanes),
        checks=frozenset(c.key for c in checks_on(lanes | {GAP_WINDOWS})),
    )


def bronze_hours(store: Store, config: PipelineConfig) -> list[int]:
    """The hours (µs at their start) holding bronze of a configured stream, oldest first."""
    streams = {(v.venue, s) for v in venue_scopes(config) for s in v.symbols}
    hours = set()
    for lane in sorted({lane for v in venue_scopes(config) for lane in v.lanes}):
        for rel in store.list_files(lane_prefix(lane, "bronze"), ".avro"):
            part = partition_of(rel)
            if part is not None and (part.venue, part.symbol) in streams:
                hours.add(part.hour_start_us)
    return sorted(hours)


def compact_hours(
    store: Store,
    config: PipelineConfig,
    hours: Sequence[int],
    duckdb_path: str,
    should_stop: Callable[[], bool] = lambda: False,
    now_us: int | None = None,
    settle: bool = True,
) -> Iterator[HourReport]:
    """Refresh each of `hours` (µs at their start); a report per hour as it is done.
    `settle=False`: no capture writes any more, so the current hour is taken up to now."""
    selection = everything(config)
    basis = config.mart.time_basis
    threshold = config.capture.coverage_threshold
    # The connection the Dagster runs use: it waits for the file lock and always closes.
    connect = MartDuckDB(database=duckdb_path).get_connection if selection.marts else None
    with mart_session(connect, basis) as marts:
        for hour in hours:
            now = now_us if now_us is not None else time.time_ns() // 1000
            until = hour + HOUR_US if hour + HOUR_US <= now or not settle else None
            scope = hour_scope(config, hour, now, until)
            report = refresh_hour(store, scope, selection, marts, basis, threshold, should_stop)
            yield report
            if report.stopped:
                return
