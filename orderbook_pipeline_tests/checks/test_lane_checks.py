"""book_verified and trade_continuity: the pure logic, and the checks as the hour's refresh
reports them on real silver (one evaluation per hour, the failing streams named)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pytest

from orderbook_pipeline.checks.logic import book_verified as verdict
from orderbook_pipeline.checks.logic import mismatch_signature, trade_continuity
from orderbook_pipeline.checks.specs import CHECKS, RESEED_CHECKS
from orderbook_pipeline.compaction.silver import read_silver_lane
from orderbook_pipeline.config import PipelineConfig
from orderbook_pipeline.lanes.registry import GAP_INPUT_LANES, LANES, VERIFIED_LANES
from orderbook_pipeline.partitions import hour_key
from orderbook_pipeline.storage.roots import open_store
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
from orderbook_pipeline_tests.dagster_helpers import (
    definitions,
    evaluations,
    materializations,
    pipeline_config,
    refresh,
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


def test_the_checks_are_registered_and_book_verified_reseeds(tmp_path: Path) -> None:
    keys = {c.key for c in CHECKS}
    assert ("book_mismatches", "book_verified") in keys
    assert {c.asset for c in CHECKS if c.name == "trade_continuity"} == {"trades", "agg_trades"}
    assert [c.key for c in RESEED_CHECKS if c.name == "book_verified"] == [
        ("book_mismatches", "book_verified")
    ]
    assert not any(c.name == "trade_continuity" for c in RESEED_CHECKS)
    # It reads the silver of every exchange view of the book (compacted before it in the step).
    assert set(VERIFIED_LANES) == {
        "book_mismatches",
        "deep_snapshots",
        "partial_depth",
        "book_ticker",
    }
    # The gap windows are derived from the book lanes' bronze and the differences found.
    assert set(GAP_INPUT_LANES) == {"l2", "diffs", "snapshots", "book_mismatches"}

    # In the definitions: only on lanes the configured venues write.
    graph = definitions(_config(tmp_path)).resolve_asset_graph()
    found = {(k.asset_key.path[-1], k.name) for k in graph.asset_check_keys}
    assert {
        ("book_mismatches", "book_verified"),
        ("trades", "trade_continuity"),
        ("agg_trades", "trade_continuity"),
    } <= found
    no_trades = definitions(_config(tmp_path, ["l2", "diffs"])).resolve_asset_graph()
    found = {(k.asset_key.path[-1], k.name) for k in no_trades.asset_check_keys}
    assert not {c for c in found if c[1] in ("book_verified", "trade_continuity")}
    assert ("l2", "no_crossed_book") in found


# -- through Dagster: the hour's refresh compacts the lanes and judges every stream -------------

H = T0  # an hour that is a partition
OTHER = "ETHUSDT"  # a second stream of the venue, always clean: the verdict names only SYMBOL
LANES_RUN = ["trades", "agg_trades", "deep_snapshots", "book_mismatches"]
CHECKED = (
    "book_verified@book_mismatches",
    "trade_continuity@trades",
    "trade_continuity@agg_trades",
)


def _config(tmp_path: Path, lanes: list[str] | None = None) -> PipelineConfig:
    venue = {
        "symbols": [SYMBOL, OTHER],
        "lanes": lanes or ["trades", "agg_trades", "deep_snapshots"],
    }
    return pipeline_config(str(tmp_path / "lake"), str(tmp_path / "m.duckdb"), {VENUE: venue})


def _run(tmp_path: Path) -> tuple[dict[str, dg.AssetCheckEvaluation], dg.AssetMaterialization]:
    """Refresh the hour's silver of the lanes (and so their checks); the evaluations by
    "check@asset", and silver trades' materialization."""
    selection = [dg.AssetKey(["silver", lane]) for lane in LANES_RUN]
    with dg.instance_for_test() as instance:
        result = refresh(definitions(_config(tmp_path)), instance, H, selection=selection)
    assert result.success
    found = {f"{check}@{asset}": e for (asset, check), e in evaluations(result).items()}
    assert {e.partition for e in found.values()} == {hour_key(H)}
    return found, materializations(result)["silver/trades"]


def _bronze(tmp_path: Path, symbol: str, *, lose: bool) -> None:
    store = open_store(str(tmp_path / "lake"))
    a = BurstBuilder("a", symbol=symbol)
    b = BurstBuilder("b", symbol=symbol)
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


def _meta(evaluation: dg.AssetCheckEvaluation, name: str) -> Any:
    return evaluation.metadata[name].value


def test_checks_pass_on_a_clean_hour(tmp_path: Path) -> None:
    """Burst b lost trades a had (104..109 overlap): the union is complete, in both streams."""
    _bronze(tmp_path, SYMBOL, lose=False)
    _bronze(tmp_path, OTHER, lose=False)
    found, trades = _run(tmp_path)
    assert {k: e.passed for k, e in found.items()} == dict.fromkeys(CHECKED, True)
    for e in found.values():
        assert (_meta(e, "streams_judged"), _meta(e, "streams_failed")) == (2, 0)
        assert "failed_streams" not in e.metadata and "failures" not in e.metadata
    # The streams' numbers, summed over the hour: 20 trades and 10 aggregates each.
    assert _meta(found["trade_continuity@trades"], "rows") == 40
    assert _meta(found["trade_continuity@trades"], "missing_ids") == 0
    assert _meta(found["trade_continuity@agg_trades"], "rows") == 20
    assert _meta(found["book_verified@book_mismatches"], "deep_snapshots_matched") == 2
    assert _meta(found["book_verified@book_mismatches"], "mismatches") == 0
    # Silver trades: the union of both bursts, deduplicated, per stream.
    assert (trades.metadata["rows"].value, trades.metadata["streams"].value) == (40, 2)
    assert trades.metadata["bronze_files_read"].value >= 4  # two bursts, two streams
    assert trades.metadata["failed_streams"].value == "none"
    assert read_silver_lane(open_store(str(tmp_path / "lake")), "trades", VENUE, SYMBOL, H)[
        "trade_id"
    ].to_pylist() == list(range(100, 120))


def test_checks_fail_on_a_mismatch_and_on_trade_ids_nobody_received(tmp_path: Path) -> None:
    _bronze(tmp_path, SYMBOL, lose=True)
    _bronze(tmp_path, OTHER, lose=False)
    found, _trades = _run(tmp_path)
    assert {k: e.passed for k, e in found.items()} == {
        "book_verified@book_mismatches": False,
        "trade_continuity@trades": True,  # b's loss of 105..106 was received by a
        "trade_continuity@agg_trades": False,
    }
    stream = f"{VENUE}.{SYMBOL}"
    for name in ("book_verified@book_mismatches", "trade_continuity@agg_trades"):
        e = found[name]
        assert (_meta(e, "streams_judged"), _meta(e, "streams_failed")) == (2, 1)
        failed = _meta(e, "failed_streams")
        assert list(failed) == [VENUE] and list(failed[VENUE]) == [SYMBOL]  # not OTHER
        assert [r.data["stream"] for r in _meta(e, "failures").records] == [stream]
        assert stream in (e.description or "") and "1 of 2" in (e.description or "")
    book = found["book_verified@book_mismatches"]
    assert _meta(book, "mismatches") == 1
    assert "book_ticker" in _meta(book, "failures").records[0].data["summary"]
    # The reseed sensor's input: the stream's mismatches, by their identity.
    lost = pa.table({"burst_id": ["a"], "source": ["book_ticker"], "update_id": [5001]})
    assert _meta(book, "failed_streams") == {VENUE: {SYMBOL: mismatch_signature(lost)}}
    aggs = found["trade_continuity@agg_trades"]
    assert (_meta(aggs, "missing_ids"), _meta(aggs, "holes")) == (2, 1)
    assert "failed_streams" not in found["trade_continuity@trades"].metadata


def test_book_verified_reads_the_deep_snapshots_compacted_in_the_same_refresh(
    tmp_path: Path,
) -> None:
    """A deep snapshot flagged `mismatch` fails the hour without any book_mismatches record:
    the check reads the silver of the other exchange views, compacted before it in the step."""
    a = BurstBuilder("a")
    a.add("deep_snapshots", deep_snapshot_record(5000, H + 60 * SECOND, verify_result="mismatch"))
    a.write(open_store(str(tmp_path / "lake")))
    found, _trades = _run(tmp_path)
    book = found["book_verified@book_mismatches"]
    assert not book.passed
    assert _meta(book, "deep_snapshots_mismatched") == 1 and _meta(book, "mismatches") == 0
    assert list(_meta(book, "failed_streams")[VENUE]) == [SYMBOL]
