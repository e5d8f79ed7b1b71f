"""REST calls to the venue with its request-weight budget respected.

Binance meters REST by weight per IP per minute and answers 429 (then 418, a ban) to callers that
ignore it. The budget below paces requests from the `X-MBX-USED-WEIGHT-1M` header every answer
carries (which also counts other processes on this host), and honours `Retry-After`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from orderbook_pipeline.capture.metrics import BurstMetrics
from orderbook_pipeline.core.decimals import decimals_of
from orderbook_pipeline.core.events import Scales
from orderbook_pipeline.venues import Venue

log = logging.getLogger("orderbook_pipeline.capture")

INVALID_SYMBOL_CODE = -1121


class RestError(Exception):
    def __init__(self, status: int, message: str, code: int | None = None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.code = code


class UnknownSymbol(RestError):
    pass


class WeightBudget:
    """Request weight used in the current UTC minute, and any server-imposed pause."""

    def __init__(self, limit: int, safety: float, clock: Any = time.time) -> None:
        self.cap = max(1, int(limit * safety))
        self.clock = clock
        self.used = 0
        self.window = -1
        self.blocked_until = 0.0

    def _roll(self, now: float) -> None:
        minute = int(now // 60)
        if minute != self.window:
            self.window, self.used = minute, 0

    def delay_for(self, weight: int) -> float:
        now = self.clock()
        if now < self.blocked_until:
            return self.blocked_until - now
        self._roll(now)
        if self.used + weight > self.cap:
            return (self.window + 1) * 60 - now + 0.05
        return 0.0

    async def acquire(self, weight: int) -> None:
        while (delay := self.delay_for(weight)) > 0:
            log.info(
                "request weight budget: waiting %.1fs before a weight-%d request", delay, weight
            )
            await asyncio.sleep(delay)
        self.used += weight

    def observe(self, used_header: str | None) -> None:
        if used_header is not None and used_header.isdigit():
            self._roll(self.clock())
            # The server's count is authoritative: it includes every process behind this IP.
            self.used = max(self.used, int(used_header))

    def block_for(self, seconds: float) -> None:
        self.blocked_until = max(self.blocked_until, self.clock() + seconds)


@dataclass
class SnapshotResponse:
    data: Any
    request_us: int
    response_us: int
    used_weight_1m: int | None
    limit: int


class RestClient:
    def __init__(
        self,
        venue: Venue,
        base_url: str,
        http: httpx.AsyncClient,
        metrics: BurstMetrics,
        budget: WeightBudget,
        max_attempts: int = 6,
    ) -> None:
        self.venue = venue
        self.base_url = base_url
        self.http = http
        self.metrics = metrics
        self.budget = budget
        self.max_attempts = max_attempts

    async def get(
        self,
        path: str,
        params: dict[str, Any],
        weight: int,
        before_send: Callable[[], None] | None = None,
    ) -> httpx.Response:
        """GET with budget, Retry-After and retries on 5xx / network errors (outcome unknown).

        `before_send` is called once the budget allows the request, right before it is sent.
        """
        failures = 0
        while True:
            await self.budget.acquire(weight)
            if before_send is not None:
                before_send()
            try:
                resp = await self.http.get(f"{self.base_url}{path}", params=params)
            except httpx.HTTPError as exc:
                self.metrics.rest_error("network", f"{path}: {exc!r}")
                failures += 1
            else:
                self.budget.observe(resp.headers.get("X-MBX-USED-WEIGHT-1M"))
                if resp.status_code == 200:
                    return resp
                if resp.status_code in (418, 429):
                    retry_after = _retry_after(resp)
                    self.metrics.rate_limited += 1
                    self.metrics.rest_error(
                        str(resp.status_code), f"{path}: retry after {retry_after}s"
                    )
                    self.budget.block_for(retry_after)
                    continue
                body = _json_or_none(resp)
                code = body.get("code") if isinstance(body, dict) else None
                message = (
                    body.get("msg", resp.text[:200]) if isinstance(body, dict) else resp.text[:200]
                )
                if resp.status_code < 500:
                    self.metrics.rest_error(str(resp.status_code), f"{path} {params}: {message}")
                    cls = UnknownSymbol if code == INVALID_SYMBOL_CODE else RestError
                    raise cls(resp.status_code, str(message), code)
                self.metrics.rest_error(str(resp.status_code), f"{path}: {message}")
                failures += 1
            if failures >= self.max_attempts:
                raise RestError(0, f"{path}: giving up after {failures} failed attempts")
            await asyncio.sleep(min(10.0, 0.2 * 2**failures) * random.uniform(0.5, 1.0))

    async def scales(self, symbols: list[str]) -> tuple[dict[str, Scales], list[str]]:
        """Tick and lot decimals per symbol from exchangeInfo, read at the start of every burst."""
        infos: dict[str, Any] = {}
        unknown: list[str] = []
        weight = self.venue.exchange_info_weight
        if not self.venue.exchange_info_by_symbol:  # futures: one call lists all symbols
            resp = await self.get(self.venue.exchange_info_path, {}, weight=weight)
            infos = {s["symbol"]: s for s in orjson.loads(resp.content)["symbols"]}
            unknown = [s for s in symbols if s not in infos]
        else:
            # Spot: one call for every symbol (the weight of one exchangeInfo call: 200 symbols
            # asked one by one would spend most of a minute's budget before any snapshot). An
            # unknown symbol fails the whole call, so only then ask one by one to name it.
            try:
                resp = await self.get(
                    self.venue.exchange_info_path,
                    {"symbols": orjson.dumps(symbols).decode()},
                    weight=weight,
                )
                for info in orjson.loads(resp.content)["symbols"]:
                    infos[info["symbol"]] = info
            except UnknownSymbol:
                for symbol in symbols:
                    try:
                        resp = await self.get(
                            self.venue.exchange_info_path, {"symbol": symbol}, weight=weight
                        )
                    except UnknownSymbol:
                        unknown.append(symbol)
                        continue
                    for info in orjson.loads(resp.content)["symbols"]:
                        infos[info["symbol"]] = info
            unknown += [s for s in symbols if s not in infos and s not in unknown]
        scales = {}
        for symbol in symbols:
            if symbol in infos:
                filters = {f["filterType"]: f for f in infos[symbol]["filters"]}
                scales[symbol] = Scales(
                    price_decimals=decimals_of(filters["PRICE_FILTER"]["tickSize"]),
                    qty_decimals=decimals_of(filters["LOT_SIZE"]["stepSize"]),
                )
        return scales, unknown

    async def depth(
        self, symbol: str, limit: int, before_send: Callable[[], None] | None = None
    ) -> SnapshotResponse:
        request_us = time.time_ns() // 1000
        resp = await self.get(
            self.venue.depth_path,
            {"symbol": symbol, "limit": limit},
            weight=self.venue.snapshot_weight(limit),
            before_send=before_send,
        )
        response_us = time.time_ns() // 1000
        used = resp.headers.get("X-MBX-USED-WEIGHT-1M")
        try:
            data = orjson.loads(resp.content)
        except orjson.JSONDecodeError as exc:
            raise RestError(200, f"depth {symbol}: malformed JSON ({exc})") from None
        weight = int(used) if used and used.isdigit() else None
        return SnapshotResponse(data, request_us, response_us, weight, limit)


def _retry_after(resp: httpx.Response) -> float:
    value = resp.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return 60.0  # absent or unparseable: Binance's smallest ban unit is minutes


def _json_or_none(resp: httpx.Response) -> Any:
    try:
        return orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        return None
