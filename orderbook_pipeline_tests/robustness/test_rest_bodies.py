"""Every REST answer goes through one path that counts, retries and names a malformed body
(issue 11, defect 4): an HTML page with status 200, a missing field, an exchangeInfo entry
without filters, a truncated snapshot."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import pytest

from orderbook_pipeline.capture.metrics import BurstMetrics
from orderbook_pipeline.capture.rest import EXCHANGE_INFO_CHUNK, RestClient, WeightBudget
from orderbook_pipeline.cli import main
from orderbook_pipeline.venues import BINANCE_SPOT, BINANCE_USDM, MAX_STREAM_URL_CHARS
from orderbook_pipeline_tests.capture.conftest import capture

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


@pytest.mark.parametrize(
    ("endpoint", "variant"),
    [
        ("exchange_info", "html"),
        ("exchange_info", "missing_filters"),
        ("exchange_info", "missing_field"),
        ("depth", "html"),
        ("depth", "truncated"),
        ("depth", "missing_field"),
        ("time", "missing_field"),
    ],
)
def test_one_malformed_answer_is_counted_and_retried(simulator, tmp_path, endpoint, variant):
    sim = simulator(BINANCE_SPOT, SYMBOLS)
    sim.inject("bad_body", endpoint=endpoint, variant=variant, count=1)
    summary = capture(sim, str(tmp_path), BINANCE_SPOT, SYMBOLS, duration_s=3.0)
    assert summary["rest_errors"].get("malformed") == 1
    assert summary["empty_symbols"] == []
    assert summary["snapshots"] >= len(SYMBOLS) and summary["records"] > 0


@pytest.mark.parametrize(
    ("venue", "variant", "named"),
    [
        (BINANCE_SPOT, "html", "malformed answer (JSONDecodeError"),
        (BINANCE_SPOT, "missing_filters", "no usable PRICE_FILTER/LOT_SIZE (no field 'filters')"),
        (BINANCE_USDM, "missing_field", "no field 'symbols'"),
    ],
)
def test_a_persistently_malformed_exchange_info_is_a_named_error(
    simulator, tmp_path, capsys, venue, variant, named
):
    """Before the fix: orjson.JSONDecodeError, KeyError: 'PRICE_FILTER' (raw tracebacks)."""
    sim = simulator(venue, ["BTCUSDT"])
    sim.inject("bad_body", endpoint="exchange_info", variant=variant, count=1000)
    code = main(
        [
            "capture",
            "--venue",
            venue.name,
            "--symbols",
            "BTCUSDT",
            "--duration",
            "60",
            "--data-root",
            str(tmp_path),
            "--ws-url",
            sim.ws_url,
            "--rest-url",
            sim.rest_url,
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "exchangeInfo failed" in err and "giving up after 6 failed attempts" in err
    assert named in err
    assert "Traceback" not in err


def test_ten_thousand_symbols_are_asked_in_calls_that_fit_a_url():
    """Before the fix: httpx.InvalidURL: URL component 'query' too long."""
    symbols = [f"S{i:05d}USDT" for i in range(10_000)]
    asked: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        assert len(str(request.url)) < MAX_STREAM_URL_CHARS
        chunk = orjson.loads(parse_qs(urlsplit(str(request.url)).query)["symbols"][0])
        asked.append(len(chunk))
        entries = [_info(s) for s in chunk]
        return httpx.Response(200, content=orjson.dumps({"symbols": entries}))

    async def scales() -> Any:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
            metrics = BurstMetrics("b", BINANCE_SPOT.name, symbols)
            rest = RestClient(
                BINANCE_SPOT, "http://127.0.0.1:1", http, metrics, WeightBudget(6000, 1)
            )
            return await rest.scales(symbols)

    found, unknown = asyncio.run(scales())
    assert len(found) == 10_000 and unknown == []
    assert sum(asked) == 10_000 and max(asked) == EXCHANGE_INFO_CHUNK


def _info(symbol: str) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "filters": [
            {"filterType": "PRICE_FILTER", "tickSize": "0.01000000"},
            {"filterType": "LOT_SIZE", "stepSize": "0.00100000"},
        ],
    }
