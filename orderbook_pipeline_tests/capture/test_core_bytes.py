"""The two capture cores write the same bronze bytes for the same frames: every lane the book
feeds (L2 at several depths, depth_bands), on the bundled exchange's market model (with
resyncs and truncated snapshot loads) and on real Binance recordings (`<repo>/../shared/real`,
read in place, never copied into the repository)."""

from __future__ import annotations

import gzip
import io
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastavro import schemaless_writer

from orderbook_pipeline.capture.metrics import BurstMetrics
from orderbook_pipeline.capture.symbol import SymbolCapture
from orderbook_pipeline.core.events import NotDepth, decode_depth_frame, parse_snapshot
from orderbook_pipeline.core.implementation import Core
from orderbook_pipeline.lanes.depth_bands import DEFAULT_BAND_PCTS
from orderbook_pipeline.lanes.registry import LANES
from orderbook_pipeline.storage.layout import Partition
from orderbook_pipeline.venues import BINANCE_SPOT, BINANCE_US, BINANCE_USDM, SyncRule, Venue
from orderbook_pipeline_tests.cores import load_core

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "real"
DEPTHS = (5, 10, 20, 50)
FRAMES_PER_RECORDING = 2000  # depth frames sampled from the start of each recording

# ("frame", raw frame, ingest µs, combined) or ("snapshot", symbol, REST body)
Item = tuple[Any, ...]


@dataclass
class _File:
    partition: Partition
    live: bool = True


class RecordingWriter:
    """Keeps every record's bytes per (lane, symbol, depth), in order: appended bytes as they
    are, written dicts Avro-encoded as the bronze writer encodes them."""

    def __init__(self) -> None:
        self.out: dict[tuple[str, str, int | None], list[bytes]] = defaultdict(list)

    def handle(self, partition: Partition) -> _File:
        return _File(partition)

    def append(self, f: _File, data: bytes) -> None:
        p = f.partition
        self.out[(p.lane, p.symbol, p.depth)].append(data)

    def write(self, partition: Partition, record: dict[str, Any]) -> None:
        buf = io.BytesIO()
        schemaless_writer(buf, LANES[partition.lane].parsed, record)
        self.out[(partition.lane, partition.symbol, partition.depth)].append(buf.getvalue())


def replay(core: Core, venue: Venue, symbols: list[str], items: list[Item]) -> RecordingWriter:
    """Feed `items` to one SymbolCapture per symbol running `core`; a snapshot item is handed
    over once its symbol asks for one and has seen an event at or past its id."""
    writer = RecordingWriter()
    metrics = BurstMetrics("b", venue.name, symbols)
    caps = {
        s: SymbolCapture(
            venue,
            s,
            DEPTHS,
            "burst-1",
            writer,
            metrics,
            lanes=("l2", "depth_bands"),
            band_pcts=DEFAULT_BAND_PCTS,
            band_interval_s=0.5,
            core=core,
        )
        for s in symbols
    }
    futures = venue.sync_rule is SyncRule.FUTURES
    waiting: dict[str, Any] = {}
    newest: dict[str, int] = {}
    for item in items:
        if item[0] == "snapshot":
            waiting[item[1]] = parse_snapshot(item[2], item[1])
        else:
            try:
                ev = decode_depth_frame(item[1], caps, item[2], futures, False, combined=item[3])
            except NotDepth:
                continue
            caps[ev.symbol].on_event(ev)
            newest[ev.symbol] = ev.last_id
        for symbol, snap in list(waiting.items()):
            cap = caps[symbol]
            if cap.wants_snapshot and newest.get(symbol, -1) >= snap.last_update_id:
                cap.on_snapshot(snap)
                del waiting[symbol]
    return writer


def assert_identical(venue: Venue, symbols: list[str], items: list[Item]) -> dict[str, int]:
    python, compiled = (
        replay(load_core(name), venue, symbols, items) for name in ("python", "compiled")
    )
    assert python.out.keys() == compiled.out.keys()
    for key, records in python.out.items():
        other = compiled.out[key]
        assert len(records) == len(other), key
        for i, (a, b) in enumerate(zip(records, other, strict=True)):
            assert a == b, f"{key} record {i} differs between the cores"
    counts: dict[str, int] = defaultdict(int)
    for (lane, _symbol, _depth), records in python.out.items():
        counts[lane] += len(records)
    return counts


# --- (a) the bundled exchange's market model ------------------------------------------------
def _market_items(venue: Venue, events: int, seed: int) -> list[Item]:
    """A deep BTCUSDT-like stream with a lost event every 500 (a resync each) and snapshots
    truncated at 1000 levels (deep levels unknown until they change)."""
    from orderbook_pipeline.simulator.market import Market

    market = Market(
        venue, "BTCUSDT", seed=seed, levels_per_side=2000, median_changes=40, max_changes=500
    )
    t0 = 1_767_225_600_000
    items: list[Item] = [("snapshot", "BTCUSDT", market.snapshot(1000, 0, t0))]
    for i in range(events):
        t = t0 + (i + 1) * 100
        frame = orjson.dumps(market.step(t).payload)
        if i % 500 == 250:
            # lost: the capture sees the gap on the next frame and asks for a new snapshot
            items.append(("snapshot", "BTCUSDT", market.snapshot(1000, 0, t)))
            continue
        items.append(("frame", frame, t * 1000 + 5_000, False))
    return items


@pytest.mark.parametrize("venue", [BINANCE_SPOT, BINANCE_USDM], ids=lambda v: v.name)
def test_the_cores_write_identical_bytes_on_the_market_model(venue: Venue) -> None:
    counts = assert_identical(venue, ["BTCUSDT"], _market_items(venue, 1200, seed=3))
    assert counts["l2"] > 4 * 1000  # every depth, nearly every event (resyncs pause it)
    assert counts["depth_bands"] > 100


# --- (b) real recordings ----------------------------------------------------------------------
RECORDINGS = {
    "hb_spot_BTCUSDT_20240808": BINANCE_SPOT,
    "hb_usdm_BTCUSDT_20240808": BINANCE_USDM,
    "cf_spot_10sym_20210405": BINANCE_SPOT,
    "cf_usdm_5sym_20210405": BINANCE_USDM,
    "cf_binanceus_10sym_20210405": BINANCE_US,
}


def _recorded_items(folder: Path) -> tuple[list[str], list[Item]]:
    snapshots = {}
    for path in sorted(folder.glob("snapshot.*.json")):
        symbol = path.name.split(".")[1]
        snapshots[symbol] = orjson.loads(path.read_bytes())["body"]
    items: list[Item] = [("snapshot", s, body) for s, body in snapshots.items()]
    items += list(_depth_frames(folder / "ws.jsonl.gz"))
    return sorted(snapshots), items


def _depth_frames(path: Path) -> Iterator[Item]:
    taken = 0
    with gzip.open(path, "rb") as f:
        for line in f:
            if b"@depth" not in line[:200]:
                continue
            row = orjson.loads(line)
            # The combined frame as received (the README: byte-identical when so dumped).
            yield ("frame", orjson.dumps(row["msg"]), row["recv_ns"] // 1000, True)
            taken += 1
            if taken == FRAMES_PER_RECORDING:
                return


@pytest.mark.parametrize("name", list(RECORDINGS))
def test_the_cores_write_identical_bytes_on_real_recordings(name: str) -> None:
    folder = REAL / name
    if not folder.is_dir():
        pytest.skip(f"the real recordings are not there: {folder} is missing")
    symbols, items = _recorded_items(folder)
    counts = assert_identical(RECORDINGS[name], symbols, items)
    assert counts["l2"] > len(DEPTHS) * 1000  # the books synced and wrote records
    assert counts["depth_bands"] > 10
