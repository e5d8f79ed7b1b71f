"""Fault plan of the bundled exchange: what to break next, and parsing of control requests.

The plan is shared between the event loop (which consumes faults while streaming and answering
REST) and test threads (which arm them), so every access goes through one lock. No I/O here.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class FaultKind(StrEnum):
    DROP = "drop"
    DUPLICATE = "duplicate"
    REORDER = "reorder"
    DISCONNECT = "disconnect"
    SERVER_CLOSE = "server_close"
    MALFORMED = "malformed"
    RATE_LIMIT = "rate_limit"
    HTTP_ERROR = "http_error"
    STALE_SNAPSHOT = "stale_snapshot"
    SILENT = "silent"
    DROP_TRADE = "drop_trade"  # the next trades (and their aggTrades) are not sent
    CORRUPT_LEVEL = "corrupt_level"  # the next depth event carries a change the book lacks
    BAD_BODY = "bad_body"  # the next REST answers have status 200 and a body that is not theirs
    OVERSIZED = "oversized"  # a frame of size_bytes on a symbol's depth stream
    CLOCK_STEP = "clock_step"  # the exchange's REST clock and/or event times jump


class Endpoint(StrEnum):
    """REST endpoints a fault can aim at (ANY: whichever is asked next)."""

    ANY = "any"
    DEPTH = "depth"
    EXCHANGE_INFO = "exchange_info"
    KLINES = "klines"
    TIME = "time"
    PING = "ping"


class BodyKind(StrEnum):
    HTML = "html"  # an HTML error page (a proxy's or a CDN's), status 200
    MISSING_FIELD = "missing_field"  # the answer's main field is absent
    MISSING_FILTERS = "missing_filters"  # exchangeInfo entries without "filters"
    TRUNCATED = "truncated"  # the JSON text cut in half


class MalformedKind(StrEnum):
    INVALID_JSON = "invalid_json"  # truncated JSON text
    WRONG_TYPES = "wrong_types"  # "U":"abc", "b":"x"
    NAN_QTY = "nan_qty"  # a level quantity "NaN"
    NEGATIVE_QTY = "negative_qty"  # a level quantity "-1.00000000"


class EventFault(StrEnum):
    """What happens to the next depth event of a symbol."""

    MALFORMED = "malformed"
    DROP = "drop"
    REORDER = "reorder"
    DUPLICATE = "duplicate"


def _side(text: str) -> str:
    if text not in ("bid", "ask"):
        raise ValueError(f"side must be 'bid' or 'ask', not {text!r}")
    return text


def _to_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("0", "false", "no"):
        return False
    raise ValueError(f"not a boolean: {text!r}")


# Parameters each fault accepts over the control endpoint (/sim/fault?kind=...&name=value), with
# their converters. `variant` names the malformed kind, because `kind` is the fault itself.
FAULT_PARAMS: dict[FaultKind, dict[str, Any]] = {
    FaultKind.DROP: {"symbol": str, "count": int},
    FaultKind.DUPLICATE: {"symbol": str, "count": int},
    FaultKind.REORDER: {"symbol": str},
    FaultKind.DISCONNECT: {},
    FaultKind.SERVER_CLOSE: {"grace_s": float, "announce": _to_bool},
    FaultKind.MALFORMED: {"symbol": str, "variant": MalformedKind, "count": int},
    FaultKind.RATE_LIMIT: {
        "count": int,
        "retry_after_s": int,
        "status": int,
        "endpoint": Endpoint,
    },
    FaultKind.HTTP_ERROR: {"count": int, "status": int},
    FaultKind.STALE_SNAPSHOT: {"symbol": str, "lag_events": int, "count": int},
    FaultKind.SILENT: {"duration_s": float},
    FaultKind.DROP_TRADE: {"symbol": str, "count": int},
    FaultKind.CORRUPT_LEVEL: {"symbol": str, "distance": int, "side": _side, "horizon_events": int},
    FaultKind.BAD_BODY: {"endpoint": Endpoint, "variant": BodyKind, "count": int},
    FaultKind.OVERSIZED: {"symbol": str, "size_bytes": int, "count": int},
    FaultKind.CLOCK_STEP: {"server_ms": int, "event_ms": int},
}


def parse_fault_query(params: Mapping[str, str]) -> tuple[FaultKind, dict[str, Any]]:
    """Turn control-endpoint query parameters into (kind, typed keyword arguments)."""
    if "kind" not in params:
        raise ValueError("missing parameter 'kind'")
    kind = FaultKind(params["kind"])
    spec = FAULT_PARAMS[kind]
    kwargs: dict[str, Any] = {}
    for name, raw in params.items():
        if name == "kind":
            continue
        if name not in spec:
            raise ValueError(f"fault {kind.value!r} takes no parameter {name!r}")
        kwargs[name] = spec[name](raw)
    return kind, kwargs


@dataclass
class _StreamFaults:
    drop: int = 0
    duplicate: int = 0
    reorder: int = 0
    malformed: deque[MalformedKind] = field(default_factory=deque)


@dataclass
class RestFault:
    status: int
    retry_after_s: int | None
    remaining: int
    endpoint: Endpoint = Endpoint.ANY
    body: BodyKind | None = None  # a malformed 200 answer instead of an error status


class FaultPlan:
    """Pending faults, armed from any thread and consumed on the event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: dict[str, _StreamFaults] = {}
        self._rest: deque[RestFault] = deque()  # any REST request
        self._depth: deque[RestFault] = deque()  # depth requests only
        self._stale: dict[str, deque[list[int]]] = {}  # symbol -> [[lag, remaining], ...]
        self._silent_until = 0.0
        # Read without the lock on the hot path: an empty dict means nothing to do.
        self._trade_drops: dict[str, int] = {}  # symbol -> trades still to drop
        # symbol -> [(distance, side, horizon_events)]
        self._corrupt: dict[str, deque[tuple[int, str, int]]] = {}
        self._oversized: dict[str, list[int]] = {}  # symbol -> sizes of frames still to send

    # ---------------------------------------------------------------- arming
    def _stream(self, symbol: str) -> _StreamFaults:
        return self._streams.setdefault(symbol, _StreamFaults())

    def arm_event(self, symbol: str, fault: EventFault, count: int = 1) -> None:
        if count < 1:
            raise ValueError("count must be >= 1")
        with self._lock:
            st = self._stream(symbol)
            if fault is EventFault.DROP:
                st.drop += count
            elif fault is EventFault.DUPLICATE:
                st.duplicate += count
            elif fault is EventFault.REORDER:
                st.reorder += count
            else:
                raise ValueError("use arm_malformed for malformed frames")

    def arm_malformed(self, symbol: str, kind: MalformedKind, count: int = 1) -> None:
        with self._lock:
            self._stream(symbol).malformed.extend([kind] * count)

    def arm_rest(
        self,
        status: int,
        retry_after_s: int | None,
        count: int,
        depth_only: bool,
        endpoint: Endpoint = Endpoint.ANY,
        body: BodyKind | None = None,
    ) -> None:
        if count < 1:
            raise ValueError("count must be >= 1")
        with self._lock:
            (self._depth if depth_only else self._rest).append(
                RestFault(status, retry_after_s, count, Endpoint(endpoint), body)
            )

    def arm_oversized(self, symbol: str, size_bytes: int, count: int = 1) -> None:
        if size_bytes < 1 or count < 1:
            raise ValueError("size_bytes and count must be >= 1")
        with self._lock:
            self._oversized[symbol] = self._oversized.get(symbol, []) + [size_bytes] * count

    def arm_stale(self, symbol: str, lag_events: int, count: int = 1) -> None:
        if lag_events < 1 or count < 1:
            raise ValueError("lag_events and count must be >= 1")
        with self._lock:
            self._stale.setdefault(symbol, deque()).append([lag_events, count])

    def arm_silent(self, duration_s: float) -> None:
        with self._lock:
            self._silent_until = max(self._silent_until, time.monotonic() + duration_s)

    def arm_trade_drop(self, symbol: str, count: int = 1) -> None:
        if count < 1:
            raise ValueError("count must be >= 1")
        with self._lock:
            self._trade_drops[symbol] = self._trade_drops.get(symbol, 0) + count

    def arm_corrupt(self, symbol: str, distance: int, side: str, horizon_events: int) -> None:
        if distance < 0 or horizon_events < 0:
            raise ValueError("distance and horizon_events must be >= 0")
        _side(side)
        with self._lock:
            self._corrupt.setdefault(symbol, deque()).append((distance, side, horizon_events))

    # ---------------------------------------------------------------- consuming
    def take_trade_drops(self, symbol: str, trades: int) -> int:
        """How many of the next `trades` trades of `symbol` to drop (the first ones)."""
        if not self._trade_drops:
            return 0
        with self._lock:
            left = self._trade_drops.get(symbol, 0)
            dropped = min(left, trades)
            if left - dropped > 0:
                self._trade_drops[symbol] = left - dropped
            else:
                self._trade_drops.pop(symbol, None)
            return dropped

    def take_corruption(self, symbol: str) -> tuple[int, str, int] | None:
        """(distance, side, horizon) of a phantom level for the next depth event sent."""
        if not self._corrupt:
            return None
        with self._lock:
            queue = self._corrupt.get(symbol)
            if not queue:
                return None
            fault = queue.popleft()
            if not queue:
                del self._corrupt[symbol]
            return fault

    def is_silent(self) -> bool:
        return time.monotonic() < self._silent_until

    def take_event_fault(self, symbol: str) -> tuple[EventFault, MalformedKind | None] | None:
        """Fault for the next event of `symbol`, at most one: malformed > drop > reorder > dup."""
        with self._lock:
            st = self._streams.get(symbol)
            if st is None:
                return None
            if st.malformed:
                return EventFault.MALFORMED, st.malformed.popleft()
            for name, fault in (
                ("drop", EventFault.DROP),
                ("reorder", EventFault.REORDER),
                ("duplicate", EventFault.DUPLICATE),
            ):
                if getattr(st, name):
                    setattr(st, name, getattr(st, name) - 1)
                    return fault, None
            return None

    @staticmethod
    def _take(queue: deque[RestFault], endpoint: Endpoint) -> RestFault | None:
        """The first armed fault aimed at `endpoint` (or at any), one use of it consumed."""
        for fault in queue:
            if fault.endpoint in (Endpoint.ANY, endpoint):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    queue.remove(fault)
                return fault
        return None

    def take_rest_fault(self, endpoint: Endpoint) -> RestFault | None:
        with self._lock:
            return self._take(self._rest, endpoint)

    def take_depth_fault(self) -> RestFault | None:
        with self._lock:
            return self._take(self._depth, Endpoint.DEPTH)

    def take_oversized(self, symbol: str) -> int | None:
        """Size of an oversized frame to send before the symbol's next depth event."""
        if not self._oversized:
            return None
        with self._lock:
            sizes = self._oversized.get(symbol)
            if not sizes:
                return None
            size = sizes.pop(0)
            if not sizes:
                del self._oversized[symbol]
            return size

    def take_stale_lag(self, symbol: str) -> int:
        with self._lock:
            queue = self._stale.get(symbol)
            if not queue:
                return 0
            head = queue[0]
            head[1] -= 1
            if head[1] <= 0:
                queue.popleft()
            return head[0]
