"""A burst's periodic REST work besides bootstrap snapshots: deep snapshots that verify each book,
and the local clock's offset from the exchange's.

Both go through the same RestClient, so the same request-weight budget paces them; bootstrap and
resync snapshots come first (no deep snapshot is asked for while any book waits for one).
Each task gets what it uses (the books, a REST port, the metrics, a callback for storage
failures), not the burst.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from orderbook_pipeline.capture.rest import RestError, UnknownSymbol
from orderbook_pipeline.core.sync import SyncState
from orderbook_pipeline.storage.store import StorageError

if TYPE_CHECKING:
    from orderbook_pipeline.capture.clock import ClockWatch
    from orderbook_pipeline.capture.metrics import BurstMetrics
    from orderbook_pipeline.capture.ports import ServerClock, SnapshotFetcher, StorageFailureHandler
    from orderbook_pipeline.capture.symbol import SymbolCapture
    from orderbook_pipeline.venues import Venue

log = logging.getLogger("orderbook_pipeline.capture")

# Deep snapshots may use at most this share of the burst's weight budget: the rest stays free
# for resyncs (and other processes on the IP).
DEEP_SHARE = 0.5
POLL_S = 0.25


def deep_interval_s(
    venue: Venue, limit: int, configured_s: float, weight_safety: float, symbols: int
) -> float:
    """The configured interval, stretched so every symbol's deep snapshots fit DEEP_SHARE of the
    per-minute budget."""
    weight = venue.snapshot_weight(limit)
    per_minute = venue.weight_limit_1m * weight_safety * DEEP_SHARE
    affordable = 60.0 * weight * symbols / per_minute
    return max(configured_s, affordable)


async def deep_snapshots(
    caps: Sequence[SymbolCapture],
    fetcher: SnapshotFetcher,
    metrics: BurstMetrics,
    *,
    venue: Venue,
    limit: int,
    configured_s: float,
    weight_safety: float,
    on_storage_failure: StorageFailureHandler,
) -> None:
    """Every interval, one deep snapshot per in-sync symbol, staggered over the interval."""
    interval = deep_interval_s(venue, limit, configured_s, weight_safety, len(caps))
    metrics.deep_snapshot_interval_s = round(interval, 3)
    if interval > configured_s:
        log.warning(
            "deep snapshots every %.0f s instead of %.0f s: %d symbols at %d levels would exceed "
            "%.0f%% of the weight budget",
            interval,
            configured_s,
            len(caps),
            limit,
            DEEP_SHARE * 100,
        )
    start = time.monotonic()
    # The first one for symbol i is due i/n of an interval after the start (once in sync).
    due = {cap.symbol: start + interval * (i + 1) / len(caps) for i, cap in enumerate(caps)}
    while True:
        await asyncio.sleep(POLL_S)
        if any(cap.sync.state is not SyncState.SYNCED for cap in caps if cap.wants_snapshot):
            continue  # a book waits for its snapshot: that one first
        now = time.monotonic()
        for cap in caps:
            # One comparison at a time per book: the last answer may still wait for the book.
            ready = cap.sync.state is SyncState.SYNCED and not cap.verifier.verifying
            if now >= due[cap.symbol] and ready:
                due[cap.symbol] = now + interval
                await _deep_snapshot(cap, fetcher, metrics, limit, on_storage_failure)


async def _deep_snapshot(
    cap: SymbolCapture,
    fetcher: SnapshotFetcher,
    metrics: BurstMetrics,
    limit: int,
    on_storage_failure: StorageFailureHandler,
) -> None:
    try:
        resp = await fetcher.depth(
            cap.symbol, limit, before_send=lambda: cap.verifier.start_deep(cap.sync.book)
        )
        snap = resp.snapshot
    except UnknownSymbol as exc:
        log.error("%s: deep snapshot refused (%s)", cap.symbol, exc)
        return
    except RestError as exc:
        metrics.rest_error("deep_snapshot", f"{cap.symbol}: {exc}")
        cap.verifier.cancel_deep()
        return
    try:
        cap.verifier.on_deep_snapshot(snap, resp)
    except StorageError as exc:
        on_storage_failure(exc)


async def clock_checks(
    exchange: ServerClock, clock: ClockWatch, metrics: BurstMetrics, interval_s: float
) -> None:
    """Measure exchange time minus local time every interval_s, and at once when the local
    clock steps (NTP-style: against the midpoint of the request), into the burst metrics.
    Receive times stay local; this says how far off they are."""
    sent = [0]  # when the last attempt was sent (a retried request counts from its last)

    def stamp() -> None:
        sent[0] = time.time_ns()

    while True:
        try:
            server_ms = await exchange.server_time_ms(before_send=stamp)
            t1 = time.time_ns()
        except RestError as exc:
            metrics.rest_error("time", repr(exc))
        else:
            clock.on_offset(server_ms - (sent[0] + t1) / 2 / 1e6, (t1 - sent[0]) / 1e6)
        await clock.wait_for_check(interval_s)
