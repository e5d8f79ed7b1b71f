"""One stream's verdicts of an hour, once its silver is compacted (refresh/compact.py): gap
windows, checks, marts.

Loss detection never depends on the rest: the gap windows (and so continuity and coverage)
come from the silver just compacted when it is complete up to the cut, and else from bronze, so
they are judged even when compaction failed. Every stage's failure is caught and recorded for
this stream alone (the others go on), and a check whose input failed is reported failed ("not
judged"), never left out.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import duckdb
import pyarrow as pa

from orderbook_pipeline.checks import logic
from orderbook_pipeline.checks.logic import CheckOutcome
from orderbook_pipeline.checks.specs import GAP_WINDOWS
from orderbook_pipeline.compaction.gap_inputs import inputs_from_parts
from orderbook_pipeline.compaction.gaps import derive_gap_windows_and_chain, write_gap_windows
from orderbook_pipeline.compaction.increments import CompactionResult
from orderbook_pipeline.compaction.parts import PartsState
from orderbook_pipeline.compaction.silver import read_silver_lane
from orderbook_pipeline.lanes.registry import LANES, VERIFIED_LANES
from orderbook_pipeline.marts.depth_bands_5s import DEPTH_BANDS_5S
from orderbook_pipeline.marts.gold import MartPartition
from orderbook_pipeline.marts.l2_5s import L2_5S
from orderbook_pipeline.marts.partition import Mart
from orderbook_pipeline.refresh.scope import HourScope, VenueScope
from orderbook_pipeline.storage.reader import earliest_hour
from orderbook_pipeline.storage.store import Store

log = logging.getLogger("orderbook_pipeline.refresh")

MARTS: dict[str, Mart] = {m.table: m for m in (L2_5S, DEPTH_BANDS_5S)}
T = TypeVar("T")
CheckKey = tuple[str, str]  # (asset, check name), as checks/specs.py keys them
SIGNATURE = "gap_signature"  # a failed stream's identity for the reseed sensor


def stream_name(venue: str, symbol: str) -> str:
    """How metadata names one venue's symbol: "binance-spot.BTCUSDT"."""
    return f"{venue}.{symbol}"


@dataclass(frozen=True)
class Selection:
    """What a refresh produces (a subset of the assets and checks, as the UI may ask)."""

    lanes: frozenset[str]
    gap_windows: bool
    marts: frozenset[str]  # mart table names
    checks: frozenset[CheckKey]


@dataclass
class LaneResult:
    rows_new: int = 0
    rows_total: int = 0
    files_read: int = 0
    parts_written: int = 0
    recompacted: bool = False
    states: dict[int | None, PartsState] = field(default_factory=dict)  # per depth (l2)

    def add(self, depth: int | None, result: CompactionResult) -> None:
        self.rows_new += result.rows_out
        self.rows_total += result.rows_total
        self.files_read += result.files_in
        self.parts_written += bool(result.path)
        self.recompacted |= result.recompacted
        if result.state is not None:
            self.states[depth] = result.state


@dataclass
class StreamReport:
    venue: str
    symbol: str
    lanes: dict[str, LaneResult] = field(default_factory=dict)  # lanes that had bronze
    gap_windows: pa.Table | None = None
    checks: dict[CheckKey, CheckOutcome] = field(default_factory=dict)
    marts: dict[str, MartPartition] = field(default_factory=dict)  # mart table -> the hour's
    errors: dict[str, str] = field(default_factory=dict)  # stage -> what went wrong
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # stage -> process CPU time

    @property
    def stream(self) -> str:
        return stream_name(self.venue, self.symbol)


class _Run:
    """Runs one stream's stages, recording each stage's failure instead of raising it."""

    def __init__(self, report: StreamReport) -> None:
        self.report = report

    def stage(self, name: str, fn: Callable[[], T]) -> T | None:
        started = time.process_time()
        try:
            return fn()
        except Exception as exc:  # one stream's failure must not stop the others
            self.report.errors[name] = f"{type(exc).__name__}: {exc}"
            log.exception("%s: %s failed", self.report.stream, name)
            return None
        finally:
            spent = self.report.cpu_seconds
            spent[name] = spent.get(name, 0.0) + time.process_time() - started

    def judge(self, key: CheckKey, needs: tuple[str, ...], fn: Callable[[], CheckOutcome]) -> None:
        failed = [s for s in needs if s in self.report.errors]
        if failed:
            why = "; ".join(f"{s} failed ({self.report.errors[s]})" for s in failed)
            self.report.checks[key] = CheckOutcome(False, f"not judged: {why}", {"error": why})
            return
        outcome = self.stage(f"check {key[1]} on {key[0]}", fn)
        if outcome is None:
            error = self.report.errors[f"check {key[1]} on {key[0]}"]
            outcome = CheckOutcome(False, f"not judged: {error}", {"error": error})
        self.report.checks[key] = outcome


def _trade_continuity(
    store: Store, lane: str, venue: str, symbol: str, hour: int, id_column: str
) -> CheckOutcome:
    table = read_silver_lane(store, lane, venue, symbol, hour, [id_column, "missing_before"])
    return logic.trade_continuity(table, id_column)


def _build_mart(
    mart: Mart,
    marts: Callable[[], duckdb.DuckDBPyConnection],
    store: Store,
    venue: str,
    symbol: str,
    hour: int,
    time_basis: str,
) -> MartPartition:
    return mart.publish(marts(), store, venue, symbol, hour, time_basis, ensured=True)


def _judge_gap_windows(
    run: _Run,
    store: Store,
    hour: HourScope,
    venue: VenueScope,
    selection: Selection,
    coverage_threshold: float,
) -> None:
    """Stage 1 of judge_stream: the gap windows from bronze, and the two checks on them."""
    report = run.report
    symbol = report.symbol
    h, cut = hour.hour_start_us, hour.cut_us
    wants = selection.checks
    first = run.stage("first hour", lambda: earliest_hour(store, "l2", venue.venue, symbol))
    began = first == h
    # Before the stream's capture began (its first data is later, or none has landed yet while
    # the hour runs) nothing is lost: a configured stream still without data when an hour
    # closes is judged, and fails (no_capture).
    not_begun = "first hour" not in report.errors and (
        (first is None and not hour.closed) or (first is not None and first > h)
    )

    if not_begun:
        for name in ("sequence_continuity", "coverage"):
            if (GAP_WINDOWS, name) in wants:
                report.checks[(GAP_WINDOWS, name)] = CheckOutcome(
                    True, "nothing to judge: this stream's capture had not begun", {"not_begun": 1}
                )
    elif selection.gap_windows or {k for k in wants if k[0] == GAP_WINDOWS}:
        inputs = None
        if _compacted_now(report, selection) and venue.depths:
            # A failure here only means reading bronze instead (the stage below).
            inputs = run.stage(
                "gap inputs from silver",
                lambda: inputs_from_parts(store, venue.venue, symbol, h, min(venue.depths), cut),
            )
        derived = run.stage(
            "gap windows",
            lambda: derive_gap_windows_and_chain(
                store, venue.venue, symbol, h, venue.sync_rule, cut, bool(began), inputs
            ),
        )
        if derived is not None:
            report.gap_windows, chain = derived
            if selection.gap_windows:
                gaps = report.gap_windows
                run.stage(
                    "gap windows", lambda: write_gap_windows(store, gaps, venue.venue, symbol, h)
                )
            run.judge(
                (GAP_WINDOWS, "sequence_continuity"),
                ("gap windows",),
                lambda: _signed(logic.continuity(gaps_of(report)), gaps_of(report)),
            )
            run.judge(
                (GAP_WINDOWS, "coverage"),
                ("gap windows",),
                lambda: _signed(
                    logic.coverage(chain, gaps_of(report), h, cut, coverage_threshold, bool(began)),
                    gaps_of(report),
                ),
            )
        else:
            for name in ("sequence_continuity", "coverage"):
                run.judge((GAP_WINDOWS, name), ("gap windows",), _unreachable)


def judge_stream(
    store: Store,
    hour: HourScope,
    venue: VenueScope,
    report: StreamReport,
    selection: Selection,
    coverage_threshold: float,
    marts: Callable[[], duckdb.DuckDBPyConnection] | None,
    time_basis: str,
) -> StreamReport:
    """Every selected stage of one stream's hour after compaction (see the module doc)."""
    run = _Run(report)
    symbol = report.symbol
    h = hour.hour_start_us
    wants = selection.checks
    # 1. Gap windows from bronze (not silver): judged even if compaction fails below.
    _judge_gap_windows(run, store, hour, venue, selection, coverage_threshold)

    # 3. The checks on silver.
    l2 = report.lanes.get("l2")
    if ("l2", "no_crossed_book") in wants:
        run.judge(
            ("l2", "no_crossed_book"),
            ("silver l2",),
            lambda: logic.no_crossed_book_of_counts(_summed(l2, "counters")),
        )
    if ("l2", "silver_reconciles_with_bronze") in wants:
        run.judge(("l2", "silver_reconciles_with_bronze"), ("silver l2",), lambda: _reconcile(l2))
    if ("book_mismatches", "book_verified") in wants:
        run.judge(
            ("book_mismatches", "book_verified"),
            tuple(f"silver {lane}" for lane in VERIFIED_LANES),
            lambda: _book_verified(store, venue.venue, symbol, h),
        )
    for lane in ("trades", "agg_trades"):
        if (lane, "trade_continuity") in wants and lane in venue.lanes:
            id_column = LANES[lane].key[0]
            run.judge(
                (lane, "trade_continuity"),
                (f"silver {lane}",),
                functools.partial(
                    _trade_continuity, store, lane, venue.venue, symbol, h, id_column
                ),
            )

    # 4. The marts (the hour so far, rebuilt: has_gap follows the latest gap windows).
    if marts is not None:
        for table in sorted(selection.marts):
            mart = MARTS[table]
            if mart.lane in venue.lanes and mart.lane in report.lanes:
                built = run.stage(
                    f"mart {table}",
                    functools.partial(
                        _build_mart, mart, marts, store, venue.venue, symbol, h, time_basis
                    ),
                )
                if built is not None:
                    report.marts[table] = built
    return report


def gaps_of(report: StreamReport) -> pa.Table:
    assert report.gap_windows is not None
    return report.gap_windows


def _signed(outcome: CheckOutcome, gaps: pa.Table) -> CheckOutcome:
    """The outcome with its gaps' signature, under which the reseed sensor reseeds once."""
    metadata = {**outcome.metadata, SIGNATURE: logic.gap_signature(gaps)}
    return CheckOutcome(outcome.passed, outcome.summary, metadata)


def _unreachable() -> CheckOutcome:
    raise AssertionError("judged only when its stage succeeded")


def _compacted_now(report: StreamReport, selection: Selection) -> bool:
    """Did this refresh compact the lanes the gap windows read, without error?"""
    needed = ("l2", "diffs", "snapshots")
    return all(lane in selection.lanes and f"silver {lane}" not in report.errors for lane in needed)


def _summed(result: LaneResult | None, what: str) -> dict[str, int]:
    """The l2 parts' counters over every depth (a depth's records are its own)."""
    out: dict[str, int] = {}
    for state in result.states.values() if result else ():
        for name, value in getattr(state, what).items():
            if name.startswith("first_"):
                out[name] = min(out.get(name, value), value)
            else:
                out[name] = out.get(name, 0) + value
    return out


def _reconcile(l2: LaneResult | None) -> CheckOutcome:
    states = l2.states if l2 else {}
    bronze = sum(s.bronze_keys for s in states.values())
    silver = sum(s.rows for s in states.values())
    outcome = logic.reconcile(bronze, silver)
    by_depth = ", ".join(f"{d}: {s.rows}/{s.bronze_keys}" for d, s in sorted(states.items()))
    return CheckOutcome(outcome.passed, outcome.summary, {**outcome.metadata, "depths": by_depth})


def _book_verified(store: Store, venue: str, symbol: str, hour: int) -> CheckOutcome:
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
    metadata = {**outcome.metadata, SIGNATURE: logic.mismatch_signature(mismatches)}
    return CheckOutcome(outcome.passed, outcome.summary, metadata)
