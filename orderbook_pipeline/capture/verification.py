"""One symbol's book checked against the exchange while the burst runs (core/book_comparison.py logic).

- Periodic deep snapshots: compared with the book rolled to their lastUpdateId; every one is
  stored in the `deep_snapshots` lane with its verdict.
- Partial depth (top N) and bookTicker (top 1): compared with the local top at their update id
  whenever the ids line up; the verdict goes into their own records (`book_check`). The exchange's
  view may arrive before the local book reaches its id (another connection), so it waits for it;
  if the book passes the id without landing on it (or is not in sync) it stays `unchecked`.
- When the burst ends (finish), whatever still waits for the book is written as it is: exchange
  views `unchecked`, a deep snapshot `not_compared`.
- Any difference is a `book_mismatches` record (the differing levels, and the last state this
  burst verified as equal) and a resync of the book, which the records then flag.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple

from orderbook_pipeline.core.avro_binary import encode_string
from orderbook_pipeline.core.book import OrderBook
from orderbook_pipeline.core.book_comparison import (
    Comparison,
    KnownRange,
    PendingVerification,
    compare_books,
    compare_top,
    snapshot_range,
)
from orderbook_pipeline.core.events import DiffEvent, Snapshot
from orderbook_pipeline.core.records import string_levels
from orderbook_pipeline.lanes.avro_types import BOOK_CHECK_BYTES
from orderbook_pipeline.storage.layout import HOUR_US, partition_for
from orderbook_pipeline.storage.store import StorageError

if TYPE_CHECKING:
    from orderbook_pipeline.capture.metrics import BurstMetrics
    from orderbook_pipeline.capture.ports import AnyRecordWriter, OpenFile
    from orderbook_pipeline.capture.rest import SnapshotResponse

log = logging.getLogger("orderbook_pipeline.capture")

RECENT_TOPS = 64  # tops of the last events kept for exchange views that arrive late (~6 s)
MAX_WAITING = 256  # exchange views waiting for the book to reach their id, per symbol

Level = tuple[float, float]
MismatchHandler = Callable[[str], None]
# One applied event's top of book: (last id, bid prices, bid quantities, ask prices, ask
# quantities), the very lists the L2 records were encoded from.
Top = tuple[int, list[float], Sequence[float], list[float], Sequence[float]]


class View(NamedTuple):
    """The exchange's own view of the top of book at update_id (a partial depth or bookTicker
    frame), with its lane record encoded up to `book_check`, which the comparison decides."""

    lane: str  # "partial_depth" or "book_ticker"
    update_id: int
    ts_us: int  # the record's partition time
    ingest_us: int
    bids: list[Level]  # best first, the exchange's doubles
    asks: list[Level]
    head: bytes  # the lane's encode_head (lanes/book_ticker.py, lanes/partial_depth.py)


class BookVerifier:
    def __init__(
        self,
        venue: str,
        symbol: str,
        burst_id: str,
        writer: AnyRecordWriter,
        metrics: BurstMetrics,
        top_levels: int,
        on_mismatch: MismatchHandler,
    ) -> None:
        self.venue = venue
        self.symbol = symbol
        self.burst_id = burst_id
        self.writer = writer
        self.metrics = metrics
        self.top_levels = top_levels  # levels kept per recent event (0: no top checks)
        self.on_mismatch = on_mismatch
        self.known = KnownRange()
        self.last_verified: tuple[int, int] | None = None  # (update id, time µs)
        self._pending: PendingVerification | None = None
        self._answer: tuple[Snapshot, SnapshotResponse] | None = None
        self._tops: deque[Top] = deque(maxlen=RECENT_TOPS)
        # update id -> exchange views waiting for the book to get there
        self._waiting: dict[int, list[View]] = {}
        self.in_sync = False
        self._suffix = encode_string(burst_id)
        # Open bronze files of the exchange views' lanes, kept while live and in the hour.
        self._files: dict[str, OpenFile] = {}

    @property
    def active(self) -> bool:
        """Does on_applied need calling? (Keeps the per-event cost at one check otherwise.)"""
        return bool(self.top_levels or self._pending is not None or self._waiting)

    # --- book lifecycle -------------------------------------------------------------------
    def on_synced(self, snap: Snapshot, limit: int, response_us: int) -> None:
        """The book was (re)built from `snap`: it is known exactly within the snapshot's range."""
        self.known = snapshot_range(snap.bids, snap.asks, limit)
        self.last_verified = (snap.last_update_id, response_us)
        self.in_sync = True

    def on_reset(self) -> None:
        """The book was dropped: nothing in flight can be compared any more."""
        self.in_sync = False
        self._tops.clear()
        self._pending = None
        if self._answer is not None:
            snap, resp = self._answer
            self._answer = None
            self._store_deep(snap, resp, "not_compared", "the book was rebuilt before it got there")
        for update_id in sorted(self._waiting):
            for view in self._waiting.pop(update_id):
                self._store_view(view, "unchecked")

    def finish(self) -> None:
        """The burst ends: what still waits for the book will never be compared. Write it now,
        exchange views `unchecked` and a deep snapshot `not_compared`, or it is lost with the
        process (the last seconds' bookTicker and partial depth frames of every burst).

        Every record is tried even after a StorageError (another lane's stream may still be
        fine); the first error is raised at the end."""
        self._pending = None  # a deep snapshot still in flight never answers now
        error: StorageError | None = None
        answer, self._answer = self._answer, None
        if answer is not None:
            self.metrics.waiting_at_end["deep_snapshots"] += 1
            note = "the burst ended before the book got there"
            try:
                self._store_deep(*answer, "not_compared", note)
            except StorageError as exc:
                error = exc
        # By update id, as on_reset: the order the book would have reached them in, which is
        # the order each lane is written in anyway (each lane's ids only rise as it arrives).
        waiting, self._waiting = self._waiting, {}
        for update_id in sorted(waiting):
            for view in waiting[update_id]:
                self.metrics.waiting_at_end[view.lane] += 1
                try:
                    self._store_view(view, "unchecked")
                except StorageError as exc:
                    error = error or exc
        if error is not None:
            raise error

    # --- per applied event ----------------------------------------------------------------
    def on_applied(self, ev: DiffEvent, top: Top | None) -> None:
        """An event was applied; `top` is the book's top after it (when top_levels is set)."""
        last_id = ev.last_id
        if top is not None:
            self._tops.append(top)
        pending = self._pending
        if pending is not None:
            pending.record(ev.first_id, last_id, ev.bids, ev.asks)
            if self._answer is not None and last_id >= self._answer[0].last_update_id:
                self._finish_deep()
        if self._waiting:
            for update_id in [u for u in self._waiting if u <= last_id]:
                for view in self._waiting.pop(update_id):
                    if update_id == last_id:
                        self._check_top(view)
                    else:  # the book jumped over the id: that state was never ours
                        self._store_view(view, "unchecked")

    # --- deep snapshots -------------------------------------------------------------------
    def start_deep(self, book: OrderBook) -> None:
        """A verifying snapshot is about to be sent: copy the book and journal from here."""
        if not self.in_sync:
            self._pending = None
            return
        self._pending = PendingVerification(
            book.last_update_id, dict(book.bids.levels()), dict(book.asks.levels())
        )

    @property
    def verifying(self) -> bool:
        """A deep snapshot's comparison is still open (asked for, or waiting for the book)."""
        return self._pending is not None

    def cancel_deep(self) -> None:
        """The verifying snapshot never came (REST error): stop journaling."""
        self._pending = self._answer = None

    def on_deep_snapshot(self, snap: Snapshot, resp: SnapshotResponse) -> None:
        pending = self._pending
        if pending is None:
            self._store_deep(snap, resp, "not_compared", "the book was not in sync")
            return
        if snap.last_update_id < pending.base_id:
            self._pending = None
            self._store_deep(snap, resp, "not_compared", "the snapshot is older than the book")
            return
        self._answer = (snap, resp)
        if pending.last_id >= snap.last_update_id:
            self._finish_deep()
        # else: compared when the book reaches lastUpdateId (on_applied)

    def _finish_deep(self) -> None:
        assert self._pending is not None and self._answer is not None
        snap, resp = self._answer
        state = self._pending.state_at(snap.last_update_id)
        self._pending = self._answer = None
        if state is None:
            self._store_deep(snap, resp, "not_compared", "no book state at lastUpdateId")
            return
        bids, asks, excluded = state
        result = compare_books(bids, asks, snap.bids, snap.asks, resp.limit, self.known, excluded)
        verdict = "match" if result.matches else "mismatch"
        self._store_deep(snap, resp, verdict, None, result)
        if result.matches:
            self.last_verified = (snap.last_update_id, resp.response_us)
        else:
            self._mismatch("deep_snapshot", snap.last_update_id, resp.response_us, result)

    def _store_deep(
        self,
        snap: Snapshot,
        resp: SnapshotResponse,
        verdict: str,
        note: str | None,
        result: Comparison | None = None,
    ) -> None:
        self.metrics.deep_snapshots[verdict] += 1
        self.metrics.lane_records["deep_snapshots"] += 1
        self.writer.write(
            partition_for("deep_snapshots", self.venue, self.symbol, resp.response_us),
            {
                "venue": self.venue,
                "symbol": self.symbol,
                "last_update_id": snap.last_update_id,
                "request_ts": resp.request_us,
                "response_ts": resp.response_us,
                "limit": resp.limit,
                "used_weight_1m": resp.used_weight_1m,
                "bids": string_levels(snap.raw_bids),
                "asks": string_levels(snap.raw_asks),
                "verify_result": verdict,
                "verify_note": note,
                "compared_levels": result.compared if result else 0,
                "mismatched_levels": len(result.differences) if result else 0,
                "burst_id": self.burst_id,
            },
        )

    # --- partial depth and bookTicker -----------------------------------------------------
    def check_view(self, view: View, book: OrderBook) -> None:
        """Compare an exchange view now if the book is (or was recently) at its update id,
        later if the book has not got there yet, else store it unchecked. Its record is
        written once the verdict is known."""
        if not self.in_sync:
            self._store_view(view, "unchecked")
            return
        if view.update_id > book.last_update_id:
            self._waiting.setdefault(view.update_id, []).append(view)
            if sum(map(len, self._waiting.values())) > MAX_WAITING:  # the book fell far behind
                for stale in self._waiting.pop(min(self._waiting)):
                    self._store_view(stale, "unchecked")
            return
        self._check_top(view)

    def _check_top(self, view: View) -> None:
        tops, update_id = self._tops, view.update_id
        # Usually the newest top (the view came right after its event): no search then.
        if tops and tops[-1][0] == update_id:
            top: Top | None = tops[-1]
        else:
            top = next((t for t in reversed(tops) if t[0] == update_id), None)
        if top is None:
            self._store_view(view, "unchecked")
            return
        _, bid_px, bid_qty, ask_px, ask_qty = top
        nb, na = len(view.bids), len(view.asks)
        local_bids = list(zip(bid_px[:nb], bid_qty[:nb], strict=True))
        local_asks = list(zip(ask_px[:na], ask_qty[:na], strict=True))
        if local_bids == view.bids and local_asks == view.asks:  # the usual case, in C
            self.metrics.cross_checks[f"{view.lane}:match"] += 1
            self._store_view(view, "match")
            return
        result = compare_top(local_bids, local_asks, view.bids, view.asks)
        verdict = "match" if result.matches else "mismatch"
        self.metrics.cross_checks[f"{view.lane}:{verdict}"] += 1
        self._store_view(view, verdict)
        if not result.matches:
            self._mismatch(view.lane, view.update_id, view.ingest_us, result)

    def _store_view(self, view: View, verdict: str) -> None:
        if verdict == "unchecked":
            self.metrics.cross_checks[f"{view.lane}:unchecked"] += 1
        self.metrics.lane_records[view.lane] += 1
        lane, ts_us = view.lane, view.ts_us
        f = self._files.get(lane)
        if f is None or not f.live or not 0 <= ts_us - f.partition.hour_start_us < HOUR_US:
            f = self._files[lane] = self.writer.handle(
                partition_for(lane, self.venue, self.symbol, ts_us)
            )
        self.writer.append(f, b"".join((view.head, BOOK_CHECK_BYTES[verdict], self._suffix)))

    # --- mismatches -----------------------------------------------------------------------
    def _mismatch(self, source: str, update_id: int, detected_us: int, result: Comparison) -> None:
        self.metrics.book_mismatches[source] += 1
        if self.metrics.book_mismatches[source] <= 5:
            first = result.differences[0]
            log.warning(
                "%s: local book differs from the exchange's %s at %d (%d levels, first %s %r: "
                "local %r, exchange %r); resyncing",
                self.symbol,
                source,
                update_id,
                len(result.differences),
                first.side,
                first.px,
                first.local_qty,
                first.exchange_qty,
            )
        verified_id, verified_ts = self.last_verified or (None, None)
        self.metrics.lane_records["book_mismatches"] += 1
        self.writer.write(
            partition_for("book_mismatches", self.venue, self.symbol, detected_us),
            {
                "venue": self.venue,
                "symbol": self.symbol,
                "source": source,
                "update_id": update_id,
                "detected_ts": detected_us,
                "compared_levels": result.compared,
                "last_verified_update_id": verified_id,
                "last_verified_ts": verified_ts,
                "differences": [d.as_record() for d in result.differences],
                "burst_id": self.burst_id,
            },
        )
        self.on_mismatch(source)
