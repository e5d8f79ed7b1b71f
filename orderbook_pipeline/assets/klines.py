"""Bronze klines: GET /api/v3/klines (spot, Binance.US) or /fapi/v1/klines (USD-M) for every
configured stream of an hourly partition, so the UI can backfill any range of hours (one run).

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

from orderbook_pipeline.assets.keys import bronze_key
from orderbook_pipeline.capture.klines import KlinesReport, fetch_klines
from orderbook_pipeline.resources import CaptureTarget
from orderbook_pipeline.venues import get_venue

BRONZE_KLINES = bronze_key("klines")

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


MAX_FILES_LISTED = 50


def klines_metadata(report: KlinesReport) -> dict[str, Any]:
    """Totals of a fetch, and per interval over its hours and symbols."""
    by_interval: dict[str, dict[str, int]] = {}
    for h in report.hours:
        row = by_interval.setdefault(
            h.interval, {"rows": 0, "expected": 0, "missing": 0, "unclosed": 0, "written": 0}
        )
        row["rows"] += h.stored
        row["expected"] += h.expected
        row["missing"] += h.missing
        row["unclosed"] += h.unclosed
        row["written"] += h.status == "written"
    files = [h.path for h in report.hours if h.status != "empty"]
    return {
        "rows": sum(h.stored for h in report.hours),
        "expected_rows": sum(h.expected for h in report.hours),
        "missing": sum(h.missing for h in report.hours),
        "intervals": dg.MetadataValue.json(by_interval),
        "file_count": len(files),
        "files": dg.MetadataValue.json(files[:MAX_FILES_LISTED]),
        "requests": report.stats.requests,
        "weight_used": report.stats.weight,
        "rate_limited": report.stats.rate_limited,
    }


def build_klines_asset(partitions: dg.TimeWindowPartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=BRONZE_KLINES,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name="bronze",
        kinds={"avro"},
        description=(
            "Closed klines whose open time lies in the hour, for every configured stream, one "
            "Avro file per interval, fetched from the venue's REST klines endpoint; re-running "
            "replaces the files (idempotent). A range of hours is one run."
        ),
    )
    def bronze_klines(
        context: dg.AssetExecutionContext, capture_target: CaptureTarget
    ) -> dg.MaterializeResult[None]:
        window = context.partition_time_window
        start_ms = int(window.start.timestamp() * 1000)
        end_ms = int(window.end.timestamp() * 1000)
        meta: dict[str, Any] = {}
        for venue_name in capture_target.venue_names():
            report = _run_coroutine(
                fetch_klines(
                    venue=get_venue(venue_name),
                    symbols=capture_target.symbols_for(venue_name),
                    intervals=capture_target.kline_intervals_for(venue_name),
                    start_ms=start_ms,
                    end_ms=end_ms,
                    store=capture_target.store(),
                    rest_base=capture_target.endpoints(venue_name)[1],
                    burst_id=f"klines-{context.run.run_id}",
                )
            )
            for name, value in klines_metadata(report).items():
                meta[name] = _merged(meta.get(name), value)
        if meta.get("missing"):
            context.log.info(
                "%s: %d of %d klines not stored (not closed yet, or the exchange has none)",
                context.partition_key_range,
                meta["missing"],
                meta["expected_rows"],
            )
        return dg.MaterializeResult(metadata=meta)

    return bronze_klines


def _merged(before: Any, value: Any) -> Any:
    """Two venues' metadata values of one name, combined (counts add up, lists join)."""
    if before is None:
        return value
    if isinstance(value, int):
        return before + value
    if isinstance(value, dg.JsonMetadataValue):
        a, b = before.data, value.data
        if isinstance(a, dict) and isinstance(b, dict):
            return dg.MetadataValue.json({**a, **b})
        return dg.MetadataValue.json([*(a or ()), *(b or ())])
    return value
