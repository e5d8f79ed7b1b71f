"""Keeping one symbol's local book in step with the diff stream, exactly as Binance specifies.

Pure logic, no I/O: the capture feeds events and snapshots in, and gets told what happened.
The three rules (README, "What the capture guarantees"; Binance's "How to manage a local order
book correctly"):

- SPOT (current): drop events with u <= book id; an event with U > book id + 1 means loss.
- SPOT_LEGACY (Binance.US): the first event must have U <= id + 1 <= u, then U == previous u + 1.
- FUTURES: drop u < snapshot id; the first event must have U <= id <= u (or pu == id), then
  pu == previous u.

Events already reflected in the book (u <= book id: duplicates, late reorders) are ignored by
every rule rather than treated as loss: applying absolute quantities twice would be harmless, but
emitting a record for them would repeat a book state.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from orderbook_pipeline.core.book import OrderBook
from orderbook_pipeline.core.events import DiffEvent, Snapshot
from orderbook_pipeline.venues import SyncRule


class Verdict(Enum):
    APPLY = "apply"
    STALE = "stale"
    GAP = "gap"


def bridges(rule: SyncRule, book_id: int, ev: DiffEvent) -> Verdict:
    """May `ev` be the first event applied on top of a snapshot whose lastUpdateId is book_id?"""
    if rule is SyncRule.FUTURES:
        if ev.last_id < book_id:
            return Verdict.STALE
        if ev.first_id <= book_id <= ev.last_id or ev.prev_id == book_id:
            return Verdict.APPLY
        return Verdict.GAP
    if ev.last_id <= book_id:
        return Verdict.STALE
    return Verdict.APPLY if ev.first_id <= book_id + 1 else Verdict.GAP


IdArray = npt.NDArray[np.int64]


@overload
def chains(rule: SyncRule, prev_last: int, first: int, prev_id: int) -> bool: ...
@overload
def chains(
    rule: SyncRule, prev_last: IdArray, first: IdArray, prev_id: IdArray
) -> npt.NDArray[np.bool_]: ...
def chains(rule: SyncRule, prev_last: Any, first: Any, prev_id: Any) -> Any:
    """The one continuity rule: does an event (U = first, pu = prev_id) continue one whose last
    update id is prev_last? Futures chain by pu (a null pu, -1, never does); Binance.US needs
    U == u + 1; spot accepts U <= u + 1 (events may overlap the book id). Written with `&`, not
    `and`, so the capture (ints) and the gap windows (whole numpy arrays) share it."""
    if rule is SyncRule.FUTURES:
        return (prev_id >= 0) & (prev_id == prev_last)
    if rule is SyncRule.SPOT_LEGACY:
        return first == prev_last + 1
    return first <= prev_last + 1


def continues(rule: SyncRule, book_id: int, ev: DiffEvent) -> Verdict:
    """May `ev` be applied on top of a book that has applied events up to book_id?"""
    if ev.last_id <= book_id:
        return Verdict.STALE
    prev_id = -1 if ev.prev_id is None else ev.prev_id  # spot events carry no pu
    return Verdict.APPLY if chains(rule, book_id, ev.first_id, prev_id) else Verdict.GAP


class SyncState(Enum):
    BUFFERING = "buffering"  # no book: collecting events until a snapshot can be asked for
    AWAIT_BRIDGE = "await_bridge"  # snapshot loaded, newer than every buffered event
    SYNCED = "synced"


class Outcome(Enum):
    APPLIED = "applied"
    STALE = "stale"
    BUFFERED = "buffered"
    GAP = "gap"  # loss detected: the book was dropped and buffering restarted
    CROSSED = "crossed"  # the update crossed the book: dropped, resync


class SnapshotOutcome(Enum):
    TOO_OLD = "too_old"  # older than the buffer: ask for another
    WAITING = "waiting"  # newer than every buffered event: book loaded, waiting for a bridge
    SYNCED = "synced"
    GAP = "gap"  # a buffered event after the snapshot did not continue it
    CROSSED = "crossed"
    NOT_WANTED = "not_wanted"  # arrived while not buffering (e.g. after a reset race)


# Called once per applied event while in sync: (event, book, gap_detected, recovered).
RecordSink = Callable[[DiffEvent, OrderBook, bool, bool], None]


class BookSync:
    """One symbol's synchronisation state machine (one instance per symbol, never shared)."""

    def __init__(
        self,
        rule: SyncRule,
        emit: RecordSink,
        min_buffered: int = 2,
        max_buffered: int = 20_000,
        max_depth: int = 50,
        idle_buffered: int = 64,
        new_book: Callable[[int], OrderBook] = OrderBook,
    ) -> None:
        self.rule = rule
        self.emit = emit
        self.min_buffered = min_buffered
        # Events kept while a snapshot is on its way (all of them can matter), and while none
        # has been asked for yet: then only the latest few can be newer than the snapshot that
        # will come, and a capture waiting minutes for its turn in the weight budget must not
        # hold minutes of events per symbol.
        self.max_buffered = max_buffered
        self.idle_buffered = idle_buffered
        self.snapshot_in_flight = False
        # new_book: the core's book class (core/implementation.py), given max_depth.
        self.book = new_book(max_depth)
        self.state = SyncState.BUFFERING
        self.buffer: list[DiffEvent] = []
        self.rebuilds = 0  # books dropped after a break (not the initial bootstrap)
        self.buffer_restarts = 0  # discontinuities seen while buffering
        self.buffer_overflows = 0
        self.recovered = False  # a rebuild happened in this run: every later record says so
        self._flag_next_record = False
        self._emitted_any = False  # before the first record there is no chain a loss could break

    # --- events -------------------------------------------------------------------------
    @property
    def wants_snapshot(self) -> bool:
        return self.state is SyncState.BUFFERING and len(self.buffer) >= self.min_buffered

    def on_event(self, ev: DiffEvent) -> Outcome:
        if self.state is SyncState.SYNCED:
            book_id = self.book.last_update_id
            # The common case, inlined (it runs for every event): the next event of an unbroken
            # spot chain. Everything else goes through continues().
            if self.rule is SyncRule.SPOT and book_id < ev.last_id and ev.first_id <= book_id + 1:
                return self._apply(ev)
            verdict = continues(self.rule, book_id, ev)
        elif self.state is SyncState.AWAIT_BRIDGE:
            verdict = bridges(self.rule, self.book.last_update_id, ev)
        else:
            return self._buffer(ev)
        if verdict is Verdict.STALE:
            return Outcome.STALE
        if verdict is Verdict.GAP:
            self.reset()
            self._buffer(ev)  # the event that revealed the loss starts the new buffer
            return Outcome.GAP
        return self._apply(ev)

    def _buffer(self, ev: DiffEvent) -> Outcome:
        buf = self.buffer
        if buf:
            last = buf[-1]
            if ev.last_id <= last.last_id:
                return Outcome.STALE
            if continues(self.rule, last.last_id, ev) is not Verdict.APPLY:
                # Events were lost while buffering: what came before can never be bridged.
                self.buffer_restarts += 1
                buf.clear()
        buf.append(ev)
        if self.snapshot_in_flight:
            if len(buf) > self.max_buffered:
                self.buffer_overflows += 1
                del buf[: len(buf) - self.max_buffered]
        elif len(buf) > self.idle_buffered:
            del buf[: len(buf) - self.idle_buffered]
        return Outcome.BUFFERED

    def _apply(self, ev: DiffEvent) -> Outcome:
        book = self.book
        book.apply(ev.bids, ev.asks, ev.last_id)
        if book.is_crossed():
            self.reset()
            return Outcome.CROSSED
        self.state = SyncState.SYNCED
        flag = self._flag_next_record
        self._flag_next_record = False
        self._emitted_any = True
        self.emit(ev, book, flag, self.recovered)
        return Outcome.APPLIED

    # --- snapshots ----------------------------------------------------------------------
    def on_snapshot(self, snap: Snapshot) -> SnapshotOutcome:
        if self.state is not SyncState.BUFFERING or not self.buffer:
            return SnapshotOutcome.NOT_WANTED
        lid = snap.last_update_id
        if bridges(self.rule, lid, self.buffer[0]) is Verdict.GAP:
            return SnapshotOutcome.TOO_OLD
        pending = [ev for ev in self.buffer if bridges(self.rule, lid, ev) is not Verdict.STALE]
        self.buffer = []
        self.book.load(lid, snap.bids, snap.asks)
        if self.book.is_crossed():
            self.reset()
            return SnapshotOutcome.CROSSED
        self.state = SyncState.AWAIT_BRIDGE
        if not pending:
            return SnapshotOutcome.WAITING
        result = SnapshotOutcome.SYNCED
        for ev in pending:
            # After a break mid-replay the remaining events go on into the new buffer.
            outcome = self.on_event(ev)
            if result is SnapshotOutcome.SYNCED and outcome is Outcome.GAP:
                result = SnapshotOutcome.GAP
            elif result is SnapshotOutcome.SYNCED and outcome is Outcome.CROSSED:
                result = SnapshotOutcome.CROSSED
        return result

    # --- breaks -------------------------------------------------------------------------
    def reset(self) -> None:
        """Drop the book after a break; the next records will say gap_detected / recovered."""
        if self._emitted_any:
            self.rebuilds += 1
            self.recovered = True
            self._flag_next_record = True
        self.book.clear()
        self.buffer = []
        self.state = SyncState.BUFFERING
