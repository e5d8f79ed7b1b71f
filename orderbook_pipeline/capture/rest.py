"""REST calls to the venue with its request-weight budget respected.

Binance meters REST by weight per IP per minute and answers 429 (then 418, a ban) to callers that
ignore it. The budget below paces requests from the `X-MBX-USED-WEIGHT-1M` header every answer
carries (which also counts other processes on this host), and honours `Retry-After`.

Every answer's body goes through one path (`RestClient.fetch`): decoded, handed to the
endpoint's parser, and a malformed answer (an HTML page with status 200, a missing field) is
counted as `malformed` and retried like a server error, then refused with a message naming the
endpoint. Nothing here waits beyond the caller's control: the burst cancels its waits when it
stops.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import orjson

from orderbook_pipeline.capture.metrics import BurstMetrics
from orderbook_pipeline.core.decimals import decimals_of
from orderbook_pipeline.core.events import Scales, Snapshot, parse_snapshot
from orderbook_pipeline.venues import Venue

log = logging.getLogger("orderbook_pipeline.capture")

INVALID_SYMBOL_CODE = -1121

T = TypeVar("T")
# What a parser may raise about a body that is not the endpoint's answer (JSON errors are
# ValueErrors; BadEvent too).
MALFORMED = (ValueError, KeyError, TypeError, IndexError)


class RestError(Exception):
    def __init__(self, status: int, message: str, code: int | None = None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.code = code


class UnknownSymbol(RestError):
    pass


class WeightBudget:
    """Request weight used in the current UTC minute, and any server-imposed pause."""

    def __init__(self, limit: int, safety: float, clock: Callable[[], float] = time.time) -> None:
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
    snapshot: Snapshot
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

    async def fetch(
        self,
        path: str,
        params: dict[str, Any],
        weight: int,
        parse: Callable[[Any], T],
        before_send: Callable[[], None] | None = None,
    ) -> tuple[httpx.Response, T]:
        """GET with budget, Retry-After, and retries on 5xx, network errors (outcome unknown)
        and malformed bodies; `parse` turns the decoded JSON into the endpoint's answer and
        raises on anything else.

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
                last = f"network error {exc!r}"
            else:
                self.budget.observe(resp.headers.get("X-MBX-USED-WEIGHT-1M"))
                if resp.status_code == 200:
                    try:
                        return resp, parse(orjson.loads(resp.content))
                    except MALFORMED as exc:
                        last = f"malformed answer ({_describe(exc)}): {resp.text[:120]!r}"
                        self.metrics.rest_error("malformed", f"{path}: {last}")
                        failures += 1
                elif resp.status_code in (418, 429):
                    retry_after = _retry_after(resp)
                    self.metrics.rate_limited += 1
                    self.metrics.rest_error(
                        str(resp.status_code), f"{path}: retry after {retry_after}s"
                    )
                    self.budget.block_for(retry_after)
                    continue
                else:
                    body = _json_or_none(resp)
                    code = body.get("code") if isinstance(body, dict) else None
                    message = str(
                        body.get("msg", resp.text[:200])
                        if isinstance(body, dict)
                        else resp.text[:200]
                    )
                    if resp.status_code < 500:
                        self.metrics.rest_error(
                            str(resp.status_code), f"{path} {params}: {message}"
                        )
                        cls = UnknownSymbol if code == INVALID_SYMBOL_CODE else RestError
                        raise cls(resp.status_code, message, code)
                    self.metrics.rest_error(str(resp.status_code), f"{path}: {message}")
                    failures += 1
                    last = f"HTTP {resp.status_code} {message}"
            if failures >= self.max_attempts:
                raise RestError(0, f"{path}: giving up after {failures} failed attempts ({last})")
            await asyncio.sleep(min(10.0, 0.2 * 2**failures) * random.uniform(0.5, 1.0))

    async def scales(self, symbols: list[str]) -> tuple[dict[str, Scales], list[str]]:
        """Tick and lot decimals per symbol from exchangeInfo, read at the start of every burst."""
        infos: dict[str, Scales] = {}
        unknown: list[str] = []
        path, weight = self.venue.exchange_info_path, self.venue.exchange_info_weight
        if not self.venue.exchange_info_by_symbol:  # futures: one call lists all symbols
            _, infos = await self.fetch(path, {}, weight, _scales_parser(symbols))
            unknown = [s for s in symbols if s not in infos]
        else:
            # Spot: one call for many symbols (the weight of one exchangeInfo call: 200 symbols
            # asked one by one would spend most of a minute's budget before any snapshot), in
            # chunks that keep the URL short. An unknown symbol fails the whole call, so only
            # then ask that chunk's symbols one by one to name it.
            for chunk in exchange_info_chunks(symbols):
                try:
                    params = {"symbols": orjson.dumps(chunk).decode()}
                    infos.update((await self.fetch(path, params, weight, _scales_parser(chunk)))[1])
                except UnknownSymbol:
                    for symbol in chunk:
                        try:
                            _, one = await self.fetch(
                                path, {"symbol": symbol}, weight, _scales_parser([symbol])
                            )
                        except UnknownSymbol:
                            unknown.append(symbol)
                            continue
                        infos.update(one)
            unknown += [s for s in symbols if s not in infos and s not in unknown]
        return {s: infos[s] for s in symbols if s in infos}, unknown

    async def depth(
        self, symbol: str, limit: int, before_send: Callable[[], None] | None = None
    ) -> SnapshotResponse:
        request_us = time.time_ns() // 1000
        resp, snapshot = await self.fetch(
            self.venue.depth_path,
            {"symbol": symbol, "limit": limit},
            weight=self.venue.snapshot_weight(limit),
            parse=lambda body: parse_snapshot(body, symbol),
            before_send=before_send,
        )
        response_us = time.time_ns() // 1000
        used = resp.headers.get("X-MBX-USED-WEIGHT-1M")
        weight = int(used) if used and used.isdigit() else None
        return SnapshotResponse(snapshot, request_us, response_us, weight, limit)

    async def server_time_ms(self, before_send: Callable[[], None] | None = None) -> int:
        """The exchange's clock (GET time: weight 1)."""
        return (await self.fetch(self.venue.time_path, {}, 1, server_time, before_send))[1]


# Symbols per spot exchangeInfo call: ~20 characters each once URL-encoded, so a call's URL
# stays under ~8 kB (what web servers commonly accept) however many symbols are configured.
EXCHANGE_INFO_CHUNK = 300


def exchange_info_chunks(symbols: list[str]) -> list[list[str]]:
    return [
        symbols[i : i + EXCHANGE_INFO_CHUNK] for i in range(0, len(symbols), EXCHANGE_INFO_CHUNK)
    ]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"no field {exc}"
    return f"{type(exc).__name__}: {exc}"


def server_time(body: Any) -> int:
    """GET time's answer: the exchange's clock in ms."""
    value = body["serverTime"]
    if type(value) is not int:
        raise TypeError(f"serverTime is {type(value).__name__}, not an integer")
    return value


def _scales_parser(wanted: list[str]) -> Callable[[Any], dict[str, Scales]]:
    """exchangeInfo's tick and lot decimals of the `wanted` symbols it lists (others, which
    USD-M lists too, are not read: a malformed entry of an unrelated symbol does no harm)."""

    def parse(body: Any) -> dict[str, Scales]:
        entries = body["symbols"]
        if type(entries) is not list:
            raise TypeError(f"symbols is {type(entries).__name__}, not a list")
        want = set(wanted)
        out = {}
        for info in entries:
            symbol = info["symbol"] if type(info) is dict else None
            if symbol not in want:
                continue
            try:
                filters = {f.get("filterType"): f for f in info["filters"] if type(f) is dict}
                tick, step = filters["PRICE_FILTER"]["tickSize"], filters["LOT_SIZE"]["stepSize"]
                out[symbol] = Scales(
                    price_decimals=decimals_of(tick), qty_decimals=decimals_of(step)
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(
                    f"{symbol}: no usable PRICE_FILTER/LOT_SIZE ({_describe(exc)})"
                ) from None
        return out

    return parse


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
