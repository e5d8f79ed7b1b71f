from __future__ import annotations

import random

import pytest

from orderbook_pipeline.core.book import BadLevel
from orderbook_pipeline.core.implementation import Core
from orderbook_pipeline_tests.core.random_walk import naive_apply, random_changes


def test_top_levels_best_first_and_zero_removes(core: Core):
    book = core.book(50)
    book.load(7, [(100.0, 1.0), (99.0, 2.0), (101.0, 3.0)], [(103.0, 4.0), (105.0, 5.0)])
    assert book.bids.top(2) == [(101.0, 3.0), (100.0, 1.0)]
    assert book.asks.top(5) == [(103.0, 4.0), (105.0, 5.0)]
    book.apply([(101.0, 0.0), (102.0, 9.0)], [(103.0, 0.0), (110.0, 0.0)], 8)
    assert book.bids.top(3) == [(102.0, 9.0), (100.0, 1.0), (99.0, 2.0)]
    assert book.asks.best() == 105.0
    assert book.last_update_id == 8
    assert not book.is_crossed()
    book.apply([(105.0, 1.0)], [], 9)
    assert book.is_crossed()


@pytest.mark.parametrize(
    "levels",
    [
        [(1.0, float("nan"))],
        [(1.0, 2.0), (1.0, 3.0)],
        [(2.0, 1.0), (0.0, 1.0)],
        [(2.0, -1.0)],
        [(float("inf"), 1.0)],
    ],
)
def test_snapshot_with_bad_levels_is_refused(core: Core, levels):
    side = core.book(50).bids
    side.load([(5.0, 1.0)])
    with pytest.raises(BadLevel):
        side.load(levels)
    assert len(side) == 0 and side.best() is None  # a refused snapshot leaves the side empty


@pytest.mark.parametrize("exchange_order", [True, False])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_matches_a_naive_sorted_book_through_refills_trims_and_merges(
    seed, exchange_order, small_book
):
    # small_book's region and pending log are small so that every path runs many times.
    rng = random.Random(seed)
    book = small_book
    mid = 1000
    bids = {float(p): float(rng.randrange(1, 9)) for p in range(mid - 300, mid)}
    asks = {float(p): float(rng.randrange(1, 9)) for p in range(mid + 1, mid + 300)}
    book.load(1, list(bids.items()), list(asks.items()))
    for step in range(4000):
        mid += rng.choice((-3, -1, 0, 1, 3))
        changes_b, changes_a = random_changes(
            rng, mid, bids, asks, exchange_order, float, lambda: float(rng.randrange(1, 50))
        )
        naive_apply(bids, changes_b)
        naive_apply(asks, changes_a)
        book.apply(changes_b, changes_a, step + 2)
        assert book.bids.top(5) == sorted(bids.items(), reverse=True)[:5]
        assert book.asks.top(5) == sorted(asks.items())[:5]
        bid_px, bid_qty = book.bids.top_lists(3)
        assert list(zip(bid_px, bid_qty, strict=True)) == book.bids.top(3)
    assert book.bids.levels() == sorted(bids.items(), reverse=True)
    assert book.asks.levels() == sorted(asks.items())
    assert len(book.bids) == len(bids) and len(book.asks) == len(asks)


def test_thin_book_reads_what_there_is(core: Core):
    book = core.book(50)
    book.load(1, [(10.0, 1.0)], [(11.0, 2.0), (12.0, 1.0)])
    assert book.bids.top_prices(50) == [10.0]
    assert book.asks.top(50) == [(11.0, 2.0), (12.0, 1.0)]
    book.apply([(10.0, 0.0)], [], 2)
    assert book.bids.top(50) == [] and book.bids.best() is None


def test_both_cores_hold_the_same_book_through_a_long_random_walk():
    """The compiled book with its real block size against the reference, level for level,
    on a deep book (thousands of levels) with changes near the touch and deep."""
    from orderbook_pipeline_tests.cores import load_core

    rng = random.Random(11)
    books = [load_core(name).book(50) for name in ("python", "compiled")]
    mid = 100_000
    bids = [(float(p), float(rng.randrange(1, 9))) for p in range(mid - 3000, mid)]
    asks = [(float(p), float(rng.randrange(1, 9))) for p in range(mid + 1, mid + 3000)]
    for book in books:
        book.load(1, bids, asks)
    for step in range(600):
        mid += rng.choice((-5, -1, 0, 1, 5))
        changes = []
        for _ in range(rng.randrange(1, 400)):
            near = rng.random() < 0.8
            off = rng.randrange(1, 40) if near else rng.randrange(40, 4000)
            q = 0.0 if rng.random() < 0.5 else float(rng.randrange(1, 50))
            changes.append((float(mid - off), q))
        ask_changes = [(2.0 * mid - p, q) for p, q in changes]
        for book in books:
            book.apply(changes, ask_changes, step + 2)
        reference, compiled = books
        assert compiled.bids.top(60) == reference.bids.top(60)
        assert compiled.asks.top(60) == reference.asks.top(60)
        assert compiled.is_crossed() == reference.is_crossed()
    assert compiled.bids.levels() == reference.bids.levels()
    assert compiled.asks.levels() == reference.asks.levels()
    assert len(compiled.bids) == len(reference.bids)
