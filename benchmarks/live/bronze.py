"""Reading back what the burst captured: the bronze diff and snapshot lanes, per symbol."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastavro

from benchmarks.live.settings import VENUE
from orderbook_pipeline.storage.layout import burst_id_of, is_final, stream_prefix

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _to_us(value: Any) -> int:
    if isinstance(value, dt.datetime):  # fastavro applies timestamp-micros itself
        return (value - _EPOCH) // dt.timedelta(microseconds=1)
    return int(value)


def _iter_projected(path: Path, wanted: Sequence[str]) -> Iterator[dict[str, Any]]:
    """Records of one Avro file reduced to `wanted` fields: the reader skips the level arrays
    instead of building millions of dicts (a 5,000-level snapshot is 10,000 of them)."""
    with path.open("rb") as fo:
        writer_schema = fastavro.reader(fo).writer_schema
        assert isinstance(writer_schema, dict)  # a record schema: our bronze files
        fields = [f for f in writer_schema["fields"] if f["name"] in wanted]
        fo.seek(0)
        projected = {"type": "record", "name": writer_schema["name"], "fields": fields}
        for rec in fastavro.reader(fo, reader_schema=projected):
            assert isinstance(rec, dict)
            yield rec


def _lane_files(data_root: Path, lane: str, symbol: str, burst_id: str) -> list[Path]:
    """This burst's final files ('{burst}-{seq}.avro') of one stream: a kept data root may hold
    earlier bursts, and readers must ignore names not ending in .avro (temporaries)."""
    base = data_root / stream_prefix(lane, VENUE, symbol)
    if not base.exists():
        return []
    return sorted(
        p for p in base.rglob("*.avro") if is_final(p.name) and burst_id_of(p.name) == burst_id
    )


@dataclass
class SymbolBronze:
    ids: set[tuple[int, int]] = field(default_factory=set)  # distinct (U, u) received
    lags_us: list[tuple[int, int]] = field(default_factory=list)  # (ingest_us, ingest - E)
    first_sync_us: int | None = None  # response time of the first snapshot the book used
    snapshots: int = 0


def read_bronze(data_root: Path, symbols: Sequence[str], burst_id: str) -> dict[str, SymbolBronze]:
    out: dict[str, SymbolBronze] = {}
    for symbol in symbols:
        sb = SymbolBronze()
        for path in _lane_files(data_root, "diffs", symbol, burst_id):
            wanted = ("first_update_id", "last_update_id", "event_ts", "ingest_ts")
            for rec in _iter_projected(path, wanted):
                key = (rec["first_update_id"], rec["last_update_id"])
                if key in sb.ids:
                    continue
                sb.ids.add(key)
                ingest = _to_us(rec["ingest_ts"])
                sb.lags_us.append((ingest, ingest - _to_us(rec["event_ts"])))
        for path in _lane_files(data_root, "snapshots", symbol, burst_id):
            for rec in _iter_projected(path, ("response_ts",)):
                sb.snapshots += 1
                ts = _to_us(rec["response_ts"])
                sb.first_sync_us = ts if sb.first_sync_us is None else min(sb.first_sync_us, ts)
        out[symbol] = sb
    return out
