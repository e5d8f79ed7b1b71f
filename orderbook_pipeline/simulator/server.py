"""Binance-compatible exchange on loopback: websocket streams and REST on one port.

Plain HTTP GETs (REST and the /sim control endpoints, see rest_api.py) are answered from
websockets' `process_request` hook; everything else is a websocket. One timer steps every market
once per interval (in slices spread over it); each event is serialised once and queued to every subscribed connection,
whose own writer task drains the queue in order, so a slow client never stalls the others.
After a symbol's depth event come the frames derived from it (trades, aggTrades, bookTicker,
partial depth, see streams.py), each built only when someone subscribes to that stream.
Fault arming and truth queries live in control.py.
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

from orderbook_pipeline.simulator.control import ExchangeControl
from orderbook_pipeline.simulator.faults import EventFault, FaultPlan, MalformedKind
from orderbook_pipeline.simulator.klines import KlineSource
from orderbook_pipeline.simulator.market import Event, Market
from orderbook_pipeline.simulator.rest_api import RestApi
from orderbook_pipeline.simulator.streams import (
    Kind,
    StreamKey,
    book_ticker_payload,
    corrupted_payload,
    partial_due,
    partial_payload,
    path_scope,
)
from orderbook_pipeline.simulator.subscriptions import Subscriptions
from orderbook_pipeline.venues import Venue

log = logging.getLogger(__name__)

_MAX_CLIENT_QUEUE = 20_000  # frames; a client this far behind is cut off, as Binance does
_SENT_LOG_MAX = 500_000
# The tick's markets are stepped in slices of at most this many, at most _MAX_SLICES a tick.
_SLICE_MARKETS = 20
_MAX_SLICES = 10
_STOP = object()  # writer sentinel: the connection is gone
_CLOSE = object()  # writer sentinel: close with 1001 after the frames queued before it


class _Client:
    __slots__ = ("closing", "conn", "msg_times", "queue", "scope", "streams", "wrapped")

    def __init__(self, conn: ServerConnection, wrapped: bool, scope: str) -> None:
        self.conn = conn
        self.wrapped = wrapped  # combined stream: frames are {"stream":..,"data":..}
        self.scope = scope  # path prefix the connection was opened under ("" for none)
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


# How a websocket was asked for: (combined?, stream names, path prefix).
_Route = tuple[bool, list[str], str]
_Subs = dict[_Client, set[str]]


class SimulatedExchange(ExchangeControl):
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
        clock_offset_ms: int = 0,
        taker_probability: float = 0.3,
    ) -> None:
        self.venue = venue
        self.symbols = list(dict.fromkeys(s.upper() for s in symbols))
        self.seed = seed
        self.interval_ms = interval_ms
        self.markets = {
            s: Market(
                venue,
                s,
                seed,
                levels_per_side,
                median_changes,
                history_events,
                taker_probability=taker_probability,
            )
            for s in self.symbols
        }
        # Added to serverTime (time endpoint, exchangeInfo) only: event times stay true, so a
        # client's clock-offset measurement has a known answer.
        self.clock_offset_ms = clock_offset_ms
        self.event_offset_ms = 0  # clock_step faults
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
        self._registry: Subscriptions[_Client] = Subscriptions(venue, self.symbols)
        self._subs = self._registry.depth  # symbol -> diff-depth subscribers
        self._xsubs = self._registry.extra  # symbol -> other streams -> subscribers
        self._tick = 0  # ticks since start: partial depth periods are counted in them
        self._sent: dict[str, deque[int]] = {s: deque(maxlen=_SENT_LOG_MAX) for s in self.symbols}
        self._sent_trades: dict[str, deque[int]] = {
            s: deque(maxlen=_SENT_LOG_MAX) for s in self.symbols
        }
        self.corruptions: list[dict[str, Any]] = []
        self._held: dict[str, Event] = {}  # reorder fault: event waiting for its successor
        self._clients: set[_Client] = set()
        self._kline_sources: dict[str, KlineSource] = {}  # built on a symbol's first request
        self._routes: weakref.WeakKeyDictionary[ServerConnection, _Route] = (
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
        """Step every market once per interval, in slices spread over the interval.

        Each slice steps at most _SLICE_MARKETS markets and then yields, so the writer tasks
        send those frames at once and REST answers in between (real Binance streams, too, do
        not all tick at the same instant). One tick stepping 200 books without yielding made
        the first symbols' frames wait for the last ones' steps, and on a busy machine the
        writers starved until the clients were cut off.
        """
        loop = asyncio.get_running_loop()
        interval = self.interval_ms / 1000
        items = list(self.markets.items())
        n_slices = max(1, min(_MAX_SLICES, -(-len(items) // _SLICE_MARKETS)))
        slices = [items[k::n_slices] for k in range(n_slices)]
        deadline = loop.time()
        while True:
            deadline += interval
            delay = deadline - loop.time()
            if delay < -1.0:  # fell far behind (e.g. a paused process): skip, don't burst
                deadline = loop.time()
            await asyncio.sleep(max(0.0, delay))  # yields even when late: the writers must run
            silent = self.faults.is_silent()
            self._tick += 1
            for k, part in enumerate(slices):
                if k:
                    await asyncio.sleep(max(0.0, deadline + k * interval / n_slices - loop.time()))
                for symbol, market in part:
                    # Each event is stamped when it is made and sent at once, as an exchange
                    # does: one stamp per tick made the last symbols' events look old.
                    event = market.step(int(time.time() * 1000) + self.event_offset_ms)
                    self._dispatch(symbol, event, silent)
                    if not silent and (event.fills or symbol in self._xsubs):
                        self._send_extras(symbol, market, event)

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
        oversized = self.faults.take_oversized(symbol)
        if oversized is not None:  # one JSON object of padding, then the events as usual
            pad = max(0, oversized - 32)
            self._fanout(subs, b'{"e":"depthUpdate","pad":"' + b"x" * pad + b'"}')
        encoded = {id(e): orjson.dumps(e.payload) for e in events}  # a duplicate reuses its bytes
        corruption = self.faults.take_corruption(symbol)
        if corruption is not None:
            try:
                payload, record = corrupted_payload(self.markets[symbol], events[0], *corruption)
            except ValueError:  # no hole on that side: never let a fault stop the market
                log.exception("corrupt_level %s: not applied", symbol)
            else:
                self.corruptions.append(record)
                log.debug("corrupt_level sent: %s", record)
                encoded[id(events[0])] = orjson.dumps(payload)
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

    def _send_extras(self, symbol: str, market: Market, event: Event) -> None:
        """Frames derived from a symbol's new event, after its depth event: trades, aggTrades,
        bookTicker (when the top changed) and the partial-depth streams due at this tick."""
        xsubs = self._xsubs.get(symbol, {})
        if event.fills:
            self._send_trades(symbol, market, event, xsubs)
        if not xsubs:
            return
        partials: dict[int, bytes] = {}  # one payload per depth, shared by the periods due
        for key, subs in xsubs.items():
            if key.kind is Kind.BOOK_TICKER and event.top_changed:
                self._fanout(subs, orjson.dumps(book_ticker_payload(market, event)))
        for key, subs in xsubs.items():
            if key.kind is Kind.PARTIAL and partial_due(key.period_ms, self._tick):
                data = partials.get(key.levels)
                if data is None:
                    data = partials[key.levels] = orjson.dumps(
                        partial_payload(market, event, key.levels)
                    )
                self._fanout(subs, data)

    def _send_trades(
        self, symbol: str, market: Market, event: Event, xsubs: dict[StreamKey, _Subs]
    ) -> None:
        fills = event.fills
        # drop_trade counts trades as they happen, whether or not anyone listens.
        dropped = self.faults.take_trade_drops(symbol, sum(len(f.qtys) for f in fills))
        trade_subs = xsubs.get(StreamKey(symbol, Kind.TRADE))
        agg_subs = xsubs.get(StreamKey(symbol, Kind.AGG_TRADE))
        if not trade_subs and not agg_subs:
            return
        first_kept = fills[0].first_id + dropped  # the dropped trades are the first ones
        has_trade_stream = "trades" in self.venue.stream_lanes
        if trade_subs:
            for payload in market.trade_payloads(event):
                if payload["t"] >= first_kept:
                    self._fanout(trade_subs, orjson.dumps(payload))
        if agg_subs:
            for payload in market.agg_trade_payloads(event):
                if payload["f"] >= first_kept:  # an aggTrade with a dropped trade is dropped
                    self._fanout(agg_subs, orjson.dumps(payload))
        sent = self._sent_trades[symbol]
        for fill in fills:
            if has_trade_stream:
                sent.extend(range(max(first_kept, fill.first_id), fill.last_id + 1))
            elif fill.first_id >= first_kept:
                sent.extend(range(fill.first_id, fill.last_id + 1))

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
        wrapped, names, scope = self._routes.pop(conn, (True, [], ""))
        client = _Client(conn, wrapped, scope)
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
        self._registry.add(client, name, client.scope)

    def _unsubscribe(self, client: _Client, name: str) -> None:
        client.streams.discard(name)
        self._registry.remove(client, name)

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

    def _ws_route(self, path: str, query: dict[str, str]) -> _Route | None:
        path, scope = path_scope(self.venue, path)
        if path == "/stream":
            names = query.get("streams", "").split("/")
            return True, list(dict.fromkeys(n for n in names if n)), scope
        if path == "/ws" or path.startswith("/ws/"):
            return False, list(dict.fromkeys(n for n in path[4:].split("/") if n)), scope
        return None

    # ================================================================== loop access
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
        symbol = self.known_symbol(symbol)
        source = self._kline_sources.get(symbol)
        if source is None:
            source = self._kline_sources[symbol] = KlineSource(self.venue, symbol, self.seed)
        return source
