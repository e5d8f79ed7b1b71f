"""StreamConnection's frame delivery: frames handed on as they are parsed, in order, whether they
come whole or fragmented, and a failing handler fails the connection's task."""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.server import ServerConnection, serve

from orderbook_pipeline.capture.connection import StreamConnection


def _messages() -> list[str]:
    return [f'{{"n":{i}}}' for i in range(300)]


async def _serve_then_wait(conn: ServerConnection) -> None:
    """300 messages: whole ones in bursts, every 50th fragmented in three pieces."""
    for i, msg in enumerate(_messages()):
        if i % 50 == 25:
            await conn.send(iter([msg[:2], msg[2:4], msg[4:]]))
        else:
            await conn.send(msg)
        if i % 40 == 0:
            await asyncio.sleep(0.01)
    await conn.wait_closed()


async def _capture(on_frame_fails_at: int | None = None) -> tuple[list[str], BaseException | None]:
    got: list[str] = []
    stop = asyncio.Event()

    def on_frame(frame: str | bytes, recv_us: int, conn: StreamConnection) -> None:
        assert isinstance(frame, bytes) and recv_us > 0
        if len(got) == on_frame_fails_at:
            raise RuntimeError("handler bug")
        got.append(frame.decode())
        if len(got) == len(_messages()):
            stop.set()

    async with serve(_serve_then_wait, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        conn = StreamConnection(
            "test",
            f"ws://127.0.0.1:{port}",
            [],
            on_frame,
            lambda c, cause: None,
            stale_after_s=30.0,
            backoff_base_s=0.1,
            backoff_cap_s=0.1,
        )
        task = asyncio.create_task(conn.run(stop))
        done, _ = await asyncio.wait({task}, timeout=20)
        if not done:  # a frame went missing: end it, the assertions say what came
            stop.set()
            await asyncio.wait({task}, timeout=5)
        return got, task.exception() if task.done() else None


def test_frames_arrive_whole_in_order_fragmented_or_not() -> None:
    got, error = asyncio.run(_capture())
    assert error is None
    assert got == _messages()


def test_a_failing_handler_fails_the_task() -> None:
    got, error = asyncio.run(_capture(on_frame_fails_at=7))
    assert isinstance(error, RuntimeError) and "handler bug" in str(error)
    assert got == _messages()[:7]


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
