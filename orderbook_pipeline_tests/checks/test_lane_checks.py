"""book_verified and trade_continuity: the pure logic, and the Dagster checks on real silver."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pytest

from orderbook_pipeline.assets.bronze import bronze_specs
from orderbook_pipeline.assets.silver import SILVER_LANE_ASSETS
from orderbook_pipeline.checks.asset_checks import (
    ALL_CHECKS,
    RESEED_CHECKS,
    book_verified,
    trade_continuity_checks,
)
from orderbook_pipeline.checks.logic import book_verified as verdict
from orderbook_pipeline.checks.logic import trade_continuity
from orderbook_pipeline.compaction.lanes import LANES
from orderbook_pipeline.partitions import PARTITIONS_START, hour_start_of, partition_key
from orderbook_pipeline.resources import CaptureTarget
from orderbook_pipeline_tests.bronze_factory import (
    SECOND,
    SYMBOL,
    T0,
    VENUE,
    BurstBuilder,
    agg_trade_record,
    book_mismatch_record,
    book_ticker_record,
    deep_snapshot_record,
    partial_depth_record,
    trade_record,
)


def lane_table(lane: str, records: list[dict[str, Any]]) -> pa.Table:
    rows = [{**r, "burst_id": r.get("burst_id") or "a"} for r in records]
    return pa.Table.from_pylist(rows, schema=LANES[lane].schema)


def empty(lane: str) -> pa.Table:
    return LANES[lane].schema.empty_table()


def test_book_verified_passes_when_every_comparison_matched() -> None:
    out = verdict(
        empty("book_mismatches"),
        lane_table(
            "deep_snapshots",
            [
                deep_snapshot_record(1, T0),
                deep_snapshot_record(2, T0 + 60 * SECOND, verify_result="not_compared"),
            ],
        ),
        lane_table("partial_depth", [partial_depth_record(i, T0 + i) for i in range(3)]),
        lane_table(
            "book_ticker",
            [book_ticker_record(1, T0), book_ticker_record(2, T0 + 1, book_check="unchecked")],
        ),
    )
    assert out.passed
    assert out.metadata["deep_snapshots_compared"] == 1
    assert out.metadata["deep_snapshots_matched"] == 1
    assert out.metadata["deep_snapshots_not_compared"] == 1
    assert out.metadata["partial_depth_match"] == 3
    assert (out.metadata["book_ticker_match"], out.metadata["book_ticker_unchecked"]) == (1, 1)
    assert out.metadata["first_mismatch_source"] is None


def test_book_verified_fails_on_a_mismatch_and_names_the_first() -> None:
    later = book_mismatch_record("deep_snapshot", 900, T0 + 9 * SECOND, differing_levels=1)
    first = book_mismatch_record("partial_depth", 700, T0 + 5 * SECOND, differing_levels=3)
    out = verdict(
        lane_table("book_mismatches", [later, first]),
        lane_table("deep_snapshots", [deep_snapshot_record(1, T0, verify_result="mismatch")]),
        lane_table("partial_depth", [partial_depth_record(700, T0, book_check="mismatch")]),
        empty("book_ticker"),
    )
    assert not out.passed
    assert out.metadata["mismatches"] == 2
    assert out.metadata["deep_snapshots_mismatched"] == 1
    assert out.metadata["partial_depth_mismatch"] == 1
    assert out.metadata["first_mismatch_source"] == "partial_depth"
    assert out.metadata["first_mismatch_update_id"] == 700
    assert out.metadata["first_mismatch_differing_levels"] == 3
    assert "partial_depth" in out.summary


@pytest.mark.parametrize("lane", ["book_ticker", "partial_depth", "deep_snapshots"])
def test_book_verified_fails_on_a_flagged_row_even_without_its_mismatch_record(lane: str) -> None:
    tables = {
        "deep_snapshots": empty("deep_snapshots"),
        "partial_depth": empty("partial_depth"),
        "book_ticker": empty("book_ticker"),
    }
    tables[lane] = lane_table(
        lane,
        [
            deep_snapshot_record(1, T0, verify_result="mismatch")
            if lane == "deep_snapshots"
            else {"partial_depth": partial_depth_record, "book_ticker": book_ticker_record}[lane](
                1, T0, book_check="mismatch"
            )
        ],
    )
    out = verdict(
        empty("book_mismatches"),
        tables["deep_snapshots"],
        tables["partial_depth"],
        tables["book_ticker"],
    )
    assert not out.passed


def test_trade_continuity_counts_the_holes() -> None:
    rows = [{**trade_record(i, T0 + i), "missing_before": m} for i, m in [(10, 0), (11, 0)]]
    ok = trade_continuity(lane_table("trades", rows), "trade_id")
    assert ok.passed and ok.metadata["missing_ids"] == 0 and ok.metadata["rows"] == 2
    rows += [{**trade_record(15, T0 + 15), "missing_before": 3}]
    rows += [{**trade_record(17, T0 + 17), "missing_before": 1}]
    bad = trade_continuity(lane_table("trades", rows), "trade_id")
    assert not bad.passed
    assert bad.metadata["missing_ids"] == 4 and bad.metadata["holes"] == 2
    assert (bad.metadata["first_missing_from_id"], bad.metadata["first_missing_to_id"]) == (12, 14)
    assert trade_continuity(empty("trades"), "trade_id").passed


def test_the_new_checks_are_registered_and_book_verified_reseeds() -> None:
    keys = {c.check_key for c in ALL_CHECKS}
    assert book_verified.check_key in keys
    assert {c.check_key.asset_key for c in trade_continuity_checks} == {
        dg.AssetKey(["silver", "trades"]),
        dg.AssetKey(["silver", "agg_trades"]),
    }
    assert {c.check_key for c in trade_continuity_checks} <= keys
    assert book_verified in RESEED_CHECKS
    # It reads the silver of the other exchange views: they run before it in a run.
    (spec,) = book_verified.check_specs
    assert {d.asset_key for d in spec.additional_deps} == {
        dg.AssetKey(["silver", lane])
        for lane in ("book_mismatches", "partial_depth", "book_ticker")
    }


# -- through Dagster: silver assets of the lanes, and their checks -------------------------------

LANES_RUN = ["trades", "agg_trades", "deep_snapshots", "book_mismatches"]
H = hour_start_of(PARTITIONS_START)  # an hour that is a partition (T0 is before the start)


def _run(tmp_path: Path) -> dict[str, bool]:
    """Materialize the lanes' silver for the partition; {check name @ asset: passed}."""
    assets = [SILVER_LANE_ASSETS[lane] for lane in LANES_RUN]
    checks = [book_verified, *trade_continuity_checks]
    key = partition_key(VENUE, SYMBOL, H)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("streams", [key.keys_by_dimension["stream"]])
        result = dg.materialize(
            [*bronze_specs, *assets, *checks],
            partition_key=str(key),
            instance=instance,
            resources={"capture_target": CaptureTarget(data_root=str(tmp_path / "lake"))},
            selection=assets,
        )
    assert result.success
    mats = result.asset_materializations_for_node("silver__trades")
    assert mats and mats[0].metadata["rows"].value > 0
    assert {"rows", "duplicates_removed", "bronze_files", "bursts"} <= set(mats[0].metadata)
    return {
        f"{e.check_name}@{e.asset_key.path[-1]}": e.passed
        for e in result.get_asset_check_evaluations()
    }


def _bronze(tmp_path: Path, *, lose: bool) -> None:
    from orderbook_pipeline.storage.store import open_store

    store = open_store(str(tmp_path / "lake"))
    a, b = BurstBuilder("a"), BurstBuilder("b")
    ids = [i for i in range(100, 120) if not (lose and i in (105, 106))]
    a.add("trades", *(trade_record(i, H + SECOND + i * 1000) for i in range(100, 110)))
    b.add("trades", *(trade_record(i, H + SECOND + i * 1000) for i in ids if i >= 104))
    a.add("agg_trades", *(agg_trade_record(i, H + SECOND + i * 1000) for i in range(10)))
    a.add("deep_snapshots", deep_snapshot_record(5000, H + 60 * SECOND))
    if lose:
        a.add("book_mismatches", book_mismatch_record("book_ticker", 5001, H + 70 * SECOND))
        b.add("agg_trades", agg_trade_record(12, H + 2 * SECOND))  # 10, 11 lost by both
    a.write(store)
    b.write(store)


def test_checks_pass_on_a_clean_hour(tmp_path: Path) -> None:
    """Burst b lost trades a had (104..109 overlap): the union is complete."""
    _bronze(tmp_path, lose=False)
    assert _run(tmp_path) == {
        "book_verified@deep_snapshots": True,
        "trade_continuity@trades": True,
        "trade_continuity@agg_trades": True,
    }


def test_checks_fail_on_a_mismatch_and_on_trade_ids_nobody_received(tmp_path: Path) -> None:
    _bronze(tmp_path, lose=True)
    assert _run(tmp_path) == {
        "book_verified@deep_snapshots": False,
        "trade_continuity@trades": True,  # b's loss of 105..106 was received by a
        "trade_continuity@agg_trades": False,
    }
