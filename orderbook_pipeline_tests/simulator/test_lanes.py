"""The exchange's stream lanes over real sockets: trades, aggTrades, bookTicker and partial depth
agree with the true book at each event, come in order after their depth event, and USD-M serves
each on its own path."""

from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal
from typing import Any

import orjson
from websockets.asyncio.client import connect

from orderbook_pipeline.lanes.registry import stream_name
from orderbook_pipeline.simulator import SimulatorThread
from orderbook_pipeline.venues import BINANCE_SPOT, BINANCE_USDM

FAST = {"interval_ms": 10, "levels_per_side": 300, "median_changes": 5}
SYM = "BTCUSDT"


async def _frames(url: str, n: int) -> list[tuple[str, dict[str, Any]]]:
    out = []
    async with connect(url) as ws:
        while len(out) < n:
            msg = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
            out.append((msg["stream"], msg["data"]))
    return out


def _collect(url: str, n: int) -> list[tuple[str, dict[str, Any]]]:
    return asyncio.run(_frames(url, n))


def _by_tick(frames: list[tuple[str, dict[str, Any]]], diff: str) -> list[list]:
    """Frames grouped per depth event: [depth data, [(stream, data) that followed it]]."""
    ticks: list[list] = []
    for stream, data in frames:
        if stream == diff:
            ticks.append([data, []])
        elif ticks:  # frames before the first depth event belong to no known tick
            ticks[-1][1].append((stream, data))
    return ticks[:-1]  # the last tick may be cut short by n


def _levels(levels: list[tuple[str, str]]) -> list[list[str]]:
    return [list(level) for level in levels]


def test_spot_lanes_follow_their_depth_event_and_equal_the_truth() -> None:
    v = BINANCE_SPOT
    with SimulatorThread(v, [SYM, "ETHUSDT"], **FAST) as s:
        diff, trade, agg, ticker, part5 = (
            stream_name(v, lane, SYM, 5) for lane in ("l2", *v.stream_lanes)
        )
        part20 = "btcusdt@depth20"  # no period: 1000 ms on spot
        order = [trade, agg, ticker, part5, part20]
        ticks = _by_tick(_collect(s.stream_url([diff, *order]), 500), diff)
        history = {t["t"]: t for t in s.trades(SYM)}
        agg_history = {a["a"]: a for a in s.agg_trades(SYM)}
        sent = set(s.sent_trade_ids(SYM))
        received: list[int] = []
        n_tickers = 0
        part20_at = []
        for i, (event, extras) in enumerate(ticks):
            u = event["u"]
            streams = [stream for stream, _ in extras]
            assert streams == sorted(streams, key=order.index), "frames out of order in a tick"
            got = {name: [d for st, d in extras if st == name] for name in order}
            # Trades follow their event (same time) and are the market's.
            for t in got[trade]:
                assert t == history[t["t"]] and t["E"] == event["E"] and t["t"] in sent
                received.append(t["t"])
            for a in got[agg]:
                assert a == agg_history[a["a"]] and a["E"] == event["E"]
            assert [x for a in got[agg] for x in range(a["f"], a["l"] + 1)] == [
                t["t"] for t in got[trade]
            ]
            # bookTicker: sent exactly when the top changed, equal to the true top at u.
            top = s.book_ticker_at(SYM, u)
            changed = top != s.book_ticker_at(SYM, event["U"] - 1)
            if i > 0:
                assert len(got[ticker]) == int(changed), f"event {u}"
            for t in got[ticker]:
                assert t == dict(zip(["u", "s", "b", "B", "a", "A"], [u, SYM, *top], strict=True))
                n_tickers += 1
            bids, asks = s.true_book(SYM, u, 5)
            assert got[part5] == [{"lastUpdateId": u, "bids": _levels(bids), "asks": _levels(asks)}]
            if got[part20]:
                bids, asks = s.true_book(SYM, u, 20)
                assert got[part20] == [
                    {"lastUpdateId": u, "bids": _levels(bids), "asks": _levels(asks)}
                ]
                part20_at.append(i)
        # No trade went missing: the ids received are consecutive.
        assert received == list(range(received[0], received[0] + len(received)))
        assert len(received) > 10 and n_tickers > 10 and len(ticks) > 60
        assert len(part20_at) >= 3
        assert all(b - a == 10 for a, b in itertools.pairwise(part20_at))  # every 10th tick


def test_usdm_lanes_on_public_and_market_paths() -> None:
    v = BINANCE_USDM
    with SimulatorThread(v, [SYM], **FAST) as s:
        diff = stream_name(v, "l2", SYM)
        ticker, agg = stream_name(v, "book_ticker", SYM), stream_name(v, "agg_trades", SYM)
        part5 = stream_name(v, "partial_depth", SYM, 5)
        part10, part20 = "btcusdt@depth10", "btcusdt@depth20@500ms"  # 250 ms and 500 ms
        public = s.stream_url([diff, ticker, part5, part10, part20, agg])
        market = s.stream_url([agg, diff, ticker], v.lane_path_prefix("agg_trades"))
        assert v.lane_path_prefix("book_ticker") == "/public" and "/market/" in market

        async def both() -> tuple[list, list]:
            return await asyncio.gather(_frames(public, 400), _frames(market, 25))

        pub, mkt = asyncio.run(both())
        agg_history = {a["a"]: a for a in s.agg_trades(SYM)}
        # /market carries only aggTrade (no "M" on USD-M), /public never does.
        assert {stream for stream, _ in mkt} == {agg}
        for _, a in mkt:
            assert a == agg_history[a["a"]] and "M" not in a and a["T"] <= a["E"]
        assert agg not in {stream for stream, _ in pub}
        ticks = _by_tick(pub, diff)
        seen: dict[str, list[int]] = {part10: [], part20: []}
        for i, (event, extras) in enumerate(ticks):
            u, ids = event["u"], {k: event[k] for k in ("E", "T", "U", "u", "pu")}
            for stream, data in extras:
                if stream == ticker:
                    b, bq, a, aq = s.book_ticker_at(SYM, u)
                    assert data == {
                        "e": "bookTicker",
                        "u": u,
                        "s": SYM,
                        "b": b,
                        "B": bq,
                        "a": a,
                        "A": aq,
                        "T": event["T"],
                        "E": event["E"],
                    }
                    continue
                depth = {part5: 5, part10: 10, part20: 20}[stream]
                bids, asks = s.true_book(SYM, u, depth)
                assert data == {
                    "e": "depthUpdate",
                    **ids,
                    "s": SYM,
                    "b": _levels(bids),
                    "a": _levels(asks),
                }
                if stream in seen:
                    seen[stream].append(i)
            assert sum(st == part5 for st, _ in extras) == 1
        gaps10 = [b - a for a, b in itertools.pairwise(seen[part10])]
        assert set(gaps10) == {2, 3} and all(x + y == 5 for x, y in itertools.pairwise(gaps10))
        assert len(seen[part20]) >= 3 and all(
            b - a == 5 for a, b in itertools.pairwise(seen[part20])
        )


def test_trade_prices_hit_the_previous_touch() -> None:
    """m=false (taker buy) trades at the best ask before the event, m=true at the best bid."""
    with SimulatorThread(BINANCE_SPOT, [SYM], **FAST) as s:
        diff = BINANCE_SPOT.depth_stream(SYM)
        ticks = _by_tick(_collect(s.stream_url([diff, "btcusdt@aggTrade"]), 200), diff)
        checked = 0
        for event, extras in ticks:
            if not extras:
                continue
            bid, _, ask, _ = s.book_ticker_at(SYM, event["U"] - 1)
            first = extras[0][1]
            assert Decimal(first["p"]) == Decimal(bid if first["m"] else ask)
            checked += 1
        assert checked > 5
