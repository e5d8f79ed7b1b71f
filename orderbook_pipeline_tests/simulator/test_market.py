"""Market model: determinism, book sanity, truth vs an independent replay, ids, formatting."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from orderbook_pipeline.simulator.market import Market, symbol_spec
from orderbook_pipeline.venues import BINANCE_SPOT, BINANCE_US, BINANCE_USDM

LEVELS = 300


def _market(venue=BINANCE_SPOT, symbol="BTCUSDT", seed=7, **kw) -> Market:
    kw.setdefault("levels_per_side", LEVELS)
    return Market(venue, symbol, seed=seed, **kw)


def test_same_seed_same_events_regardless_of_timing() -> None:
    a, b, c = _market(), _market(), _market(seed=8)
    ea = [a.step(1_000 + i).payload for i in range(200)]
    eb = [b.step(9_999_000 + 37 * i).payload for i in range(200)]  # different clock
    strip = [{k: v for k, v in e.items() if k != "E"} for e in ea]
    assert strip == [{k: v for k, v in e.items() if k != "E"} for e in eb]
    assert ea != [c.step(1_000 + i).payload for i in range(200)]


@pytest.mark.parametrize("symbol", ["BTCUSDT", "XRPUSDT"])
def test_never_crossed_and_size_stable(symbol: str) -> None:
    m = _market(symbol=symbol)
    sizes = []
    for i in range(4000):
        event = m.step(i)
        bid, ask = m.best_bid_ask()
        assert bid < ask, f"crossed after event {i}"
        prices = [lvl[0] for lvl in event.payload["b"] + event.payload["a"]]
        assert prices, "every event changes something"
        assert len(prices) == len(set(prices)), "a price changed twice in one event"
        sizes.extend(m.depth_counts())
    assert min(sizes[-200:]) > 0.7 * LEVELS and max(sizes[-200:]) < 1.3 * LEVELS


def test_change_count_distribution() -> None:
    m = _market(median_changes=20)
    payloads = [m.step(i).payload for i in range(400)]
    counts = sorted(len(p["b"]) + len(p["a"]) for p in payloads)
    median = counts[len(counts) // 2]
    assert 12 <= median <= 30
    assert counts[-1] <= 300


def _apply(book: dict[str, dict[Decimal, str]], payload: dict) -> None:
    for side, key in (("bids", "b"), ("asks", "a")):
        for px, qty in payload[key]:
            if Decimal(qty) == 0:
                book[side].pop(Decimal(px), None)
            else:
                book[side][Decimal(px)] = qty


def _top(book: dict, depth: int | None = None):
    """Best-first (price string, qty string) lists; book["_px"] keeps the original spelling."""
    out = []
    for side, reverse in (("bids", True), ("asks", False)):
        prices = sorted(book[side], reverse=reverse)[:depth]
        out.append([(book["_px"][p], book[side][p]) for p in prices])
    return out[0], out[1]


@pytest.mark.parametrize("venue", [BINANCE_SPOT, BINANCE_USDM])
def test_true_book_matches_independent_replay(venue) -> None:
    m = _market(venue, history_events=1000)
    for i in range(20):
        m.step(i)
    snap = m.snapshot(limit=10 * LEVELS)  # the whole book
    book: dict = {"bids": {}, "asks": {}, "_px": {}}
    for side in ("bids", "asks"):
        for px, qty in snap[side]:
            book[side][Decimal(px)] = qty
            book["_px"][Decimal(px)] = px
    # Events generated before the snapshot and covered by it are skipped, like a client does.
    events = [m.step(100 + i).payload for i in range(300)]
    checked = 0
    for i, payload in enumerate(events):
        for key in ("b", "a"):
            for px, _ in payload[key]:
                book["_px"][Decimal(px)] = px
        _apply(book, payload)
        if i % 37 == 0 or i == len(events) - 1:
            assert m.true_book(payload["u"]) == _top(book), f"event {i}"
            assert m.true_book(payload["u"], depth=10) == _top(book, 10)
            checked += 1
    assert checked >= 8
    assert m.true_book(snap["lastUpdateId"], depth=5)[0] == [tuple(x) for x in snap["bids"][:5]]


def test_true_book_rejects_non_boundaries_and_forgotten_history() -> None:
    m = _market(history_events=50)
    events = [m.step(i) for i in range(200)]
    last = events[-1]
    inside = next(e for e in events[-40:] if e.final_update_id > e.first_update_id)
    with pytest.raises(KeyError):
        m.true_book(inside.first_update_id)  # inside an event's id range, not a boundary
    with pytest.raises(KeyError):
        m.true_book(events[10].final_update_id)  # no longer retained
    assert m.true_book(events[-50].prev_final_update_id)  # oldest retained state
    assert len(m.generated()) == 50
    assert m.generated()[-1] == last.payload


def test_spot_ids_contiguous() -> None:
    for venue in (BINANCE_SPOT, BINANCE_US):
        m = _market(venue)
        prev = m.last_update_id
        assert prev > 1_000_000_000
        for i in range(300):
            p = m.step(i).payload
            assert p["U"] == prev + 1 and p["u"] >= p["U"] and "pu" not in p
            prev = p["u"]


def test_usdm_ids_chained_by_pu_with_gaps() -> None:
    m = _market(BINANCE_USDM)
    prev, skipped = m.last_update_id, 0
    for i in range(300):
        p = m.step(1000 + i).payload
        assert p["pu"] == prev and p["U"] > prev and p["u"] >= p["U"]
        assert p["T"] < p["E"] == 1000 + i
        skipped += p["U"] > prev + 1
        prev = p["u"]
    assert skipped > 100  # ids are not contiguous on USD-M


def test_snapshot_lag_gives_older_book() -> None:
    m = _market(BINANCE_USDM)
    events = [m.step(i) for i in range(10)]
    snap = m.snapshot(limit=5, lag_events=3, now_ms=99)
    assert snap["lastUpdateId"] == events[-4].final_update_id
    assert (snap["E"], snap["T"]) == (99, events[-4].payload["T"])
    bids, asks = m.true_book(events[-4].final_update_id, 5)
    assert snap["bids"] == [list(b) for b in bids] and snap["asks"] == [list(a) for a in asks]
    assert m.snapshot(limit=5)["lastUpdateId"] == events[-1].final_update_id


def test_symbol_specs() -> None:
    btc, eth, other = symbol_spec("BTCUSDT"), symbol_spec("ethusdt"), symbol_spec("XRPUSDT")
    assert (btc.tick_size, btc.step_size, btc.price_decimals, btc.qty_decimals) == (
        "0.01",
        "0.00001",
        2,
        5,
    )
    assert (eth.tick_size, eth.step_size, eth.base_asset, eth.quote_asset) == (
        "0.01",
        "0.0001",
        "ETH",
        "USDT",
    )
    assert 1 <= other.base_price <= 1000 and other.tick_size in ("0.0001", "0.001")
    assert other.step_size == "0.01" and symbol_spec("XRPUSDT") == other


def test_price_formatting_per_venue() -> None:
    spot = _market(BINANCE_SPOT).step(0).payload
    usdm = _market(BINANCE_USDM).step(0).payload
    for px, qty in spot["b"] + spot["a"]:
        assert re.fullmatch(r"6\d{4}\.\d{8}", px) and re.fullmatch(r"\d+\.\d{8}", qty)
    for px, qty in usdm["b"] + usdm["a"]:
        assert re.fullmatch(r"6\d{4}\.\d{2}", px) and re.fullmatch(r"\d+\.\d{5}", qty)
    # The same seed gives the same book on both venues: only the spelling differs.
    assert [Decimal(p) for p, _ in spot["b"]] == [Decimal(p) for p, _ in usdm["b"]]
    eth = _market(BINANCE_USDM, "ETHUSDT").snapshot(5)
    assert all(re.fullmatch(r"\d+\.\d{4}", q) for _, q in eth["bids"])
