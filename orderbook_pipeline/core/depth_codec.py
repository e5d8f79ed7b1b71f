"""The depth frame's decode and the diff lane's record encoder, in two implementations side by
side: "python", the reference (core/events.py's decode_depth_frame, core/avro_binary.py's
encode_diff), and "compiled" (core/depth_scan.pyx, built by setup.py where a C compiler exists).
Both give the same events, the same exceptions and the same bytes; the tests run both. Each
capture core (core/implementation.py) carries one as its `depth`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from orderbook_pipeline.core import avro_binary, events

DecodeDepthFrame = Callable[..., events.DiffEvent]
EncodeDiff = Callable[
    [bytes, int, int | None, int, int, int, int | None, bytes, bytes],
    bytes,
]
NAMES = ("compiled", "python")


@dataclass(frozen=True, slots=True)
class DepthCodec:
    name: str
    # (frame, symbols, ingest_us, with_prev_id, keep_strings=True, combined=True) -> DiffEvent
    decode_depth_frame: DecodeDepthFrame
    encode_diff: EncodeDiff


PYTHON = DepthCodec("python", events.decode_depth_frame, avro_binary.encode_diff)


def codec(name: str) -> DepthCodec:
    """The implementation called `name`; ImportError if the compiled one was not built."""
    if name == "python":
        return PYTHON
    if name == "compiled":
        from orderbook_pipeline.core import depth_scan

        return DepthCodec("compiled", depth_scan.decode_depth_frame, depth_scan.encode_diff)
    raise ValueError(f"unknown depth codec {name!r}: one of {', '.join(NAMES)}")
