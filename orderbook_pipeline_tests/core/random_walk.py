"""The random walk of a book that test_book and test_bands replay against a naive dict book."""

from __future__ import annotations

import random
from collections.abc import Callable

Levels = list[tuple[float, float]]


def naive_apply(naive: dict[float, float], levels: Levels) -> None:
    """The changes applied to a plain price -> quantity dict (0 removes the level)."""
    for p, q in levels:
        if q:
            naive[p] = q
        else:
            naive.pop(p, None)


def random_changes(
    rng: random.Random,
    mid: int,
    bids: dict[float, float],
    asks: dict[float, float],
    exchange_order: bool,
    price: Callable[[int], float],
    quantity: Callable[[], float],
) -> tuple[Levels, Levels]:
    """One diff event around `mid` (in ticks): 1 to 29 changes, most near the touch, some deep
    (behind the region), about a third deleting; the side across `mid` swept so that the book
    never crosses. In exchange order (best first, each price once) if asked."""
    changes_b: Levels = []
    changes_a: Levels = []
    for _ in range(rng.randrange(1, 30)):
        far = rng.random() < 0.3
        d = rng.randrange(1, 400) if far else rng.randrange(1, 12)
        q = 0.0 if rng.random() < 0.35 else quantity()
        if rng.random() < 0.5:
            changes_b.append((price(mid - d), q))
        else:
            changes_a.append((price(mid + d), q))
    # Never cross: the touch moves by sweeping the other side first.
    for p in [p for p in bids if p >= price(mid)]:
        changes_b.append((p, 0.0))
    for p in [p for p in asks if p <= price(mid)]:
        changes_a.append((p, 0.0))
    if exchange_order:  # as Binance lists them: best first, each price once
        changes_b = sorted(dict(changes_b).items(), reverse=True)
        changes_a = sorted(dict(changes_a).items())
    return changes_b, changes_a
