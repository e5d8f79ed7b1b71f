"""Kline backfill against the bundled exchange (loopback) and a fake transport for bad answers."""

from __future__ import annotations

import asyncio
import email.utils
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest

from orderbook_pipeline.capture.klines import (
    backfill_klines,
    decode_klines,
    encode_klines,
    fetch_klines,
    kline_file,
)
from orderbook_pipeline.capture.rest import RestError, UnknownSymbol
from orderbook_pipeline.core.klines import HOUR_MS, MINUTE_MS, BadKline
from orderbook_pipeline.simulator.klines import KlineQuery, KlineSource
from orderbook_pipeline.simulator.runner import SimulatorThread
from orderbook_pipeline.storage.layout import burst_id_of
from orderbook_pipeline.storage.roots import open_store
from orderbook_pipeline.venues import BINANCE_SPOT, BINANCE_USDM, Venue
from orderbook_pipeline_tests.simulators import simulators

SEED = 7
START = int(datetime(2026, 11, 3, 10, tzinfo=UTC).timestamp() * 1000)  # long past: all closed
STRINGS = (
    "open_str",
    "high_str",
    "low_str",
    "close_str",
    "volume_str",
    "quote_volume_str",
    "taker_buy_volume_str",
    "taker_buy_quote_volume_str",
)


@pytest.fixture
def sim_factory():
    with simulators(seed=SEED) as start:

        def spot(venue: Venue = BINANCE_SPOT, symbols=("BTCUSDT",), **kw: Any) -> SimulatorThread:
            return start(venue, symbols, **kw)

        yield spot


def truth(venue: Venue, symbol: str, interval: str, start: int, end: int) -> list[list[Any]]:
    """The exchange's final klines with open time in [start, end), asked long after they closed."""
    source = KlineSource(venue, symbol, SEED)
    rows = source.klines(KlineQuery(interval, start, end - 1, 1000), end + 10 * HOUR_MS)
    return [r for r in rows if r[0] < end]


def as_rows(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (r["open_ts"] // 1000, *(r[s] for s in STRINGS[:5]), r["close_ts"] // 1000, r["trades"])
        for r in records
    ]


def truth_rows(rows: list[list[Any]]) -> list[tuple[Any, ...]]:
    return [(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[8]) for r in rows]


def run(**kw: Any) -> Any:
    return asyncio.run(fetch_klines(**kw))


@pytest.mark.parametrize("venue", [BINANCE_SPOT, BINANCE_USDM], ids=lambda v: v.name)
def test_two_hours_match_the_exchange_exactly_in_one_file_per_hour_and_interval(
    sim_factory, tmp_path, venue
):
    sim = sim_factory(venue)
    store = open_store(str(tmp_path / "lake"))
    end = START + 2 * HOUR_MS
    report = run(
        venue=venue,
        symbols=["BTCUSDT"],
        intervals=["1m", "5m", "1h"],
        start_ms=START,
        end_ms=end,
        store=store,
        rest_base=sim.rest_url,
    )
    # One request per interval covers both hours, at the venue's smallest tier.
    assert report.stats.requests == 3
    assert report.stats.weight == sum(venue.klines_weight(n) for n in (120, 24, 2))
    assert [(h.interval, h.stored, h.expected, h.status) for h in report.hours] == [
        (i, n, n, "written") for i, n in (("1m", 60), ("1m", 60), ("5m", 12), ("5m", 12))
    ] + [("1h", 1, 1, "written")] * 2
    files = store.list_files("bronze/klines/")
    assert len(files) == 6
    assert {burst_id_of(f) for f in files} == {"klines-1m", "klines-5m", "klines-1h"}
    for interval in ("1m", "5m", "1h"):
        for hour in (START, START + HOUR_MS):
            path = kline_file(venue.name, "BTCUSDT", hour, interval)
            records = decode_klines(store.read_bytes(path))
            expected = truth(venue, "BTCUSDT", interval, hour, hour + HOUR_MS)
            assert as_rows(records) == truth_rows(expected)
            assert [r["taker_buy_quote_volume_str"] for r in records] == [e[10] for e in expected]
            assert {r["burst_id"][:7] for r in records} == {"klines-"}  # a generated run id


def test_rerun_leaves_every_file_byte_for_byte(sim_factory, tmp_path):
    sim = sim_factory()
    store = open_store(str(tmp_path / "lake"))
    args = dict(
        venue=BINANCE_SPOT,
        symbols=["BTCUSDT"],
        intervals=["1m", "15m"],
        start_ms=START,
        end_ms=START + HOUR_MS,
        store=store,
        rest_base=sim.rest_url,
    )
    run(**args, burst_id="first")
    before = {f: store.read_bytes(f) for f in store.list_files("bronze/klines/")}
    again = run(**args, burst_id="second")
    assert [h.status for h in again.hours] == ["unchanged", "unchanged"]
    after = {f: store.read_bytes(f) for f in store.list_files("bronze/klines/")}
    assert after == before
    assert {r["burst_id"] for f in after for r in decode_klines(after[f])} == {"first"}


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_a_partial_hour_is_completed_by_replacing_its_file(sim_factory, tmp_path, backend, request):
    """An earlier run stored 25 klines (the hour was in progress): the re-run replaces the file
    with all 60, keeping when the first 25 were fetched; the store holds one file, not two."""
    if backend == "s3":
        request.getfixturevalue("private_temp_dir")  # the spool of temporaries
        store = open_store(
            request.getfixturevalue("s3_root"),
            s3_endpoint_url=request.getfixturevalue("s3_endpoint"),
        )
    else:
        store = open_store(str(tmp_path / "lake"))
    sim = sim_factory()
    path = kline_file("binance-spot", "BTCUSDT", START, "1m")
    args = dict(
        venue=BINANCE_SPOT,
        symbols=["BTCUSDT"],
        intervals=["1m"],
        start_ms=START,
        end_ms=START + HOUR_MS,
        store=store,
        rest_base=sim.rest_url,
    )
    run(**args, burst_id="early")
    early = decode_klines(store.read_bytes(path))
    for r in early:
        r["fetched_ts"] = 1
    store.write_bytes(path, encode_klines(early[:25], path))

    report = run(**args, burst_id="late")
    assert [(h.stored, h.fetched, h.status) for h in report.hours] == [(60, 60, "written")]
    assert store.list_files("bronze/klines/") == [path]
    records = decode_klines(store.read_bytes(path))
    assert as_rows(records) == truth_rows(
        truth(BINANCE_SPOT, "BTCUSDT", "1m", START, START + HOUR_MS)
    )
    assert [r["burst_id"] for r in records] == ["early"] * 25 + ["late"] * 35
    assert {r["fetched_ts"] for r in records[:25]} == {1}


def test_hour_in_progress_stores_only_closed_klines(sim_factory, tmp_path):
    sim = sim_factory()
    store = open_store(str(tmp_path / "lake"))
    now_ms = int(time.time() * 1000)
    hour = now_ms - now_ms % HOUR_MS
    report = run(
        venue=BINANCE_SPOT,
        symbols=["BTCUSDT"],
        intervals=["1m"],
        start_ms=hour,
        end_ms=hour + HOUR_MS,
        store=store,
        rest_base=sim.rest_url,
    )
    (res,) = report.hours
    assert res.unclosed >= 1 and res.missing >= 1
    if res.stored:
        records = decode_klines(store.read_bytes(res.path))
        last = records[-1]["open_ts"] // 1000
        # Every stored kline is final: what the exchange answers for it once long closed.
        assert as_rows(records) == truth_rows(
            truth(BINANCE_SPOT, "BTCUSDT", "1m", hour, last + MINUTE_MS)
        )
        assert all(r["close_ts"] // 1000 < r["fetched_ts"] // 1000 for r in records)


def test_retry_after_and_server_errors_are_waited_out(sim_factory, tmp_path):
    sim = sim_factory()
    sim.inject("rate_limit", count=1, retry_after_s=1, status=429)
    sim.inject("rate_limit", count=2, retry_after_s=0, status=503)
    store = open_store(str(tmp_path / "lake"))
    report = run(
        venue=BINANCE_SPOT,
        symbols=["BTCUSDT"],
        intervals=["1m"],
        start_ms=START,
        end_ms=START + HOUR_MS,
        store=store,
        rest_base=sim.rest_url,
    )
    assert report.stats.rate_limited == 1
    assert report.stats.rest_errors == {"429": 1, "503": 2}
    assert [h.stored for h in report.hours] == [60]


def test_unknown_symbol_and_client_errors_fail_clearly(sim_factory, tmp_path):
    sim = sim_factory()
    store = open_store(str(tmp_path / "lake"))
    args = dict(
        venue=BINANCE_SPOT,
        intervals=["1m"],
        start_ms=START,
        end_ms=START + HOUR_MS,
        store=store,
        rest_base=sim.rest_url,
    )
    with pytest.raises(UnknownSymbol, match="Invalid symbol"):
        run(symbols=["NOPEUSDT"], **args)
    sim.inject("rate_limit", count=1, status=403)
    with pytest.raises(RestError, match="HTTP 403"):
        run(symbols=["BTCUSDT"], **args)
    with pytest.raises(ValueError, match="unsupported kline interval"):
        run(symbols=["BTCUSDT"], **{**args, "intervals": ["1M"]})
    assert store.list_files("bronze/") == []


def _fake_exchange(
    rows: list[Any], date: bool = True, now_ms: int = 4_000_000_000_000
) -> tuple[httpx.AsyncClient, list[str]]:
    """An AsyncClient answering klines with `rows` (and /time), logging the paths asked; its
    clock (the Date header) reads `now_ms`."""
    asked: list[str] = []

    def handler(req: httpx.Request) -> httpx.Response:
        asked.append(req.url.path)
        headers = {"X-MBX-USED-WEIGHT-1M": "3"}
        if date:
            headers["Date"] = email.utils.formatdate(now_ms / 1000, usegmt=True)
        if req.url.path.endswith("/time"):
            return httpx.Response(200, headers=headers, content=b'{"serverTime":4000000000000}')
        return httpx.Response(200, headers=headers, content=orjson.dumps(rows))

    return httpx.AsyncClient(transport=httpx.MockTransport(handler)), asked


def _one_hour(http: httpx.AsyncClient, store: Any, interval: str = "1h") -> Any:
    async def go() -> Any:
        async with http:
            return await fetch_klines(
                venue=BINANCE_SPOT,
                symbols=["BTCUSDT"],
                intervals=[interval],
                start_ms=START,
                end_ms=START + HOUR_MS,
                store=store,
                rest_base="http://exchange.test",
                http=http,
            )

    return asyncio.run(go())


def _row(open_ms: int, high: str = "2.0", length_ms: int = HOUR_MS) -> list[Any]:
    return [open_ms, "1.5", high, "1.0", "1.5", "3", open_ms + length_ms - 1, "4", 5, "1", "2", "0"]


def test_a_kline_counts_as_closed_a_margin_before_the_exchanges_clock(tmp_path):
    """Deterministic, whatever the local time: the exchange's Date is half past the hour."""
    store = open_store(str(tmp_path / "lake"))
    rows = [_row(START + i * MINUTE_MS, length_ms=MINUTE_MS) for i in range(60)]
    http, _ = _fake_exchange(rows, now_ms=START + 30 * MINUTE_MS)
    (res,) = _one_hour(http, store, interval="1m").hours
    # 10:29 closes 1 ms before the Date: within CLOSED_MARGIN_MS, so not yet trusted.
    assert (res.stored, res.unclosed, res.missing, res.status) == (29, 31, 31, "written")
    records = decode_klines(store.read_bytes(res.path))
    assert [r["open_ts"] // 1000 for r in records] == [START + i * MINUTE_MS for i in range(29)]


def test_a_bad_row_fails_the_hour_and_writes_nothing(tmp_path):
    store = open_store(str(tmp_path / "lake"))
    http, _ = _fake_exchange([_row(START, high="1.2")])
    with pytest.raises(BadKline, match=r"binance-spot BTCUSDT 1h: open/close outside"):
        _one_hour(http, store)
    http, _ = _fake_exchange([_row(START + HOUR_MS)])  # not what was asked for
    with pytest.raises(BadKline, match="outside the requested"):
        _one_hour(http, store)
    assert store.list_files("bronze/") == []


def test_without_a_date_header_the_exchange_time_is_asked(tmp_path):
    store = open_store(str(tmp_path / "lake"))
    http, asked = _fake_exchange([_row(START)], date=False)
    report = _one_hour(http, store)
    assert asked == ["/api/v3/klines", "/api/v3/time"]
    assert (report.stats.requests, report.stats.weight) == (2, 3)
    assert [h.stored for h in report.hours] == [1]


def test_backfill_klines_covers_a_date_range_outside_dagster(sim_factory, tmp_path):
    sim = sim_factory(symbols=("BTCUSDT", "ETHUSDT"))
    store = open_store(str(tmp_path / "lake"))
    start = datetime.fromtimestamp(START / 1000, UTC)
    end = datetime.fromtimestamp((START + 20 * HOUR_MS) / 1000 - 1800, UTC)  # 19.5 h: 20 hours
    report = backfill_klines(
        BINANCE_SPOT, ["BTCUSDT", "ETHUSDT"], ["1m"], start, end, store, rest_base=sim.rest_url
    )
    assert report.stats.requests == 4  # a symbol: 16 hours (960 klines), then 4 hours
    assert len(report.hours) == 40 and {h.stored for h in report.hours} == {60}
    assert len(store.list_files("bronze/klines/")) == 40


def test_a_daily_kline_is_stored_in_the_hour_it_opens(sim_factory, tmp_path):
    sim = sim_factory()
    store = open_store(str(tmp_path / "lake"))
    midnight = START - START % (24 * HOUR_MS)
    report = run(
        venue=BINANCE_SPOT,
        symbols=["BTCUSDT"],
        intervals=["1d"],
        start_ms=midnight,
        end_ms=midnight + 2 * HOUR_MS,
        store=store,
        rest_base=sim.rest_url,
    )
    assert [(h.hour_start_ms, h.stored, h.expected) for h in report.hours] == [(midnight, 1, 1)]
    (path,) = store.list_files("bronze/klines/")
    assert "/hour=00/klines-1d-0.avro" in path
    records = decode_klines(store.read_bytes(path))
    assert as_rows(records) == truth_rows(
        truth(BINANCE_SPOT, "BTCUSDT", "1d", midnight, midnight + 24 * HOUR_MS)
    )
