"""One websocket connection for a group of streams, kept alive for the whole burst.

- Server pings are answered by the websockets library; our own pings detect dead TCP.
- A connection silent for `stale_after_s` is aborted and replaced (a "silent stream").
- After a close or error it reconnects with exponential backoff and full jitter, and never makes
  more than 300 connection attempts per 5 minutes (Binance refuses more per IP).
- On {"e":"serverShutdown"} it opens the replacement first and keeps draining the old connection
  until the server closes it (make before break): both feed the same books, which drop the
  repeated events, so a maintenance close costs no resync.
- Frames are handed to the handler as the protocol parses them, inside the transport's
  data_received (DispatchingConnection), not through websockets' message queue and an awaited
  recv() each: a burst of 200 frames costs one wake-up of the loop, not 200.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.frames import Frame, Opcode

from orderbook_pipeline.venues import CONNECTION_ATTEMPTS_PER_5M

log = logging.getLogger("orderbook_pipeline.capture")

# frame text, receive time in µs, the connection it came from
FrameHandler = Callable[[str | bytes, int, "StreamConnection"], None]
# why a connection was replaced: "reconnect", "stale" or "server_shutdown"
ReconnectHandler = Callable[["StreamConnection", str], None]

ATTEMPT_WINDOW_S = 300.0
DRAIN_LIMIT_S = 60.0


class DispatchingConnection(ClientConnection):
    """A client connection that calls a handler for each complete data frame as soon as the
    protocol has parsed it, in the transport's data_received, instead of queueing it for recv().

    recv() still works and is still needed: frames that arrive while websockets' queue holds
    anything (before dispatch_to, or a fragmented message, which the assembler reassembles) go
    through the queue, and so do all frames after them until it is empty again, so the order
    of frames never changes. The handler gets the frame's bytes (text frames undecoded: the
    JSON decoders validate UTF-8 themselves; invalid UTF-8 is then a bad frame, counted, not a
    closed connection). A handler that raises stops the dispatch and fails `dispatch_failed`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._dispatch: Callable[[bytes], None] | None = None
        self._fragmented = False  # a fragmented message is being received (via the queue)
        self.dispatch_failed: asyncio.Future[None] = self.loop.create_future()

    def dispatch_to(self, handler: Callable[[bytes], None] | None) -> None:
        """Hand complete data frames to `handler` from now on (None: queue them for recv())."""
        self._dispatch = handler

    def process_event(self, event: Any) -> None:
        handler = self._dispatch
        if handler is None or type(event) is not Frame:  # the handshake, or not dispatching
            super().process_event(event)
            return
        opcode = event.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if event.fin and not self._fragmented and not len(self.recv_messages.frames):
                data = event.data
                try:
                    handler(data if type(data) is bytes else bytes(data))
                except Exception as exc:  # a bug downstream: the reader raises it
                    self._dispatch = None
                    if not self.dispatch_failed.done():
                        self.dispatch_failed.set_exception(exc)
                return
            self._fragmented = not event.fin
        elif opcode is Opcode.CONT:
            self._fragmented = not event.fin
        super().process_event(event)


class StreamConnection:
    def __init__(
        self,
        name: str,
        url: str,
        streams: list[str],
        on_frame: FrameHandler,
        on_reconnect: ReconnectHandler,
        stale_after_s: float,
        backoff_base_s: float,
        backoff_cap_s: float,
        attempts: deque[float] | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self.streams = streams
        self.on_frame = on_frame
        self.on_reconnect = on_reconnect
        self.stale_after_s = stale_after_s
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.connects = 0
        # Connection attempts in the last ATTEMPT_WINDOW_S, shared by a burst's connections:
        # Binance's limit is per IP, not per connection.
        self._attempts: deque[float] = deque() if attempts is None else attempts
        self._shutdown_notice = asyncio.Event()
        self._last_frame = 0.0  # monotonic time of the latest frame (the staleness watchdog)
        self._drains: set[asyncio.Task[None]] = set()

    def server_shutdown_notice(self) -> None:
        """Called by the frame handler when this connection announced a maintenance close."""
        self._shutdown_notice.set()

    async def run(self, stop: asyncio.Event) -> None:
        failures = 0
        cause = "reconnect"
        try:
            while not stop.is_set():
                ws = await self._connect(stop, failures)
                if ws is None:
                    return
                if self.connects:
                    self.on_reconnect(self, cause)
                self.connects += 1
                outcome = await self._read(ws, stop)
                if outcome == "server_shutdown":
                    failures, cause = 0, "server_shutdown"
                    self._drain_later(ws)
                    continue
                with contextlib.suppress(Exception):
                    await ws.close()
                cause = outcome
                failures = 0 if outcome == "stale" else failures + 1
        finally:
            for task in self._drains:
                task.cancel()
            await asyncio.gather(*self._drains, return_exceptions=True)

    async def _connect(self, stop: asyncio.Event, failures: int) -> DispatchingConnection | None:
        while not stop.is_set():
            if failures:
                delay = random.uniform(
                    0, min(self.backoff_cap_s, self.backoff_base_s * 2**failures)
                )
                await _sleep_or_stop(delay, stop)
            await self._respect_attempt_cap(stop)
            if stop.is_set():
                return None
            try:
                # compression=None: permessage-deflate roughly doubles receive cost (bench F0z).
                ws = await connect(
                    self.url,
                    create_connection=DispatchingConnection,
                    compression=None,
                    max_size=2**24,
                    ping_interval=20,
                    ping_timeout=20,
                    open_timeout=10,
                    close_timeout=2,
                )
                assert isinstance(ws, DispatchingConnection)
                return ws
            except (OSError, websockets.exceptions.WebSocketException, TimeoutError) as exc:
                failures += 1
                log.warning("%s: connect failed (%r), attempt %d", self.name, exc, failures)
        return None

    async def _respect_attempt_cap(self, stop: asyncio.Event) -> None:
        now = time.monotonic()
        while self._attempts and now - self._attempts[0] > ATTEMPT_WINDOW_S:
            self._attempts.popleft()
        if len(self._attempts) >= CONNECTION_ATTEMPTS_PER_5M:
            await _sleep_or_stop(ATTEMPT_WINDOW_S - (now - self._attempts[0]), stop)
        self._attempts.append(time.monotonic())

    async def _read(self, ws: DispatchingConnection, stop: asyncio.Event) -> str:
        """Pass frames on until the connection ends; say why it ended.

        Frames are handed on by the connection as they are parsed (DispatchingConnection); one
        task awaits recv() for those that take websockets' queue. This coroutine only wakes
        for a stop, a serverShutdown notice, a failed handler or the staleness deadline.
        (Racing the next frame against those in asyncio.wait for every frame cost more than
        the frame itself.)
        """
        self._shutdown_notice.clear()
        self._last_frame = time.monotonic()
        ws.dispatch_to(self._dispatcher(ws))
        pump = asyncio.ensure_future(self._pump(ws))
        stopper = asyncio.ensure_future(stop.wait())
        notice = asyncio.ensure_future(self._shutdown_notice.wait())
        failed = ws.dispatch_failed
        waiters: set[asyncio.Future[Any]] = {pump, stopper, notice, failed}
        outcome = "stop"
        try:
            while True:
                timeout = self.stale_after_s - (time.monotonic() - self._last_frame)
                if timeout > 0:
                    done, _ = await asyncio.wait(
                        waiters,
                        timeout=timeout,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    if failed in done:
                        failed.result()  # the handler's error: the burst's task fails
                    if pump in done:
                        outcome = pump.result()
                        return outcome
                    if stopper in done:
                        return outcome
                    if notice in done:
                        log.info("%s: serverShutdown received, opening a replacement", self.name)
                        outcome = "server_shutdown"
                        return outcome
                    continue  # the deadline passed: look again, frames may have arrived
                log.warning(
                    "%s: no frame for %.1fs, replacing the connection",
                    self.name,
                    self.stale_after_s,
                )
                outcome = "stale"
                return outcome
        finally:
            if outcome != "server_shutdown":  # a drained connection feeds the books on
                ws.dispatch_to(None)
            for fut in (stopper, notice, pump):
                fut.cancel()
            with contextlib.suppress(BaseException):
                await pump

    def _dispatcher(self, ws: DispatchingConnection) -> Callable[[bytes], None]:
        on_frame, now_ns, monotonic = self.on_frame, time.time_ns, time.monotonic

        def dispatch(frame: bytes) -> None:
            self._last_frame = monotonic()
            on_frame(frame, now_ns() // 1000, self)

        return dispatch

    async def _pump(self, ws: ClientConnection) -> str:
        """Frames that went through websockets' queue (see DispatchingConnection)."""
        on_frame, now_ns, monotonic = self.on_frame, time.time_ns, time.monotonic
        try:
            while True:
                frame = await ws.recv(decode=False)
                self._last_frame = monotonic()
                on_frame(frame, now_ns() // 1000, self)
        except websockets.exceptions.ConnectionClosed as exc:
            log.warning("%s: connection closed (%s)", self.name, exc)
            return "reconnect"

    def _drain_later(self, ws: DispatchingConnection) -> None:
        async def drain() -> None:
            deadline = time.monotonic() + DRAIN_LIMIT_S
            try:
                while (left := deadline - time.monotonic()) > 0:
                    frame = await asyncio.wait_for(ws.recv(decode=False), timeout=left)
                    self.on_frame(frame, time.time_ns() // 1000, self)
            except (websockets.exceptions.ConnectionClosed, TimeoutError):
                pass
            finally:
                ws.dispatch_to(None)
                with contextlib.suppress(Exception):
                    await ws.close()

        task = asyncio.get_running_loop().create_task(drain())
        self._drains.add(task)
        task.add_done_callback(self._drains.discard)


async def _sleep_or_stop(seconds: float, stop: asyncio.Event) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, seconds))
