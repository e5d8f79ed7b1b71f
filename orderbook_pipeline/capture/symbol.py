"""One symbol inside a burst: its sync state machine wired to the book lanes (L2, diffs, depth
bands, snapshots), its book verifier (capture/verification.py) and its other stream lanes
(capture/stream_lanes.py)."""

from __future__ import annotations

from itertools import islice
from typing import TYPE_CHECKING

from orderbook_pipeline.capture.clock import BACKWARDS_TOLERANCE_MS, event_time_went_back
from orderbook_pipeline.capture.stream_lanes import StreamLanes
from orderbook_pipeline.capture.verification import BookVerifier
from orderbook_pipeline.core.avro_binary import encode_string
from orderbook_pipeline.core.bands import BandSampler, compute_bands
from orderbook_pipeline.core.book import OrderBook
from orderbook_pipeline.core.events import DiffEvent, Snapshot
from orderbook_pipeline.core.implementation import PYTHON, Core
from orderbook_pipeline.core.sync import BookSync, Outcome, SnapshotOutcome, SyncState
from orderbook_pipeline.storage.layout import HOUR_US, partition_for

if TYPE_CHECKING:
    from orderbook_pipeline.capture.metrics import BurstMetrics
    from orderbook_pipeline.capture.ports import AnyRecordWriter, OpenFile
    from orderbook_pipeline.venues import Venue

# How many recent events are remembered to drop exact repeats: overlapping connections deliver
# the same events twice during a make-before-break reconnect, for a second or two. 256 events
# is 25 s at 100 ms and costs ~25 kB a symbol (4096 cost ~400 kB: 80 MB for 200 symbols). A
# repeat older than that is still never applied twice (the book calls it stale), and silver
# deduplicates the diff lane.
_SEEN_WINDOW = 256

# The diff lane's bids and asks of an event decoded without its strings: two empty arrays.
_NO_LEVELS = b"\x00\x00"

# Causes that come from the transport rather than from the sequence itself.
TRANSPORT_CAUSES = ("reconnect", "stale", "server_shutdown")


class SymbolCapture:
    """Feeds one symbol's events to its BookSync and writes the lanes: the diff lane for each
    distinct event, the L2 lane (one record per depth) for each event applied in sync."""

    def __init__(
        self,
        venue: Venue,
        symbol: str,
        depths: tuple[int, ...],
        burst_id: str,
        writer: AnyRecordWriter,
        metrics: BurstMetrics,
        lanes: tuple[str, ...] = ("l2", "diffs"),
        partial_levels: int = 20,
        band_pcts: tuple[float, ...] = (),
        band_interval_s: float = 1.0,
        core: Core = PYTHON,
    ) -> None:
        self.venue = venue
        self.symbol = symbol
        self.depths = tuple(sorted(depths))
        self.burst_id = burst_id
        self.writer = writer
        self.metrics = metrics
        self.write_diffs = "diffs" in lanes
        self.write_l2 = "l2" in lanes
        # core: the book and L2 encoder implementation the burst chose (core/implementation.py).
        self.core = core
        self.sync = BookSync(venue.sync_rule, self._emit, max_depth=max(depths), new_book=core.book)
        self._l2 = core.l2_encoder(venue.name, symbol, self.depths, burst_id)
        self._diff_prefix = encode_string(venue.name) + encode_string(symbol)
        self._diff_suffix = encode_string(burst_id)
        self._encode_diff = core.depth.encode_diff
        # Open bronze files, kept while they are live and in the event's hour: the diff lane's,
        # and the L2 lane's in the order of self.depths.
        self._diff_file: OpenFile | None = None
        self._l2_files: list[OpenFile] = []
        # Recent events by last id -> first id (insertion ordered), to drop exact repeats.
        self._seen: dict[int, int] = {}
        self._max_seen = -1
        # Set when this symbol's connection was replaced: a loss seen next is blamed on it.
        self.transport_cause: str | None = None
        self.snapshot_reason = "bootstrap"
        self.snapshot_queued = False
        # Top levels kept per event for the exchange's own views of the top (partial depth,
        # bookTicker) to be compared with.
        top_levels = (
            partial_levels if "partial_depth" in lanes else 1 if "book_ticker" in lanes else 0
        )
        self.verifier = BookVerifier(
            venue.name, symbol, burst_id, writer, metrics, top_levels, self._on_mismatch
        )
        self.streams = StreamLanes(
            venue.name,
            symbol,
            burst_id,
            writer,
            metrics,
            self.verifier,
            compiled=core.name == "compiled",
        )
        self._in_emit = False
        # What this burst received of the symbol (depth events, snapshots, other lanes' frames):
        # a requested symbol that got nothing is named in the summary.
        self.received = 0
        self._newest_event_ms = 0
        self._mismatch: str | None = None  # found while applying an event: acted on after it
        # Events received since the book last left sync (0 while in sync): at the burst's end,
        # what a book still rebuilding received that no snapshot of this burst covered.
        self.unsynced = 0
        self.write_bands = "depth_bands" in lanes and bool(band_pcts)
        self.band_pcts = band_pcts
        self._bands = BandSampler.every(band_interval_s)

    # --- events -------------------------------------------------------------------------
    def on_event(self, ev: DiffEvent) -> None:
        self.received += 1
        if ev.event_ms > self._newest_event_ms:
            self._newest_event_ms = ev.event_ms
        elif ev.event_ms < self._newest_event_ms - BACKWARDS_TOLERANCE_MS:
            # Counted once per step: the new timeline is followed from here.
            event_time_went_back(self.metrics, self.symbol, self._newest_event_ms, ev.event_ms)
            self._newest_event_ms = ev.event_ms
        last_id = ev.last_id
        seen = self._seen
        # An exact repeat has a last id at or below the newest seen: only then look it up.
        if last_id <= self._max_seen and seen.get(last_id) == ev.first_id:
            self.metrics.duplicates += 1
            return
        if last_id > self._max_seen:
            self._max_seen = last_id
        seen[last_id] = ev.first_id
        if len(seen) > 2 * _SEEN_WINDOW:  # forget the oldest half, amortised
            self._seen = dict(islice(seen.items(), _SEEN_WINDOW, None))
        if self.write_diffs:
            event_us = ev.event_ms * 1000
            f = self._diff_file
            if f is None or not f.live or not 0 <= event_us - f.partition.hour_start_us < HOUR_US:
                f = self._diff_file = self.writer.handle(
                    partition_for("diffs", self.venue.name, self.symbol, event_us)
                )
            self.writer.append(
                f,
                self._encode_diff(
                    self._diff_prefix,
                    event_us,
                    None if ev.transaction_ms is None else ev.transaction_ms * 1000,
                    ev.ingest_us,
                    ev.first_id,
                    ev.last_id,
                    ev.prev_id,
                    ev.raw_levels or _NO_LEVELS,
                    self._diff_suffix,
                ),
            )
            ev.raw_levels = None  # written: a buffered event need not keep them
        outcome = self.sync.on_event(ev)
        if self._mismatch is not None:
            self._act_on_mismatch()
            return
        if outcome is Outcome.APPLIED:
            self.transport_cause = None  # the chain survived the reconnect: nothing was lost
            self.unsynced = 0
            return
        if outcome is Outcome.STALE:
            self.metrics.stale += 1
            return
        self.unsynced += 1  # buffered, or the one that broke the book (and starts its buffer)
        if outcome is Outcome.GAP:
            self._broken(self.transport_cause or "gap")
        elif outcome is Outcome.CROSSED:
            self._broken("crossed")

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
        if cause == "book_mismatch":
            self.snapshot_reason = cause
        else:
            self.snapshot_reason = "reconnect" if cause in TRANSPORT_CAUSES else "gap"
        self.transport_cause = None
        self.verifier.on_reset()

    def _on_mismatch(self, source: str) -> None:
        """The verifier found the book differs from the exchange's: drop it and resync (after
        the event being applied, if any: the sync machine is mid-call then)."""
        self._mismatch = source
        if not self._in_emit:
            self._act_on_mismatch()

    def _act_on_mismatch(self) -> None:
        self._mismatch = None
        self.sync.reset()
        self._broken("book_mismatch")

    def _emit(self, ev: DiffEvent, book: OrderBook, gap_detected: bool, recovered: bool) -> None:
        metrics = self.metrics
        metrics.applied += 1
        event_us = ev.event_ms * 1000
        metrics.lag_us.append(ev.ingest_us - event_us)
        verifier = self.verifier
        if verifier.active:
            top = None
            if n := verifier.top_levels:  # the top the exchange's own views are checked against
                bid_px, bid_qty = book.bids.top_lists(n)
                ask_px, ask_qty = book.asks.top_lists(n)
                top = (ev.last_id, bid_px, bid_qty, ask_px, ask_qty)
            self._in_emit = True
            try:
                verifier.on_applied(ev, top)
            finally:
                self._in_emit = False
        bands = self._bands
        if self.write_bands and event_us >= bands.next_due_us and bands.due(event_us):
            self._write_bands(ev, book, event_us, gap_detected, recovered)
        if not self.write_l2:
            return
        # Every depth's record, encoded from the book's arrays in one call.
        enc = self._l2
        records = enc.encode_book(
            book,
            event_us,
            ev.ingest_us,
            ev.first_id,
            ev.last_id,
            ev.prev_id,
            gap_detected,
            recovered,
        )
        if records is None:  # a side is empty
            return
        files = self._l2_files
        if not files or not 0 <= event_us - files[0].partition.hour_start_us < HOUR_US:
            files = self._open_l2_files(event_us)
        append = self.writer.append
        for i, data in enumerate(records):
            f = files[i]
            if not f.live:  # published at a size or age bound since the last event
                f = files[i] = self.writer.handle(f.partition)
            append(f, data)
        metrics.l2_records(enc.depths, enc.bid_levels, enc.ask_levels)

    def _write_bands(
        self, ev: DiffEvent, book: OrderBook, event_us: int, gap_detected: bool, recovered: bool
    ) -> None:
        known = self.verifier.known
        out = compute_bands(book, self.band_pcts, known.bid_floor, known.ask_ceiling)
        if out is None:
            return
        mid, bands = out
        self.metrics.lane_records["depth_bands"] += 1
        self.writer.write(
            partition_for("depth_bands", self.venue.name, self.symbol, event_us),
            {
                "venue": self.venue.name,
                "symbol": self.symbol,
                "event_ts": event_us,
                "ingest_ts": ev.ingest_us,
                "last_update_id": ev.last_id,
                "mid": mid,
                "bands": bands,
                "gap_detected": gap_detected,
                "recovered": recovered,
                "burst_id": self.burst_id,
            },
        )

    def _open_l2_files(self, event_us: int) -> list[OpenFile]:
        venue, symbol, handle = self.venue.name, self.symbol, self.writer.handle
        self._l2_files = [
            handle(partition_for("l2", venue, symbol, event_us, depth)) for depth in self.depths
        ]
        return self._l2_files

    def finish(self) -> None:
        """The burst ends: write what the verifier still holds for the book (raises
        StorageError once everything was tried)."""
        self.verifier.finish()

    # --- snapshots ----------------------------------------------------------------------
    @property
    def wants_snapshot(self) -> bool:
        return self.sync.wants_snapshot

    def on_snapshot(
        self, snap: Snapshot, limit: int | None = None, response_us: int = 0
    ) -> SnapshotOutcome:
        """A snapshot for the book (limit: the levels asked for; None: not truncated)."""
        self.received += 1
        self._in_emit = True  # buffered events are replayed onto the new book in this call
        try:
            outcome = self.sync.on_snapshot(snap)
        finally:
            self._in_emit = False
        if outcome in (SnapshotOutcome.SYNCED, SnapshotOutcome.WAITING):
            self.verifier.on_synced(snap, limit or 1 << 62, response_us)
        if outcome is SnapshotOutcome.SYNCED:
            self.unsynced = 0  # the snapshot holds what the buffered events changed
        if self._mismatch is not None:
            self._act_on_mismatch()
            return SnapshotOutcome.GAP
        if outcome is SnapshotOutcome.TOO_OLD:
            self.metrics.snapshots_too_old += 1
        elif outcome is SnapshotOutcome.GAP:
            self._broken("gap")
        elif outcome is SnapshotOutcome.CROSSED:
            self._broken("crossed")
        return outcome
