"""The gold assets through Dagster: the bands mart from silver, on the configured time basis."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orderbook_pipeline.assets.bronze import bronze_specs
from orderbook_pipeline.assets.marts import mart_depth_bands_5s
from orderbook_pipeline.assets.silver import SILVER_LANE_ASSETS
from orderbook_pipeline.partitions import PARTITIONS_START, hour_start_of, partition_key
from orderbook_pipeline.resources import CaptureTarget, MartDuckDB
from orderbook_pipeline.storage.store import open_store
from orderbook_pipeline_tests.bronze_factory import SECOND, SYMBOL, VENUE, BurstBuilder
from orderbook_pipeline_tests.bronze_factory import depth_bands_record as sample

H = hour_start_of(PARTITIONS_START)  # an hour that is a partition


@pytest.mark.parametrize("basis", ["exchange", "receive"])
def test_bands_mart_asset_builds_its_partition(tmp_path: Path, basis: str) -> None:
    lake, db = str(tmp_path / "lake"), str(tmp_path / "marts.duckdb")
    # Received 3 s late: the sample at 3 s falls in bucket 5 s by receive time.
    samples = [sample(i, H + (1 + 2 * i) * SECOND, ingest_lag_us=3 * SECOND) for i in range(3)]
    BurstBuilder("a").add("depth_bands", *samples).write(open_store(lake))
    silver = SILVER_LANE_ASSETS["depth_bands"]
    key = partition_key(VENUE, SYMBOL, H)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("streams", [key.keys_by_dimension["stream"]])
        result = dg.materialize(
            [*bronze_specs, silver, mart_depth_bands_5s],
            partition_key=str(key),
            instance=instance,
            resources={
                "capture_target": CaptureTarget(data_root=lake, time_basis=basis),
                "mart_db": MartDuckDB(database=db),
            },
            selection=[silver, mart_depth_bands_5s],
        )
    assert result.success
    (mat,) = result.asset_materializations_for_node("gold__mart_depth_bands_5s")
    assert mat.metadata["time_basis"].value == basis
    with duckdb.connect(db, read_only=True) as conn:
        got = conn.execute(
            "SELECT epoch(bucket_start) - $h, n_samples FROM mart_depth_bands_5s ORDER BY 1",
            {"h": H // 1_000_000},
        ).fetchall()
    assert mat.metadata["rows"].value == len(got)
    assert got == ([(0, 2), (5, 1)] if basis == "exchange" else [(0, 1), (5, 2)])
