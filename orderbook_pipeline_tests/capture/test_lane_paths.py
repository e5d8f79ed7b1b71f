"""The fast path of the stream lanes (core/lane_frames.py, stream_lanes.on_frame, the compiled
encoders) against the reference path (orjson, the readers of core/lanes.py, dicts through
fastavro, the pure-Python encoders), frame for frame: the same bronze bytes of every lane, the
same bad-frame reasons and messages, the same counters. On the real recordings in
../shared/real/, on the bundled exchange's frames with the book in sync (so bookTicker and
partial depth are compared with it, and a corrupted view is a mismatch), and on hostile
payloads. The reference runs the pure-Python core; each fast-path case runs on both capture
cores (the compiled one: C book, L2 and lane encoders)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from benchmarks.lane_frames import (
    REAL,
    REAL_DATASETS,
    LaneHarness,
    combined,
    feed_real,
    feed_simulated,
    real_frames,
    real_symbols,
)
from orderbook_pipeline.core.implementation import PYTHON, Core
from orderbook_pipeline.venues import BINANCE_SPOT, BINANCE_US, BINANCE_USDM, Venue
from orderbook_pipeline_tests.core.test_lanes import (
    BAD,
    SYM,
    agg,
    agg_trade,
    partial,
    spot_partial,
    spot_ticker,
    spot_trade,
    ticker,
    trade,
    usdm_partial,
    usdm_ticker,
    without,
)

REAL_SAMPLE = 3000  # frames per recording: every lane of it, and fast


def _run(venue: Venue, symbols: list[str], feed: Any, fast: bool, core: Core) -> LaneHarness:
    h = LaneHarness(venue, symbols, fast, core=core)
    feed(h)
    h.finish()
    return h


def _reference(venue: Venue, symbols: list[str], feed: Any) -> dict[str, Any]:
    return _run(venue, symbols, feed, fast=False, core=PYTHON).outcome()


@pytest.mark.parametrize("dataset", sorted(REAL_DATASETS))
def test_real_recordings_give_the_same_bronze_bytes_on_both_paths(dataset: str, core: Core):
    if not (REAL / dataset).is_dir():
        pytest.skip(f"real recordings not found: {REAL / dataset} (see ../shared/real/README.md)")
    frames = real_frames(dataset, REAL_SAMPLE)
    venue, symbols = REAL_DATASETS[dataset], real_symbols(frames)
    ref = _reference(venue, symbols, lambda h: feed_real(h, frames))
    h = _run(venue, symbols, lambda h: feed_real(h, frames), True, core)
    assert h.outcome() == ref
    assert h.accepted_fast == len(frames)  # real frames never need the reference path
    assert ref["bad"] == [] and sum(ref["lane_records"].values()) > 0.9 * len(frames)
    assert all(ref["bytes"].values())


@pytest.mark.parametrize("venue", [BINANCE_SPOT, BINANCE_USDM, BINANCE_US], ids=lambda v: v.name)
@pytest.mark.parametrize("as_bytes", [False, True], ids=["str", "bytes"])
def test_simulated_frames_give_the_same_bronze_bytes_on_both_paths(
    venue: Venue, as_bytes: bool, core: Core
):
    def feed(h: LaneHarness) -> None:
        feed_simulated(h, SYM, 150, bytes_frames=as_bytes)

    ref = _reference(venue, [SYM], feed)
    h = _run(venue, [SYM], feed, True, core)
    assert h.outcome() == ref
    lanes = {lane for lane, _ in ref["bytes"]}
    assert {"agg_trades", "book_ticker", "partial_depth"} <= lanes
    assert ref["cross_checks"]["book_ticker:match"] > 50
    assert ref["cross_checks"]["partial_depth:match"] > 50


class _Corrupting(LaneHarness):
    """Every 40th bookTicker and partial depth frame with its best bid's quantity changed:
    the local book then differs from the exchange's view (a mismatch, the book dropped)."""

    seen = 0

    def lane_frame(self, frame: str | bytes, recv_us: int) -> None:
        assert isinstance(frame, str)
        msg = json.loads(frame)
        data = msg["data"]
        if "bookTicker" in msg["stream"] or "@depth" in msg["stream"]:
            self.seen += 1
            if self.seen % 40 == 0:
                if "B" in data:
                    data["B"] = "123.0"
                else:
                    side = data.get("bids", data.get("b"))
                    side[0][1] = "123.0"
                frame = combined(msg["stream"], data)
        super().lane_frame(frame, recv_us)


def test_views_that_differ_from_the_book_give_the_same_mismatches_on_both_paths(core: Core):
    def run(fast: bool, core: Core) -> dict[str, Any]:
        h = _Corrupting(BINANCE_SPOT, [SYM], fast, core=core)
        feed_simulated(h, SYM, 200)
        h.finish()
        return h.outcome()

    ref = run(False, PYTHON)
    assert run(True, core) == ref
    # The first mismatch drops the book (never resynced here): what follows is unchecked.
    assert ref["mismatches"] and any(k.endswith(":mismatch") for k in ref["cross_checks"])
    assert any(k.endswith(":unchecked") for k in ref["cross_checks"])
    assert ("book_mismatches", SYM) in ref["bytes"]


# --- hostile payloads ---------------------------------------------------------------------

_STREAM = {trade: "@trade", agg: "@aggTrade", ticker: "@bookTicker", partial: "@depth5@100ms"}
_LANE = {trade: "trades", agg: "agg_trades", ticker: "book_ticker", partial: "partial_depth"}
_ODD_VALUES: list[Any] = [None, 1.5, -1, 0, "x", "", "NaN", "inf", "-1", "0", True, [], {}, 2**63]


def _variants() -> list[tuple[str, str]]:
    """(lane, frame): the hostile payloads of core/test_lanes.py BAD, every field of each
    venue form missing or replaced by an odd value, and odd frames."""
    goods = [
        (trade, spot_trade()),
        (trade, without(spot_trade(), "M")),
        (trade, spot_trade(X="MARKET")),
        (agg, agg_trade()),
        (agg, agg_trade(usdm=True)),
        (ticker, spot_ticker()),
        (ticker, spot_ticker(E=1, T=2)),  # spot form: E and T are not read
        (ticker, usdm_ticker()),
        (partial, spot_partial()),
        (partial, spot_partial(s=SYM)),
        (partial, spot_partial(bids=[], asks=[])),
        (partial, usdm_partial()),
        (partial, usdm_partial(lastUpdateId="x")),  # USD-M form: not read
    ]
    out: list[tuple[Any, Any]] = [(build, data) for build, data, _, _ in BAD]
    for build, data in goods:
        out.append((build, data))
        for key in data:
            out.append((build, without(data, key)))
            out.extend((build, {**data, key: value}) for value in _ODD_VALUES)
    sym = SYM.lower()
    frames = [(_LANE[b], combined(sym + _STREAM[b], d)) for b, d in out]
    good_trade = combined(sym + "@trade", spot_trade())
    frames += [
        ("trades", good_trade[:-1]),  # truncated
        ("trades", good_trade.replace('"stream"', ' "stream"')),  # not where the name is looked for
        ("trades", good_trade.replace("@trade", "\\u0040trade")),  # the name escaped
        ("trades", '{"stream":"' + sym + '@trade","stream":"x","data":{}}'),
        ("trades", good_trade.replace('"data"', '"stream":"' + sym + '@aggTrade","data"')),
        ("trades", good_trade[:-1] + ',"stream":"' + sym + '@trade"}'),  # a repeated key
        ("trades", good_trade.replace('"p":"', '"p":"1","p":"')),  # the last one counts
        ("trades", good_trade.replace('"p":"', '"p":1,"p":"')),
        ("trades", good_trade.replace('"q":"0.00100000"', '"q":"0.001","q":NaN')),
        ("trades", good_trade.replace(',"M":true', ',"M":null')),
        ("trades", good_trade.replace(',"M":true', ',"M":true,"Z":' + "[" * 2000 + "]" * 2000)),
        ("trades", '{"stream":"' + sym + '@trade"}'),
        ("trades", '{"stream":"' + sym + '@trade","data":[1,2]}'),
        ("trades", '{"stream":"' + sym + '@trade","data":{"e":"serverShutdown"}}'),
        ("trades", '{"result":null,"id":1}'),
        ("trades", "not json"),
        ("book_ticker", combined(sym + "@bookTicker", spot_ticker(b="25.3", a="25.3"))),
        *_odd_numbers(sym),
        ("partial_depth", combined(sym + "@depth5@100ms", spot_partial(bids=[["1", "1"]] * 2))),
    ]
    return frames


# Decimal strings float() and msgspec may read differently (the reference lets float() decide).
_ODD_NUMBERS = ["+0.0024", " 0.0024", "0.0024 ", "0_0024", "\u0030.0024", "\u0660.1", ".0024"]
_ODD_NUMBERS += ["2.4e-3", "2.4E-3", "0.00240", "00.0024", "-0", "0", "1e400", "0x1", "١", "۲.5"]


def _odd_numbers(sym: str) -> list[tuple[str, str]]:
    out = []
    for text in _ODD_NUMBERS:
        raw = f'"{text}"'
        level = '["0.0026","1"]'
        for side in (f'[[{raw},"1"]]', f'[["0.0024",{raw}]]'):
            data = f'{{"lastUpdateId":7,"bids":{side},"asks":[{level}]}}'
            out.append(("partial_depth", f'{{"stream":"{sym}@depth5@100ms","data":{data}}}'))
        ticker = f'{{"u":7,"s":"{SYM}","b":{raw},"B":"1","a":"9","A":{raw}}}'
        out.append(("book_ticker", f'{{"stream":"{sym}@bookTicker","data":{ticker}}}'))
        trade_data = json.dumps(spot_trade()).replace('"0.00100000"', raw)
        out.append(("trades", f'{{"stream":"{sym}@trade","data":{trade_data}}}'))
    return out


def _one_frame(lane: str, frame: str, fast: bool, core: Core) -> dict[str, Any]:
    def feed(h: LaneHarness) -> None:
        sym = SYM.lower()
        for b, stream in _STREAM.items():
            levels = 5 if b is partial else None
            h.route(sym + stream, SYM, _LANE[b], levels)
        h.lane_frame(frame, 1_700_000_000_000_000)
        h.lane_frame(frame.encode(), 1_700_000_000_000_001)  # bytes too (a repeat for trades)

    return _run(BINANCE_SPOT, [SYM], feed, fast, core).outcome()


def test_hostile_frames_have_the_same_outcome_on_both_paths(core: Core):
    reasons: set[str] = set()
    written = refused = 0
    for lane, frame in _variants():
        ref = _one_frame(lane, frame, False, PYTHON)
        assert _one_frame(lane, frame, True, core) == ref, (lane, frame[:300])
        reasons |= {reason for reason, _ in ref["bad"]}
        written += bool(ref["bytes"])
        refused += bool(ref["bad"])
    assert reasons == {
        "wrong_types",
        "bad_number",
        "unknown_symbol",
        "crossed",
        "unsorted",
        "invalid_json",
        "unexpected",
    }
    assert written > 50 and refused > 300  # both outcomes are compared, many times
