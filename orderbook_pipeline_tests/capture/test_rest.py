"""The request-weight budget that keeps snapshots under the venue's per-minute limit."""

from __future__ import annotations

import asyncio

from orderbook_pipeline.capture.rest import WeightBudget


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_budget_waits_for_the_next_minute_when_full():
    clock = Clock(60.0 * 16_667 + 20)  # 20 s into a minute
    budget = WeightBudget(limit=6000, safety=0.8, clock=clock)
    assert budget.cap == 4800
    for _ in range(19):
        assert budget.delay_for(250) == 0
        budget.used += 250
    assert budget.used == 4750
    assert 40 < budget.delay_for(250) <= 40.1  # until the minute rolls over
    clock.now += 41
    assert budget.delay_for(250) == 0 and budget.used == 0


def test_server_header_counts_other_processes_on_this_ip():
    clock = Clock(60.0 * 100 + 5)
    budget = WeightBudget(limit=1200, safety=1.0, clock=clock)
    budget.observe("1150")
    assert budget.used == 1150
    assert budget.delay_for(50) == 0
    assert budget.delay_for(51) > 0
    budget.observe("not-a-number")
    assert budget.used == 1150


def test_retry_after_blocks_every_request():
    clock = Clock(60.0 * 7)
    budget = WeightBudget(limit=6000, safety=0.8, clock=clock)
    budget.block_for(12)
    assert budget.delay_for(1) == 12
    clock.now += 12.5
    assert budget.delay_for(1) == 0


def test_acquire_sleeps_until_allowed(monkeypatch):
    clock = Clock(60.0 * 3 + 59.5)
    budget = WeightBudget(limit=100, safety=1.0, clock=clock)
    budget.observe("100")
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    asyncio.run(budget.acquire(10))
    assert slept and 0.5 < sum(slept) < 0.6
    assert budget.used == 10


def _client(handler):
    import httpx

    from orderbook_pipeline.capture.metrics import BurstMetrics
    from orderbook_pipeline.capture.rest import RestClient
    from orderbook_pipeline.venues import BINANCE_SPOT

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    budget = WeightBudget(limit=6000, safety=0.8)
    metrics = BurstMetrics("b", BINANCE_SPOT.name, [])
    return RestClient(BINANCE_SPOT, "http://x", http, metrics, budget), budget


def _info(symbol):
    return {
        "symbol": symbol,
        "filters": [
            {"filterType": "PRICE_FILTER", "tickSize": "0.01000000"},
            {"filterType": "LOT_SIZE", "stepSize": "0.00001000"},
        ],
    }


def test_exchange_info_for_all_symbols_in_one_call_then_one_by_one_to_name_an_unknown():
    import httpx
    import orjson

    calls = []
    known = {"BTCUSDT", "ETHUSDT"}

    def handler(request):
        calls.append(dict(request.url.params))
        asked = (
            orjson.loads(request.url.params["symbols"])
            if "symbols" in request.url.params
            else [request.url.params["symbol"]]
        )
        if any(s not in known for s in asked):
            return httpx.Response(400, json={"code": -1121, "msg": "Invalid symbol."})
        return httpx.Response(200, json={"symbols": [_info(s) for s in asked]})

    rest, budget = _client(handler)
    scales, unknown = asyncio.run(rest.scales(["BTCUSDT", "ETHUSDT"]))
    assert set(scales) == {"BTCUSDT", "ETHUSDT"} and unknown == []
    assert len(calls) == 1 and budget.used == 20  # one call's weight, not one per symbol

    calls.clear()
    scales, unknown = asyncio.run(rest.scales(["BTCUSDT", "NOPEUSDT", "ETHUSDT"]))
    assert set(scales) == {"BTCUSDT", "ETHUSDT"} and unknown == ["NOPEUSDT"]
    assert len(calls) == 4  # the refused call, then one per symbol
