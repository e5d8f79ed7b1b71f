"""Klines: a pure function of (seed, symbol, venue, time), exact aggregation, Binance's REST rules."""

from __future__ import annotations

import itertools
import re
import time
from decimal import Decimal

import httpx
import pytest

from orderbook_pipeline.simulator import SimulatorThread
from orderbook_pipeline.simulator.klines import INTERVALS, KlineQuery, KlineSource
from orderbook_pipeline.venues import BINANCE_SPOT, BINANCE_US, BINANCE_USDM

FAST = {"interval_ms": 10, "levels_per_side": 300, "median_changes": 5}
HOUR = 3_600_000
NOW = 1_790_000_123_456  # a fixed "now" inside a minute: 2026-09-21, 33.456 s into a minute
PAST_HOUR = NOW // HOUR * HOUR - 5 * HOUR


def _src(venue=BINANCE_SPOT, symbol="BTCUSDT", seed=3) -> KlineSource:
    return KlineSource(venue, symbol, seed)


def _aggregate(rows: list[list]) -> list:
    """What one larger kline must be, computed from its 1m klines with exact decimals."""
    dec = lambda i: [Decimal(r[i]) for r in rows]  # noqa: E731
    return [
        rows[0][1],
        max(dec(2)),
        min(dec(3)),
        rows[-1][4],
        sum(dec(5)),
        sum(dec(7)),
        sum(r[8] for r in rows),
        sum(dec(9)),
        sum(dec(10)),
    ]


def _fields(row: list) -> list:
    """A kline's values comparable with _aggregate: open/close as strings, the rest as numbers."""
    o, h, lo, c, v, _, qv, n, tbv, tbq = row[1:11]
    return [o, Decimal(h), Decimal(lo), c, Decimal(v), Decimal(qv), n, Decimal(tbv), Decimal(tbq)]


def test_same_inputs_same_klines_and_seed_matters() -> None:
    q = KlineQuery("1m", PAST_HOUR, None, 120)
    a, b = _src().klines(q, NOW), _src().klines(q, NOW)
    assert a == b and len(a) == 120
    assert a != _src(seed=4).klines(q, NOW)
    assert a != _src(symbol="ETHUSDT").klines(q, NOW)
    # The same minute asked inside a different window is the same kline.
    shifted = _src().klines(KlineQuery("1m", PAST_HOUR - 7 * 60_000, None, 200), NOW)
    assert shifted[7:127] == a
    # Prices are the venue's spelling of the same numbers.
    usdm = _src(BINANCE_USDM).klines(q, NOW)
    assert [Decimal(r[4]) for r in usdm] == [Decimal(r[4]) for r in a]
    assert re.fullmatch(r"\d+\.\d{2}", usdm[0][1]) and re.fullmatch(r"\d+\.\d{8}", a[0][1])


def test_one_minute_klines_are_consistent() -> None:
    start = PAST_HOUR - 20 * HOUR
    rows = _src(symbol="XRPUSDT").klines(KlineQuery("1m", start, None, 1000), NOW)
    assert [r[0] for r in rows] == list(range(start, start + 1000 * 60_000, 60_000))
    for prev, row in itertools.pairwise(rows):
        assert row[1] == prev[4]  # each kline opens at the previous close
    for row in rows:
        t, o, h, lo, c, v, close_t, qv, n, tbv, tbq, ignore = row
        assert close_t == t + 59_999 and ignore == "0" and isinstance(n, int) and n >= 0
        assert Decimal(lo) <= min(Decimal(o), Decimal(c)) <= max(Decimal(o), Decimal(c))
        assert max(Decimal(o), Decimal(c)) <= Decimal(h)
        assert 0 <= Decimal(tbv) <= Decimal(v) and 0 <= Decimal(tbq) <= Decimal(qv)
        # Quote volume lies between volume x low and volume x high.
        assert Decimal(v) * Decimal(lo) <= Decimal(qv) <= Decimal(v) * Decimal(h)
    closes = [Decimal(r[4]) for r in rows]
    assert len(set(closes)) > 100  # the price moves
    assert max(closes) / min(closes) < Decimal("1.5")  # but stays near the base price


@pytest.mark.parametrize(("interval", "minutes"), [("1h", 60), ("15m", 15), ("1d", 1440)])
def test_larger_intervals_aggregate_minutes_exactly(interval: str, minutes: int) -> None:
    src = _src(BINANCE_USDM, "ETHUSDT")
    start = NOW // 86_400_000 * 86_400_000 - 3 * 86_400_000  # midnight, three days ago
    big = src.klines(KlineQuery(interval, start, None, 3), NOW)
    assert [r[0] for r in big] == [start + i * minutes * 60_000 for i in range(3)]
    for row in big:
        ones = src.klines(KlineQuery("1m", row[0], row[6], 1500), NOW)
        assert len(ones) == minutes
        assert _fields(row) == _aggregate(ones)
        assert row[6] == row[0] + INTERVALS[interval][0] - 1


def test_no_future_klines_and_the_current_one_is_partial() -> None:
    src = _src()
    latest = src.klines(KlineQuery("1m", limit=3), NOW)
    assert [r[0] for r in latest] == [NOW // 60_000 * 60_000 - i * 60_000 for i in (2, 1, 0)]
    assert src.klines(KlineQuery("1m", NOW + 60_000, None, 10), NOW) == []
    until = src.klines(KlineQuery("1m", NOW - 600_000, NOW + 3_600_000, 1000), NOW)
    assert until[-1][0] <= NOW < until[-1][6]
    # The current kline grows as time passes and becomes the final one when its minute ends.
    current, later, final = (
        src.klines(KlineQuery("1m", latest[-1][0], None, 1), now)[0]
        for now in (NOW, NOW + 20_000, latest[-1][6] + 1)
    )
    assert Decimal(current[5]) <= Decimal(later[5]) <= Decimal(final[5])
    assert current[8] <= later[8] <= final[8]
    assert final == src.klines(KlineQuery("1m", latest[-1][0], None, 1), NOW + 10 * HOUR)[0]
    # The hour containing now aggregates the minutes so far, the partial one included.
    hour = src.klines(KlineQuery("1h", limit=1), NOW)[0]
    assert hour[0] == NOW // HOUR * HOUR
    assert _fields(hour) == _aggregate(src.klines(KlineQuery("1m", hour[0], None, 60), NOW))


def test_start_and_end_are_inclusive_on_open_time_and_limit_applies() -> None:
    src = _src()
    t0 = PAST_HOUR
    rows = src.klines(KlineQuery("5m", t0, t0 + 20 * 60_000, 500), NOW)
    assert [r[0] for r in rows] == [t0 + i * 300_000 for i in range(5)]
    rows = src.klines(KlineQuery("5m", t0 + 1, t0 + 20 * 60_000 - 1, 500), NOW)
    assert [r[0] for r in rows] == [t0 + i * 300_000 for i in range(1, 4)]
    assert len(src.klines(KlineQuery("5m", t0, None, 7), NOW)) == 7
    ending = src.klines(KlineQuery("5m", None, t0, 4), NOW)  # endTime alone: the last 4 up to it
    assert [r[0] for r in ending] == [t0 - i * 300_000 for i in (3, 2, 1, 0)]
    # Days before any simulator started exist too.
    old = src.klines(KlineQuery("1m", NOW - 30 * 86_400_000, None, 2), NOW)
    assert old[0][0] == (NOW - 30 * 86_400_000) // 60_000 * 60_000 + 60_000 and len(old) == 2


def test_weekly_klines_open_on_monday() -> None:
    rows = _src().klines(KlineQuery("1w", limit=2), NOW)
    for row in rows:
        assert time.gmtime(row[0] / 1000).tm_wday == 0 and time.gmtime(row[0] / 1000).tm_hour == 0


# ----------------------------------------------------------------------------- REST
@pytest.mark.parametrize("venue", [BINANCE_SPOT, BINANCE_USDM, BINANCE_US])
def test_klines_endpoint(venue) -> None:
    with SimulatorThread(venue, ["BTCUSDT"], seed=5, **FAST) as s:
        url = s.rest_url + venue.klines_path
        before = int(time.time() * 1000)
        r = httpx.get(url, params={"symbol": "btcusdt", "interval": "1m", "limit": 3})
        after = int(time.time() * 1000)
        assert r.status_code == 200
        assert r.headers["X-MBX-USED-WEIGHT-1M"] == str(venue.klines_weight(3))
        rows = r.json()
        assert len(rows) == 3 and all(len(row) == 12 for row in rows)
        assert before // 60_000 * 60_000 <= rows[-1][0] <= after
        assert rows[-1][6] == rows[-1][0] + 59_999
        assert [type(x) for x in rows[0]] == [int, str, str, str, str, str, int, str, int] + [
            str
        ] * 3
        # The answer is the pure generator's for this seed.
        start = rows[0][0] // HOUR * HOUR - 10 * HOUR
        params = {"symbol": "BTCUSDT", "interval": "1h", "startTime": start}
        r = httpx.get(url, params={**params, "endTime": start + 9 * HOUR})  # default limit 500
        expected = KlineSource(venue, "BTCUSDT", 5).klines(KlineQuery("1h", start), after)
        assert r.json() == expected[:10]
        used = int(r.headers["X-MBX-USED-WEIGHT-1M"])
        assert used == venue.klines_weight(3) + venue.klines_weight(500)
        assert s.exchange.rest_requests[venue.klines_path] == 2 and venue.klines_path.endswith(
            "klines"
        )


def test_klines_errors_and_weights() -> None:
    with SimulatorThread(BINANCE_USDM, ["BTCUSDT"], weight_limit_1m=12, **FAST) as s:
        s.exchange.clock = lambda: 6_000_020.0  # pin the weight minute
        url = s.rest_url + "/fapi/v1/klines"

        def get(**params) -> httpx.Response:
            return httpx.get(url, params={"symbol": "BTCUSDT", "interval": "1m", **params})

        assert get(limit=1501).json()["code"] == -1130
        assert get(limit=0).status_code == 400
        assert get(interval="7m").json()["code"] == -1120
        assert get(symbol="NOPE").json()["code"] == -1121
        assert get(startTime=5, endTime=4).status_code == 400
        assert httpx.get(url, params={"symbol": "BTCUSDT"}).json()["code"] == -1102
        r = get(limit=1500)
        assert r.status_code == 200 and len(r.json()) == 1500
        assert r.headers["X-MBX-USED-WEIGHT-1M"] == "10"  # 1000 < limit <= 1500 weighs 10
        assert get(limit=99).headers["X-MBX-USED-WEIGHT-1M"] == "11"
        r = get(limit=100)  # weighs 2: over the budget of 12
        assert r.status_code == 429 and r.json()["code"] == -1003
