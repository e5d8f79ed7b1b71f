from __future__ import annotations

import pytest

from orderbook_pipeline.core.decimals import BadNumber, decimals_of, format_scaled, parse_scaled


@pytest.mark.parametrize(
    ("step", "n"), [("0.01000000", 2), ("1.00000000", 0), ("10", 0), ("0.00001", 5), ("0.10", 1)]
)
def test_decimals_of(step, n):
    assert decimals_of(step) == n


@pytest.mark.parametrize(
    ("text", "decimals", "value"),
    [("26127.87000000", 2, 2612787), ("0.00240000", 8, 240000), ("7.05", 2, 705), ("0", 3, 0)],
)
def test_parse_scaled_is_exact(text, decimals, value):
    assert parse_scaled(text, decimals) == value
    assert float(format_scaled(value, decimals)) == float(text)


@pytest.mark.parametrize(
    "bad", ["NaN", "nan", "-1.0", "1e5", "", ".5", "1.2.3", " 1", "inf", "0.001", 1.5, None, ["1"]]
)
def test_parse_scaled_rejects(bad):
    with pytest.raises(BadNumber):
        parse_scaled(bad, 2)


def test_double_equals_float_of_the_string():
    # The record's double is ticks / 10**d: one correctly rounded division, same as float(str).
    for text in ["65000.01000000", "0.00000001", "123456.78901234", "3.3"]:
        d = 8
        assert parse_scaled(text, d) / 10**d == float(text)
