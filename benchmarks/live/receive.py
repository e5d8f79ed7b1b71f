"""The websocket receive path alone, side by side: CPU µs per frame of one awaited recv() per
frame (the capture before issue 13) against frames handed on as they are parsed
(capture.connection.DispatchingConnection), on the same real frames, in one run.

    python -m benchmarks.live.receive [--frames 100000] [--burst 20] [--rounds 3]

A server process (loopback) sends depth frames of the bundled exchange's market in bursts of
`--burst`, as fast as the client takes them; the client counts the frames with a handler that
does nothing, and its CPU time (this process: the server runs in another) is divided by the
frames. CPU time, not wall time, so a busy machine slows the run but barely moves the figure.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import time
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve

from orderbook_pipeline.capture.connection import DispatchingConnection


def _frames(n: int) -> list[bytes]:
    """n distinct combined-stream depth frames of one simulated market."""
    import orjson

    from orderbook_pipeline.simulator.market import Market
    from orderbook_pipeline.venues import BINANCE_SPOT

    market = Market(BINANCE_SPOT, "BTCUSDT", 1, 1000, 20, 200)
    out = []
    for i in range(n):
        payload = orjson.dumps(market.step(1_767_225_600_000 + 100 * i).payload)
        out.append(b'{"stream":"btcusdt@depth@100ms","data":%s}' % payload)
    return out


def _server(port_out: Any, distinct: int, total: int, burst: int) -> None:
    frames = _frames(distinct)

    async def handler(conn: ServerConnection) -> None:
        for i in range(0, total, burst):
            for j in range(i, min(total, i + burst)):
                await conn.send(frames[j % distinct], text=True)
            await asyncio.sleep(0)
        await conn.wait_closed()

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, compression=None, max_queue=None) as server:
            port_out.put(server.sockets[0].getsockname()[1])
            await asyncio.Future()

    asyncio.run(main())


async def _receive(url: str, total: int, dispatching: bool) -> float:
    """CPU seconds of this process to receive `total` frames."""
    count = [0]
    done = asyncio.get_running_loop().create_future()

    def on_frame(frame: bytes | str) -> None:
        count[0] += 1
        if count[0] == total and not done.done():
            done.set_result(None)

    factory: type[ClientConnection] = DispatchingConnection if dispatching else ClientConnection
    async with connect(url, compression=None, max_size=2**24, create_connection=factory) as ws:
        t0 = time.process_time()
        if isinstance(ws, DispatchingConnection):
            handler: Callable[[bytes], None] = on_frame
            ws.dispatch_to(handler)

            async def pump() -> None:  # what the queue still takes (none here, once dispatching)
                while True:
                    on_frame(await ws.recv(decode=False))

            task = asyncio.ensure_future(pump())
            await done
            task.cancel()
        else:
            while count[0] < total:  # the capture's pump before: one awaited recv() a frame
                on_frame(await ws.recv())
        return time.process_time() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.live.receive")
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--burst", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    results: dict[str, list[float]] = {"recv() per frame": [], "dispatched as parsed": []}
    for _ in range(args.rounds):
        for name, dispatching in (("recv() per frame", False), ("dispatched as parsed", True)):
            ports: Any = mp.Queue()
            proc = mp.Process(target=_server, args=(ports, 2000, args.frames, args.burst))
            proc.start()
            try:
                url = f"ws://127.0.0.1:{ports.get(timeout=120)}"
                cpu = asyncio.run(_receive(url, args.frames, dispatching))
            finally:
                proc.terminate()
                proc.join()
            results[name].append(1e6 * cpu / args.frames)
    base = sorted(results["recv() per frame"])[args.rounds // 2]
    for name, values in results.items():
        med = sorted(values)[args.rounds // 2]
        spread = f"[{min(values):.2f}-{max(values):.2f}]"
        print(f"{name:22s} {med:6.2f} µs/frame {spread}  ratio to recv() {med / base:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
