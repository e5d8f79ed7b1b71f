from __future__ import annotations

import random

import pytest

from orderbook_pipeline.core.book import BadLevel, BookSide, OrderBook
from orderbook_pipeline_tests.core.random_walk import naive_apply, random_changes


def test_top_levels_best_first_and_zero_removes():
    book = OrderBook()
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


def test_snapshot_with_bad_levels_is_refused():
    side = BookSide(is_bid=True)
    with pytest.raises(BadLevel):
        side.load([(1.0, float("nan"))])
    with pytest.raises(BadLevel):
        side.load([(1.0, 2.0), (1.0, 3.0)])


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
    assert book.bids.levels() == sorted(bids.items(), reverse=True)
    assert book.asks.levels() == sorted(asks.items())
    assert len(book.bids) == len(bids) and len(book.asks) == len(asks)


def test_thin_book_reads_what_there_is():
    book = OrderBook(max_depth=50)
    book.load(1, [(10.0, 1.0)], [(11.0, 2.0), (12.0, 1.0)])
    assert book.bids.top_prices(50) == [10.0]
    assert book.asks.top(50) == [(11.0, 2.0), (12.0, 1.0)]
    book.apply([(10.0, 0.0)], [], 2)
    assert book.bids.top(50) == [] and book.bids.best() is None
