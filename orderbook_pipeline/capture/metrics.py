"""Counters of one burst and its one-line JSON summary (design.md, "Capture command")."""

from __future__ import annotations

import logging
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("orderbook_pipeline.capture")

# Only the first few bad frames of each kind are logged in full; the rest are counted.
_LOG_FIRST = 5


def _percentile(sorted_values: list[int], q: float) -> float:
    if not sorted_values:
        return 0.0
    idx = min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1)))
    return float(sorted_values[idx])


@dataclass
class BurstMetrics:
    burst_id: str
    venue: str
    symbols: list[str]
    events: int = 0  # depth events received and valid (exact duplicates included)
    duplicates: int = 0  # exact repeats dropped before the diff lane
    stale: int = 0  # events already reflected in the book, ignored
    applied: int = 0  # events applied to an in-sync book
    records: int = 0  # L2 records written (all depths)
    snapshots: int = 0
    snapshots_too_old: int = 0
    reconnects: int = 0
    rate_limited: int = 0
    resyncs: Counter[str] = field(default_factory=Counter)
    bad_frames: Counter[str] = field(default_factory=Counter)
    rest_errors: Counter[str] = field(default_factory=Counter)
    unknown_symbols: list[str] = field(default_factory=list)
    salvaged_files: int = 0
    salvaged_records: int = 0
    files_published: int = 0
    published: list[str] = field(default_factory=list)  # relative paths, for orchestration
    # Receive minus event time of each applied event (8 bytes each, not a Python int each).
    lag_us: array[int] = field(default_factory=lambda: array("q"))
    _levels_filled: dict[int, list[float]] = field(default_factory=dict)  # thin books only
    _full_l2_events: int = 0
    _l2_depths: tuple[int, ...] = ()

    def bad_frame(self, reason: str, detail: str) -> None:
        self.bad_frames[reason] += 1
        if self.bad_frames[reason] <= _LOG_FIRST:
            log.warning("bad frame (%s): %s", reason, detail[:300])

    def rest_error(self, label: str, detail: str) -> None:
        self.rest_errors[label] += 1
        if self.rest_errors[label] <= _LOG_FIRST:
            log.warning("REST error (%s): %s", label, detail[:300])

    def resync(self, symbol: str, cause: str) -> None:
        self.resyncs[cause] += 1
        log.info("%s: book dropped (%s), resyncing", symbol, cause)

    def l2_records(self, depths: tuple[int, ...], bids: int, asks: int) -> None:
        """One L2 record per depth was written from a book with `bids`/`asks` levels."""
        self.records += len(depths)
        self._l2_depths = depths
        if bids >= depths[-1] and asks >= depths[-1]:  # the usual case: every record is full
            self._full_l2_events += 1
            return
        filled = self._levels_filled
        for depth in depths:
            acc = filled.get(depth)
            if acc is None:
                acc = filled[depth] = [0.0, 0.0]
            acc[0] += (min(bids, depth) + min(asks, depth)) / (2 * depth)
            acc[1] += 1

    def _levels_filled_summary(self) -> dict[str, float]:
        full = self._full_l2_events
        depths = sorted(set(self._levels_filled) | set(self._l2_depths if full else ()))
        out = {}
        for d in depths:
            filled, n = self._levels_filled.get(d, [0.0, 0.0])
            out[str(d)] = round((filled + full) / (n + full), 4)
        return out

    def summary(self) -> dict[str, Any]:
        lags = sorted(self.lag_us)
        distinct = self.events - self.duplicates
        dropped = max(0, distinct - self.applied - self.stale)
        return {
            "burst_id": self.burst_id,
            "venue": self.venue,
            "symbols": len(self.symbols),
            "events": self.events,
            "duplicates": self.duplicates,
            "applied": self.applied,
            "records": self.records,
            "snapshots": self.snapshots,
            "snapshots_too_old": self.snapshots_too_old,
            "resyncs": sum(self.resyncs.values()),
            "resyncs_by_cause": dict(self.resyncs),
            "reconnects": self.reconnects,
            "rate_limited": self.rate_limited,
            "ingest_lag_ms": {
                "p50": round(_percentile(lags, 0.50) / 1000, 3),
                "p95": round(_percentile(lags, 0.95) / 1000, 3),
                "max": round((lags[-1] if lags else 0) / 1000, 3),
            },
            # Share of distinct events received that never reached an in-sync book
            # (buffered before a snapshot, discarded during a resync, or malformed).
            "drop_rate_ppm": round(1e6 * dropped / distinct, 1) if distinct else 0.0,
            "levels_filled": self._levels_filled_summary(),
            "bad_frames": dict(self.bad_frames),
            "rest_errors": dict(self.rest_errors),
            "unknown_symbols": self.unknown_symbols,
            "salvaged": {"files": self.salvaged_files, "records": self.salvaged_records},
            "files": self.files_published,
        }
