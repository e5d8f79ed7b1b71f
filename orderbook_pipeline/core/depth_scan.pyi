"""Types of the compiled core/depth_scan.pyx (see there and core/depth_codec.py). The events'
bids and asks are _book.Levels: read-only sequences of (float, float), equal to the lists the
reference decoder gives."""

from orderbook_pipeline.core.events import DiffEvent

def decode_depth_frame(
    frame: str | bytes,
    symbols: object,
    ingest_us: int,
    with_prev_id: bool,
    keep_strings: bool = True,
    combined: bool = True,
) -> DiffEvent: ...
def encode_diff(
    prefix: bytes,
    event_us: int,
    transaction_us: int | None,
    ingest_us: int,
    first_id: int,
    last_id: int,
    prev_id: int | None,
    raw_levels: bytes,
    suffix: bytes,
) -> bytes: ...
