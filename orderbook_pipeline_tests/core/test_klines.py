"""Kline intervals, request planning, row validation and merging (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from orderbook_pipeline.core.klines import (
    HOUR_MS,
    MINUTE_MS,
    BadKline,
    cheapest_chunk,
    expected_in_hour,
    merge_klines,
    open_times,
    parse_kline,
    plan_requests,
)
from orderbook_pipeline.venues import BINANCE_SPOT, BINANCE_US, BINANCE_USDM

HOUR = int(datetime(2026, 11, 2, 13, tzinfo=UTC).timestamp() * 1000)  # a Monday


def row(open_ms: int, interval_ms: int = MINUTE_MS, **over: Any) -> list[Any]:
    r: list[Any] = [
        open_ms,
        "100.50000000",
        "101.00000000",
        "100.00000000",
        "100.75000000",
        "2.50000000",
        open_ms + interval_ms - 1,
        "251.25000000",
        17,
        "1.00000000",
        "100.50000000",
        "0",
    ]
    names = ["t", "o", "h", "l", "c", "v", "close_ms", "q", "n", "tb", "tq"]
    for name, value in over.items():
        r[names.index(name)] = value
    return r


def parse(r: Any, interval: str = "1m") -> dict[str, Any]:
    return parse_kline(
        r, venue="binance-spot", symbol="BTCUSDT", interval=interval, fetched_us=7, burst_id="b"
    )


@pytest.mark.parametrize(
    ("interval", "count"),
    [("1m", 60), ("3m", 20), ("5m", 12), ("15m", 4), ("30m", 2), ("1h", 1)],
)
def test_intervals_up_to_an_hour_divide_it(interval, count):
    times = expected_in_hour(interval, HOUR)
    assert len(times) == count
    assert times[0] == HOUR and times[-1] < HOUR + HOUR_MS


def test_longer_intervals_live_in_the_hour_of_their_open_time():
    midnight = HOUR - 13 * HOUR_MS
    assert expected_in_hour("1d", midnight) == [midnight]
    assert expected_in_hour("1d", HOUR) == []
    assert expected_in_hour("2h", HOUR - HOUR_MS) == [HOUR - HOUR_MS]  # 12:00
    assert expected_in_hour("2h", HOUR) == []  # 13:00
    assert expected_in_hour("1w", midnight) == [midnight]  # Monday 00:00
    assert expected_in_hour("1w", midnight - 24 * HOUR_MS) == []  # Sunday


def test_unsupported_interval_is_refused():
    with pytest.raises(ValueError, match="1M"):
        expected_in_hour("1M", HOUR)
    with pytest.raises(ValueError, match="start of an hour"):
        expected_in_hour("1m", HOUR + 1)


def test_cheapest_chunk_per_venue():
    assert cheapest_chunk(BINANCE_SPOT) == 1000  # weight 2 whatever the limit
    assert cheapest_chunk(BINANCE_US) == 1000
    assert cheapest_chunk(BINANCE_USDM) == 499  # 2/499 beats 1/99, 5/1000 and 10/1500


def test_one_hour_is_one_request_per_interval_at_the_smallest_weight():
    (req,) = plan_requests(BINANCE_USDM, "1m", HOUR, HOUR + HOUR_MS)
    assert (req.start_ms, req.end_ms, req.limit, req.weight) == (
        HOUR,
        HOUR + 59 * MINUTE_MS,
        60,
        1,
    )
    assert req.params("BTCUSDT")["endTime"] == HOUR + 59 * MINUTE_MS  # inclusive on open time
    assert plan_requests(BINANCE_SPOT, "1d", HOUR, HOUR + HOUR_MS) == []


def test_a_day_of_minutes_is_covered_exactly_once_in_cheap_chunks():
    start = HOUR - 13 * HOUR_MS
    reqs = plan_requests(BINANCE_USDM, "1m", start, start + 24 * HOUR_MS)
    covered = [t for r in reqs for t in range(r.start_ms, r.end_ms + 1, MINUTE_MS)]
    assert covered == open_times("1m", start, start + 24 * HOUR_MS)
    assert [r.limit for r in reqs] == [499, 499, 442]
    assert sum(r.weight for r in reqs) == 6
    spot = plan_requests(BINANCE_SPOT, "1m", start, start + 24 * HOUR_MS)
    assert [r.limit for r in spot] == [1000, 440]


def test_row_becomes_a_record_with_doubles_and_exact_strings():
    rec = parse(row(HOUR))
    assert rec["open_ts"] == HOUR * 1000
    assert rec["close_ts"] == (HOUR + MINUTE_MS - 1) * 1000
    assert rec["high"] == 101.0 and rec["high_str"] == "101.00000000"
    assert rec["quote_volume_str"] == "251.25000000" and rec["trades"] == 17
    assert rec["taker_buy_quote_volume"] == 100.5
    assert (rec["fetched_ts"], rec["burst_id"], rec["interval"]) == (7, "b", "1m")


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"h": "99.00000000"}, "outside"),
        ({"l": "100.60000000"}, "outside"),
        ({"o": "NaN"}, "not a decimal"),
        ({"v": "-1"}, "not a decimal"),
        ({"c": 100.75}, "not a decimal"),
        ({"q": "9" * 400}, "double"),
        ({"n": "17"}, "not an integer"),
        ({"n": -1}, "negative"),
        ({"close_ms": HOUR + MINUTE_MS}, "close time"),
        ({"t": HOUR + 1, "close_ms": HOUR + MINUTE_MS}, "aligned"),
        ({"tb": "3.00000000"}, "taker buy volume"),
        ({"tq": "300"}, "taker buy quote"),
    ],
)
def test_bad_rows_are_refused_by_name(over, match):
    with pytest.raises(BadKline, match=match):
        parse(row(HOUR, **over))


def test_short_row_is_refused():
    with pytest.raises(BadKline, match="11"):
        parse(row(HOUR)[:8])


def test_merge_keeps_unchanged_rows_as_first_fetched_and_replaces_changed_ones():
    first = [parse(row(HOUR)), parse(row(HOUR + MINUTE_MS))]
    later = [
        {**parse(row(HOUR)), "fetched_ts": 99, "burst_id": "b2"},  # same data, later run
        {**parse(row(HOUR + MINUTE_MS, c="100.80000000")), "fetched_ts": 99},  # corrected
        {**parse(row(HOUR + 2 * MINUTE_MS)), "fetched_ts": 99},  # newly closed
    ]
    merged = merge_klines(first, later)
    assert [r["open_ts"] for r in merged] == [HOUR * 1000 + i * MINUTE_MS * 1000 for i in range(3)]
    assert merged[0] is first[0]
    assert merged[1]["close_str"] == "100.80000000" and merged[1]["fetched_ts"] == 99
    # A short answer never erases what is stored.
    assert merge_klines(merged, []) == merged
