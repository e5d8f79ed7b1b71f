"""The project's own capture hot path, run exactly as a capture burst runs it.

Each frame goes through the product code, not a copy of it: `decode_depth_frame` (into validated
doubles) -> `SymbolCapture.on_event` -> `BookSync` (the venue's sync rule) -> the book ->
`L2Encoder` (Avro binary, all depths from one pass) -> `BronzeWriter` (snappy blocks into hourly
files on local disk, published at close). The decode, book and encoders are the burst's core's:
compiled (one scan of the frame, blocked arrays) or the pure-Python reference (msgspec, the
ordered region + deep levels).
The receive timestamp is taken per frame, as the connection does.

Frames here are raw-stream events (`/ws/<sym>@depth@100ms`); a burst reads combined-stream
frames, whose only extra cost is the envelope.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import time
from typing import Any

import orjson

from benchmarks.contenders import Process, summary
from orderbook_pipeline.capture.metrics import BurstMetrics
from orderbook_pipeline.capture.symbol import SymbolCapture
from orderbook_pipeline.core.events import parse_snapshot
from orderbook_pipeline.core.implementation import Core, choose
from orderbook_pipeline.storage.bronze_writer import BronzeWriter
from orderbook_pipeline.storage.store import LocalStore
from orderbook_pipeline.venues import BINANCE_SPOT


class OurCapture:
    """One symbol's capture over a local store; `feed` is the hot path."""

    def __init__(
        self, snapshot: bytes, depths: tuple[int, ...], lanes: tuple[str, ...], core: Core
    ) -> None:
        snap_json = orjson.loads(snapshot)
        self.symbol = "BTCUSDT"
        self._root = tempfile.mkdtemp(prefix="obp-bench-ours-")
        atexit.register(shutil.rmtree, self._root, True)
        self.writer = BronzeWriter(LocalStore(self._root), "bench")
        metrics = BurstMetrics("bench", BINANCE_SPOT.name, [self.symbol])
        self.cap = SymbolCapture(
            BINANCE_SPOT, self.symbol, depths, "bench", self.writer, metrics, lanes, core=core
        )
        self.snapshot = parse_snapshot(snap_json, self.symbol)
        self.symbols = {self.symbol: self.cap}
        self.keep_strings = "diffs" in lanes
        self._lanes = lanes

    def start(self, history: list[bytes]) -> None:
        """Untimed: buffer the first events, load the snapshot, replay the rest, lanes off."""
        cap = self.cap
        cap.write_l2 = cap.write_diffs = False
        self.feed(history[:2])
        cap.on_snapshot(self.snapshot)
        self.feed(history[2:])
        cap.write_l2 = "l2" in self._lanes
        cap.write_diffs = "diffs" in self._lanes

    def feed(self, msgs: list[bytes]) -> None:
        on_event, symbols, keep = self.cap.on_event, self.symbols, self.keep_strings
        now_ns, decode_depth_frame = time.time_ns, self.cap.core.depth.decode_depth_frame
        for m in msgs:
            on_event(decode_depth_frame(m, symbols, now_ns() // 1000, False, keep, combined=False))

    def summary(self) -> list[float]:
        book = self.cap.sync.book
        return summary(book.bids.top(20), book.asks.top(20))


def _setup(depths: tuple[int, ...], lanes: tuple[str, ...], core: str = "auto") -> Any:
    def setup(snapshot: bytes, history: list[bytes]) -> Process:
        ours = OurCapture(snapshot, depths, lanes, choose(core)[0])
        ours.start(history)

        def process(msgs: list[bytes]) -> dict[str, Any]:
            ours.feed(msgs)
            ours.writer.close()  # the last blocks are compressed and the files published
            return {
                "check": ours.summary(),
                "extra": {"bronze_B_per_event": round(ours.writer.bytes_published / len(msgs))},
            }

        return process

    return setup


CONTENDERS = {
    "ours depth 20": (
        _setup((20,), ("l2",)),
        "the project's capture path as a burst runs it (capture.core auto: the compiled core "
        "when built): msgspec decode, sync, book, L2 Avro binary, BronzeWriter snappy files",
    ),
    "ours depth 20 (python core)": (
        _setup((20,), ("l2",), "python"),
        "as above on the pure-Python reference core (region+deep book, Python L2 encoder)",
    ),
    "ours depths 10,20,50": (
        _setup((10, 20, 50), ("l2",)),
        "as above, three L2 records per event from one pass",
    ),
    "ours depths 10,20,50 + diff lane": (
        _setup((10, 20, 50), ("l2", "diffs")),
        "as above plus the raw diff lane (every event's strings as sent): a full capture",
    ),
    "ours depths 10,20,50 + diff lane (python core)": (
        _setup((10, 20, 50), ("l2", "diffs"), "python"),
        "the full capture on the pure-Python reference core",
    ),
}
