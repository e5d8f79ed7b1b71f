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
    # Events received by books still rebuilding when the burst ended (set at its end): their
    # changes are in no book of this burst (the next burst's overlap covers them).
    unsynced_at_end: int = 0
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
    # S3: failed upload attempts that were retried, and complete files not uploaded within the
    # writer's grace at the end, left in the spool for the next burst's salvage (not lost).
    upload_retries: int = 0
    files_left_for_salvage: int = 0
    # The stream lanes besides depth: records written per lane, items missing by id (trades and
    # aggregate trades whose ids jumped), repeats dropped (reconnect overlaps).
    lane_records: Counter[str] = field(default_factory=Counter)
    missing_ids: Counter[str] = field(default_factory=Counter)
    lane_repeats: Counter[str] = field(default_factory=Counter)
    lane_reconnects: int = 0  # connections of those lanes re-established (not the depth ones)
    # Book verification: deep snapshots by verdict (match / mismatch / not_compared), top-of-book
    # checks by "<lane>:<verdict>", mismatches by source.
    deep_snapshots: Counter[str] = field(default_factory=Counter)
    deep_snapshot_interval_s: float | None = None
    cross_checks: Counter[str] = field(default_factory=Counter)
    book_mismatches: Counter[str] = field(default_factory=Counter)
    # Records still waiting for the book when the burst ended, by lane, written then without a
    # comparison (bookTicker and partial depth `unchecked`, deep snapshots `not_compared`);
    # they are counted in cross_checks / deep_snapshots as well.
    waiting_at_end: Counter[str] = field(default_factory=Counter)
    # Exchange time minus local time (ms), each measured at the midpoint of a time request,
    # with the request's round trip (ms).
    clock_offsets_ms: list[float] = field(default_factory=list)
    clock_rtts_ms: list[float] = field(default_factory=list)
    clock_offsets_beyond_threshold: int = 0  # capture/clock.py
    local_clock_steps: int = 0
    event_times_backwards: int = 0
    # Requested symbols this burst captured nothing of (no event, no snapshot, no lane record):
    # unknown ones, and those a rate limit or a dead stream kept silent.
    empty_symbols: list[str] = field(default_factory=list)
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

    def clock_summary(self) -> dict[str, Any]:
        offsets = sorted(self.clock_offsets_ms)
        sanity = {
            "offsets_beyond_threshold": self.clock_offsets_beyond_threshold,
            "local_steps": self.local_clock_steps,
            "event_times_backwards": self.event_times_backwards,
        }
        if not offsets:
            return {"samples": 0, "offset_ms": None, "rtt_ms": None, **sanity}
        return {
            **sanity,
            "samples": len(offsets),
            # The median resists one slow round trip; the last shows drift within the burst.
            "offset_ms": round(offsets[len(offsets) // 2], 3),
            "offset_ms_last": round(self.clock_offsets_ms[-1], 3),
            "offset_ms_min": round(offsets[0], 3),
            "offset_ms_max": round(offsets[-1], 3),
            "rtt_ms": round(sorted(self.clock_rtts_ms)[len(offsets) // 2], 3),
        }

    def summary(self) -> dict[str, Any]:
        lags = sorted(self.lag_us)
        distinct = self.events - self.duplicates
        not_applied = max(0, distinct - self.applied - self.stale)
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
            # Events received while a book was (re)building that its snapshot covered: they
            # changed nothing the snapshot did not hold. Not a loss: losses are gap windows.
            "covered_by_snapshots": max(0, not_applied - self.unsynced_at_end),
            "unsynced_at_end": self.unsynced_at_end,
            "levels_filled": self._levels_filled_summary(),
            "bad_frames": dict(self.bad_frames),
            "rest_errors": dict(self.rest_errors),
            "unknown_symbols": self.unknown_symbols,
            "empty_symbols": self.empty_symbols,
            "salvaged": {"files": self.salvaged_files, "records": self.salvaged_records},
            "files": self.files_published,
            "files_left_for_salvage": self.files_left_for_salvage,
            "upload_retries": self.upload_retries,
            "lanes": dict(self.lane_records),
            "missing_ids": dict(self.missing_ids),
            "lane_repeats": dict(self.lane_repeats),
            "lane_reconnects": self.lane_reconnects,
            "verification": {
                "deep_snapshots": dict(self.deep_snapshots),
                "deep_snapshot_interval_s": self.deep_snapshot_interval_s,
                "cross_checks": dict(self.cross_checks),
                "book_mismatches": dict(self.book_mismatches),
                "waiting_at_end": dict(self.waiting_at_end),
            },
            "clock": self.clock_summary(),
        }
