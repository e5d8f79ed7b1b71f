"""Read final bronze Avro files back as records (tests, ad-hoc analysis).

Timestamps come back as timezone-aware UTC datetimes (fastavro honours timestamp-micros);
BronzeWriter accepts either those or int microseconds. Silver compaction, gap windows and the
reconcile check read bronze columnar instead, straight into Arrow without a dict per record:
compaction/avro_arrow.py (`read_lane_files` in compaction/silver.py).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import fastavro

from orderbook_pipeline.storage.layout import lane_prefix, partition_of, stream_prefix
from orderbook_pipeline.storage.store import Store


def read_avro(store: Store, rel_path: str) -> list[dict[str, Any]]:
    """All records of one final Avro file."""
    return list(fastavro.reader(io.BytesIO(store.read_bytes(rel_path))))  # type: ignore[arg-type]


def iter_lane_records(
    store: Store,
    lane: str,
    venue: str | None = None,
    symbol: str | None = None,
    depth: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Records of every final bronze file of a lane, optionally filtered, in path order."""
    for rel in store.list_files(lane_prefix(lane, "bronze"), suffix=".avro"):
        p = partition_of(rel)
        if p is None:
            continue
        if venue is not None and p.venue != venue:
            continue
        if symbol is not None and p.symbol != symbol:
            continue
        if depth is not None and p.depth != depth:
            continue
        yield from read_avro(store, rel)


def earliest_hour(store: Store, lane: str, venue: str, symbol: str) -> int | None:
    """Start (µs) of the first hour with a final bronze file of this stream, or None."""
    first = store.first_file(stream_prefix(lane, venue, symbol))
    part = partition_of(first) if first is not None else None
    return part.hour_start_us if part is not None else None
