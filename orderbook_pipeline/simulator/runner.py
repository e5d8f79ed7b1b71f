"""Run the bundled exchange in a background thread with its own event loop (tests, CLI)."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable, Sequence
from contextlib import suppress
from types import TracebackType
from typing import Any, TypeVar

from orderbook_pipeline.simulator.server import SimulatedExchange
from orderbook_pipeline.venues import BINANCE_SPOT, Venue, get_venue

__all__ = ["SimulatorThread", "serve_forever"]

log = logging.getLogger("orderbook_pipeline.simulator.server")

T = TypeVar("T")
_TIMEOUT_S = 30.0


class SimulatorThread:
    """`with SimulatorThread(venue, symbols, **exchange_kwargs) as sim:` serves on 127.0.0.1.

    The exchange lives on its own loop thread; the wrappers below run there and return results,
    so callers on any thread never touch the exchange's state concurrently.
    """

    def __init__(
        self,
        venue: Venue | str = BINANCE_SPOT,
        symbols: Sequence[str] = ("BTCUSDT",),
        host: str = "127.0.0.1",
        port: int = 0,
        **exchange_kwargs: Any,
    ) -> None:
        self.venue = get_venue(venue) if isinstance(venue, str) else venue
        self.exchange = SimulatedExchange(self.venue, list(symbols), **exchange_kwargs)
        self._host, self._port = host, port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> SimulatorThread:
        self._thread = threading.Thread(target=self._run, name="simulated-exchange", daemon=True)
        self._thread.start()
        if not self._ready.wait(_TIMEOUT_S):
            raise TimeoutError("simulated exchange did not start")
        if self._error is not None:
            raise RuntimeError("simulated exchange failed to start") from self._error
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(_TIMEOUT_S)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self.exchange.start(self._host, self._port))
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self.exchange.stop())
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    # ------------------------------------------------------------------ addresses
    @property
    def port(self) -> int:
        return self.exchange.port

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def combined_url(self, symbols: Sequence[str] | None = None) -> str:
        """Combined depth-stream URL (with the venue's path prefix) for `symbols` (default all)."""
        names = [self.venue.depth_stream(s) for s in (symbols or self.exchange.symbols)]
        return self.venue.combined_stream_url(names, ws_base=self.ws_url)

    def stream_url(self, streams: Sequence[str], path_prefix: str | None = None) -> str:
        """Combined-stream URL of any stream names, under the venue's depth path by default."""
        return self.venue.combined_stream_url(list(streams), self.ws_url, path_prefix)

    # ------------------------------------------------------------------ loop-thread calls
    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run fn(*args, **kwargs) on the exchange's loop thread and return its result."""
        if self._loop is None:
            raise RuntimeError("simulator not running")

        async def run() -> T:
            return fn(*args, **kwargs)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(_TIMEOUT_S)

    def inject(self, kind: str, **params: Any) -> None:
        self.call(self.exchange.inject, kind, **params)

    def true_book(
        self, symbol: str, update_id: int, depth: int | None = None
    ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        return self.call(self.exchange.true_book, symbol, update_id, depth)

    def sent_log(self, symbol: str) -> list[int]:
        return self.call(self.exchange.sent_log, symbol)

    def generated(self, symbol: str) -> list[dict[str, Any]]:
        return self.call(self.exchange.generated, symbol)

    def trades(self, symbol: str) -> list[dict[str, Any]]:
        return self.call(self.exchange.trades, symbol)

    def agg_trades(self, symbol: str) -> list[dict[str, Any]]:
        return self.call(self.exchange.agg_trades, symbol)

    def sent_trade_ids(self, symbol: str) -> list[int]:
        return self.call(self.exchange.sent_trade_ids, symbol)

    def book_ticker_at(self, symbol: str, update_id: int) -> tuple[str, str, str, str]:
        return self.call(self.exchange.book_ticker_at, symbol, update_id)

    def corruptions(self) -> list[dict[str, Any]]:
        """Copy of the exchange's `corruptions` list (phantom levels sent by corrupt_level)."""
        return self.call(lambda: [dict(c) for c in self.exchange.corruptions])


def quiet_request_logs() -> None:
    """websockets logs every HTTP request and connection at INFO: hundreds of lines in minutes
    of `make run`. Kept at WARNING unless the process logs at DEBUG."""
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("websockets.server").setLevel(logging.WARNING)


def serve_forever(
    venue_name: str,
    host: str,
    port: int,
    symbols: list[str],
    seed: int,
    interval_ms: int,
    levels_per_side: int,
    clock_offset_ms: int = 0,
) -> None:
    """Run the exchange until Ctrl-C or SIGTERM (for `orderbook-pipeline simulate`)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    quiet_request_logs()
    venue = get_venue(venue_name)

    async def main() -> None:
        exchange = SimulatedExchange(
            venue,
            symbols,
            seed=seed,
            interval_ms=interval_ms,
            levels_per_side=levels_per_side,
            clock_offset_ms=clock_offset_ms,
        )
        await exchange.start(host, port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
        log.info(
            "simulated %s: ws://%s:%d%s  rest http://%s:%d  %d symbols (%s) seed=%d",
            venue.name,
            host,
            exchange.port,
            venue.ws_path_prefix,
            host,
            exchange.port,
            len(exchange.symbols),
            ",".join(exchange.symbols[:5]) + (",..." if len(exchange.symbols) > 5 else ""),
            seed,
        )
        try:
            await stop.wait()
        finally:
            await exchange.stop()

    with suppress(KeyboardInterrupt):
        asyncio.run(main())
