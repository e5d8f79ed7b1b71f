from __future__ import annotations

import math
import random
from itertools import pairwise

import numpy as np
import pytest
from fastavro.validation import validate

from orderbook_pipeline.core.bands import BandSampler, compute_bands
from orderbook_pipeline.core.book import BookSide, OrderBook
from orderbook_pipeline.core.deep import DeepLevels
from orderbook_pipeline.core.implementation import Core
from orderbook_pipeline.lanes.depth_bands import DEFAULT_BAND_PCTS
from orderbook_pipeline.lanes.registry import LANES
from orderbook_pipeline_tests.core.random_walk import naive_apply, random_changes

INF = float("inf")


def _naive(levels: dict[float, float], is_bid: bool, bound: float) -> tuple[float, float, int]:
    inside = [(p, q) for p, q in levels.items() if (p >= bound if is_bid else p <= bound)]
    return (
        math.fsum(q for _, q in inside),
        math.fsum(p * q for p, q in inside),
        len(inside),
    )


def _sequential(levels: dict[float, float], is_bid: bool, bound: float) -> tuple[float, float, int]:
    """The defined summation order: best first, left to right from 0.0 (both cores)."""
    sum_qty = sum_notional = 0.0
    n = 0
    for p in sorted(levels, reverse=is_bid):
        if p < bound if is_bid else p > bound:
            break
        sum_qty += levels[p]
        sum_notional += p * levels[p]
        n += 1
    return sum_qty, sum_notional, n


def _assert_sums(got: tuple[float, float, int], want: tuple[float, float, int]) -> None:
    # Sums of doubles in another order than fsum's exact rounding: a tight relative tolerance
    # (an empty band must be exactly 0).
    assert got[2] == want[2]
    assert got[0] == pytest.approx(want[0], rel=1e-12, abs=0.0)
    assert got[1] == pytest.approx(want[1], rel=1e-12, abs=0.0)


def _deep_state(side: BookSide) -> tuple[bytes, list[float], list[float]] | None:
    d = getattr(side, "_deep", None)  # the compiled core has no pending log
    return None if d is None else (bytes(d.pending), d.px.tolist(), d.qty.tolist())


def _bounds(rng: random.Random, levels: dict[float, float], is_bid: bool) -> list[float]:
    prices = sorted(levels)
    out = [rng.choice(prices) for _ in range(3)] if prices else []  # exactly on a level
    if prices:
        lo, hi = prices[0], prices[-1]
        out += [rng.uniform(lo - 5, hi + 5) for _ in range(3)]
        out += [lo - 1.0, hi + 1.0, lo, hi]
    out += [rng.choice((-INF, INF, 0.0))]
    if out and rng.random() < 0.3:
        out.append(out[0])  # a duplicate
    rng.shuffle(out)
    return out


@pytest.mark.parametrize("exchange_order", [True, False])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sums_match_a_naive_book_through_refills_trims_and_merges(
    seed, exchange_order, small_book, core: Core
):
    # As test_book's random walk, with prices and quantities that are not small integers (so
    # that the sums round) and a band query every few events, on bounds that cut the region,
    # fall on its edge, reach into the deep levels, land exactly on levels or beyond the book.
    rng = random.Random(seed)
    book = small_book
    tick = 0.01
    mid = 1000

    def px(ticks: int) -> float:
        return round(ticks * tick, 2)

    def qty() -> float:
        return round(rng.uniform(0.001, 9.0), 5)

    bids = {px(p): qty() for p in range(mid - 300, mid)}
    asks = {px(p): qty() for p in range(mid + 1, mid + 300)}
    book.load(1, list(bids.items()), list(asks.items()))
    checked_pending = 0
    for step in range(1000):
        mid += rng.choice((-3, -1, 0, 1, 3))
        changes_b, changes_a = random_changes(rng, mid, bids, asks, exchange_order, px, qty)
        naive_apply(bids, changes_b)
        naive_apply(asks, changes_a)
        book.apply(changes_b, changes_a, step + 2)
        if step % 3:
            continue
        for side, naive in ((book.bids, bids), (book.asks, asks)):
            bounds = _bounds(rng, naive, side.is_bid)
            before = _deep_state(side)
            checked_pending += bool(before and before[0])
            got = side.sums_within_many(bounds)
            assert _deep_state(side) == before  # read-only: nothing merged
            assert len(got) == len(bounds)
            for b, g in zip(bounds, got, strict=True):
                _assert_sums(g, _naive(naive, side.is_bid, b))
                assert g == _sequential(naive, side.is_bid, b)  # to the last bit
            b = bounds[0]
            _assert_sums(side.sums_within(b), _naive(naive, side.is_bid, b))
    if core.name == "python":
        assert checked_pending > 100  # the pending-log path ran, not only merged sides
    assert book.bids.levels() == sorted(bids.items(), reverse=True)
    assert book.asks.levels() == sorted(asks.items())


@pytest.mark.parametrize("is_bid", [True, False])
def test_a_long_pending_log_with_repeated_prices_is_read_exactly(is_bid):
    # The default PENDING_LIMIT: up to 2,047 changes stay pending behind a 3,000-level side,
    # many of them repeating a price (the last one wins) or deleting a level.
    rng = random.Random(7)
    side = BookSide(is_bid=is_bid)
    sign = -1 if is_bid else 1
    levels = {round(100.0 + sign * i * 0.01, 2): round(rng.uniform(0.1, 5), 4) for i in range(3000)}
    side.load(levels.items())
    worst_region = side._keys[0] if is_bid else side._keys[-1]
    for _ in range(1500):
        i = rng.randrange(300, 3200)
        p = round(100.0 + sign * i * 0.01, 2)
        assert (p < worst_region) if is_bid else (p > worst_region)
        q = 0.0 if rng.random() < 0.3 else round(rng.uniform(0.1, 5), 4)
        side.apply([(p, q)])
        if q:
            levels[p] = q
        else:
            levels.pop(p, None)
    assert side._deep.pending_changes == 1500
    lo, hi = min(levels), max(levels)
    bounds = [rng.uniform(lo - 1, hi + 1) for _ in range(20)] + [rng.choice(list(levels))]
    before = _deep_state(side)
    got = side.sums_within_many(bounds)
    assert _deep_state(side) == before
    for b, g in zip(bounds, got, strict=True):
        _assert_sums(g, _naive(levels, is_bid, b))
        assert g == _sequential(levels, is_bid, b)
    everything = side.sums_within(-INF if is_bid else INF)
    assert everything[2] == len(levels) == len(side)


def test_within_applies_pending_changes_in_order_and_keeps_them_pending():
    d = DeepLevels()
    d.load(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.array([10.0, 20.0, 30.0, 40.0, 50.0]))
    changes = [(2.0, 5.0), (4.5, 1.0), (2.0, 0.0), (0.5, 7.0), (4.5, 2.0), (3.0, 6.0), (9.0, 0.0)]
    for p, q in changes:
        d.change(p, q)
    # final levels: 0.5:7, 1:10, 3:6, 4:40, 4.5:2, 5:50 (2 deleted; 9 never existed)
    px, qty = d.within(4.0, high_is_best=False)  # asks: p <= 4
    assert (px.tolist(), qty.tolist()) == ([0.5, 1.0, 3.0, 4.0], [7.0, 10.0, 6.0, 40.0])
    px, qty = d.within(2.5, high_is_best=True)  # bids: p >= 2.5
    assert (px.tolist(), qty.tolist()) == ([3.0, 4.0, 4.5, 5.0], [6.0, 40.0, 2.0, 50.0])
    assert d.within(9.5, high_is_best=True)[0].tolist() == []
    assert d.pending_changes == len(changes)  # still pending
    assert d.qty.tolist() == [10.0, 20.0, 30.0, 40.0, 50.0]  # the stored levels untouched
    assert d.items() == [(0.5, 7.0), (1.0, 10.0), (3.0, 6.0), (4.0, 40.0), (4.5, 2.0), (5.0, 50.0)]


def test_sums_within_on_a_small_book(core: Core):
    book = core.book(2)
    book.load(1, [(100.0, 1.0), (99.0, 2.0), (98.0, 4.0)], [(101.0, 3.0), (103.0, 5.0)])
    bids, asks = book.bids, book.asks
    assert bids.sums_within(99.0) == (3.0, 298.0, 2)  # inclusive
    assert bids.sums_within(99.5) == (1.0, 100.0, 1)
    assert bids.sums_within(100.5) == (0.0, 0.0, 0)
    assert asks.sums_within(102.0) == (3.0, 303.0, 1)
    assert asks.sums_within(103.0) == (8.0, 818.0, 2)
    assert asks.sums_within(100.0) == (0.0, 0.0, 0)
    assert bids.sums_within_many([98.0, 101.0, 99.0]) == [
        (7.0, 690.0, 3),
        (0.0, 0.0, 0),
        (3.0, 298.0, 2),
    ]
    assert bids.sums_within_many([]) == []
    book.apply([(97.0, 1.0)], [(103.0, 0.0)], 2)
    assert bids.sums_within(-INF) == (8.0, 787.0, 4)
    assert asks.sums_within(INF) == (3.0, 303.0, 1)
    empty = core.book(2).bids
    assert empty.sums_within_many([1.0, -INF]) == [(0.0, 0.0, 0), (0.0, 0.0, 0)]


def test_wider_bands_never_sum_less(core: Core):
    rng = random.Random(3)
    side = core.book(5).asks
    side.load([(round(50 + i * 0.37, 2), rng.uniform(1e-6, 1e3)) for i in range(2000)])
    for _ in range(500):
        side.apply([(round(50 + rng.randrange(100, 2200) * 0.37, 2), rng.uniform(0, 1e3))])
    bounds = sorted(rng.uniform(49, 900) for _ in range(40))
    got = side.sums_within_many(bounds)
    for a, b in pairwise(got):
        assert a[0] <= b[0] and a[1] <= b[1] and a[2] <= b[2]


def _band_book(core: Core | None = None) -> OrderBook:
    book = core.book(2) if core is not None else OrderBook(max_depth=2)
    # mid 100: the 1% band reaches 99 / 101, the 0.5% band 99.5 / 100.5
    book.load(
        1,
        [(99.9, 1.0), (99.6, 2.0), (99.2, 4.0), (98.0, 8.0)],
        [(100.1, 1.0), (100.4, 3.0), (101.5, 5.0)],
    )
    return book


def test_compute_bands_per_pct_and_side(core: Core):
    result = compute_bands(_band_book(core), (0.5, 1.0, 0.05))
    assert result is not None
    mid, bands = result
    assert mid == 100.0
    assert [b["pct"] for b in bands] == [0.5, 1.0, 0.05]
    b05, b1, b005 = bands
    assert (b05["bid_qty"], b05["ask_qty"]) == (3.0, 4.0)
    assert b05["bid_notional"] == 99.9 + 2 * 99.6
    assert b05["ask_notional"] == 100.1 + 3 * 100.4
    assert (b1["bid_qty"], b1["ask_qty"]) == (7.0, 4.0)
    assert b1["bid_notional"] == 99.9 + 2 * 99.6 + 4 * 99.2
    assert (b005["bid_qty"], b005["ask_qty"]) == (0.0, 0.0)
    assert all(b["complete"] for b in bands)


def test_band_is_complete_only_within_the_known_range():
    book = _band_book()
    result = compute_bands(book, DEFAULT_BAND_PCTS, known_bid_floor=99.8, known_ask_ceiling=INF)
    assert result is not None
    complete = {b["pct"]: b["complete"] for b in result[1]}
    # bid bounds: 99.99, 99.95, 99.9, 99.5, 99.0
    assert complete == {0.01: True, 0.05: True, 0.1: True, 0.5: False, 1.0: False}
    result = compute_bands(book, DEFAULT_BAND_PCTS, known_bid_floor=0.0, known_ask_ceiling=100.5)
    assert result is not None
    complete = {b["pct"]: b["complete"] for b in result[1]}
    assert complete[0.1] and not complete[1.0]


def test_bands_fit_the_avro_record():
    result = compute_bands(_band_book(), DEFAULT_BAND_PCTS)
    assert result is not None
    mid, bands = result
    band_fields = LANES["depth_bands"].avro["fields"][6]["type"]["items"]["fields"]
    assert all(set(b) == {f["name"] for f in band_fields} for b in bands)
    record = {
        "venue": "binance_spot",
        "symbol": "BTCUSDT",
        "event_ts": 1,
        "ingest_ts": 2,
        "last_update_id": 3,
        "mid": mid,
        "bands": bands,
        "burst_id": "b",
    }
    assert validate(record, LANES["depth_bands"].parsed, raise_errors=True)


def test_no_bands_without_both_sides(core: Core):
    book = core.book(50)
    assert compute_bands(book, DEFAULT_BAND_PCTS) is None
    book.load(1, [(10.0, 1.0)], [])
    assert compute_bands(book, DEFAULT_BAND_PCTS) is None


def test_sampler_takes_the_first_event_of_each_window():
    s = BandSampler(1_000_000)
    events = [5_300_000, 5_900_000, 5_999_999, 6_000_000, 6_000_001, 8_700_000, 8_800_000]
    assert [s.due(t) for t in events] == [True, False, False, True, False, True, False]
    assert s.next_due_us == 9_000_000
    assert not s.due(7_000_000)  # event time going back: nothing until it passes again
    s.reset()
    assert s.due(7_000_000)
    assert BandSampler.every(0.25).interval_us == 250_000
    assert BandSampler.every(1e-9).interval_us == 1
    with pytest.raises(ValueError):
        BandSampler(0)
