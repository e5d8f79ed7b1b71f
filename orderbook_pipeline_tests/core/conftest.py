"""Shared fixtures of the core tests."""

from __future__ import annotations

import pytest

from orderbook_pipeline.core import deep
from orderbook_pipeline.core.book import OrderBook


@pytest.fixture
def small_book(monkeypatch: pytest.MonkeyPatch) -> OrderBook:
    """An empty depth-5 book with a small region (24 levels) and pending log (16 changes), so
    that a short random walk runs every path many times: changes behind the region, merges,
    refills after the region drains, trims after it overgrows."""
    monkeypatch.setattr(deep, "PENDING_LIMIT", 16)
    book = OrderBook(max_depth=5)
    for side in (book.bids, book.asks):
        side.max_region = 24
    return book
