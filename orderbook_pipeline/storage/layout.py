"""Where every bronze and silver file lives under the data root (design.md, "Storage layout").

Partitions are UTC hours of the exchange event time. Only names ending in FINAL_SUFFIXES are ever
read: anything else under the root (temporaries) is invisible to readers.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime

from orderbook_pipeline.lanes.registry import LANES

HOUR_US = 3_600_000_000
BRONZE_LANES = tuple(LANES)
TEMP_MARK = ".tmp-"  # temporaries are named ".{final name}.tmp-{random}"
FINAL_SUFFIXES = (".avro", ".parquet")


def hour_start_us(ts_us: int) -> int:
    return ts_us - ts_us % HOUR_US


@dataclass(frozen=True, order=True)
class Partition:
    """One hourly partition of one lane for one stream (and depth, for the L2 lane)."""

    lane: str
    venue: str
    symbol: str
    hour_start_us: int
    depth: int | None = None

    @property
    def dt(self) -> str:
        return datetime.fromtimestamp(self.hour_start_us / 1e6, UTC).strftime("%Y-%m-%d")

    @property
    def hour(self) -> str:
        return datetime.fromtimestamp(self.hour_start_us / 1e6, UTC).strftime("%H")

    def directory(self, layer: str = "bronze") -> str:
        stream = stream_prefix(self.lane, self.venue, self.symbol, layer)
        path = f"{stream}dt={self.dt}/hour={self.hour}"
        if self.depth is not None:
            path += f"/depth={self.depth}"
        return path

    def bronze_file(self, burst_id: str, seq: int) -> str:
        return f"{self.directory('bronze')}/{burst_id}-{seq}.avro"

    def silver_file(self) -> str:
        return f"{self.directory('silver')}/data.parquet"


def partition_for(
    lane: str, venue: str, symbol: str, event_ts_us: int, depth: int | None = None
) -> Partition:
    return Partition(lane, venue, symbol, hour_start_us(event_ts_us), depth)


def gold_file(table: str, venue: str, symbol: str, hour_start_us: int) -> str:
    """The Parquet file of one mart partition (an hour of one stream): what analysts read,
    never the pipeline's DuckDB file (marts/gold.py)."""
    return f"{Partition(table, venue, symbol, hour_start_us).directory('gold')}/data.parquet"


def is_final(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return not base.startswith(".") and base.endswith(FINAL_SUFFIXES)


def is_temporary(name: str) -> bool:
    return TEMP_MARK in name.rsplit("/", 1)[-1]


def lane_prefix(lane: str, layer: str = "bronze") -> str:
    """Relative prefix under which every file of one lane lives (ends with '/')."""
    return f"{layer}/{lane}/"


def stream_prefix(lane: str, venue: str, symbol: str, layer: str = "bronze") -> str:
    """Relative prefix of every file of one stream of a lane, all hours (ends with '/')."""
    return f"{lane_prefix(lane, layer)}market={venue}/symbol={symbol}/"


def partition_of(rel_path: str) -> Partition | None:
    """Inverse of Partition.directory: the partition a file path lies in, or None if it is not
    under a partition directory (the key=value names are those written by `directory`)."""
    parts = rel_path.split("/")
    if len(parts) < 6:
        return None
    fields = dict(p.split("=", 1) for p in parts[2:] if "=" in p)
    try:
        start = datetime.strptime(f"{fields['dt']} {fields['hour']}", "%Y-%m-%d %H")
        hour_us = int(calendar.timegm(start.timetuple())) * 1_000_000
        depth = int(fields["depth"]) if "depth" in fields else None
        return Partition(parts[1], fields["market"], fields["symbol"], hour_us, depth)
    except (KeyError, ValueError):
        return None


def temp_basename(final_basename: str, token: str) -> str:
    """Name of a temporary for a final file: hidden (leading dot) and marked with TEMP_MARK."""
    return f".{final_basename}{TEMP_MARK}{token}"


def final_basename_of_temp(temp_name: str) -> str:
    """Inverse of temp_basename: '.b1-0.avro.tmp-3f2a' -> 'b1-0.avro' (accepts a full path)."""
    base = temp_name.rsplit("/", 1)[-1]
    if not base.startswith(".") or TEMP_MARK not in base:
        raise ValueError(f"not a temporary name: {temp_name!r}")
    return base[1 : base.rindex(TEMP_MARK)]


def burst_id_of(bronze_name: str) -> str:
    """Burst id embedded in a bronze file name '{burst}-{seq}.avro', final or temporary."""
    base = bronze_name.rsplit("/", 1)[-1]
    if is_temporary(base):
        base = final_basename_of_temp(base)
    stem, sep, _seq = base.rpartition("-")
    if not sep or not stem:
        raise ValueError(f"not a bronze file name: {bronze_name!r}")
    return stem
