"""Binance-compatible exchange on loopback: diff-depth websocket streams and REST on one port.

Plain HTTP GETs (REST and the /sim control endpoints, see rest_api.py) are answered from
websockets' `process_request` hook; everything else is a websocket. One timer steps every market once per
interval; each event is serialised once and queued to every subscribed connection, whose own
writer task drains the queue in order, so a slow client never stalls the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import Counter, deque
from collections.abc import Callable
from contextlib import suppress
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from orderbook_pipeline.simulator.faults import (
    EventFault,
    FaultKind,
    FaultPlan,
    MalformedKind,
)
from orderbook_pipeline.simulator.klines import KlineSource
from orderbook_pipeline.simulator.market import Event, Market
from orderbook_pipeline.simulator.rest_api import RestApi
from orderbook_pipeline.venues import Venue

log = logging.getLogger(__name__)

_MAX_CLIENT_QUEUE = 20_000  # frames; a client this far behind is cut off, as Binance does
_SENT_LOG_MAX = 500_000
_STOP = object()  # writer sentinel: the connection is gone
_CLOSE = object()  # writer sentinel: close with 1001 after the frames queued before it


class _Client:
    __slots__ = ("closing", "conn", "msg_times", "queue", "streams", "wrapped")

    def __init__(self, conn: ServerConnection, wrapped: bool) -> None:
        self.conn = conn
        self.wrapped = wrapped  # combined stream: frames are {"stream":..,"data":..}
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.streams: set[str] = set()
        self.closing = False
        self.msg_times: deque[float] = deque()

    def push(self, frame: Any) -> None:
        if self.closing:
            return
        if self.queue.qsize() >= _MAX_CLIENT_QUEUE:
            self.closing = True
            self.conn.transport.abort()
            return
        self.queue.put_nowait(frame)


class SimulatedExchange:
    def __init__(
        self,
        venue: Venue,
        symbols: list[str],
        seed: int = 1,
        interval_ms: int = 100,
        levels_per_side: int = 5000,
        median_changes: int = 20,
        history_events: int = 3000,
        max_streams_per_connection: int | None = None,
        ping_interval_s: float | None = None,
        pong_timeout_s: float | None = None,
        weight_limit_1m: int | None = None,
    ) -> None:
        self.venue = venue
        self.symbols = list(dict.fromkeys(s.upper() for s in symbols))
        self.seed = seed
        self.interval_ms = interval_ms
        self.markets = {
            s: Market(venue, s, seed, levels_per_side, median_changes, history_events)
            for s in self.symbols
        }
        self.max_streams = (
            venue.max_streams_per_connection
            if max_streams_per_connection is None
            else max_streams_per_connection
        )
        self.ping_interval_s = (
            venue.server_ping_interval_s if ping_interval_s is None else ping_interval_s
        )
        self.pong_timeout_s = (
            venue.server_pong_timeout_s if pong_timeout_s is None else pong_timeout_s
        )
        self.weight_limit_1m = venue.weight_limit_1m if weight_limit_1m is None else weight_limit_1m
        self.faults = FaultPlan()
        self.connections_opened = 0
        self.rest_requests: Counter[str] = Counter()
        self.port = 0
        # Wall clock of the weight windows; tests may replace it to pin the minute.
        self.clock: Callable[[], float] = time.time
        # Depth stream names (both spellings) -> symbol; other streams are accepted but silent.
        self._stream_symbols: dict[str, str] = {}
        for s in self.symbols:
            self._stream_symbols[venue.depth_stream(s)] = s
            self._stream_symbols[f"{s.lower()}@depth"] = s
        self._subs: dict[str, dict[_Client, set[str]]] = {s: {} for s in self.symbols}
        self._sent: dict[str, deque[int]] = {s: deque(maxlen=_SENT_LOG_MAX) for s in self.symbols}
        self._held: dict[str, Event] = {}  # reorder fault: event waiting for its successor
        self._clients: set[_Client] = set()
        self._kline_sources: dict[str, KlineSource] = {}  # built on a symbol's first request
        self._routes: weakref.WeakKeyDictionary[ServerConnection, tuple[bool, list[str]]] = (
            weakref.WeakKeyDictionary()
        )
        self.rest = RestApi(self)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._timers: list[asyncio.TimerHandle] = []

    # ================================================================== lifecycle
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._loop = asyncio.get_running_loop()
        self._server = await serve(
            self._handler,
            host,
            port,
            process_request=self._process_request,
            ping_interval=self.ping_interval_s,
            ping_timeout=self.pong_timeout_s,
            compression=None,  # Binance streams are uncompressed; saves CPU too
            close_timeout=1.0,  # an unresponsive client must not hold up stop() for long
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ticker = asyncio.create_task(self._tick_loop())
        self._ticker.add_done_callback(self._ticker_done)

    @staticmethod
    def _ticker_done(task: asyncio.Task[None]) -> None:
        # Without this a bug in the market would silently stop every stream.
        if not task.cancelled() and task.exception() is not None:
            log.error("market timer died", exc_info=task.exception())

    async def stop(self) -> None:
        for handle in self._timers:
            handle.cancel()
        if self._ticker is not None:
            self._ticker.cancel()
            with suppress(asyncio.CancelledError):
                await self._ticker
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _tick_loop(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.interval_ms / 1000
        deadline = loop.time()
        while True:
            deadline += interval
            delay = deadline - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -1.0:  # fell far behind (e.g. a paused process): skip, don't burst
                deadline = loop.time()
            silent = self.faults.is_silent()
            for symbol, market in self.markets.items():
                # Each event is stamped when it is made and sent at once, as an exchange does:
                # with 200 symbols, one stamp per tick made the last symbols' events look tens
                # of milliseconds old before they were even sent.
                self._dispatch(symbol, market.step(int(time.time() * 1000)), silent)

    # ================================================================== streaming
    def _dispatch(self, symbol: str, event: Event, silent: bool) -> None:
        if silent:  # events generated during a silence are lost, like drops
            return
        held = self._held.pop(symbol, None)
        if held is not None:
            self._send(symbol, [event, held])
            return
        fault = self.faults.take_event_fault(symbol)
        if fault is None:
            self._send(symbol, [event])
            return
        kind, variant = fault
        if kind is EventFault.MALFORMED:
            assert variant is not None
            self._send_malformed(symbol, event, variant)
        elif kind is EventFault.REORDER:
            self._held[symbol] = event
        elif kind is EventFault.DUPLICATE:
            self._send(symbol, [event, event])
        # EventFault.DROP: nothing is sent; the market has advanced anyway

    def _send(self, symbol: str, events: list[Event]) -> None:
        subs = self._subs[symbol]
        if not subs:
            return
        encoded = {id(e): orjson.dumps(e.payload) for e in events}  # a duplicate reuses its bytes
        for event in events:
            self._fanout(subs, encoded[id(event)])
            self._sent[symbol].append(event.final_update_id)

    def _fanout(
        self,
        subs: dict[_Client, set[str]],
        data: bytes,
        transform: Callable[[bytes], bytes] | None = None,
    ) -> None:
        wrapped: dict[str, bytes] = {}  # one wrapped frame per stream name, not per client
        raw = transform(data) if transform else data
        for client, names in subs.items():
            for name in names:
                if not client.wrapped:
                    client.push(raw)
                    continue
                frame = wrapped.get(name)
                if frame is None:
                    frame = b'{"stream":%s,"data":%s}' % (orjson.dumps(name), data)
                    frame = transform(frame) if transform else frame
                    wrapped[name] = frame
                client.push(frame)

    def _send_malformed(self, symbol: str, event: Event, variant: MalformedKind) -> None:
        payload = event.payload
        transform: Callable[[bytes], bytes] | None = None
        if variant is MalformedKind.INVALID_JSON:
            bad = payload
            transform = lambda frame: frame[: len(frame) * 2 // 3]  # noqa: E731
        elif variant is MalformedKind.WRONG_TYPES:
            bad = {**payload, "U": "abc", "b": "x"}
        else:
            market = self.markets[symbol]
            qty = (
                "NaN"
                if variant is MalformedKind.NAN_QTY
                else "-" + market.fmt_qty(market.lots_per_unit)
            )
            side = "b" if payload["b"] else "a"
            levels = [list(level) for level in payload[side]]
            levels[0][1] = qty
            bad = {**payload, side: levels}
        if self._subs[symbol]:
            self._fanout(self._subs[symbol], orjson.dumps(bad), transform)

    async def _handler(self, conn: ServerConnection) -> None:
        wrapped, names = self._routes.pop(conn, (True, []))
        client = _Client(conn, wrapped)
        self._clients.add(client)
        self.connections_opened += 1
        for name in names:
            self._subscribe(client, name)
        reader = asyncio.create_task(self._read(client))
        try:
            while True:
                frame = await client.queue.get()
                if frame is _STOP:
                    break
                if frame is _CLOSE:
                    await conn.close(1001, "server shutdown")
                    break
                await conn.send(frame, text=True)
        except ConnectionClosed:
            pass
        finally:
            client.closing = True
            self._clients.discard(client)
            for name in list(client.streams):
                self._unsubscribe(client, name)
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    async def _read(self, client: _Client) -> None:
        limit = self.venue.max_client_messages_per_s
        try:
            async for message in client.conn:
                now = time.monotonic()
                client.msg_times.append(now)
                while client.msg_times[0] < now - 1.0:
                    client.msg_times.popleft()
                if len(client.msg_times) > limit:  # Binance disconnects chatty clients
                    await client.conn.close(1008, "too many messages")
                    break
                client.push(orjson.dumps(self._control_reply(client, message)))
        except ConnectionClosed:
            pass
        finally:
            client.queue.put_nowait(_STOP)

    def _control_reply(self, client: _Client, message: str | bytes) -> dict[str, Any]:
        try:
            request = orjson.loads(message)
            method, params, rid = request.get("method"), request.get("params", []), request["id"]
        except (orjson.JSONDecodeError, AttributeError, KeyError):
            return {"error": {"code": 3, "msg": "Invalid JSON"}, "id": None}
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": sorted(client.streams), "id": rid}
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE"):
            return {
                "error": {"code": 2, "msg": f"Invalid request: unknown method {method}"},
                "id": rid,
            }
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            return {"error": {"code": 1, "msg": "Invalid value type: expected list"}, "id": rid}
        if method == "SUBSCRIBE":
            if len(client.streams | set(params)) > self.max_streams:
                return {"error": {"code": 2, "msg": "Too many streams"}, "id": rid}
            for name in params:
                self._subscribe(client, name)
        else:
            for name in params:
                self._unsubscribe(client, name)
        return {"result": None, "id": rid}

    def _subscribe(self, client: _Client, name: str) -> None:
        client.streams.add(name)
        symbol = self._stream_symbols.get(name.lower())
        if symbol is not None:
            self._subs[symbol].setdefault(client, set()).add(name)

    def _unsubscribe(self, client: _Client, name: str) -> None:
        client.streams.discard(name)
        symbol = self._stream_symbols.get(name.lower())
        names = self._subs[symbol].get(client) if symbol else None
        if names is not None and symbol is not None:
            names.discard(name)
            if not names:
                del self._subs[symbol][client]

    # ================================================================== HTTP
    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        route = self._ws_route(url.path, query)
        if route is not None:
            if len(route[1]) > self.max_streams:
                msg = f"too many streams: {len(route[1])} > {self.max_streams}"
                return self.rest.json(400, {"code": -1, "msg": msg})
            self._routes[conn] = route
            return None  # websockets performs (or refuses) the upgrade
        self.rest_requests[url.path] += 1
        try:
            return self.rest.respond(url.path, query)
        except Exception:  # a bug here must not kill the server; show it in the log
            log.exception("REST handler failed for %s", request.path)
            return self.rest.json(500, {"code": -1000, "msg": "internal error"})

    def _ws_route(self, path: str, query: dict[str, str]) -> tuple[bool, list[str]] | None:
        prefix = self.venue.ws_path_prefix
        if prefix and (path == prefix or path.startswith(prefix + "/")):
            path = path[len(prefix) :] or "/"
        if path == "/stream":
            names = query.get("streams", "").split("/")
            return True, list(dict.fromkeys(n for n in names if n))
        if path == "/ws" or path.startswith("/ws/"):
            return False, list(dict.fromkeys(n for n in path[4:].split("/") if n))
        return None

    # ================================================================== faults
    def _symbol(self, symbol: str) -> str:
        if symbol.upper() not in self.markets:
            raise ValueError(f"unknown symbol {symbol!r}")
        return symbol.upper()

    def _on_loop(self, fn: Callable[..., None], *args: Any) -> None:
        """Run fn on the exchange's loop: directly there, else scheduled thread-safely."""
        if self._loop is None:
            raise RuntimeError("exchange not started")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            fn(*args)
        else:
            self._loop.call_soon_threadsafe(fn, *args)

    def inject(self, kind: FaultKind | str, **params: Any) -> None:
        """Arm a fault by name; `variant` is the malformed kind (see faults.FAULT_PARAMS)."""
        kind = FaultKind(kind)
        if kind is FaultKind.MALFORMED and "variant" in params:
            params["kind"] = params.pop("variant")
        getattr(self, kind.value)(**params)

    def drop(self, symbol: str, count: int = 1) -> None:
        self.faults.arm_event(self._symbol(symbol), EventFault.DROP, count)

    def duplicate(self, symbol: str, count: int = 1) -> None:
        self.faults.arm_event(self._symbol(symbol), EventFault.DUPLICATE, count)

    def reorder(self, symbol: str) -> None:
        self.faults.arm_event(self._symbol(symbol), EventFault.REORDER, 1)

    def malformed(
        self, symbol: str, kind: MalformedKind | str = MalformedKind.INVALID_JSON, count: int = 1
    ) -> None:
        self.faults.arm_malformed(self._symbol(symbol), MalformedKind(kind), count)

    def rate_limit(self, count: int = 1, retry_after_s: int = 1, status: int = 429) -> None:
        self.faults.arm_rest(status, retry_after_s, count, depth_only=False)

    def http_error(self, count: int = 1, status: int = 503) -> None:
        self.faults.arm_rest(status, None, count, depth_only=True)

    def stale_snapshot(self, symbol: str, lag_events: int = 3, count: int = 1) -> None:
        self.faults.arm_stale(self._symbol(symbol), lag_events, count)

    def silent(self, duration_s: float) -> None:
        self.faults.arm_silent(duration_s)

    def disconnect(self) -> None:
        """Abort every websocket's TCP connection: no close frame, as in a network failure."""
        self._on_loop(self._do_disconnect)

    def _do_disconnect(self) -> None:
        for client in list(self._clients):
            client.closing = True
            client.conn.transport.abort()

    def server_close(self, grace_s: float = 0.5, announce: bool | None = None) -> None:
        """Maintenance close: serverShutdown (if the venue sends it), grace_s more data, 1001."""
        if announce is None:
            announce = self.venue.sends_server_shutdown
        self._on_loop(self._do_server_close, grace_s, announce)

    def _do_server_close(self, grace_s: float, announce: bool) -> None:
        clients = [c for c in self._clients if not c.closing]
        if announce:
            notice = orjson.dumps({"e": "serverShutdown", "E": int(time.time() * 1000)})
            for client in clients:
                client.push(notice)

        def close() -> None:
            for client in clients:
                if not client.closing:
                    client.closing = True
                    client.queue.put_nowait(_CLOSE)

        assert self._loop is not None
        self._timers.append(self._loop.call_later(grace_s, close))

    def kline_source(self, symbol: str) -> KlineSource:
        symbol = self._symbol(symbol)
        source = self._kline_sources.get(symbol)
        if source is None:
            source = self._kline_sources[symbol] = KlineSource(self.venue, symbol, self.seed)
        return source

    # ================================================================== observability
    def sent_log(self, symbol: str) -> list[int]:
        """`u` of every depth event dispatched to subscribers, in order, duplicates included."""
        return list(self._sent[self._symbol(symbol)])

    def generated(self, symbol: str) -> list[dict[str, Any]]:
        return self.markets[self._symbol(symbol)].generated()

    def true_book(
        self, symbol: str, update_id: int, depth: int | None = None
    ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        return self.markets[self._symbol(symbol)].true_book(update_id, depth)
