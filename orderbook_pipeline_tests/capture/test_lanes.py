"""Every stream lane captured from the bundled exchange is complete and exact, and the book is
verified against the exchange: deep snapshots, partial depth and bookTicker all agree with the
local book on a clean run, and a corrupted stream is caught, recorded and resynced."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from orderbook_pipeline.capture.stream_lanes import StreamLanes
from orderbook_pipeline.core.implementation import Core
from orderbook_pipeline.storage.reader import iter_lane_records
from orderbook_pipeline.storage.roots import open_store
from orderbook_pipeline.venues import BINANCE_SPOT, BINANCE_US, BINANCE_USDM, Venue

from .conftest import capture
from .truth import _us

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
ALL = (
    "l2",
    "diffs",
    "trades",
    "agg_trades",
    "book_ticker",
    "partial_depth",
    "depth_bands",
    "deep_snapshots",
)


def _lanes(venue: Venue) -> tuple[str, ...]:
    return tuple(lane for lane in ALL if lane != "trades" or "trades" in venue.stream_lanes)


def _records(root: str, lane: str, symbol: str | None = None) -> list[dict[str, Any]]:
    return list(iter_lane_records(open_store(root), lane, symbol=symbol))


def _check_trades(sim: Any, root: str, symbol: str, lane: str, id_field: str) -> int:
    truth_payloads = sim.trades(symbol) if lane == "trades" else sim.agg_trades(symbol)
    truth = {p["t" if lane == "trades" else "a"]: p for p in truth_payloads}
    recs = sorted(_records(root, lane, symbol), key=lambda r: r[id_field])
    assert recs, f"no {lane} captured for {symbol}"
    ids = [r[id_field] for r in recs]
    assert ids == list(range(ids[0], ids[0] + len(ids))), "ids run on without a hole"
    assert all(r["missing_before"] == 0 for r in recs)
    for r in recs:
        sent = truth[r[id_field]]
        assert (r["px_str"], r["qty_str"]) == (sent["p"], sent["q"])  # exact strings as sent
        assert (r["px"], r["qty"]) == (float(sent["p"]), float(sent["q"]))
        assert r["is_buyer_maker"] is sent["m"]
        assert r["is_best_match"] == sent.get("M")
        assert _us(r["trade_ts"]) == sent["T"] * 1000 and _us(r["event_ts"]) == sent["E"] * 1000
        if lane == "agg_trades":
            assert (r["first_trade_id"], r["last_trade_id"]) == (sent["f"], sent["l"])
    return len(recs)


def _naive_bands(
    bids: list[tuple[str, str]], asks: list[tuple[str, str]], pct: float
) -> tuple[float, ...]:
    b = [(float(p), float(q)) for p, q in bids]
    a = [(float(p), float(q)) for p, q in asks]
    mid = (b[0][0] + a[0][0]) / 2
    lo, hi = mid * (1 - pct / 100), mid * (1 + pct / 100)
    inb = [(p, q) for p, q in b if p >= lo]
    ina = [(p, q) for p, q in a if p <= hi]
    return (
        sum(q for _, q in inb),
        sum(q for _, q in ina),
        sum(p * q for p, q in inb),
        sum(p * q for p, q in ina),
    )


@pytest.mark.parametrize("venue", [BINANCE_SPOT, BINANCE_USDM, BINANCE_US], ids=lambda v: v.name)
def test_every_lane_is_complete_and_exact(
    simulator: Any, tmp_path: Path, venue: Venue, core: Core
) -> None:
    sim = simulator(venue, SYMBOLS)
    root = str(tmp_path)
    summary = capture(
        sim,
        root,
        venue,
        SYMBOLS,
        core=core.name,
        duration_s=4.0,
        lanes=_lanes(venue),
        partial_depth_levels=10,
        deep_snapshot_interval_s=1.0,
        deep_snapshot_limit=100,  # light enough for one a second under the weight budget
        band_interval_s=0.2,
    )
    assert summary["resyncs"] == 0, summary
    verification = summary["verification"]
    assert verification["book_mismatches"] == {}
    assert verification["deep_snapshots"].get("match", 0) >= 2
    for symbol in SYMBOLS:
        if "trades" in venue.stream_lanes:
            assert _check_trades(sim, root, symbol, "trades", "trade_id") > 5
        assert _check_trades(sim, root, symbol, "agg_trades", "agg_id") > 5

        tickers = _records(root, "book_ticker", symbol)
        assert tickers
        for r in tickers:
            bid, bid_q, ask, ask_q = sim.book_ticker_at(symbol, r["update_id"])
            assert (r["bid_px_str"], r["bid_qty_str"], r["ask_px_str"], r["ask_qty_str"]) == (
                bid,
                bid_q,
                ask,
                ask_q,
            )
            assert r["book_check"] != "mismatch"
            assert r["ts_source"] == ("exchange" if venue is BINANCE_USDM else "receive")
        assert sum(r["book_check"] == "match" for r in tickers) >= len(tickers) // 2

        partial = _records(root, "partial_depth", symbol)
        assert partial
        for r in partial:
            bids, asks = sim.true_book(symbol, r["last_update_id"], 10)
            assert [(x["px"], x["qty"]) for x in r["bids"]] == [tuple(x) for x in bids]
            assert [(x["px"], x["qty"]) for x in r["asks"]] == [tuple(x) for x in asks]
            assert r["levels"] == 10 and r["book_check"] != "mismatch"
        assert sum(r["book_check"] == "match" for r in partial) >= len(partial) // 2

        deep = _records(root, "deep_snapshots", symbol)
        assert {r["verify_result"] for r in deep} <= {"match", "not_compared"}
        for r in deep:
            bids, asks = sim.true_book(symbol, r["last_update_id"], r["limit"])
            assert [(x["px"], x["qty"]) for x in r["bids"]] == [tuple(x) for x in bids]
            if r["verify_result"] == "match":
                assert r["compared_levels"] > 100 and r["mismatched_levels"] == 0

        bands = _records(root, "depth_bands", symbol)
        assert len(bands) >= 5
        for r in bands:
            bids, asks = sim.true_book(symbol, r["last_update_id"])
            assert r["mid"] == (float(bids[0][0]) + float(asks[0][0])) / 2
            for band in r["bands"]:
                want = _naive_bands(bids, asks, band["pct"])
                got = (band["bid_qty"], band["ask_qty"], band["bid_notional"], band["ask_notional"])
                assert all(math.isclose(g, w, rel_tol=1e-9) for g, w in zip(got, want, strict=True))
                assert band["complete"]  # the book's snapshot held every level
    assert summary["clock"]["samples"] >= 1
    assert abs(summary["clock"]["offset_ms"]) < 1000


def test_lost_trades_are_flagged_with_the_number_lost(simulator: Any, tmp_path: Path) -> None:
    sim = simulator(BINANCE_SPOT, ["BTCUSDT"])
    root = str(tmp_path)
    summary = capture(
        sim,
        root,
        BINANCE_SPOT,
        ["BTCUSDT"],
        duration_s=3.0,
        lanes=("l2", "trades", "agg_trades"),
        faults=((1.5, "drop_trade", {"symbol": "BTCUSDT", "count": 3}),),
    )
    recs = sorted(_records(root, "trades", "BTCUSDT"), key=lambda r: r["trade_id"])
    flagged = [r for r in recs if r["missing_before"]]
    assert [r["missing_before"] for r in flagged] == [3]
    before = recs[recs.index(flagged[0]) - 1]
    assert flagged[0]["trade_id"] - before["trade_id"] == 4
    assert summary["missing_ids"]["trades"] == 3
    # The aggregates that held the dropped trades are missing too, and named.
    assert summary["missing_ids"].get("agg_trades", 0) >= 1


def test_clock_offset_is_measured_against_the_exchange(simulator: Any, tmp_path: Path) -> None:
    sim = simulator(BINANCE_USDM, ["BTCUSDT"], clock_offset_ms=5000)
    summary = capture(
        sim, str(tmp_path), BINANCE_USDM, ["BTCUSDT"], duration_s=2.5, clock_check_interval_s=0.5
    )
    clock = summary["clock"]
    assert clock["samples"] >= 3
    # Exchange minus local time, measured at the request's midpoint: off by at most half the
    # round trip on loopback.
    assert abs(clock["offset_ms"] - 5000) <= clock["rtt_ms"] / 2 + 50


def test_a_corrupted_deep_level_is_caught_by_the_next_deep_snapshot(
    simulator: Any, tmp_path: Path, core: Core
) -> None:
    sim = simulator(BINANCE_SPOT, ["BTCUSDT"])
    root = str(tmp_path)
    summary = capture(
        sim,
        root,
        BINANCE_SPOT,
        ["BTCUSDT"],
        core=core.name,
        duration_s=5.0,
        lanes=("l2", "diffs", "partial_depth", "book_ticker", "deep_snapshots"),
        deep_snapshot_interval_s=1.0,
        # The whole 400-level book (weight 25: one a second fits the budget), so the phantom,
        # wherever the exchange hid it, is inside every deep snapshot's range.
        deep_snapshot_limit=500,
        faults=((2.0, "corrupt_level", {"symbol": "BTCUSDT", "distance": 50}),),
    )
    (corruption,) = sim.exchange.corruptions
    mismatches = _records(root, "book_mismatches", "BTCUSDT")
    deep = [m for m in mismatches if m["source"] == "deep_snapshot"]
    assert deep, "the deep snapshot after the corruption must disagree with the book"
    first = deep[0]
    phantom = [d for d in first["differences"] if d["px"] == float(corruption["price"])]
    assert phantom and phantom[0]["exchange_qty"] is None
    assert phantom[0]["local_qty"] == float(corruption["qty"])
    assert first["last_verified_update_id"] is not None
    assert first["last_verified_update_id"] < corruption["update_id"] <= first["update_id"]
    # Caught within one snapshot interval: the first deep snapshot of a book state after the
    # corruption is the one that disagrees (none before it could have seen it).
    deep_after = sorted(
        (
            r
            for r in _records(root, "deep_snapshots", "BTCUSDT")
            if r["last_update_id"] >= corruption["update_id"]
        ),
        key=lambda r: r["last_update_id"],
    )
    assert deep_after[0]["verify_result"] == "mismatch"
    assert deep_after[0]["last_update_id"] == first["update_id"]
    # Deep below the top 20, the top-of-book checks could not see it.
    assert not [m for m in mismatches if m["source"] != "deep_snapshot"]
    assert summary["resyncs_by_cause"].get("book_mismatch", 0) >= 1
    assert summary["verification"]["book_mismatches"]["deep_snapshot"] >= 1
    # The book was rebuilt: the next record says so, and every record after is exact again.
    l2 = sorted(_records(root, "l2"), key=lambda r: (r["last_update_id"], r["depth"]))
    flagged = [r for r in l2 if r["gap_detected"]]
    assert flagged and flagged[0]["last_update_id"] > first["update_id"]
    for r in l2:
        if r["last_update_id"] >= flagged[0]["last_update_id"]:
            bids, asks = sim.true_book("BTCUSDT", r["last_update_id"], r["depth"])
            got = [(x["px"], x["qty"]) for x in r["levels"]]
            want = [(float(p), float(q)) for p, q in bids] + [(float(p), float(q)) for p, q in asks]
            assert got == want
    snaps = defaultdict(list)
    for s in _records(root, "snapshots", "BTCUSDT"):
        snaps[s["reason"]].append(s)
    assert snaps["book_mismatch"], "the rebuild's snapshot says why it was taken"


def test_a_corrupted_best_level_is_caught_by_partial_depth_and_book_ticker(
    simulator: Any, tmp_path: Path, core: Core
) -> None:
    sim = simulator(BINANCE_SPOT, ["BTCUSDT"])
    root = str(tmp_path)
    summary = capture(
        sim,
        root,
        BINANCE_SPOT,
        ["BTCUSDT"],
        core=core.name,
        duration_s=3.0,
        lanes=("l2", "partial_depth", "book_ticker"),
        faults=((1.5, "corrupt_level", {"symbol": "BTCUSDT", "distance": 0}),),
    )
    sources = {m["source"] for m in _records(root, "book_mismatches", "BTCUSDT")}
    assert sources & {"partial_depth", "book_ticker"}
    assert summary["resyncs_by_cause"].get("book_mismatch", 0) >= 1
    checks = {r["book_check"] for r in _records(root, "partial_depth", "BTCUSDT")}
    checks |= {r["book_check"] for r in _records(root, "book_ticker", "BTCUSDT")}
    assert "mismatch" in checks and "match" in checks


def test_frames_still_waiting_for_the_book_when_the_burst_ends_are_written(
    simulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From 2 s on the exchange sends no depth event (all dropped) while bookTicker, partial
    depth and deep snapshots go on: each of those waits for a book that never gets there, until
    the burst ends. Every frame delivered still gets exactly one record, `unchecked`."""
    sim = simulator(BINANCE_SPOT, SYMBOLS, interval_ms=50)  # at most ~80 views wait per symbol
    root = str(tmp_path)
    delivered: dict[tuple[str, str], Counter[int]] = defaultdict(Counter)
    real_on_data, real_on_frame = StreamLanes.on_data, StreamLanes.on_frame

    def count(self: StreamLanes, lane: str, data: Any) -> None:
        if lane in ("book_ticker", "partial_depth"):
            update_id = data["u" if lane == "book_ticker" else "lastUpdateId"]
            delivered[(self.symbol, lane)][update_id] += 1

    def on_data(self: StreamLanes, lane: str, data: Any, *args: Any) -> None:
        real_on_data(self, lane, data, *args)  # what raises BadEvent was never a record
        count(self, lane, data)

    def on_frame(self: StreamLanes, lane: str, stream: str, frame: Any, *args: Any) -> bool:
        taken = real_on_frame(self, lane, stream, frame, *args)  # False: on_data decides
        if taken:
            count(self, lane, orjson.loads(frame)["data"])
        return taken

    monkeypatch.setattr(StreamLanes, "on_data", on_data)
    monkeypatch.setattr(StreamLanes, "on_frame", on_frame)
    drops = tuple((2.0, "drop", {"symbol": s, "count": 1_000_000}) for s in SYMBOLS)
    summary = capture(
        sim,
        root,
        BINANCE_SPOT,
        SYMBOLS,
        duration_s=4.0,
        lanes=("l2", "book_ticker", "partial_depth", "deep_snapshots"),
        partial_depth_levels=10,
        deep_snapshot_interval_s=1.0,
        deep_snapshot_limit=100,
        stale_after_s=10.0,  # the silent depth connection is not replaced meanwhile
        faults=drops,
    )
    assert summary["resyncs"] == 0, summary  # nothing but the burst's end left them waiting
    verification = summary["verification"]
    beyond: Counter[str] = Counter()
    for symbol in SYMBOLS:
        book_id = max(r["last_update_id"] for r in _records(root, "l2", symbol))
        for lane, id_field in (("book_ticker", "update_id"), ("partial_depth", "last_update_id")):
            recs = _records(root, lane, symbol)
            assert Counter(r[id_field] for r in recs) == delivered[(symbol, lane)], lane
            late = [r for r in recs if r[id_field] > book_id]
            assert late, f"{symbol} {lane}: no frame was left waiting at the end"
            assert {r["book_check"] for r in late} == {"unchecked"}
            beyond[lane] += len(late)
        deep = _records(root, "deep_snapshots", symbol)
        ended = [r for r in deep if r["verify_note"] == "the burst ended before the book got there"]
        assert ended, f"{symbol}: no deep snapshot was left waiting at the end"
        assert all(r["last_update_id"] > book_id for r in ended)
        assert all(r["last_update_id"] <= book_id for r in deep if r not in ended)
        beyond["deep_snapshots"] += len(ended)
    assert verification["waiting_at_end"] == dict(+beyond)


class _Conn:
    shutdown_notices = 0

    def server_shutdown_notice(self) -> None:
        self.shutdown_notices += 1


def test_bad_frames_of_the_other_lanes_are_counted_and_never_touch_the_book(tmp_path: Path) -> None:
    from orderbook_pipeline.capture.metrics import BurstMetrics
    from orderbook_pipeline.capture.routing import FrameRouter
    from orderbook_pipeline.capture.symbol import SymbolCapture
    from orderbook_pipeline.storage.bronze_writer import BronzeWriter

    metrics = BurstMetrics("b1", BINANCE_SPOT.name, ["BTCUSDT"])
    writer = BronzeWriter(open_store(str(tmp_path)), "b1")
    cap = SymbolCapture(
        BINANCE_SPOT, "BTCUSDT", (5,), "b1", writer, metrics, lanes=("l2", "trades")
    )
    failures: list[BaseException] = []
    router = FrameRouter({"BTCUSDT": cap}, metrics, True, lambda cap: None, failures.append)
    router.route_lane("btcusdt@trade", cap, "trades", None)
    router.route_lane("btcusdt@depth5@100ms", cap, "partial_depth", 5)
    trade = {"e": "trade", "E": 1_763_700_000_000, "s": "BTCUSDT", "t": 7, "p": "65000.01"}
    trade |= {"q": "0.5", "T": 1_763_700_000_000, "m": True, "M": True}
    conn = _Conn()
    frames = [
        {"stream": "btcusdt@trade", "data": trade},
        {"stream": "btcusdt@trade", "data": {**trade, "t": 8, "q": "NaN"}},
        {"stream": "btcusdt@trade", "data": {**trade, "t": "9"}},
        {"stream": "btcusdt@depth5@100ms", "data": {"lastUpdateId": 5, "bids": [], "asks": 3}},
        {"stream": "ethusdt@trade", "data": trade},
        {"result": None, "id": 1},
        {"e": "serverShutdown", "E": 1},
    ]
    for frame in frames:
        router.on_lane_frame(orjson.dumps(frame), 1_763_700_000_001_000, conn)  # type: ignore[arg-type]
    router.on_lane_frame(b'{"stream": "btcusdt@trade", "data": {', 1, conn)  # type: ignore[arg-type]
    writer.close()
    assert dict(metrics.bad_frames) == {
        "bad_number": 1,
        "wrong_types": 2,
        "unexpected": 1,
        "invalid_json": 1,
    }
    assert conn.shutdown_notices == 1
    assert not metrics.resyncs  # the book never depended on these frames
    assert not failures
    (kept,) = _records(str(tmp_path), "trades")
    assert (kept["trade_id"], kept["px_str"], kept["qty"]) == (7, "65000.01", 0.5)
