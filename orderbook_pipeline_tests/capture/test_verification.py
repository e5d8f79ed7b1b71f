"""The book verifier at the end of a burst: what still waits for the book to reach its update id
(bookTicker, partial depth, a deep snapshot) is written then, without a comparison, exactly
once (issue 11, defect 7: those records used to be lost with the process)."""

from __future__ import annotations

from typing import Any

import pytest

from orderbook_pipeline.capture.metrics import BurstMetrics
from orderbook_pipeline.capture.rest import SnapshotResponse
from orderbook_pipeline.capture.symbol import SymbolCapture
from orderbook_pipeline.core.events import DiffEvent, Snapshot
from orderbook_pipeline.storage.bronze_writer import BronzeWriter
from orderbook_pipeline.storage.layout import Partition
from orderbook_pipeline.storage.reader import iter_lane_records
from orderbook_pipeline.storage.roots import open_store
from orderbook_pipeline.storage.store import StorageError
from orderbook_pipeline.venues import BINANCE_SPOT

SYM = "BTCUSDT"
T_MS = 1_763_700_000_000
T_US = T_MS * 1000
LANES = ("l2", "book_ticker", "partial_depth", "deep_snapshots")


def _event(first: int, last: int) -> DiffEvent:
    return DiffEvent(
        symbol=SYM, event_ms=T_MS, first_id=first, last_id=last, bids=[], asks=[], ingest_us=T_US
    )


def _snapshot(last_update_id: int) -> Snapshot:
    return Snapshot(last_update_id, [(10.0, 1.0)], [(20.0, 1.0)], [("10", "1")], [("20", "1")])


def _ticker(update_id: int) -> dict[str, Any]:
    return {"u": update_id, "s": SYM, "b": "10", "B": "1", "a": "20", "A": "1"}


def _synced(writer: Any, metrics: BurstMetrics) -> SymbolCapture:
    """A symbol whose book is in sync at update id 101 (snapshot 100, then event 101)."""
    cap = SymbolCapture(BINANCE_SPOT, SYM, (5,), "b1", writer, metrics, lanes=LANES)
    cap.on_event(_event(95, 100))
    cap.on_event(_event(101, 101))
    cap.on_snapshot(_snapshot(100), 100, T_US)
    assert cap.sync.book.last_update_id == 101
    return cap


def _ahead_of_the_book(cap: SymbolCapture) -> None:
    """Exchange views and a deep snapshot from beyond the book (101): all left waiting."""
    book = cap.sync.book
    cap.streams.on_data("book_ticker", _ticker(101), T_US, None, book)  # compared at once
    cap.streams.on_data("book_ticker", _ticker(105), T_US + 1, None, book)
    cap.streams.on_data("book_ticker", _ticker(104), T_US + 2, None, book)
    partial = {"lastUpdateId": 106, "bids": [["10", "1"]], "asks": [["20", "1"]]}
    cap.streams.on_data("partial_depth", partial, T_US + 3, 5, book)
    cap.verifier.start_deep(book)
    cap.verifier.on_deep_snapshot(_snapshot(110), SnapshotResponse({}, T_US, T_US + 4, 2, 100))
    assert cap.verifier.verifying


def _records(root: str, lane: str) -> list[dict[str, Any]]:
    return list(iter_lane_records(open_store(root), lane, symbol=SYM))


def test_views_still_waiting_when_the_burst_ends_are_written_unchecked_once(tmp_path):
    root = str(tmp_path)
    metrics = BurstMetrics("b1", BINANCE_SPOT.name, [SYM])
    writer = BronzeWriter(open_store(root), "b1")
    cap = _synced(writer, metrics)
    _ahead_of_the_book(cap)

    cap.finish()
    cap.finish()  # nothing is left: a second call writes nothing more
    writer.close()

    tickers = [(r["update_id"], r["book_check"]) for r in _records(root, "book_ticker")]
    # Once each, in the order the book would have reached them.
    assert tickers == [(101, "match"), (104, "unchecked"), (105, "unchecked")]
    partial = [(r["last_update_id"], r["book_check"]) for r in _records(root, "partial_depth")]
    assert partial == [(106, "unchecked")]
    (deep,) = _records(root, "deep_snapshots")
    assert (deep["last_update_id"], deep["verify_result"]) == (110, "not_compared")
    assert deep["verify_note"] == "the burst ended before the book got there"
    assert not cap.verifier.verifying
    assert metrics.waiting_at_end == {"book_ticker": 2, "partial_depth": 1, "deep_snapshots": 1}
    assert metrics.cross_checks == {
        "book_ticker:match": 1,
        "book_ticker:unchecked": 2,
        "partial_depth:unchecked": 1,
    }
    assert metrics.lane_records["book_ticker"] == 3
    assert metrics.summary()["verification"]["waiting_at_end"] == dict(metrics.waiting_at_end)


def test_a_failed_lane_at_the_end_leaves_the_others_written(tmp_path):
    root = str(tmp_path)
    metrics = BurstMetrics("b1", BINANCE_SPOT.name, [SYM])

    class TickerStreamBroken(BronzeWriter):
        # (the verifier keeps a live file handle: a failing stream fails its appends too)
        def handle(self, partition: Partition) -> Any:
            if partition.lane == "book_ticker" and self.failing:
                raise StorageError("disk full")
            return super().handle(partition)

        def append(self, f: Any, data: bytes) -> None:
            if f.partition.lane == "book_ticker" and self.failing:
                raise StorageError("disk full")
            super().append(f, data)

    writer = TickerStreamBroken(open_store(root), "b1")
    writer.failing = False  # type: ignore[attr-defined]
    cap = _synced(writer, metrics)
    _ahead_of_the_book(cap)
    writer.failing = True  # type: ignore[attr-defined]

    with pytest.raises(StorageError, match="disk full"):
        cap.finish()
    writer.close()

    assert [r["update_id"] for r in _records(root, "book_ticker")] == [101]
    assert [r["last_update_id"] for r in _records(root, "partial_depth")] == [106]
    assert [r["verify_result"] for r in _records(root, "deep_snapshots")] == ["not_compared"]
