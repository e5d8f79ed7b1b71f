from __future__ import annotations

import random

from orderbook_pipeline.core.book import OrderBook


def test_top_levels_best_first_and_zero_removes():
    book = OrderBook()
    book.load(7, [(100, 1), (99, 2), (101, 3)], [(103, 4), (105, 5), (104, 6)])
    assert book.bids.top(2) == [(101, 3), (100, 1)]
    assert book.asks.top(5) == [(103, 4), (104, 6), (105, 5)]
    book.apply([(101, 0), (102, 9)], [(103, 0), (110, 0)], 8)
    assert book.bids.top(3) == [(102, 9), (100, 1), (99, 2)]
    assert book.asks.best() == 104
    assert book.last_update_id == 8
    assert not book.is_crossed()
    book.apply([(104, 1)], [], 9)
    assert book.is_crossed()


def test_matches_a_naive_sorted_book_under_random_updates():
    rng = random.Random(7)
    book = OrderBook()
    naive_bids: dict[int, int] = {}
    naive_asks: dict[int, int] = {}
    for _ in range(5000):
        side, naive = (book.bids, naive_bids) if rng.random() < 0.5 else (book.asks, naive_asks)
        px = rng.randrange(1000)
        qty = 0 if rng.random() < 0.3 else rng.randrange(1, 50)
        side.set(px, qty)
        if qty:
            naive[px] = qty
        else:
            naive.pop(px, None)
    assert book.bids.top(50) == sorted(naive_bids.items(), reverse=True)[:50]
    assert book.asks.top(50) == sorted(naive_asks.items())[:50]
    assert len(book.bids) == len(naive_bids)
