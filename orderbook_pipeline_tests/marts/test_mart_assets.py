"""The gold assets through Dagster: the bands mart from silver, on the configured time basis,
built by the hour's refresh run."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pyarrow.parquet as pq
import pytest
import yaml

from orderbook_pipeline.storage.roots import open_store
from orderbook_pipeline_tests.bronze_factory import SECOND, SYMBOL, T0, VENUE, BurstBuilder
from orderbook_pipeline_tests.bronze_factory import depth_bands_record as sample
from orderbook_pipeline_tests.dagster_helpers import (
    definitions,
    materializations,
    pipeline_config,
    refresh,
)

H = T0  # an hour that is a partition
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("basis", ["exchange", "receive"])
def test_bands_mart_asset_builds_its_partition(tmp_path: Path, basis: str) -> None:
    lake, db = str(tmp_path / "lake"), str(tmp_path / "marts.duckdb")
    # Received 3 s late: the sample at 3 s falls in bucket 5 s by receive time.
    samples = [sample(i, H + (1 + 2 * i) * SECOND, ingest_lag_us=3 * SECOND) for i in range(3)]
    BurstBuilder("a").add("depth_bands", *samples).write(open_store(lake))
    config = pipeline_config(
        lake,
        db,
        {VENUE: {"symbols": [SYMBOL], "lanes": ["l2", "depth_bands"]}},
        mart={"time_basis": basis},
    )
    selection = [
        dg.AssetKey(["silver", "depth_bands"]),
        dg.AssetKey(["gold", "mart_depth_bands_5s"]),
    ]
    with dg.instance_for_test() as instance:
        result = refresh(definitions(config), instance, H, selection=selection)
    assert result.success
    mat = materializations(result)["gold/mart_depth_bands_5s"]
    assert mat.metadata["time_basis"].value == basis
    with duckdb.connect(db, read_only=True) as conn:
        got = conn.execute(
            "SELECT epoch(bucket_start) - $h, n_samples FROM mart_depth_bands_5s ORDER BY 1",
            {"h": H // 1_000_000},
        ).fetchall()
    assert mat.metadata["rows"].value == len(got) and mat.metadata["streams"].value == 1
    assert got == ([(0, 2), (5, 1)] if basis == "exchange" else [(0, 1), (5, 2)])
    # What the UI shows of the hour: numbers, the span, the columns, a preview, the Parquet.
    meta = mat.metadata
    assert meta["dagster/row_count"].value == 2 and meta["gap_buckets"].value == 0
    assert meta["first_bucket"].value == H / 1e6 and meta["last_bucket"].value == H / 1e6 + 5
    columns = [c.name for c in meta["dagster/column_schema"].value.columns]
    assert columns[:4] == ["bucket_start", "venue", "symbol", "band_pct"]
    assert "| bucket_start | venue | symbol | band_pct |" in meta["preview"].value
    (stream,) = meta["per_stream"].value.records
    parquet = stream.data["parquet"]
    assert stream.data["stream"] == f"{VENUE}.{SYMBOL}" and parquet.startswith("gold/")
    assert pq.read_table(Path(lake) / parquet).num_rows == 2


def test_no_bands_mart_without_the_bands_lane(tmp_path: Path) -> None:
    """A deployment that captures no depth_bands has no bands mart to show (or to request)."""
    config = pipeline_config(
        str(tmp_path / "lake"), str(tmp_path / "m.duckdb"), {VENUE: {"lanes": ["l2", "diffs"]}}
    )
    keys = {k.to_user_string() for k in definitions(config).resolve_all_asset_keys()}
    assert "gold/mart_l2_5s" in keys
    assert "gold/mart_depth_bands_5s" not in keys and "silver/depth_bands" not in keys
    assert {"silver/l2", "silver/diffs", "silver/snapshots", "silver/gap_windows"} <= keys


def test_a_runs_terminal_output_is_info_not_every_engine_event(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Dagster's default console logger printed a DEBUG line per engine event of every run; the
    instance settings run.sh installs (instance/dagster.yaml) start it at INFO."""
    lake = str(tmp_path / "lake")
    BurstBuilder("a").add("depth_bands", sample(0, H + SECOND)).write(open_store(lake))
    config = pipeline_config(lake, str(tmp_path / "m.duckdb"), {VENUE: {"symbols": [SYMBOL]}})
    shipped = yaml.safe_load((ROOT / "instance" / "dagster.yaml").read_text())
    with dg.instance_for_test(overrides={"python_logs": shipped["python_logs"]}) as instance:
        result = refresh(definitions(config), instance, H)
        assert result.success
        # Every engine event is still in the event log (what the UI shows).
        assert instance.get_records_for_run(
            result.run_id, of_type=dg.DagsterEventType.STEP_START
        ).records
    err = capfd.readouterr().err
    assert " - INFO - refresh_job - " in err  # the refresh's own line: streams refreshed
    assert " - DEBUG - " not in err and "STEP_START" not in err
