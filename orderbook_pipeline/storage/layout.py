"""Where every bronze and silver file lives under the data root (design.md, "Storage layout").

Partitions are UTC hours of the exchange event time. Only names ending in FINAL_SUFFIXES are ever
read: anything else under the root (temporaries) is invisible to readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

HOUR_US = 3_600_000_000
BRONZE_LANES = ("l2", "diffs", "snapshots")
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
        path = (
            f"{layer}/{self.lane}/market={self.venue}/symbol={self.symbol}"
            f"/dt={self.dt}/hour={self.hour}"
        )
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


def is_final(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return not base.startswith(".") and base.endswith(FINAL_SUFFIXES)


def is_temporary(name: str) -> bool:
    return TEMP_MARK in name.rsplit("/", 1)[-1]
