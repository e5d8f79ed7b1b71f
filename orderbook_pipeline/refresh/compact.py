"""Silver of every stream of a venue, a lane at a time: each lane's new bronze of all streams is
decoded together (compaction/increments.py), so a refresh costs what arrived, efficiently.

A batch that fails is retried stream by stream, so that one stream's broken file fails that
stream's lane alone. The smallest depth of l2 and the diffs keep every burst's copies beside
their parts: the gap windows are then derived from silver (compaction/gap_inputs.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from orderbook_pipeline.checks import logic
from orderbook_pipeline.compaction.gap_inputs import DIFF_COPIES, L2_COPIES
from orderbook_pipeline.compaction.increments import CompactionResult, Request, compact_batch
from orderbook_pipeline.compaction.silver import l2_files_by_depth
from orderbook_pipeline.lanes.registry import LANES
from orderbook_pipeline.refresh.scope import HourScope, VenueScope
from orderbook_pipeline.refresh.stream import LaneResult, Selection, StreamReport
from orderbook_pipeline.storage.layout import Partition
from orderbook_pipeline.storage.store import Store

log = logging.getLogger("orderbook_pipeline.refresh")


def _requests(
    store: Store, scope: HourScope, venue: VenueScope, lane: str, report: StreamReport
) -> list[tuple[int | None, Request]]:
    """(depth, request) of every directory of one stream's lane in the hour."""
    h, cut = scope.hour_start_us, scope.cut_us
    spec = LANES[lane]
    if not spec.per_depth:
        copies: tuple[str, ...] = DIFF_COPIES if lane == "diffs" else ()
        partition = Partition(lane, venue.venue, report.symbol, h)
        return [(None, Request(spec, partition, cut, copies=copies))]
    smallest = min(venue.depths) if venue.depths else None
    out: list[tuple[int | None, Request]] = []
    for depth in l2_files_by_depth(store, venue.venue, report.symbol, h):
        partition = Partition(lane, venue.venue, report.symbol, h, depth)
        copies = L2_COPIES if depth == smallest else ()
        out.append((depth, Request(spec, partition, cut, logic.crossed_counts, copies)))
    return out


def compact_streams(
    store: Store,
    scope: HourScope,
    venue: VenueScope,
    reports: Sequence[StreamReport],
    selection: Selection,
    should_stop: Callable[[], bool] = lambda: False,
) -> bool:
    """Compact every selected lane of every stream; False if asked to stop on the way."""
    for lane in venue.lanes:
        if lane not in selection.lanes:
            continue
        if should_stop():
            return False
        stage = f"silver {lane}"
        started = time.process_time()
        jobs: list[tuple[StreamReport, int | None, Request]] = []
        for report in reports:
            try:
                jobs += [(report, d, r) for d, r in _requests(store, scope, venue, lane, report)]
            except Exception as exc:
                report.errors[stage] = f"{type(exc).__name__}: {exc}"
        results = _compacted(store, [r for _, _, r in jobs], [j[0] for j in jobs], stage)
        for (report, depth, _), result in zip(jobs, results, strict=True):
            if result is not None and stage not in report.errors:
                report.lanes.setdefault(lane, LaneResult()).add(depth, result)
        # The lane's CPU time, shared out by the rows each stream had (for the stage report).
        spent = time.process_time() - started
        rows = {id(r): 1 for r in reports}
        for (report, _, _), result in zip(jobs, results, strict=True):
            rows[id(report)] += result.rows_in if result is not None else 0
        total = sum(rows.values())
        for report in reports:
            cpu = report.cpu_seconds
            cpu[stage] = cpu.get(stage, 0.0) + spent * rows[id(report)] / total
    return True


def _compacted(
    store: Store, requests: list[Request], owners: list[StreamReport], stage: str
) -> list[CompactionResult | None]:
    """compact_batch of all the requests; if it fails, each stream's alone, its failure its
    own (recorded in its report)."""
    try:
        return compact_batch(store, requests)
    except Exception:
        log.warning("%s: batch failed, compacting stream by stream", stage, exc_info=True)
    results: list[CompactionResult | None] = [None] * len(requests)
    streams = {id(owner): owner for owner in owners}  # distinct, in order (reports: by identity)
    for report in streams.values():
        mine = [i for i, owner in enumerate(owners) if owner is report]
        try:
            for i, result in zip(
                mine, compact_batch(store, [requests[i] for i in mine]), strict=True
            ):
                results[i] = result
        except Exception as exc:  # this stream's lane only
            report.errors[stage] = f"{type(exc).__name__}: {exc}"
            log.exception("%s: %s failed", report.stream, stage)
    return results
