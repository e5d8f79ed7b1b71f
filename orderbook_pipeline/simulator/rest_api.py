"""The simulated exchange's REST side: request weights per calendar minute, depth snapshots,
klines, exchangeInfo, time, ping, and the /sim control endpoints (true book, sent log, trades,
bookTicker truth, corruptions, faults).

Answers are built for websockets' `process_request` hook, so REST shares the websocket port.
"""

from __future__ import annotations

import email.utils
import http
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from websockets.datastructures import Headers
from websockets.http11 import Response

from orderbook_pipeline.core.klines import INTERVALS
from orderbook_pipeline.simulator.faults import BodyKind, Endpoint, parse_fault_query
from orderbook_pipeline.simulator.klines import KlineQuery
from orderbook_pipeline.simulator.market import Market

if TYPE_CHECKING:
    from orderbook_pipeline.simulator.faults import FaultKind, FaultPlan
    from orderbook_pipeline.simulator.klines import KlineSource
    from orderbook_pipeline.venues import Venue

# time and ping weigh 1 on every venue; depth and exchangeInfo weights come from the venue.
_OTHER_WEIGHTS = {"time": 1, "ping": 1}
# The field a missing_field fault removes: exchangeInfo's, a snapshot's, time's.
_MAIN_FIELDS = ("symbols", "lastUpdateId", "serverTime")


class ExchangeState(Protocol):
    """What the REST side reads of the exchange (SimulatedExchange), so that this module needs
    none of the serving code."""

    venue: Venue
    symbols: list[str]
    markets: dict[str, Market]
    faults: FaultPlan
    corruptions: list[dict[str, Any]]
    clock_offset_ms: int
    weight_limit_1m: int
    clock: Callable[[], float]

    def known_symbol(self, symbol: str) -> str: ...

    def kline_source(self, symbol: str) -> KlineSource: ...

    def inject(self, kind: FaultKind | str, **params: Any) -> None: ...

    def sent_log(self, symbol: str) -> list[int]: ...

    def trades(self, symbol: str) -> list[dict[str, Any]]: ...

    def agg_trades(self, symbol: str) -> list[dict[str, Any]]: ...

    def sent_trade_ids(self, symbol: str) -> list[int]: ...

    def book_ticker_at(self, symbol: str, update_id: int) -> tuple[str, str, str, str]: ...


class RestApi:
    def __init__(self, exchange: ExchangeState) -> None:
        self.x = exchange
        self._window = -1
        self._used = 0

    def used_weight(self) -> int:
        window = int(self.x.clock() // 60)  # Binance counts per calendar minute
        if window != self._window:
            self._window, self._used = window, 0
        return self._used

    def json(self, status: int, body: Any, retry_after: float | None = None) -> Response:
        data = orjson.dumps(body)
        headers = Headers(
            [
                ("Date", email.utils.formatdate(usegmt=True)),
                ("Connection", "close"),
                ("Content-Type", "application/json;charset=UTF-8"),
                ("Content-Length", str(len(data))),
                ("X-MBX-USED-WEIGHT-1M", str(self.used_weight())),
            ]
        )
        if retry_after is not None:
            headers["Retry-After"] = str(max(0, math.ceil(retry_after)))
        return Response(status, http.HTTPStatus(status).phrase, headers, data)

    def charge(self, weight: int) -> Response | None:
        """Count request weight; the 429 answer once the minute's budget is spent."""
        if self.used_weight() + weight > self.x.weight_limit_1m:
            retry = (self._window + 1) * 60 - self.x.clock()
            msg = (
                f"Too much request weight used; current limit is {self.x.weight_limit_1m} "
                "request weight per 1 MINUTE."
            )
            return self.json(429, {"code": -1003, "msg": msg}, retry_after=max(1, retry))
        self._used += weight
        return None

    def respond(self, path: str, query: dict[str, str]) -> Response:
        if path.startswith("/sim/"):
            return self._control(path, query)
        v = self.x.venue
        handlers: dict[str, Callable[[dict[str, str]], Response]] = {
            v.depth_path: self._depth,
            v.exchange_info_path: self._exchange_info,
            v.klines_path: self._klines,
            v.time_path: lambda q: (
                self.charge(_OTHER_WEIGHTS["time"])
                or self.json(200, {"serverTime": self._server_time()})
            ),
            v.ping_path: lambda q: self.charge(_OTHER_WEIGHTS["ping"]) or self.json(200, {}),
        }
        handler = handlers.get(path)
        if handler is None:
            return self.json(404, {"code": -1, "msg": f"Unknown path {path}"})
        endpoints = {
            v.depth_path: Endpoint.DEPTH,
            v.exchange_info_path: Endpoint.EXCHANGE_INFO,
            v.klines_path: Endpoint.KLINES,
            v.time_path: Endpoint.TIME,
            v.ping_path: Endpoint.PING,
        }
        fault = self.x.faults.take_rest_fault(endpoints[path])
        if fault is None:
            return handler(query)
        if fault.body is not None:
            return self._bad_body(handler(query), fault.body)
        status = fault.status
        msg = "Way too much request weight used; IP banned." if status == 418 else "Too many"
        return self.json(status, {"code": -1003, "msg": msg}, retry_after=fault.retry_after_s)

    def _bad_body(self, answer: Response, kind: BodyKind) -> Response:
        """The endpoint's real answer (weight charged) turned into a malformed one."""
        if answer.status_code != 200:
            return answer
        if kind is BodyKind.HTML:
            page = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
            headers = Headers([("Content-Type", "text/html"), ("Content-Length", str(len(page)))])
            return Response(200, "OK", headers, page)
        if kind is BodyKind.TRUNCATED:
            return self._body(bytes(answer.body[: len(answer.body) // 2]))
        body = orjson.loads(answer.body)
        if kind is BodyKind.MISSING_FILTERS and isinstance(body, dict):
            for info in body.get("symbols", []):
                info.pop("filters", None)
        elif isinstance(body, dict) and body:  # MISSING_FIELD: the one a client needs most
            main = next((k for k in _MAIN_FIELDS if k in body), next(iter(body)))
            body.pop(main)
        elif isinstance(body, list):
            body = {"rows": body}
        return self._body(orjson.dumps(body))

    def _body(self, data: bytes) -> Response:
        headers = Headers(
            [
                ("Content-Type", "application/json;charset=UTF-8"),
                ("Content-Length", str(len(data))),
                ("X-MBX-USED-WEIGHT-1M", str(self.used_weight())),
            ]
        )
        return Response(200, "OK", headers, data)

    def _server_time(self) -> int:
        """The exchange's clock as REST reports it: wall clock plus the configured offset."""
        return int(time.time() * 1000) + self.x.clock_offset_ms

    def _bad_symbol(self) -> Response:
        return self.json(400, {"code": -1121, "msg": "Invalid symbol."})

    def _depth(self, query: dict[str, str]) -> Response:
        if "symbol" not in query:
            msg = "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."
            return self.json(400, {"code": -1102, "msg": msg})
        market = self.x.markets.get(query["symbol"].upper())
        if market is None:
            return self._bad_symbol()
        try:
            limit = int(query.get("limit", self.x.venue.default_snapshot_limit))
            self.x.venue.validate_snapshot_limit(limit)
        except ValueError as exc:
            return self.json(400, {"code": -1100, "msg": f"Illegal parameter 'limit': {exc}"})
        refused = self.charge(self.x.venue.snapshot_weight(limit))
        if refused is not None:
            return refused
        fault = self.x.faults.take_depth_fault()
        if fault is not None:
            msg = "Internal error; unable to process your request. Please try again."
            return self.json(
                fault.status, {"code": -1001, "msg": msg}, retry_after=fault.retry_after_s
            )
        lag = self.x.faults.take_stale_lag(market.symbol)
        return self.json(200, market.snapshot(limit, lag, int(time.time() * 1000)))

    def _klines(self, query: dict[str, str]) -> Response:
        for name in ("symbol", "interval"):
            if not query.get(name):
                msg = f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
                return self.json(400, {"code": -1102, "msg": msg})
        symbol = query["symbol"].upper()
        if symbol not in self.x.markets:
            return self._bad_symbol()
        if query["interval"] not in INTERVALS:
            return self.json(400, {"code": -1120, "msg": "Invalid interval."})
        venue = self.x.venue
        try:
            limit = int(query.get("limit", 500))
            start = int(query["startTime"]) if "startTime" in query else None
            end = int(query["endTime"]) if "endTime" in query else None
        except ValueError:
            return self.json(
                400, {"code": -1100, "msg": "Illegal characters found in a parameter."}
            )
        if not 1 <= limit <= venue.klines_max_limit:
            msg = "Data sent for parameter 'limit' is not valid."
            return self.json(400, {"code": -1130, "msg": msg})
        if start is not None and end is not None and start > end:
            return self.json(400, {"code": -1023, "msg": "Start time is greater than end time."})
        refused = self.charge(venue.klines_weight(limit))
        if refused is not None:
            return refused
        rows = self.x.kline_source(symbol).klines(
            KlineQuery(query["interval"], start, end, limit), int(time.time() * 1000)
        )
        return self.json(200, rows)

    def _exchange_info(self, query: dict[str, str]) -> Response:
        selected = self.x.symbols
        if self.x.venue.exchange_info_by_symbol:  # USD-M ignores the filter and lists all
            try:
                if "symbol" in query:
                    selected = [query["symbol"].upper()]
                elif "symbols" in query:
                    selected = [str(s).upper() for s in orjson.loads(query["symbols"])]
            except (orjson.JSONDecodeError, TypeError):
                return self.json(400, {"code": -1100, "msg": "Illegal parameter 'symbols'."})
            if not selected or any(s not in self.x.markets for s in selected):
                return self._bad_symbol()
        refused = self.charge(self.x.venue.exchange_info_weight)
        if refused is not None:
            return refused
        rate_limit = {
            "rateLimitType": "REQUEST_WEIGHT",
            "interval": "MINUTE",
            "intervalNum": 1,
            "limit": self.x.weight_limit_1m,
        }
        body = {
            "timezone": "UTC",
            "serverTime": self._server_time(),
            "rateLimits": [rate_limit],
            "symbols": [self._symbol_info(self.x.markets[s]) for s in selected],
        }
        return self.json(200, body)

    def _symbol_info(self, market: Market) -> dict[str, Any]:
        spec, fp, fq = market.spec, market.fmt_price, market.fmt_qty
        return {
            "symbol": spec.symbol,
            "status": "TRADING",
            "baseAsset": spec.base_asset,
            "quoteAsset": spec.quote_asset,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": fp(1),
                    "maxPrice": fp(1_000_000 * 10**spec.price_decimals),
                    "tickSize": fp(1),
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": fq(1),
                    "maxQty": fq(9_000 * market.lots_per_unit),
                    "stepSize": fq(1),
                },
            ],
        }

    def _control(self, path: str, query: dict[str, str]) -> Response:
        try:
            if path == "/sim/fault":
                kind, kwargs = parse_fault_query(query)
                self.x.inject(kind, **kwargs)
                return self.json(200, {"ok": True})
            symbol = self.x.known_symbol(query.get("symbol", ""))
            if path == "/sim/book":
                market = self.x.markets[symbol]
                update_id = int(query.get("update_id", market.last_update_id))
                limit = int(query["limit"]) if "limit" in query else None
                bids, asks = market.true_book(update_id, limit)
                return self.json(200, {"lastUpdateId": update_id, "bids": bids, "asks": asks})
            if path == "/sim/sent":
                return self.json(200, {"symbol": symbol, "u": self.x.sent_log(symbol)})
            if path == "/sim/trades":
                return self.json(200, {"symbol": symbol, "trades": self.x.trades(symbol)})
            if path == "/sim/agg_trades":
                return self.json(200, {"symbol": symbol, "agg_trades": self.x.agg_trades(symbol)})
            if path == "/sim/sent_trades":
                return self.json(200, {"symbol": symbol, "t": self.x.sent_trade_ids(symbol)})
            if path == "/sim/book_ticker":
                update_id = int(query.get("update_id", self.x.markets[symbol].last_update_id))
                b, bq, a, aq = self.x.book_ticker_at(symbol, update_id)
                body = {"u": update_id, "s": symbol, "b": b, "B": bq, "a": a, "A": aq}
                return self.json(200, body)
            if path == "/sim/corruptions":
                found = [c for c in self.x.corruptions if c["symbol"] == symbol]
                return self.json(200, {"symbol": symbol, "corruptions": found})
        except (KeyError, ValueError, TypeError) as exc:
            return self.json(400, {"ok": False, "error": str(exc)})
        return self.json(404, {"ok": False, "error": f"unknown control path {path}"})
