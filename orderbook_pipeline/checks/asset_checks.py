"""Asset checks on each hour × stream partition, with their numbers as metadata.

The logic is pure (checks/logic.py); these wrappers load the partition's data. Partitioned
checks are a Dagster preview feature (1.13): each evaluation is recorded per partition, which
the reseed sensor relies on.
"""

import hashlib
import time
from typing import Any

import dagster as dg
import pyarrow as pa

from orderbook_pipeline.assets.silver import (
    SILVER_LANE_ASSETS,
    gap_windows,
    silver_l2,
    stream_began_in,
)
from orderbook_pipeline.checks import logic
from orderbook_pipeline.compaction.gaps import read_gap_windows
from orderbook_pipeline.compaction.lanes import LANES
from orderbook_pipeline.compaction.silver import read_silver_l2, read_silver_lane
from orderbook_pipeline.partitions import hour_stream, split_partition_key
from orderbook_pipeline.resources import CaptureTarget


def gap_signature(table: pa.Table) -> str:
    """Identity of an hour's gap windows: a reseed is requested once per distinct set of gaps,
    so re-materializing a past hour whose gaps cannot be recovered never starts another."""
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


def _signature(rows: list[Any]) -> str:
    return hashlib.sha1(repr(rows).encode()).hexdigest()[:12]


def _result(outcome: Any, **extra: Any) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=outcome.summary,
        metadata={**outcome.metadata, **extra},
    )


@dg.asset_check(asset=gap_windows, partitions_def=hour_stream, blocking=False)  # type: ignore[misc]
def sequence_continuity(
    context: dg.AssetCheckExecutionContext, capture_target: CaptureTarget
) -> dg.AssetCheckResult:
    """No loss of book continuity anywhere in the hour, seams between bursts included."""
    venue, symbol, hour = split_partition_key(context.partition_key)
    gaps = read_gap_windows(capture_target.store(), venue, symbol, hour)
    return _result(logic.continuity(gaps), gap_signature=gap_signature(gaps))


@dg.asset_check(asset=gap_windows, partitions_def=hour_stream, blocking=False)  # type: ignore[misc]
def coverage(
    context: dg.AssetCheckExecutionContext, capture_target: CaptureTarget
) -> dg.AssetCheckResult:
    """Seconds of in-sync book ÷ the hour's (elapsed) seconds, against the threshold."""
    venue, symbol, hour = split_partition_key(context.partition_key)
    store = capture_target.store()
    gaps = read_gap_windows(store, venue, symbol, hour)
    l2 = read_silver_l2(store, venue, symbol, hour, depth=min(capture_target.depths_for(venue)))
    outcome = logic.coverage(
        l2,
        gaps,
        hour,
        int(time.time() * 1e6),
        capture_target.coverage_threshold,
        stream_began_this_hour=stream_began_in(store, venue, symbol, hour),
    )
    return _result(outcome, gap_signature=gap_signature(gaps))


@dg.asset_check(asset=silver_l2, partitions_def=hour_stream, blocking=False)  # type: ignore[misc]
def no_crossed_book(
    context: dg.AssetCheckExecutionContext, capture_target: CaptureTarget
) -> dg.AssetCheckResult:
    venue, symbol, hour = split_partition_key(context.partition_key)
    return _result(
        logic.no_crossed_book(read_silver_l2(capture_target.store(), venue, symbol, hour))
    )


@dg.asset_check(asset=silver_l2, partitions_def=hour_stream, blocking=False)  # type: ignore[misc]
def silver_reconciles_with_bronze(
    context: dg.AssetCheckExecutionContext, capture_target: CaptureTarget
) -> dg.AssetCheckResult:
    """Silver rows per depth equal the distinct update ids of the bronze files compacted."""
    venue, symbol, hour = split_partition_key(context.partition_key)
    store = capture_target.store()
    bronze = logic.bronze_distinct_l2_count(store, venue, symbol, hour, as_compacted=True)
    silver_rows = read_silver_l2(store, venue, symbol, hour).num_rows
    outcome = logic.reconcile(sum(bronze.values()), silver_rows)
    return _result(outcome, bronze_by_depth={str(d): n for d, n in sorted(bronze.items())})


# The other exchange views book_verified reads besides deep snapshots (its asset).
_VERIFIED_LANES = ("book_mismatches", "partial_depth", "book_ticker")


@dg.asset_check(  # type: ignore[misc]
    asset=SILVER_LANE_ASSETS["deep_snapshots"],
    additional_deps=[SILVER_LANE_ASSETS[lane] for lane in _VERIFIED_LANES],
    partitions_def=hour_stream,
    blocking=False,
)
def book_verified(
    context: dg.AssetCheckExecutionContext, capture_target: CaptureTarget
) -> dg.AssetCheckResult:
    """The local book matched every view the exchange gave of it in the hour (deep snapshots,
    partial depth, bookTicker). Reads the lanes' silver (already deduplicated); the other
    lanes are dependencies, so a run refreshing them runs this check after them. An hour
    without any mismatch record (no book_mismatches partition at all) is judged too."""
    venue, symbol, hour = split_partition_key(context.partition_key)
    store = capture_target.store()

    def rows(lane: str, *columns: str) -> pa.Table:
        return read_silver_lane(store, lane, venue, symbol, hour, columns)

    mismatches = rows(
        "book_mismatches", "source", "update_id", "detected_ts", "differences", "burst_id"
    )
    outcome = logic.book_verified(
        mismatches,
        rows("deep_snapshots", "verify_result"),
        rows("partial_depth", "book_check"),
        rows("book_ticker", "book_check"),
    )
    # Under the key the reseed sensor reads: one reseed per distinct set of mismatches.
    return _result(outcome, gap_signature=mismatch_signature(mismatches))


def trade_continuity_check(lane: str) -> dg.AssetChecksDefinition:
    """`trade_continuity` on silver trades or agg_trades: no id missing in the hour."""
    id_column = LANES[lane].key[0]

    @dg.asset_check(  # type: ignore[misc]
        asset=SILVER_LANE_ASSETS[lane],
        name="trade_continuity",
        partitions_def=hour_stream,
        blocking=False,
        description=f"No {id_column} missing in the hour (silver's missing_before, recounted "
        "over the union of bursts).",
    )
    def _check(
        context: dg.AssetCheckExecutionContext, capture_target: CaptureTarget
    ) -> dg.AssetCheckResult:
        venue, symbol, hour = split_partition_key(context.partition_key)
        columns = [id_column, "missing_before"]
        table = read_silver_lane(capture_target.store(), lane, venue, symbol, hour, columns)
        return _result(logic.trade_continuity(table, id_column))

    return _check


trade_continuity_checks = [trade_continuity_check(lane) for lane in ("trades", "agg_trades")]

ALL_CHECKS = [
    sequence_continuity,
    coverage,
    no_crossed_book,
    silver_reconciles_with_bronze,
    book_verified,
    *trade_continuity_checks,
]
# A failure of these starts a reseed (fresh snapshots): a wrong book is rebuilt like a gap.
RESEED_CHECKS = [sequence_continuity, coverage, book_verified]
