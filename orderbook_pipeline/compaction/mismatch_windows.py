"""Gap windows from book mismatches: where a burst's stored book may have been wrong.

A capture burst compares its local book with exchange views of it (deep snapshots, partial
depth, bookTicker) and writes a book_mismatches record when they differ, then rebuilds the book.
Two things follow for the hour's gap windows (gaps.py):

- the chain break of that rebuild gets the cause `book_mismatch` (over any other cause) when a
  mismatch of an involved burst was detected inside the window, or up to NEAR_US before it
  starts (the burst may stop writing just before it notices);
- the span since the burst's last verified state (last_verified_ts / _update_id; null: the
  burst's first record of the hour) up to the detection is a window of its own, cause
  `book_mismatch`, ids last_verified_update_id + 1 .. update_id: the records are there, but
  the book they show may be wrong. Mismatches of one burst after the same verified state give
  one window, up to the last of them (a wrong book is often caught by several views at once).

Mismatches are partitioned by detection time, so a span reaching back from the next hour is
read too (clipped to this hour), as are snapshots in gaps.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from orderbook_pipeline.compaction.silver import bronze_files, deduplicate, read_with_positions
from orderbook_pipeline.lanes.registry import LANES
from orderbook_pipeline.storage.layout import HOUR_US
from orderbook_pipeline.storage.store import Store

NEAR_US = 1_000_000
BOOK_MISMATCH = "book_mismatch"

_LANE = LANES["book_mismatches"]
_COLUMNS = pa.schema(
    [
        _LANE.schema.field(c)
        for c in (
            "source",
            "update_id",
            "detected_ts",
            "last_verified_update_id",
            "last_verified_ts",
            "burst_id",
        )
    ]
)


@dataclass(frozen=True)
class MismatchWindow:
    from_update_id: int | None
    to_update_id: int
    from_ts: int
    to_ts: int
    burst: str


def _ints(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).cast(pa.int64()).fill_null(-1).to_numpy(), np.int64)


class Mismatches:
    """The mismatches of an hour (and of the next one) as arrays; -1 where a value is null."""

    def __init__(self, table: pa.Table) -> None:
        self.detected = _ints(table, "detected_ts")
        self.update_id = _ints(table, "update_id")
        self.verified_id = _ints(table, "last_verified_update_id")
        self.verified_ts = _ints(table, "last_verified_ts")
        self.burst = [str(b) for b in table.column("burst_id").to_pylist()]

    @classmethod
    def load(cls, store: Store, venue: str, symbol: str, hour_start_us: int) -> Mismatches:
        paths = [
            p
            for h in (hour_start_us, hour_start_us + HOUR_US)
            for p in bronze_files(store, "book_mismatches", venue, symbol, h)
        ]
        table = read_with_positions(store, paths, _COLUMNS)
        return cls(deduplicate(table, _LANE.key, _LANE.preference, _LANE.order))

    def __len__(self) -> int:
        return len(self.detected)

    def near(self, bursts: set[str], from_ts: int, to_ts: int) -> bool:
        """Was a mismatch of one of `bursts` detected in [from_ts - NEAR_US, to_ts]?"""
        return any(
            b in bursts and from_ts - NEAR_US <= d <= to_ts
            for b, d in zip(self.burst, self.detected.tolist(), strict=True)
        )

    def windows(
        self, hour_start_us: int, end_us: int, first_of_burst: dict[str, tuple[int, int]]
    ) -> list[MismatchWindow]:
        """The suspect spans inside [hour_start_us, end_us]; first_of_burst: each burst's first
        record of the hour as (event_ts, first_update_id), for a mismatch with no verified
        state."""
        spans: dict[tuple[str, int, int], MismatchWindow] = {}
        for i, burst in enumerate(self.burst):
            detected, verified_ts = int(self.detected[i]), int(self.verified_ts[i])
            from_id: int | None = int(self.verified_id[i]) + 1 if self.verified_id[i] >= 0 else None
            if verified_ts < 0:
                if burst not in first_of_burst:
                    continue  # nothing of this burst in the hour: nothing it stored was wrong
                verified_ts, first_id = first_of_burst[burst]
                from_id = first_id if from_id is None else from_id
            lo, hi = max(verified_ts, hour_start_us), min(detected, end_us)
            if lo > hi:
                continue  # the span lies outside this hour
            group = (burst, int(self.verified_id[i]), verified_ts)
            prev = spans.get(group)
            if prev is None or (hi, int(self.update_id[i])) > (prev.to_ts, prev.to_update_id):
                spans[group] = MismatchWindow(from_id, int(self.update_id[i]), lo, hi, burst)
        return sorted(spans.values(), key=lambda w: (w.from_ts, w.to_ts, w.burst))
