"""Websocket frames to the symbol they belong to: depth frames to its book, the other stream
lanes' frames to its stream lanes, control frames (serverShutdown, SUBSCRIBE answers) to the
connection, and bad frames counted by reason.

Runs synchronously on the loop as each frame arrives, so the depth path is the hot one: one
decode-and-validate pass (core/events.py) before any dict is built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import orjson

from orderbook_pipeline.core.events import BadEvent, NotDepth, classify_frame
from orderbook_pipeline.core.implementation import PYTHON, Core
from orderbook_pipeline.core.lane_frames import stream_of
from orderbook_pipeline.core.sync import SyncState
from orderbook_pipeline.storage.store import StorageError

if TYPE_CHECKING:
    from orderbook_pipeline.capture.connection import StreamConnection
    from orderbook_pipeline.capture.metrics import BurstMetrics
    from orderbook_pipeline.capture.ports import StorageFailureHandler
    from orderbook_pipeline.capture.symbol import SymbolCapture

_NOT_JSON = object()

# Asked when a book may want a snapshot (SnapshotWorkers.request).
SnapshotRequest = Callable[["SymbolCapture"], None]


class FrameRouter:
    def __init__(
        self,
        symbols: dict[str, SymbolCapture],
        metrics: BurstMetrics,
        with_prev_id: bool,
        request_snapshot: SnapshotRequest,
        on_storage_failure: StorageFailureHandler,
        core: Core = PYTHON,
    ) -> None:
        # The burst's symbols, by name (read only here: the burst fills it at start-up).
        self.symbols = symbols
        self.metrics = metrics
        self._with_prev_id = with_prev_id
        self._request_snapshot = request_snapshot
        self._on_storage_failure = on_storage_failure
        self._decode_depth_frame = core.depth.decode_depth_frame  # the burst's core's
        self._depth_streams: dict[str, SymbolCapture] = {}
        # Other stream lanes: stream name -> (symbol, lane, partial depth levels)
        self._lane_streams: dict[str, tuple[SymbolCapture, str, int | None]] = {}

    def route_depth(self, stream: str, cap: SymbolCapture) -> None:
        self._depth_streams[stream] = cap

    def route_lane(self, stream: str, cap: SymbolCapture, lane: str, levels: int | None) -> None:
        self._lane_streams[stream] = (cap, lane, levels)

    def lane_of(self, stream: str) -> str:
        return self._lane_streams[stream][1]

    # --- depth connections -----------------------------------------------------------------
    def on_frame(self, frame: str | bytes, recv_us: int, conn: StreamConnection) -> None:
        try:
            # The fast path: a depth frame decoded and validated in one pass (core/depth_codec.py).
            ev = self._decode_depth_frame(frame, self.symbols, recv_us, self._with_prev_id)
        except NotDepth:
            self._on_other_frame(frame, conn)
            return
        except BadEvent as exc:
            self._on_bad_event(exc)
            return
        cap = self.symbols[ev.symbol]
        self.metrics.events += 1
        try:
            cap.on_event(ev)
        except StorageError as exc:
            self._on_storage_failure(exc)
            return
        if cap.sync.state is not SyncState.SYNCED:
            self._request_snapshot(cap)

    def on_reconnect(self, conn: StreamConnection, cause: str) -> None:
        self.metrics.reconnects += 1
        for name in conn.streams:
            self._depth_streams[name].on_transport_break(cause)

    def _on_other_frame(self, frame: str | bytes, conn: StreamConnection) -> None:
        msg = self._loads(frame)
        if msg is _NOT_JSON or _is_control(msg, conn):
            return
        problem = classify_frame(msg.get("data", msg) if type(msg) is dict else msg)
        if problem is None:
            self.metrics.bad_frame("unexpected", repr(frame[:200]))
        else:
            self._on_bad_event(problem)

    def _on_bad_event(self, exc: BadEvent) -> None:
        self.metrics.bad_frame(exc.reason, str(exc))
        cap = self.symbols.get(exc.symbol) if exc.symbol else None
        if cap is not None:
            cap.on_bad_event(exc.reason)
            self._request_snapshot(cap)

    # --- the other stream lanes' connections ---------------------------------------------
    def on_lane_frame(self, frame: str | bytes, recv_us: int, conn: StreamConnection) -> None:
        """A frame of the other stream lanes: a bad one is counted by reason and dropped (it
        never touches a book)."""
        # The fast path (capture/stream_lanes.py on_frame): routed by the name the frame
        # starts with, decoded in C; a frame it declines takes the reference path below.
        name = stream_of(frame)
        fast = None if name is None else self._lane_streams.get(name)
        if name is not None and fast is not None:
            cap, lane, levels = fast
            try:
                if cap.streams.on_frame(lane, name, frame, recv_us, levels, cap.sync.book):
                    cap.received += 1
                    return
            except StorageError as exc:
                self._on_storage_failure(exc)
                return
        msg = self._loads(frame)
        if msg is _NOT_JSON:
            return
        # A frame without "stream" routes nowhere, like one of an unknown stream.
        stream = cast(str, msg.get("stream")) if type(msg) is dict else None
        route = self._lane_streams.get(stream) if stream is not None else None
        if route is None:
            if not _is_control(msg, conn):
                self.metrics.bad_frame("unexpected", repr(frame[:200]))
            return
        cap, lane, levels = route
        try:
            cap.streams.on_data(lane, msg.get("data"), recv_us, levels, cap.sync.book)
            cap.received += 1
        except BadEvent as exc:
            self.metrics.bad_frame(exc.reason, f"{lane}: {exc}")
        except StorageError as exc:
            self._on_storage_failure(exc)

    def on_lane_reconnect(self, conn: StreamConnection, cause: str) -> None:
        # The books do not depend on these streams; a trade lost meanwhile shows in its ids.
        self.metrics.lane_reconnects += 1

    def _loads(self, frame: str | bytes) -> Any:
        """The frame's JSON, or _NOT_JSON (counted as invalid_json)."""
        try:
            return orjson.loads(frame)
        except orjson.JSONDecodeError as exc:
            self.metrics.bad_frame("invalid_json", f"{exc}: {frame[:200]!r}")
            return _NOT_JSON


def _is_control(msg: Any, conn: StreamConnection) -> bool:
    """A frame about the connection, not the market: serverShutdown (acted on) or a SUBSCRIBE
    acknowledgement."""
    data = msg.get("data", msg) if type(msg) is dict else msg
    if type(data) is dict and data.get("e") == "serverShutdown":
        conn.server_shutdown_notice()
        return True
    return type(msg) is dict and "id" in msg and "result" in msg
