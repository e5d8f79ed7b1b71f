"""Look-ahead of the market (fork) and where corrupt_level hides its phantom level."""

from __future__ import annotations

import pytest

from orderbook_pipeline.simulator.market import Market
from orderbook_pipeline.simulator.phantom import phantom_level
from orderbook_pipeline.venues import BINANCE_SPOT, BINANCE_USDM


def _market(venue=BINANCE_SPOT, seed=5) -> Market:
    m = Market(venue, "BTCUSDT", seed=seed, levels_per_side=1000, median_changes=10)
    for i in range(200):
        m.step(i)
    return m


@pytest.mark.parametrize("venue", [BINANCE_SPOT, BINANCE_USDM])
def test_fork_steps_exactly_like_the_market_and_leaves_it_alone(venue) -> None:
    m = _market(venue)
    before = (m.last_update_id, m.true_book(m.last_update_id, 50))
    twin = m.fork()
    ahead = [(e.payload, e.fills) for e in (twin.step(7) for _ in range(100))]
    assert (m.last_update_id, m.true_book(m.last_update_id, 50)) == before
    real = [(e.payload, e.fills) for e in (m.step(7) for _ in range(100))]
    assert ahead == real and any(fills for _, fills in real)


@pytest.mark.parametrize(("seed", "is_bid"), [(5, True), (6, False), (7, True)])
def test_phantom_is_a_hole_near_distance_that_the_market_leaves_alone(
    seed: int, is_bid: bool
) -> None:
    m = _market(seed=seed)
    prices, book = m.side(is_bid)
    exclude = {prices[-60] if is_bid else prices[59]}  # pretend the event changed one level
    price, qty = phantom_level(m, is_bid, 40, exclude, horizon_events=400)
    assert price not in book and price not in exclude and qty > 0
    beyond = sum(1 for p in prices if (p > price if is_bid else p < price))
    assert 40 < beyond <= 90
    # The market's next 400 events never change that price (on either side).
    for i in range(400):
        m.step(i)
        assert price not in (*m.last_changes(True), *m.last_changes(False)), f"event {i}"


def test_phantom_at_distance_zero_misstates_the_best_quantity() -> None:
    m = _market()
    prices, book = m.side(False)
    price, qty = phantom_level(m, False, 0, set(), horizon_events=0)
    assert price == prices[0] and qty != book[price]
