"""Faults of the stream lanes (drop_trade, corrupt_level), the clock offset, and the /sim truth
endpoints of trades and bookTicker."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from orderbook_pipeline.simulator import SimulatorThread
from orderbook_pipeline.venues import BINANCE_SPOT, BINANCE_USDM

FAST = {"interval_ms": 10, "levels_per_side": 300, "median_changes": 5}
SYM = "BTCUSDT"
DIFF = BINANCE_SPOT.depth_stream(SYM)


def _collect(
    url: str, n: int, during: Callable[[int, str], None] | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """First n frames as (stream, data); during(i, stream) runs after the i-th frame."""

    async def run() -> list[tuple[str, dict[str, Any]]]:
        out = []
        async with connect(url) as ws:
            for i in range(n):
                msg = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
                out.append((msg["stream"], msg["data"]))
                if during:
                    during(i, msg["stream"])
        return out

    return asyncio.run(run())


@pytest.fixture
def sim():
    with SimulatorThread(BINANCE_SPOT, [SYM], taker_probability=0.8, **FAST) as s:
        yield s


def test_drop_trade_skips_trades_and_their_agg_trades_only(sim: SimulatorThread) -> None:
    armed: list[int] = []

    def arm(i: int, stream: str) -> None:
        if stream == "btcusdt@trade" and not armed:  # after a first trade, so ids visibly jump
            sim.inject("drop_trade", symbol=SYM, count=4)
            armed.append(i)

    frames = _collect(sim.stream_url([DIFF, "btcusdt@trade", "btcusdt@aggTrade"]), 300, arm)
    got = [d["t"] for st, d in frames if st == "btcusdt@trade"]
    aggs = [d for st, d in frames if st == "btcusdt@aggTrade"]
    jumps = [(a, b) for a, b in itertools.pairwise(got) if b != a + 1]
    assert len(jumps) == 1 and jumps[0][1] - jumps[0][0] == 5  # four ids missing
    missing = set(range(jumps[0][0] + 1, jumps[0][1]))
    history = sim.trades(SYM)
    assert missing <= {t["t"] for t in history}  # the market made them
    assert not missing & set(sim.sent_trade_ids(SYM))
    assert set(got) <= set(sim.sent_trade_ids(SYM))
    # An aggTrade is missing exactly when it contains a dropped trade.
    window = [a for a in sim.agg_trades(SYM) if aggs[0]["a"] <= a["a"] <= aggs[-1]["a"]]
    expected = [a for a in window if not missing & set(range(a["f"], a["l"] + 1))]
    assert aggs == expected and len(expected) < len(window)
    # The depth stream and the book are untouched.
    ids = [(d["U"], d["u"]) for st, d in frames if st == DIFF]
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(ids))


def test_corrupt_level_sends_a_phantom_the_true_book_lacks(sim: SimulatorThread) -> None:
    def arm(i: int, _: str) -> None:
        if i == 2:
            sim.inject("corrupt_level", symbol=SYM, distance=50, side="bid")

    frames = [d for _, d in _collect(sim.stream_url([DIFF]), 40, arm)]
    [record] = sim.corruptions()
    assert record["symbol"] == SYM and record["side"] == "bid"
    u, px, qty = record["update_id"], record["price"], record["qty"]
    event = next(d for d in frames if d["u"] == u)
    assert [px, qty] in event["b"]
    assert [Decimal(p) for p, _ in event["b"]] == sorted(
        (Decimal(p) for p, _ in event["b"]), reverse=True
    )
    generated = next(g for g in sim.generated(SYM) if g["u"] == u)
    assert [px, qty] not in generated["b"] and len(event["b"]) == len(generated["b"]) + 1
    bids, _ = sim.true_book(SYM, u)
    assert px not in {p for p, _ in bids}
    above = sum(1 for p, _ in bids if Decimal(p) > Decimal(px))
    assert 50 < above <= 120  # about `distance` levels from the touch
    # A later snapshot disagrees with a book built from the stream at that price, unless the
    # market itself has changed that price since.
    snap = httpx.get(f"{sim.rest_url}/api/v3/depth", params={"symbol": SYM, "limit": 5000}).json()
    touched = any(
        px in {p for p, _ in g["b"] + g["a"]}
        for g in sim.generated(SYM)
        if u < g["u"] <= snap["lastUpdateId"]
    )
    assert (px in {p for p, _ in snap["bids"]}) == touched
    # The stream's other events are real: the ones after the corruption are untouched.
    after = [d for d in frames if d["u"] > u]
    assert after and all(d in sim.generated(SYM) for d in after)


def test_corrupt_level_at_distance_zero_misstates_the_best_level(sim: SimulatorThread) -> None:
    def arm(i: int, _: str) -> None:
        if i == 2:
            sim.inject("corrupt_level", symbol=SYM, distance=0, side="ask")

    frames = [d for _, d in _collect(sim.stream_url([DIFF]), 30, arm)]
    [record] = sim.corruptions()
    event = next(d for d in frames if d["u"] == record["update_id"])
    _, _, best_ask, best_qty = sim.book_ticker_at(SYM, record["update_id"])
    assert record["price"] == best_ask and record["qty"] != best_qty
    assert [best_ask, record["qty"]] in event["a"]
    assert sum(1 for p, _ in event["a"] if p == best_ask) == 1


def test_clock_offset_shifts_server_time_only() -> None:
    offset = -3_600_000
    with SimulatorThread(BINANCE_USDM, [SYM], clock_offset_ms=offset, **FAST) as s:
        before = int(time.time() * 1000)
        served = httpx.get(f"{s.rest_url}/fapi/v1/time").json()["serverTime"]
        info = httpx.get(f"{s.rest_url}/fapi/v1/exchangeInfo").json()["serverTime"]
        after = int(time.time() * 1000)
        assert before + offset <= served <= info <= after + offset
        [(_, event)] = _collect(s.combined_url(), 1)
        # Event times are true: an hour away from the shifted clock.
        assert abs(event["E"] - served - 3_600_000) < 600_000
        with pytest.raises(ValueError):
            s.exchange.corrupt_level(SYM, side="middle")


def test_truth_endpoints_over_http(sim: SimulatorThread) -> None:
    url = sim.rest_url + "/sim"
    while len(sim.trades(SYM)) < 5:
        time.sleep(0.01)
    trades = httpx.get(f"{url}/trades", params={"symbol": SYM}).json()["trades"]
    assert trades[:5] == sim.trades(SYM)[:5]
    aggs = httpx.get(f"{url}/agg_trades", params={"symbol": SYM}).json()["agg_trades"]
    assert aggs[0]["f"] == trades[0]["t"]
    u = sim.generated(SYM)[-1]["u"]
    ticker = httpx.get(f"{url}/book_ticker", params={"symbol": SYM, "update_id": u}).json()
    assert [ticker[k] for k in "bBaA"] == list(sim.book_ticker_at(SYM, u))
    q = {"kind": "corrupt_level", "symbol": SYM, "distance": "5", "side": "ask"}
    assert httpx.get(f"{url}/fault", params=q).json() == {"ok": True}
    bad = {**q, "side": "up"}
    assert httpx.get(f"{url}/fault", params=bad).status_code == 400
    q = {"kind": "drop_trade", "symbol": SYM, "count": "2"}
    assert httpx.get(f"{url}/fault", params=q).json() == {"ok": True}
    _collect(sim.stream_url([DIFF, "btcusdt@trade"]), 60)
    found = httpx.get(f"{url}/corruptions", params={"symbol": SYM}).json()["corruptions"]
    assert len(found) == 1 and found[0]["side"] == "ask"
    sent = httpx.get(f"{url}/sent_trades", params={"symbol": SYM}).json()["t"]
    assert sent == sim.sent_trade_ids(SYM) and len(sent) > 3
