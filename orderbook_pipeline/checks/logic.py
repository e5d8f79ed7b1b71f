"""Pure logic of the hourly asset checks: tables or numbers in, a verdict with metadata out.

Continuity, coverage, crossed book and reconcile judge the L2 book; book_verified judges the
comparisons of the local book with the exchange's own views of it; trade_continuity the trade
id sequences.

No Dagster here: the check definitions wrap each CheckOutcome into an AssetCheckResult
(passed -> passed, metadata -> metadata, summary -> description). Metadata values are plain
ints, floats, strings or None. The one I/O helper, bronze_distinct_l2_count, is kept apart at the
end and only reads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orderbook_pipeline.compaction.gaps import GAP_CAUSES
from orderbook_pipeline.storage.layout import HOUR_US
from orderbook_pipeline.storage.store import Store

MetaValue = int | float | str | None


@dataclass(frozen=True)
class CheckOutcome:
    passed: bool
    summary: str
    metadata: Mapping[str, MetaValue] = field(default_factory=dict)


def _us(col: pa.ChunkedArray | pa.Array) -> list[int]:
    return list(col.cast(pa.int64()).to_pylist())


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def continuity(gap_windows: pa.Table) -> CheckOutcome:
    """Fails when the partition has any gap window (of any cause)."""
    rows = gap_windows.sort_by([("from_ts", "ascending"), ("to_ts", "ascending")]).to_pylist()
    missing = 0
    for r in rows:
        if r["from_update_id"] is not None and r["to_update_id"] is not None:
            missing += max(0, r["to_update_id"] - r["from_update_id"] + 1)
    causes = {c: 0 for c in GAP_CAUSES}
    for r in rows:
        causes[r["cause"]] = causes.get(r["cause"], 0) + 1
    first = rows[0] if rows else None
    meta: dict[str, MetaValue] = {
        "gap_count": len(rows),
        # For USD-M the ids are an id range (futures ids are not consecutive), not an event count.
        "missing_update_ids": missing,
        "first_gap_from_update_id": first["from_update_id"] if first else None,
        "first_gap_to_update_id": first["to_update_id"] if first else None,
        "first_gap_from_ts": _iso(first["from_ts"]) if first else None,
        "first_gap_to_ts": _iso(first["to_ts"]) if first else None,
        "first_gap_cause": first["cause"] if first else None,
    }
    meta.update({f"causes_{c}": n for c, n in causes.items()})
    if not rows:
        return CheckOutcome(True, "book continuous over the whole hour", meta)
    summary = ", ".join(f"{n} {c}" for c, n in causes.items() if n)
    return CheckOutcome(False, f"{len(rows)} gap window(s): {summary}", meta)


def _merged(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def coverage(
    silver_l2_min_depth: pa.Table,
    gap_windows: pa.Table,
    hour_start_us: int,
    now_us: int,
    threshold: float = 0.99,
    stream_began_this_hour: bool = False,
) -> CheckOutcome:
    """Share of the hour with an in-sync book.

    In-sync time is the span from the first to the last record minus every gap window inside it
    (overlaps counted once); holes before the first and after the last record are outside the
    span already. The denominator runs from the hour's start (or, in the stream's first
    captured hour, from its first in-sync record: before that nothing was being captured) to
    the hour's end once the hour is over, or to the last record while it is still in progress
    (data not landed yet is not lost yet). Passes when the ratio is at least `threshold`; an
    hour with nothing to judge yet passes with ratio 1.
    """
    hour_end = hour_start_us + HOUR_US
    ts = _us(silver_l2_min_depth["event_ts"]) if silver_l2_min_depth.num_rows else []
    start = max(hour_start_us, min(ts)) if ts and stream_began_this_hour else hour_start_us
    end = hour_end if now_us >= hour_end else (min(now_us, max(ts)) if ts else start)
    denominator_us = max(0, end - start)
    in_sync_us = 0
    if ts:
        lo, hi = max(min(ts), hour_start_us), min(max(ts), end)
        if hi > lo:
            windows = zip(_us(gap_windows["from_ts"]), _us(gap_windows["to_ts"]), strict=True)
            clipped = [(max(f, lo), min(t, hi)) for f, t in windows if min(t, hi) > max(f, lo)]
            in_sync_us = (hi - lo) - sum(t - f for f, t in _merged(clipped))
    ratio = in_sync_us / denominator_us if denominator_us else 1.0
    meta: dict[str, MetaValue] = {
        "coverage_ratio": ratio,
        "in_sync_seconds": in_sync_us / 1e6,
        "denominator_seconds": denominator_us / 1e6,
        "threshold": threshold,
    }
    passed = ratio >= threshold
    verdict = "at or above" if passed else "below"
    return CheckOutcome(passed, f"coverage {ratio:.4%} {verdict} {threshold:.2%}", meta)


def crossed_records(silver_l2: pa.Table) -> pa.Table:
    """The records whose best bid (highest bid px) is at or above their best ask (lowest ask
    px), in exchange order. Columnar: one pass of numpy over the flattened levels (max of the
    bids, min of the asks per record); a record missing a side is not judged."""
    if not silver_l2.num_rows:
        return silver_l2
    levels = silver_l2["levels"].combine_chunks()
    offsets = np.asarray(levels.offsets.to_numpy(zero_copy_only=False), np.int64)
    flat = levels.flatten()
    if not len(flat):
        return silver_l2.slice(0, 0)
    is_bid = np.asarray(pc.equal(flat.field("side"), "bid").to_numpy(zero_copy_only=False), bool)
    px = np.asarray(flat.field("px").to_numpy(zero_copy_only=False), np.float64)
    starts, sizes = offsets[:-1], np.diff(offsets)
    filled = sizes > 0
    best_bid = np.full(len(sizes), -np.inf)
    best_ask = np.full(len(sizes), np.inf)
    at = starts[filled]
    best_bid[filled] = np.maximum.reduceat(np.where(is_bid, px, -np.inf), at)
    best_ask[filled] = np.minimum.reduceat(np.where(is_bid, np.inf, px), at)
    crossed = np.flatnonzero(best_bid >= best_ask)
    return silver_l2.take(pa.array(crossed, pa.int64())).sort_by(
        [("event_ts", "ascending"), ("last_update_id", "ascending")]
    )


def crossed_counts(silver_l2: pa.Table) -> dict[str, int]:
    """What no_crossed_book needs of one part of silver L2: its records and crossed records,
    and the first crossed record's update id (only when there is one)."""
    crossed = crossed_records(silver_l2)
    counts = {"records_checked": silver_l2.num_rows, "crossed_count": crossed.num_rows}
    if crossed.num_rows:
        counts["first_crossed_update_id"] = int(crossed["last_update_id"][0].as_py())
    return counts


def no_crossed_book_of_counts(counts: Mapping[str, int]) -> CheckOutcome:
    """The verdict from crossed_counts (summed over the parts of the hour)."""
    crossed = counts.get("crossed_count", 0)
    meta: dict[str, MetaValue] = {
        "records_checked": counts.get("records_checked", 0),
        "crossed_count": crossed,
        "first_crossed_update_id": counts.get("first_crossed_update_id"),
    }
    if not crossed:
        return CheckOutcome(True, "no crossed book", meta)
    return CheckOutcome(False, f"{crossed} record(s) with best bid >= best ask", meta)


def no_crossed_book(silver_l2: pa.Table) -> CheckOutcome:
    """Fails when a record's best bid (highest bid px) is at or above its best ask."""
    return no_crossed_book_of_counts(crossed_counts(silver_l2))


def reconcile(bronze_distinct_rows: int, silver_rows: int) -> CheckOutcome:
    """Silver must hold exactly one row per distinct bronze update id: no loss, no duplicate."""
    meta: dict[str, MetaValue] = {
        "bronze_distinct_rows": bronze_distinct_rows,
        "silver_rows": silver_rows,
        "difference": silver_rows - bronze_distinct_rows,
    }
    passed = bronze_distinct_rows == silver_rows
    summary = (
        f"silver rows = distinct bronze rows = {silver_rows}"
        if passed
        else f"silver has {silver_rows} rows, bronze {bronze_distinct_rows} distinct update ids"
    )
    return CheckOutcome(passed, summary, meta)


def _counts(table: pa.Table, column: str, values: tuple[str, ...]) -> dict[str, int]:
    found = table.column(column).to_pylist() if table.num_rows else []
    return {v: found.count(v) for v in values}


def _signature(rows: list[Any]) -> str:
    return hashlib.sha1(repr(rows).encode()).hexdigest()[:12]


def gap_signature(table: pa.Table) -> str:
    """Identity of an hour's gap windows: a reseed is requested once per distinct set of gaps,
    so re-judging a past hour whose gaps cannot be recovered never starts another."""
    rows = sorted(
        zip(
            table.column("from_update_id").to_pylist(),
            table.column("to_update_id").to_pylist(),
            table.column("cause").to_pylist(),
            strict=True,
        ),
        key=repr,
    )
    return _signature(rows)


def mismatch_signature(table: pa.Table) -> str:
    """Identity of an hour's book mismatches, for the same purpose as gap_signature."""
    columns = ("burst_id", "source", "update_id")
    return _signature(sorted(zip(*(table.column(c).to_pylist() for c in columns), strict=True)))


def book_verified(
    mismatches: pa.Table, deep_snapshots: pa.Table, partial_depth: pa.Table, book_ticker: pa.Table
) -> CheckOutcome:
    """Fails when the hour holds any mismatch between the local book and the exchange's view
    of it: a book_mismatches record, or a deep snapshot / partial depth / bookTicker row whose
    comparison says mismatch (deduplicated rows of each lane; mismatches with columns source,
    update_id, detected_ts, differences, burst_id; the others with verify_result or
    book_check). An hour where nothing was compared passes: there is nothing against it."""
    deep = _counts(deep_snapshots, "verify_result", ("match", "mismatch", "not_compared"))
    checks = ("match", "mismatch", "unchecked")
    partial = _counts(partial_depth, "book_check", checks)
    ticker = _counts(book_ticker, "book_check", checks)
    rows = mismatches.sort_by(
        [("detected_ts", "ascending"), ("update_id", "ascending"), ("burst_id", "ascending")]
    ).to_pylist()
    first = rows[0] if rows else None
    meta: dict[str, MetaValue] = {
        "mismatches": len(rows),
        "deep_snapshots_compared": deep["match"] + deep["mismatch"],
        "deep_snapshots_matched": deep["match"],
        "deep_snapshots_mismatched": deep["mismatch"],
        "deep_snapshots_not_compared": deep["not_compared"],
        **{f"partial_depth_{k}": n for k, n in partial.items()},
        **{f"book_ticker_{k}": n for k, n in ticker.items()},
        "first_mismatch_source": first["source"] if first else None,
        "first_mismatch_update_id": first["update_id"] if first else None,
        "first_mismatch_differing_levels": len(first["differences"]) if first else None,
        "first_mismatch_detected_ts": _iso(first["detected_ts"]) if first else None,
        "first_mismatch_burst": first["burst_id"] if first else None,
    }
    wrong = len(rows) + deep["mismatch"] + partial["mismatch"] + ticker["mismatch"]
    if not wrong:
        compared = deep["match"] + partial["match"] + ticker["match"]
        return CheckOutcome(True, f"book matched the exchange in {compared} comparison(s)", meta)
    if first is None:  # flagged rows without their mismatch record (should not happen)
        return CheckOutcome(False, f"{wrong} comparison(s) found the book wrong", meta)
    summary = (
        f"{len(rows)} book mismatch(es); first from {first['source']} at update id "
        f"{first['update_id']} ({len(first['differences'])} level(s) differ)"
    )
    return CheckOutcome(False, summary, meta)


def trade_continuity(trades: pa.Table, id_column: str) -> CheckOutcome:
    """Fails when any trade (or aggregate trade) id is missing in the hour: silver's
    `missing_before`, recounted over the union of bursts. Ids before the hour's first row are
    the previous hour's business. `trades`: the id column and missing_before, id order."""
    ids = trades.column(id_column).to_pylist() if trades.num_rows else []
    missing = trades.column("missing_before").to_pylist() if trades.num_rows else []
    holes = [(i, m) for i, m in zip(ids, missing, strict=True) if m > 0]
    first = holes[0] if holes else None
    meta: dict[str, MetaValue] = {
        "rows": len(ids),
        "first_id": ids[0] if ids else None,
        "last_id": ids[-1] if ids else None,
        "missing_ids": sum(m for _, m in holes),
        "holes": len(holes),
        "first_missing_from_id": first[0] - first[1] if first else None,
        "first_missing_to_id": first[0] - 1 if first else None,
    }
    if first is None:
        return CheckOutcome(True, f"{len(ids)} {id_column} values, none missing", meta)
    summary = f"{meta['missing_ids']} {id_column} value(s) missing in {len(holes)} hole(s)"
    return CheckOutcome(False, summary, meta)


def bronze_distinct_l2_count(
    store: Store, venue: str, symbol: str, hour_start_us: int
) -> dict[int, int]:
    """Distinct last_update_id per depth across every burst of the bronze L2 partition.

    Counted independently of compaction's dedup (a distinct count of the update ids alone), so
    a test can hold silver against it. Only the id column is built from the Avro files (the
    levels are stepped over).
    """
    from orderbook_pipeline.compaction.silver import l2_files_by_depth, read_lane_files

    ids_only = pa.schema([pa.field("last_update_id", pa.int64(), nullable=False)])
    counts: dict[int, int] = {}
    for depth, paths in l2_files_by_depth(store, venue, symbol, hour_start_us).items():
        ids = read_lane_files(store, paths, ids_only)["last_update_id"]
        counts[depth] = pc.count_distinct(ids).as_py()
    return counts
