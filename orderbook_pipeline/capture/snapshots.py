"""Bootstrap and resync snapshots: a queue of books that want one, a few workers that fetch them
under the weight budget, and the snapshot lane's records.

A book asks once (`request`) and stays queued until a worker has tried; a worker asks again for
it afterwards if the book still wants one (a snapshot too old for the buffered events, a failed
request), so every book waiting for a snapshot is always either queued or being fetched.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from orderbook_pipeline.capture.rest import RestError, UnknownSymbol
from orderbook_pipeline.core.records import build_snapshot_record
from orderbook_pipeline.core.sync import SnapshotOutcome
from orderbook_pipeline.storage.layout import partition_for
from orderbook_pipeline.storage.store import StorageError

if TYPE_CHECKING:
    from orderbook_pipeline.capture.metrics import BurstMetrics
    from orderbook_pipeline.capture.ports import (
        AnyRecordWriter,
        SnapshotFetcher,
        StorageFailureHandler,
    )
    from orderbook_pipeline.capture.rest import SnapshotResponse
    from orderbook_pipeline.capture.symbol import SymbolCapture
    from orderbook_pipeline.core.events import Snapshot
    from orderbook_pipeline.venues import Venue

log = logging.getLogger("orderbook_pipeline.capture")

TOO_OLD_RETRY_S = 0.2  # the buffered events are newer than the snapshot: ask again soon
FAILED_RETRY_S = 1.0  # the request failed (its retries spent): pause this worker


def write_snapshot(
    writer: AnyRecordWriter,
    venue: Venue,
    symbol: str,
    snap: Snapshot,
    resp: SnapshotResponse,
    reason: str,
    burst_id: str,
) -> None:
    """File a snapshot the book was built from (by response time: spot snapshots carry no
    exchange time)."""
    writer.write(
        partition_for("snapshots", venue.name, symbol, resp.response_us),
        build_snapshot_record(
            venue.name,
            symbol,
            snap.last_update_id,
            snap.raw_bids,
            snap.raw_asks,
            resp.request_us,
            resp.response_us,
            resp.limit,
            resp.used_weight_1m,
            reason,
            burst_id,
        ),
    )


class SnapshotWorkers:
    def __init__(
        self,
        fetcher: SnapshotFetcher,
        writer: AnyRecordWriter,
        venue: Venue,
        burst_id: str,
        limit: int,
        metrics: BurstMetrics,
        on_storage_failure: StorageFailureHandler,
    ) -> None:
        self.fetcher = fetcher
        self.writer = writer
        self.venue = venue
        self.burst_id = burst_id
        self.limit = limit
        self.metrics = metrics
        self.on_storage_failure = on_storage_failure
        self._queue: asyncio.Queue[SymbolCapture] = asyncio.Queue()

    def request(self, cap: SymbolCapture) -> None:
        """Queue the book for a snapshot if it wants one and is not queued yet."""
        if cap.wants_snapshot and not cap.snapshot_queued:
            cap.snapshot_queued = True
            self._queue.put_nowait(cap)

    async def work(self) -> None:
        """One worker: runs until cancelled."""
        while True:
            cap = await self._queue.get()
            try:
                await self._snapshot(cap)
            finally:
                cap.snapshot_queued = False
            self.request(cap)

    async def _snapshot(self, cap: SymbolCapture) -> None:
        if not cap.wants_snapshot:
            return
        try:
            await self._snapshot_for(cap)
        finally:
            cap.sync.snapshot_in_flight = False

    async def _snapshot_for(self, cap: SymbolCapture) -> None:
        limit = self.limit

        def sent() -> None:  # from now on every buffered event may be needed to bridge
            cap.sync.snapshot_in_flight = True

        try:
            resp = await self.fetcher.depth(cap.symbol, limit, before_send=sent)
            snap = resp.snapshot
        except UnknownSymbol as exc:
            log.error("%s: snapshot refused (%s)", cap.symbol, exc)
            return
        except RestError as exc:
            self.metrics.rest_error("snapshot", f"{cap.symbol}: {exc}")
            await asyncio.sleep(FAILED_RETRY_S)
            return
        self.metrics.snapshots += 1
        reason = cap.snapshot_reason
        outcome = cap.on_snapshot(snap, limit, resp.response_us)
        if outcome is SnapshotOutcome.TOO_OLD:
            await asyncio.sleep(TOO_OLD_RETRY_S)
            return
        if outcome is SnapshotOutcome.NOT_WANTED:
            return
        try:
            write_snapshot(self.writer, self.venue, cap.symbol, snap, resp, reason, self.burst_id)
        except StorageError as exc:
            self.on_storage_failure(exc)
