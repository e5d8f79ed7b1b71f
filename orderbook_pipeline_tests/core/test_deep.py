from __future__ import annotations

import random

import numpy as np

from orderbook_pipeline.core.deep import DeepLevels


def test_last_change_of_a_price_wins_and_zero_deletes():
    d = DeepLevels()
    d.load(np.array([1.0, 2.0, 3.0]), np.array([10.0, 20.0, 30.0]))
    for p, q in [(2.0, 5.0), (4.0, 1.0), (2.0, 0.0), (0.5, 7.0), (4.0, 2.0), (9.0, 0.0)]:
        d.change(p, q)
    assert d.pending_changes == 6
    assert d.items() == [(0.5, 7.0), (1.0, 10.0), (3.0, 30.0), (4.0, 2.0)]
    assert d.pending_changes == 0


def test_take_from_either_end():
    d = DeepLevels()
    d.load(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0, 4.0]))
    assert d.take_highest(2) == ([3.0, 4.0], [3.0, 4.0])
    assert d.take_lowest(5) == ([1.0, 2.0], [1.0, 2.0])
    assert len(d) == 0 and d.take_lowest(1) == ([], [])


def test_random_changes_match_a_dict():
    rng = random.Random(5)
    d, ref = DeepLevels(), {}
    for _ in range(20_000):
        p, q = float(rng.randrange(500)), (0.0 if rng.random() < 0.4 else rng.random())
        d.change(p, q)
        if q:
            ref[p] = q
        else:
            ref.pop(p, None)
    assert d.items() == sorted(ref.items())
