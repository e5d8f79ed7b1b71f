"""Frames of the non-depth stream lanes, and one symbol's capture fed with them by either path.

Shared by the byte-for-byte test (orderbook_pipeline_tests/capture/test_lane_paths.py) and the
per-lane microbenchmark (benchmarks/lanes.py):
- `real_frames`: frames of the real recordings in ../shared/real/ (cryptofeed's `cf_*` and
  hftbacktest's `hb_*`: trade, aggTrade, bookTicker), exactly as received;
- `simulated_frames`: the bundled exchange's market, every lane (depth too, so that the book
  is in sync and bookTicker / partial depth are compared with it);
- `LaneHarness`: SymbolCaptures behind a FrameRouter writing the bytes of each lane into
  memory, with the fast path on or off (off: the reference path decides every frame).
"""

from __future__ import annotations

import gzip
import io
import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastavro import schemaless_writer

from orderbook_pipeline.capture.metrics import BurstMetrics
from orderbook_pipeline.capture.routing import FrameRouter
from orderbook_pipeline.capture.symbol import SymbolCapture
from orderbook_pipeline.core.events import parse_snapshot
from orderbook_pipeline.core.implementation import PYTHON, Core
from orderbook_pipeline.lanes.registry import LANES as REGISTRY
from orderbook_pipeline.simulator.market import Market
from orderbook_pipeline.simulator.streams import book_ticker_payload, partial_payload
from orderbook_pipeline.storage.layout import Partition
from orderbook_pipeline.venues import BINANCE_SPOT, BINANCE_US, BINANCE_USDM, Venue

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "real"
# dataset -> venue of the real recordings with non-depth frames
REAL_DATASETS: dict[str, Venue] = {
    "cf_spot_10sym_20210405": BINANCE_SPOT,
    "cf_usdm_5sym_20210405": BINANCE_USDM,
    "cf_binanceus_10sym_20210405": BINANCE_US,
    "hb_spot_BTCUSDT_20240808": BINANCE_SPOT,
    "hb_usdm_BTCUSDT_20240808": BINANCE_USDM,
}
LANE_OF_SUFFIX = {"trade": "trades", "aggTrade": "agg_trades", "bookTicker": "book_ticker"}
PARTIAL_LEVELS = 10
CAPTURED = ("l2", "diffs", "trades", "agg_trades", "book_ticker", "partial_depth")


def combined(stream: str, data: Any) -> str:
    """A combined-stream frame as Binance sends it (compact JSON)."""
    return json.dumps({"stream": stream, "data": data}, separators=(",", ":"))


def real_frames(dataset: str, limit: int) -> list[tuple[str, int]]:
    """Up to `limit` non-depth frames of a recording, as (frame text, receive µs)."""
    folder = REAL / dataset
    path = next(iter(sorted(folder.glob("ws.jsonl*"))), None)
    if path is None:
        raise FileNotFoundError(f"no ws.jsonl[.gz] in {folder}")
    opener: Any = gzip.open if path.suffix == ".gz" else open
    out: list[tuple[str, int]] = []
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            msg = rec["msg"]
            suffix = str(msg.get("stream", "")).rpartition("@")[2]
            if suffix in LANE_OF_SUFFIX:
                # Byte-identical to the frame received (README of ../shared/real).
                out.append((json.dumps(msg, separators=(",", ":")), rec["recv_ns"] // 1000))
                if len(out) >= limit:
                    break
    return out


def stream_lane(stream: str) -> tuple[str, str, int | None] | None:
    """(upper-case symbol, lane, partial levels) of a stream name, None for depth."""
    sym, _, rest = stream.partition("@")
    if rest in LANE_OF_SUFFIX:
        return sym.upper(), LANE_OF_SUFFIX[rest], None
    if rest.startswith("depth") and rest[5:6].isdigit():
        return sym.upper(), "partial_depth", int(rest[5:].partition("@")[0])
    return None


def simulated_frames(venue: Venue, symbol: str, steps: int, seed: int = 7) -> Iterator[Any]:
    """The market's frames of every lane, in the order the exchange sends them: first the
    REST snapshot body (a dict), then (frame, receive µs) per frame."""
    market = Market(venue, symbol, seed=seed, levels_per_side=300)
    sym = symbol.lower()
    t_ms = 1_763_700_000_000
    for _ in range(5):
        market.step(t_ms)
        t_ms += 100
    yield market.snapshot(1000)
    depth = f"{sym}@depth@100ms"
    for _ in range(steps):
        t_ms += 100
        ev = market.step(t_ms)
        us = t_ms * 1000 + 700
        yield combined(depth, ev.payload), us
        if "trades" in venue.stream_lanes:
            for p in market.trade_payloads(ev):
                yield combined(f"{sym}@trade", p), us + 1
        for p in market.agg_trade_payloads(ev):
            yield combined(f"{sym}@aggTrade", p), us + 2
        if ev.top_changed:
            yield combined(f"{sym}@bookTicker", book_ticker_payload(market, ev)), us + 3
        payload = partial_payload(market, ev, PARTIAL_LEVELS)
        yield combined(f"{sym}@depth{PARTIAL_LEVELS}@100ms", payload), us + 4


@dataclass(eq=False)
class _File:
    partition: Partition
    live: bool = True


@dataclass
class BytesWriter:
    """A RecordWriter keeping the Avro binary of every record, per lane and symbol, in order:
    dicts encoded by fastavro (as BronzeWriter.write does), bytes appended as given."""

    # chunks, joined when read (a growing bytearray per lane may be copied at every append)
    out: dict[tuple[str, str], list[bytes]] = field(default_factory=lambda: defaultdict(list))

    def write(self, partition: Partition, record: dict[str, Any]) -> None:
        b = io.BytesIO()
        schemaless_writer(b, REGISTRY[partition.lane].parsed, record)
        self.out[partition.lane, partition.symbol].append(b.getvalue())

    def handle(self, partition: Partition) -> _File:
        return _File(partition)

    def append(self, f: _File, data: bytes) -> None:
        self.out[f.partition.lane, f.partition.symbol].append(data)


class _Conn:
    """What the router asks of a connection for control frames."""

    shutdowns = 0

    def server_shutdown_notice(self) -> None:
        self.shutdowns += 1


class RecordingMetrics(BurstMetrics):
    """BurstMetrics keeping every bad frame's reason and detail, in order."""

    def __init__(self, venue: str, symbols: list[str]) -> None:
        super().__init__("b1", venue, symbols)
        self.bad: list[tuple[str, str]] = []

    def bad_frame(self, reason: str, detail: str) -> None:
        self.bad.append((reason, detail))
        self.bad_frames[reason] += 1


class LaneHarness:
    """Symbols captured behind one FrameRouter with one capture core (its book, L2 and lane
    encoders); `fast=False` declines every frame on the fast path, so the reference path
    decides them all (with the PYTHON core: today's path)."""

    def __init__(
        self,
        venue: Venue,
        symbols: list[str],
        fast: bool,
        count: bool = True,
        core: Core = PYTHON,
    ) -> None:
        self.venue = venue
        self.writer = BytesWriter()
        self.metrics = RecordingMetrics(venue.name, symbols)
        self.caps = {
            s: SymbolCapture(
                venue,
                s,
                (5, 10),
                "b1",
                self.writer,
                self.metrics,
                lanes=CAPTURED,
                partial_levels=PARTIAL_LEVELS,
                core=core,
            )
            for s in symbols
        }
        self.router = FrameRouter(
            self.caps,
            self.metrics,
            venue.has_prev_update_id,
            lambda cap: None,
            self._fail,
            core=core,
        )
        self.conn: Any = _Conn()
        self.accepted_fast = 0
        for cap in self.caps.values():
            if not fast:
                cap.streams.on_frame = lambda *args: False  # type: ignore[method-assign]
            elif count:
                self._count(cap)

    def _count(self, cap: SymbolCapture) -> None:
        on_frame = cap.streams.on_frame

        def counted(*args: Any) -> bool:
            taken = on_frame(*args)
            self.accepted_fast += taken
            return taken

        cap.streams.on_frame = counted  # type: ignore[method-assign]

    def _fail(self, exc: BaseException) -> None:
        raise exc

    def route(self, stream: str, symbol: str, lane: str, levels: int | None) -> None:
        cap = self.caps[symbol]
        if lane == "depth":
            self.router.route_depth(stream, cap)
        else:
            self.router.route_lane(stream, cap, lane, levels)

    def lane_frame(self, frame: str | bytes, recv_us: int) -> None:
        self.router.on_lane_frame(frame, recv_us, self.conn)

    def depth_frame(self, frame: str | bytes, recv_us: int) -> None:
        self.router.on_frame(frame, recv_us, self.conn)

    def snapshot(self, symbol: str, body: dict[str, Any], response_us: int) -> None:
        self.caps[symbol].on_snapshot(parse_snapshot(body, symbol), 1000, response_us)

    def finish(self) -> None:
        for cap in self.caps.values():
            cap.finish()

    def outcome(self) -> dict[str, Any]:
        """Everything the burst would store or count of these frames."""
        m = self.metrics
        return {
            "bytes": {k: b"".join(v) for k, v in sorted(self.writer.out.items())},
            "bad": m.bad,
            "lane_records": dict(m.lane_records),
            "lane_repeats": dict(m.lane_repeats),
            "missing_ids": dict(m.missing_ids),
            "cross_checks": dict(m.cross_checks),
            "mismatches": dict(m.book_mismatches),
            "received": {s: c.received for s, c in self.caps.items()},
        }


def feed_simulated(h: LaneHarness, symbol: str, steps: int, bytes_frames: bool = False) -> None:
    """Feed `simulated_frames` of one symbol (routing each stream first)."""
    frames = simulated_frames(h.venue, symbol, steps)
    snapshot_body = next(frames)
    routed: set[str] = set()
    synced = False
    for frame, us in frames:
        stream = json.loads(frame)["stream"]
        kind = stream_lane(stream)
        if stream not in routed:
            routed.add(stream)
            h.route(stream, symbol, "depth" if kind is None else kind[1], kind and kind[2])
        data: str | bytes = frame.encode() if bytes_frames else frame
        if kind is None:
            h.depth_frame(data, us)
            if not synced:
                h.snapshot(symbol, snapshot_body, us)
                synced = True
        else:
            h.lane_frame(data, us)


def feed_real(h: LaneHarness, frames: list[tuple[str, int]]) -> None:
    """Feed recorded frames (routing each stream of a symbol the harness holds first)."""
    routed: set[str] = set()
    for frame, us in frames:
        stream = json.loads(frame)["stream"]
        if stream not in routed:
            routed.add(stream)
            kind = stream_lane(stream)
            if kind is not None and kind[0] in h.caps:
                h.route(stream, kind[0], kind[1], kind[2])
        h.lane_frame(frame, us)


def real_symbols(frames: list[tuple[str, int]]) -> list[str]:
    out = {kind[0] for f, _ in frames if (kind := stream_lane(json.loads(f)["stream"]))}
    return sorted(out)
