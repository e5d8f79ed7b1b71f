from __future__ import annotations

import pytest

from orderbook_pipeline.core.decimals import BadNumber, decimals_of


@pytest.mark.parametrize(
    ("step", "n"), [("0.01000000", 2), ("1.00000000", 0), ("10", 0), ("0.00001", 5), ("0.10", 1)]
)
def test_decimals_of(step, n):
    assert decimals_of(step) == n


@pytest.mark.parametrize("bad", ["", 1.5, None])
def test_decimals_of_rejects(bad):
    with pytest.raises(BadNumber):
        decimals_of(bad)
