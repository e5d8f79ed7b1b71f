"""Trades of the market model: each taker order moves the book in the same event, exactly."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from orderbook_pipeline.simulator.market import Market
from orderbook_pipeline.venues import BINANCE_SPOT, BINANCE_US, BINANCE_USDM


def _market(venue=BINANCE_SPOT, symbol="BTCUSDT", seed=11, **kw) -> Market:
    kw.setdefault("levels_per_side", 300)
    return Market(venue, symbol, seed=seed, **kw)


def _book(levels: list[tuple[str, str]]) -> dict[Decimal, Decimal]:
    return {Decimal(p): Decimal(q) for p, q in levels}


@pytest.mark.parametrize("venue", [BINANCE_SPOT, BINANCE_USDM])
def test_each_trade_reduces_its_level_by_exactly_the_traded_quantity(venue) -> None:
    m = _market(venue, history_events=600)
    sweeps = multi = takes_whole = 0
    for i in range(500):
        prev_u = m.last_update_id
        bids, asks = (_book(side) for side in m.true_book(prev_u))
        event = m.step(1_000 + i)
        trades = m.trade_payloads(event)
        if not trades:
            continue
        is_bid = trades[0]["m"]  # buyer is maker: a taker sell hit the bids
        side, key = (bids, "b") if is_bid else (asks, "a")
        changes = {Decimal(p): Decimal(q) for p, q in event.payload[key]}
        traded: dict[Decimal, Decimal] = {}
        for t in trades:
            assert t["m"] == is_bid and t["T"] == (
                event.t_ms if venue is BINANCE_USDM else 1_000 + i
            )
            assert t["E"] == 1_000 + i and Decimal(t["q"]) > 0
            traded[Decimal(t["p"])] = traded.get(Decimal(t["p"]), Decimal(0)) + Decimal(t["q"])
        # The first price is the touch of the previous book, a sweep's second the next level.
        touch = sorted(side, reverse=is_bid)[: len(traded)]
        assert list(traded) == touch
        for price, qty in traded.items():
            assert changes[price] == side[price] - qty, f"event {i} at {price}"
            takes_whole += changes[price] == 0
        sweeps += len(traded) == 2
        multi += any(len([t for t in trades if Decimal(t["p"]) == p]) > 1 for p in traded)
        # The event's bookTicker values are the true top after it.
        bb, bq, ba, aq = event.top
        nb, na = m.true_book(event.final_update_id, 1)
        assert (m.fmt_price(bb), m.fmt_qty(bq), m.fmt_price(ba), m.fmt_qty(aq)) == (nb[0] + na[0])
    assert sweeps >= 3 and multi >= 10 and takes_whole >= 10


def test_agg_trades_cover_the_trades_and_ids_are_consecutive() -> None:
    m = _market(BINANCE_US, history_events=1000)
    for i in range(400):
        m.step(i)
    trades, aggs = m.trades(), m.agg_trades()
    assert len(trades) > 100 and len(aggs) < len(trades)
    assert [t["t"] for t in trades] == list(range(trades[0]["t"], trades[0]["t"] + len(trades)))
    assert [a["a"] for a in aggs] == list(range(aggs[0]["a"], aggs[0]["a"] + len(aggs)))
    by_id = {t["t"]: t for t in trades}
    covered = []
    for a in aggs:
        members = [by_id[t] for t in range(a["f"], a["l"] + 1)]
        covered.extend(range(a["f"], a["l"] + 1))
        assert all(t["p"] == a["p"] and t["m"] == a["m"] and t["T"] == a["T"] for t in members)
        assert sum(Decimal(t["q"]) for t in members) == Decimal(a["q"])
        assert a["M"] is True and a["e"] == "aggTrade"
        assert 1 <= len(members) <= 3
    assert covered == [t["t"] for t in trades]
    assert {t["m"] for t in trades} == {True, False}


def test_usdm_agg_trades_have_no_M_and_trades_are_venue_independent() -> None:
    spot, usdm = _market(BINANCE_SPOT), _market(BINANCE_USDM)
    for i in range(300):
        spot.step(i)
        usdm.step(i)
    sa, ua = spot.agg_trades(), usdm.agg_trades()
    assert all("M" not in a for a in ua) and len(sa) == len(ua) > 20
    # Same seed, same trades on every venue: only the spelling of numbers differs.
    strip = lambda a: (a["a"], a["f"], a["l"], Decimal(a["p"]), Decimal(a["q"]), a["m"])  # noqa: E731
    assert [strip(a) for a in sa] == [strip(a) for a in ua]


def test_trades_are_deterministic_per_seed() -> None:
    a, b, c = _market(), _market(), _market(seed=12)
    for i in range(200):
        a.step(i)
        b.step(10_000 + 3 * i)  # another clock
        c.step(i)
    key = lambda t: (t["t"], t["p"], t["q"], t["m"])  # noqa: E731
    assert [key(t) for t in a.trades()] == [key(t) for t in b.trades()]
    assert [key(t) for t in a.trades()] != [key(t) for t in c.trades()]


def test_taker_probability_zero_means_no_trades_and_history_is_bounded() -> None:
    quiet = _market(taker_probability=0.0)
    for i in range(200):
        assert not quiet.step(i).fills
    assert quiet.trades() == []
    busy = _market(history_events=20, taker_probability=1.0)
    events = [busy.step(i) for i in range(100)]
    kept = busy.trades()
    assert kept and all(t["E"] >= events[-20].e_ms for t in kept)
    assert kept[-1]["t"] == events[-1].fills[-1].last_id


def test_trades_never_empty_a_side_below_its_floor() -> None:
    m = _market(levels_per_side=15, median_changes=2, taker_probability=1.0)
    for i in range(2000):
        m.step(i)
        nb, na = m.depth_counts()
        assert nb >= 10 and na >= 10
        bid, ask = m.best_bid_ask()
        assert bid < ask
    assert all(b["t"] - a["t"] == 1 for a, b in itertools.pairwise(m.trades()))
