"""Check severities that match the cause: a loss only the exchange caused (every burst missed
the same ids) is a warning; one this deployment's capture caused is an error."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from orderbook_pipeline.storage.roots import open_store
from orderbook_pipeline_tests.bronze_factory import SECOND, T0, BurstBuilder, tape
from orderbook_pipeline_tests.dagster_helpers import (
    definitions,
    evaluations,
    pipeline_config,
    refresh,
    utc,
)


def _missing_40_to_44(burst: str, ev: list) -> BurstBuilder:  # type: ignore[type-arg]
    """A burst that never received events 40..44; its book is rebuilt and resumes at 47."""
    b = BurstBuilder(burst).diffs(ev[:40] + ev[45:]).l2(ev[:40])
    return b.l2(ev[47:], gap_detected_first=True, recovered=True)


def _continuity_and_coverage(
    tmp_path: Path, bursts: list[BurstBuilder]
) -> list[dg.AssetCheckEvaluation]:
    lake = str(tmp_path / "lake")
    for burst in bursts:
        burst.write(open_store(lake))
    config = pipeline_config(lake, str(tmp_path / "m.duckdb"))
    with dg.instance_for_test() as instance:
        # Judged up to the tape's last event (11 s into the hour): its only gap is 40..44.
        result = refresh(definitions(config), instance, T0, until=utc(T0 + 11 * SECOND))
        found = evaluations(result, instance)
    return [found[("gap_windows", name)] for name in ("sequence_continuity", "coverage")]


def test_ids_every_burst_missed_fail_as_a_warning(tmp_path: Path) -> None:
    ev = tape(100)
    continuity, coverage = _continuity_and_coverage(
        tmp_path, [_missing_40_to_44("a", ev), _missing_40_to_44("b", ev)]
    )
    assert not continuity.passed and "exchange_restart" in (continuity.description or "")
    assert continuity.severity == dg.AssetCheckSeverity.WARN
    assert not coverage.passed and coverage.severity == dg.AssetCheckSeverity.WARN


def test_ids_our_capture_lost_fail_as_an_error(tmp_path: Path) -> None:
    ev = tape(100)
    continuity, coverage = _continuity_and_coverage(tmp_path, [_missing_40_to_44("a", ev)])
    assert not continuity.passed and "sequence_gap" in (continuity.description or "")
    assert continuity.severity == dg.AssetCheckSeverity.ERROR
    assert not coverage.passed and coverage.severity == dg.AssetCheckSeverity.ERROR
