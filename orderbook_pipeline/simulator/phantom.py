"""Where the corrupt_level fault puts its phantom level: a hole of the true book that the market
will leave alone for a while, so a client that believes the phantom keeps disagreeing with every
later snapshot at that price (and a test can find the disagreement).

The market model ignores the clock, so its next events are known in advance: the candidates are
checked against a look-ahead run of a fork of the market (the live market is not touched).
"""

from __future__ import annotations

from orderbook_pipeline.simulator.market import Market


def _holes(market: Market, is_bid: bool, distance: int, exclude: set[int]) -> list[int]:
    """Holes (prices without a level) from the distance-th level outward, in walking order,
    spanning about `distance` more levels (at least one hole)."""
    prices, book = market.side(is_bid)
    n = len(prices)
    idx = min(distance, n - 1)
    step = -1 if is_bid else 1
    price = prices[n - 1 - idx] if is_bid else prices[idx]
    levels_left = max(8, distance)
    walk = 4 * levels_left + 64  # bounds the walk past the end of the book
    holes: list[int] = []
    while price >= 1 and walk > 0 and (not holes or levels_left > 0):
        walk -= 1
        if price in book:
            levels_left -= 1
        elif price not in exclude:
            holes.append(price)
        price += step
    return holes


def phantom_level(
    market: Market, is_bid: bool, distance: int, exclude: set[int], horizon_events: int
) -> tuple[int, int]:
    """(price, qty) of a phantom level about `distance` levels from the touch on one side.

    distance 0: the best level's price with a quantity that differs from the true one.
    Otherwise the nearest hole (outside `exclude`) that the market's next `horizon_events`
    events leave untouched, or failing that the one they touch last.
    `market` must be at the event the phantom is sent with.
    """
    prices, book = market.side(is_bid)
    if distance <= 0:
        best = prices[-1] if is_bid else prices[0]
        return best, book[best] + max(1, book[best] // 2)
    holes = _holes(market, is_bid, distance, exclude)
    if not holes:
        raise ValueError(f"{market.symbol}: no hole for a phantom level on this side")
    # Drop every candidate the coming events change (on either side: an ask placed there would
    # change the price too) until the horizon ends or one candidate is left: the survivor
    # nearest the touch wins.
    pending = set(holes)
    twin = market.fork()
    for _ in range(horizon_events):
        if len(pending) <= 1:
            break
        twin.step(0)
        for price in (*twin.last_changes(True), *twin.last_changes(False)):
            if price in pending and len(pending) > 1:
                pending.discard(price)
    return next(h for h in holes if h in pending), market.typical_qty
