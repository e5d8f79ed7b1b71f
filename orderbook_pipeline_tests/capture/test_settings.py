from __future__ import annotations

import pytest

from orderbook_pipeline.capture.settings import CaptureSettings
from orderbook_pipeline.venues import BINANCE_SPOT, BINANCE_USDM


def settings(n: int, **kw) -> CaptureSettings:
    return CaptureSettings(
        venue=kw.pop("venue", BINANCE_SPOT), symbols=[f"S{i}USDT" for i in range(n)], **kw
    )


@pytest.mark.parametrize(("symbols", "limit"), [(1, 5000), (19, 5000), (20, 1000), (200, 1000)])
def test_default_snapshot_depth_bootstraps_every_book_within_about_a_minute(symbols, limit):
    s = settings(symbols)
    assert s.snapshot_limit == limit
    weight = symbols * BINANCE_SPOT.snapshot_weight(limit)
    budget = BINANCE_SPOT.weight_limit_1m * s.weight_safety
    # Deepest that fits one minute of budget, or the 1,000-level floor (two minutes at 200).
    assert weight <= budget or limit == 1000
    assert weight <= 3 * budget


def test_explicit_snapshot_depth_wins_and_futures_keep_their_maximum():
    assert settings(200, snapshot_limit=5000).snapshot_limit == 5000
    assert settings(1, venue=BINANCE_USDM).snapshot_limit == 1000
    with pytest.raises(ValueError):
        settings(1, venue=BINANCE_USDM, snapshot_limit=5000)
