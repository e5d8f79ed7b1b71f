"""Shared fixtures of the core tests."""

from __future__ import annotations

from typing import Any

import pytest

from orderbook_pipeline.core import deep
from orderbook_pipeline.core.depth_codec import DepthCodec
from orderbook_pipeline.core.implementation import Core


@pytest.fixture
def small_book(core: Core, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An empty depth-5 book of each core, sized so that a short random walk runs every path
    many times. Python: a small region (24 levels) and pending log (16 changes): changes
    behind the region, merges, refills after the region drains, trims after it overgrows.
    Compiled: blocks of 8 levels: splits, joins and emptied blocks."""
    if core.name == "compiled":
        return core.book(5, block_levels=8)  # type: ignore[call-arg]
    monkeypatch.setattr(deep, "PENDING_LIMIT", 16)
    book = core.book(5)
    for side in (book.bids, book.asks):
        side.max_region = 24
    return book


@pytest.fixture
def depth_codec(core: Core) -> DepthCodec:
    """Each core's depth decode and diff lane encoder (core/depth_codec.py)."""
    return core.depth
