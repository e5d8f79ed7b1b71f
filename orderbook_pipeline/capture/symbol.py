"""One symbol inside a burst: its sync state machine wired to the three bronze lanes."""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Protocol

from orderbook_pipeline.core.book import OrderBook
from orderbook_pipeline.core.events import DiffEvent, Scales, Snapshot
from orderbook_pipeline.core.records import (
    build_diff_record,
    build_l2_records,
    build_snapshot_record,
)
from orderbook_pipeline.core.sync import BookSync, Outcome, SnapshotOutcome, SyncState
from orderbook_pipeline.storage.layout import partition_for

if TYPE_CHECKING:
    from orderbook_pipeline.capture.metrics import BurstMetrics
    from orderbook_pipeline.capture.rest import SnapshotResponse
    from orderbook_pipeline.venues import Venue

# How many recent (U, u) pairs are remembered to drop exact repeats (overlapping connections
# deliver the same events twice during a make-before-break reconnect).
_SEEN_WINDOW = 4096

# Causes that come from the transport rather than from the sequence itself.
TRANSPORT_CAUSES = ("reconnect", "stale", "server_shutdown")


class RecordWriter(Protocol):
    def write(self, partition: object, record: dict[str, object]) -> None: ...


def write_snapshot(
    writer: RecordWriter,
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


class SymbolCapture:
    def __init__(
        self,
        venue: Venue,
        symbol: str,
        scales: Scales,
        depths: tuple[int, ...],
        burst_id: str,
        writer: RecordWriter,
        metrics: BurstMetrics,
    ) -> None:
        self.venue = venue
        self.symbol = symbol
        self.scales = scales
        self.depths = depths
        self.burst_id = burst_id
        self.writer = writer
        self.metrics = metrics
        self.sync = BookSync(venue.sync_rule, self._emit)
        self._seen: OrderedDict[tuple[int, int], None] = OrderedDict()
        # Set when this symbol's connection was replaced: a loss seen next is blamed on it.
        self.transport_cause: str | None = None
        self.snapshot_reason = "bootstrap"
        self.snapshot_queued = False

    # --- events -------------------------------------------------------------------------
    def on_event(self, ev: DiffEvent) -> None:
        key = (ev.first_id, ev.last_id)
        if key in self._seen:
            self.metrics.duplicates += 1
            return
        self._seen[key] = None
        if len(self._seen) > _SEEN_WINDOW:
            self._seen.popitem(last=False)
        self.writer.write(
            partition_for("diffs", self.venue.name, self.symbol, ev.event_ms * 1000),
            build_diff_record(self.venue.name, ev, self.burst_id),
        )
        outcome = self.sync.on_event(ev)
        if outcome is Outcome.STALE:
            self.metrics.stale += 1
        elif outcome is Outcome.GAP:
            self._broken(self.transport_cause or "gap")
        elif outcome is Outcome.CROSSED:
            self._broken("crossed")
        elif outcome is Outcome.APPLIED:
            self.transport_cause = None  # the chain survived the reconnect: nothing was lost

    def on_bad_event(self, reason: str) -> None:
        """A frame for this symbol could not be used: its updates are lost to the book."""
        if self.sync.state is not SyncState.BUFFERING:
            self.sync.reset()
            self._broken(reason)

    def on_transport_break(self, cause: str) -> None:
        if self.sync.state is not SyncState.BUFFERING:
            self.transport_cause = cause

    def _broken(self, cause: str) -> None:
        self.metrics.resync(self.symbol, cause)
        self.snapshot_reason = "reconnect" if cause in TRANSPORT_CAUSES else "gap"
        self.transport_cause = None

    def _emit(self, ev: DiffEvent, book: OrderBook, gap_detected: bool, recovered: bool) -> None:
        self.metrics.applied += 1
        records = build_l2_records(
            self.venue.name,
            ev,
            book,
            self.depths,
            self.scales,
            gap_detected,
            recovered,
            self.burst_id,
        )
        metrics = self.metrics
        for rec in records:
            depth = rec["depth"]
            self.writer.write(
                partition_for("l2", self.venue.name, self.symbol, rec["event_ts"], depth), rec
            )
            metrics.record_filled(depth, len(rec["levels"]))
        metrics.records += len(records)
        metrics.lag_us.append(ev.ingest_us - ev.event_ms * 1000)

    # --- snapshots ----------------------------------------------------------------------
    @property
    def wants_snapshot(self) -> bool:
        return self.sync.wants_snapshot

    def on_snapshot(self, snap: Snapshot) -> SnapshotOutcome:
        outcome = self.sync.on_snapshot(snap)
        if outcome is SnapshotOutcome.TOO_OLD:
            self.metrics.snapshots_too_old += 1
        elif outcome is SnapshotOutcome.GAP:
            self._broken("gap")
        elif outcome is SnapshotOutcome.CROSSED:
            self._broken("crossed")
        return outcome
