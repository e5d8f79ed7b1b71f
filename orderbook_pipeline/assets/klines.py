"""Bronze klines: GET /api/v3/klines (spot, Binance.US) or /fapi/v1/klines (USD-M) for one
hour × stream partition, so the UI can backfill any range of hours.

Intervals come from the venue's `kline_intervals` (default 1m). Those up to 1h divide the hour;
longer ones (2h … 1d, 1w) are stored in the hour their kline opens (1d: hour 00) and the other
hours expect none; 1s, 3d and 1M are refused. Each interval gets one file per hour, replaced
atomically on every run (see capture/klines.py): re-running or re-backfilling never adds a copy,
and an hour fetched while still in progress is completed by running it again later.

Requests go through the same weight budget as the capture: the venue's per-minute limit ×
WEIGHT_SAFETY, paced by the X-MBX-USED-WEIGHT-1M header. That header counts every process on
this IP, so parallel backfill runs see each other's weight; runs starting at the same instant
can still overshoot together, and then wait out the 429's Retry-After. A `dagster/backfill` tag
concurrency limit keeps that rare.
"""

# No `from __future__ import annotations`: Dagster inspects the context annotation at runtime.
import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import dagster as dg

from orderbook_pipeline.capture.klines import KlinesReport, fetch_klines
from orderbook_pipeline.core.klines import HOUR_MS
from orderbook_pipeline.partitions import hour_stream, split_partition_key
from orderbook_pipeline.resources import CaptureTarget
from orderbook_pipeline.venues import get_venue

BRONZE_KLINES = dg.AssetKey(["bronze", "klines"])

T = TypeVar("T")


def _run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run, also when this thread already runs an event loop (Dagster can execute a
    run inside one, e.g. a run launched synchronously by the backfill daemon)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(1, thread_name_prefix="klines") as pool:
        return pool.submit(asyncio.run, coro).result()


def klines_metadata(report: KlinesReport) -> dict[str, Any]:
    by_interval = {
        h.interval: {
            "rows": h.stored,
            "expected": h.expected,
            "missing": h.missing,
            "unclosed": h.unclosed,
            "file": h.status,
        }
        for h in report.hours
    }
    return {
        "rows": sum(h.stored for h in report.hours),
        "expected_rows": sum(h.expected for h in report.hours),
        "missing": sum(h.missing for h in report.hours),
        "intervals": dg.MetadataValue.json(by_interval),
        "files": dg.MetadataValue.json([h.path for h in report.hours if h.status != "empty"]),
        "requests": report.stats.requests,
        "weight_used": report.stats.weight,
        "rate_limited": report.stats.rate_limited,
    }


@dg.asset(
    key=BRONZE_KLINES,
    partitions_def=hour_stream,
    group_name="bronze",
    kinds={"avro"},
    description=(
        "Closed klines whose open time lies in the hour, one Avro file per interval, fetched "
        "from the venue's REST klines endpoint; re-running replaces the files (idempotent)."
    ),
)
def bronze_klines(
    context: dg.AssetExecutionContext, capture_target: CaptureTarget
) -> dg.MaterializeResult[None]:
    venue_name, symbol, hour_us = split_partition_key(context.partition_key)
    venue = get_venue(venue_name)
    hour_ms = hour_us // 1000
    report = _run_coroutine(
        fetch_klines(
            venue=venue,
            symbols=[symbol],
            intervals=capture_target.kline_intervals_for(venue_name),
            start_ms=hour_ms,
            end_ms=hour_ms + HOUR_MS,
            store=capture_target.store(),
            rest_base=capture_target.endpoints(venue_name)[1],
            burst_id=f"klines-{context.run.run_id}",
        )
    )
    meta = klines_metadata(report)
    if meta["missing"]:
        context.log.info(
            "%s: %d of %d klines not stored (not closed yet, or the exchange has none)",
            context.partition_key,
            meta["missing"],
            meta["expected_rows"],
        )
    return dg.MaterializeResult(metadata=meta)
