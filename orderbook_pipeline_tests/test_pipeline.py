"""End to end in one Dagster instance: overlapping capture bursts from the bundled exchange (one
loses events), then the hour's refresh run (silver, gap windows, checks, marts for every stream
at once), then the reseed sensor; and a refresh whose stages fail still judges every stream."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from orderbook_pipeline.capture.burst import run_burst
from orderbook_pipeline.capture.settings import CaptureSettings
from orderbook_pipeline.compaction.gaps import read_gap_windows
from orderbook_pipeline.compaction.silver import read_silver_diffs, read_silver_l2
from orderbook_pipeline.jobs import CaptureConfig
from orderbook_pipeline.marts.partition import ensure_tables
from orderbook_pipeline.partitions import hour_start_of
from orderbook_pipeline.resources import CaptureTarget
from orderbook_pipeline.sensors import reseed_sensor
from orderbook_pipeline.simulator.runner import SimulatorThread
from orderbook_pipeline.storage.roots import open_store
from orderbook_pipeline.venues import BINANCE_SPOT
from orderbook_pipeline_tests.bronze_factory import SECOND, T0, VENUE, BurstBuilder, tape
from orderbook_pipeline_tests.dagster_helpers import (
    definitions,
    evaluations,
    materializations,
    pipeline_config,
    refresh,
    utc,
)

from .capture.conftest import SIM_DEFAULTS

SYMBOL = "BTCUSDT"


def _mart_rows(db: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(db, read_only=True) as conn:
        return conn.execute(
            "SELECT * FROM mart_l2_5s ORDER BY venue, symbol, depth, bucket_start"
        ).fetchall()


@pytest.fixture(params=["local", "s3"])
def data_root(request, tmp_path) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    if request.param == "local":
        return str(tmp_path / "lake"), ""
    request.getfixturevalue("private_temp_dir")  # the S3 spool of temporaries
    endpoint = request.getfixturevalue("s3_endpoint")
    return request.getfixturevalue("s3_root"), endpoint


def test_overlapping_bursts_to_checks_mart_and_one_reseed(tmp_path, data_root):  # type: ignore[no-untyped-def]
    root, endpoint = data_root
    db = str(tmp_path / "marts.duckdb")
    with (
        SimulatorThread(venue=BINANCE_SPOT, symbols=[SYMBOL], **SIM_DEFAULTS) as sim,
        dg.instance_for_test() as instance,
    ):
        config = pipeline_config(
            root,
            db,
            {VENUE: {"symbols": [SYMBOL], "depths": [5, 20], "sim_port": sim.port}},
            s3_endpoint_url=endpoint,
            capture={"file_seconds": 1.0},
        )
        defs = definitions(config)
        # Burst B (8 s) runs beside burst A (3 s, through Dagster); after A has ended, B alone
        # loses a dropped range: the overlap must compact to each event once, the drop a gap.
        second = threading.Thread(
            target=lambda: asyncio.run(
                run_burst(
                    CaptureSettings(
                        venue=BINANCE_SPOT,
                        symbols=[SYMBOL],
                        duration_s=8.0,
                        depths=(5, 20),
                        data_root=root,
                        s3_endpoint_url=endpoint or None,
                        ws_url=sim.ws_url,
                        rest_url=sim.rest_url,
                        max_file_seconds=1.0,
                    )
                )
            )
        )
        drop = threading.Timer(6.5, sim.inject, ("drop",), {"symbol": SYMBOL, "count": 4})
        second.start()
        drop.start()
        time.sleep(0.5)
        capture = defs.resolve_job_def("capture_job").execute_in_process(
            instance=instance,
            run_config=dg.RunConfig(
                ops={"capture_burst": CaptureConfig(duration_s=3.0, file_seconds=1.0)}
            ),
        )
        second.join()
        assert capture.success
        (hour,) = {m.partition for m in capture.get_asset_materialization_events()}
        h = hour_start_of(hour)

        # Every file has landed: the refresh may judge up to now (whole seconds: a second on).
        time.sleep(1.0)
        run = refresh(defs, instance, hour, until=utc(int(time.time() * 1e6)))
        assert run.success
        store = open_store(root, s3_endpoint_url=endpoint or None)

        # Each event exactly once across the overlapping bursts.
        diffs = read_silver_diffs(store, VENUE, SYMBOL, h)
        ids = diffs.column("last_update_id").to_pylist()
        assert len(ids) == len(set(ids)) and ids == sorted(ids)
        sent = set(sim.sent_log(SYMBOL))
        assert set(ids) <= sent
        l2 = read_silver_l2(store, VENUE, SYMBOL, h, depth=5)
        l2_ids = l2.column("last_update_id").to_pylist()
        assert len(l2_ids) == len(set(l2_ids))
        assert len(set(l2.column("burst_id").to_pylist())) == 2

        # The dropped range is a gap window; the mart flags its buckets; checks say so.
        gaps = read_gap_windows(store, VENUE, SYMBOL, h).to_pylist()
        id_gaps = [g for g in gaps if g["from_update_id"] is not None]
        assert len(id_gaps) == 1
        dropped = [
            p["u"]
            for p in sim.generated(SYMBOL)
            if ids[0] < p["u"] < ids[-1] and p["u"] not in sent
        ]
        assert len(dropped) == 4
        gap = id_gaps[0]
        assert gap["from_update_id"] <= min(dropped) and max(dropped) <= gap["to_update_id"]
        evals = evaluations(run)
        continuity = evals[("gap_windows", "sequence_continuity")]
        assert continuity.passed is False
        assert continuity.metadata["failed_streams"].value == {
            VENUE: {SYMBOL: continuity.metadata["failed_streams"].value[VENUE][SYMBOL]}
        }
        assert continuity.metadata["gap_count"].value == len(gaps)
        assert evals[("l2", "no_crossed_book")].passed is True
        assert evals[("l2", "silver_reconciles_with_bronze")].passed is True
        assert evals[("gap_windows", "judged_in_time")].passed is True
        # The stream began in this hour: coverage runs from its first in-sync record to the last
        # landed one, so only the dropped window counts against it.
        cov = evals[("gap_windows", "coverage")].metadata
        gap_s = (gap["to_ts"] - gap["from_ts"]).total_seconds()
        assert cov["denominator_seconds"].value < 15
        assert abs(cov["in_sync_seconds"].value - (cov["denominator_seconds"].value - gap_s)) < 1e-3
        mats = materializations(run)
        assert mats["silver/l2"].metadata["streams"].value == 1
        assert mats["gold/mart_l2_5s"].metadata["rows"].value == len(_mart_rows(db))
        rows = _mart_rows(db)
        assert rows
        with duckdb.connect(db, read_only=True) as conn:
            flagged = conn.execute(
                "SELECT count(*) FROM mart_l2_5s WHERE has_gap AND bucket_start <= $to "
                "AND bucket_start + INTERVAL 5 SECOND > $from",
                {"from": gap["from_ts"], "to": gap["to_ts"]},
            ).fetchone()[0]
        assert flagged >= 2  # both depths' buckets over the gap

        # Exactly one reseed (continuity and coverage name the same gaps), plus a capture burst
        # since none is running.
        target = CaptureTarget.from_config(config)
        with dg.build_sensor_context(
            instance=instance, resources={"capture_target": target}
        ) as ctx:
            requests = reseed_sensor(ctx).run_requests
        reseeds = [r for r in requests if r.job_name == "reseed_job"]
        assert len(reseeds) == 1 and hour in reseeds[0].run_key
        assert reseeds[0].run_config["ops"]["reseed_snapshots"]["config"]["symbols"] == [SYMBOL]
        assert [r.job_name for r in requests].count("capture_job") == 1

        # Refreshing again changes nothing (no new part, same marts), asks for no new reseed.
        silver_before = read_silver_l2(store, VENUE, SYMBOL, h)
        again = refresh(defs, instance, hour, until=utc(int(time.time() * 1e6)))
        assert again.success
        assert materializations(again)["silver/l2"].metadata["new_rows"].value == 0
        assert _mart_rows(db) == rows
        assert read_silver_l2(store, VENUE, SYMBOL, h).equals(silver_before)
        with dg.build_sensor_context(
            instance=instance, resources={"capture_target": target}
        ) as ctx:
            later = [r for r in reseed_sensor(ctx).run_requests if r.job_name == "reseed_job"]
        assert [r.run_key for r in later] == [reseeds[0].run_key]


def test_a_refresh_whose_stages_fail_still_judges_every_stream(tmp_path: Path) -> None:
    """One stream's diffs cannot be read and the mart database refuses every build: the run
    fails, but after every stream was judged. Continuity and coverage come from the gap
    windows, so they are judged for both streams; judged_in_time names what broke; the healthy
    stream's silver is written."""
    lake = str(tmp_path / "lake")
    store = open_store(lake)
    ev = tape(50)
    BurstBuilder("a").received(ev).write(store)
    BurstBuilder("a", symbol="ETHUSDT").received(ev).write(store)
    broken = store.list_files("bronze/diffs/market=binance-spot/symbol=ETHUSDT/")[0]
    store.write_bytes(broken, b"Obj\x01 not avro at all")
    db = str(tmp_path / "marts.duckdb")
    with duckdb.connect(db) as conn:  # built on the other clock: every mart build refuses it
        ensure_tables(conn, "receive")
    config = pipeline_config(lake, db, {VENUE: {"symbols": ["BTCUSDT", "ETHUSDT"]}})
    with dg.instance_for_test() as instance:
        run = refresh(definitions(config), instance, T0)
        evals = evaluations(run, instance)
        mats = materializations(run, instance)
    assert not run.success
    for name in ("sequence_continuity", "coverage"):
        assert evals[("gap_windows", name)].metadata["streams_judged"].value == 2, name
    judged = evals[("gap_windows", "judged_in_time")]
    assert judged.passed is False
    errors = judged.metadata["errors"].value
    assert "2 of 2 stream(s) could not be judged" in (judged.description or "")
    assert "ETHUSDT" in errors and "silver diffs" in errors and "TimeBasisMismatch" in errors
    # ETHUSDT's gap windows read its broken diffs: its continuity is a failure, not a gap.
    continuity = evals[("gap_windows", "sequence_continuity")].metadata["failures"].value
    (eth,) = [r.data for r in continuity.records if r.data["stream"] == "binance-spot.ETHUSDT"]
    assert eth["summary"].startswith("not judged: gap windows failed")
    assert read_silver_l2(store, VENUE, "BTCUSDT", T0, 10).num_rows == 50
    assert read_silver_diffs(store, VENUE, "BTCUSDT", T0).num_rows == 50
    diffs = mats["silver/diffs"].metadata
    assert diffs["failed_streams"].value == "binance-spot.ETHUSDT"
    (step_failure,) = run.get_step_failure_events()
    error = step_failure.step_failure_data.error
    assert error is not None and "2 stream-hour(s) could not be refreshed" in error.message


def test_the_hour_in_progress_is_judged_up_to_what_has_settled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """By default a refresh compacts and judges only rows every copy of which has landed:
    file_seconds + 30 s back from now (on a 5 s boundary)."""
    lake = str(tmp_path / "lake")
    ev = tape(600, t0=T0 + 19 * 60 * SECOND, step_us=SECOND)  # 19:00 .. 28:59 into the hour
    BurstBuilder("a").received(ev).write(open_store(lake))
    now = T0 + 25 * 60 * SECOND + 2 * SECOND  # 25:02: settled up to 23:30
    monkeypatch.setattr("orderbook_pipeline.assets.refresh.time.time", lambda: now / 1e6)
    config = pipeline_config(lake, str(tmp_path / "m.duckdb"), capture={"file_seconds": 60.0})
    with dg.instance_for_test() as instance:
        run = refresh(definitions(config), instance, T0, until="")
    assert run.success
    l2 = materializations(run)["silver/l2"].metadata
    cut = T0 + (23 * 60 + 30) * SECOND
    assert l2["rows"].value == 2 * sum(1 for e in ev if e.ts < cut)  # depths 10 and 20
    assert l2["judged_until"].value == utc(cut) and l2["hour_closed"].value is False
    coverage = evaluations(run)[("gap_windows", "coverage")]
    assert coverage.metadata["judged_until"].value == utc(cut)


def test_a_stopped_refresh_is_canceled_not_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGINT (Ctrl-C on `make run`) in the middle of a refresh: it stops between two streams,
    the run ends canceled, and the next refresh completes the hour from what was written."""
    from orderbook_pipeline.refresh import hour as refresh_hour_module

    lake = str(tmp_path / "lake")
    store = open_store(lake)
    symbols = [f"S{i:02d}USDT" for i in range(8)]
    for symbol in symbols:
        BurstBuilder("a", symbol=symbol).received(tape(20)).write(store)
    config = pipeline_config(lake, str(tmp_path / "m.duckdb"), {VENUE: {"symbols": symbols}})
    defs = definitions(config)
    real = refresh_hour_module.judge_stream
    calls: list[str] = []

    def refresh_then_interrupt(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[3].symbol)
        report = real(*args, **kwargs)
        if len(calls) == 3:  # Ctrl-C while the third stream is refreshed
            os.kill(os.getpid(), signal.SIGINT)
        return report

    monkeypatch.setattr(refresh_hour_module, "judge_stream", refresh_then_interrupt)
    with dg.instance_for_test() as instance:
        stopped = refresh(defs, instance, T0)
        run = instance.get_run_by_id(stopped.run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.CANCELED
        assert calls == symbols[:3]  # stopped between streams (all were compacted before)
        assert not evaluations(stopped, instance)  # a partial hour is not judged
        monkeypatch.setattr(refresh_hour_module, "judge_stream", real)
        again = refresh(defs, instance, T0)
        assert again.success
        assert evaluations(again)[("gap_windows", "judged_in_time")].metadata["streams"].value == 8
    assert all(read_silver_l2(store, VENUE, s, T0, 10).num_rows == 20 for s in symbols)


def test_a_stream_is_judged_from_when_its_capture_began(tmp_path: Path) -> None:
    """ETHUSDT is configured but its capture had not begun in the hour: no loss while the
    hour runs, nor in hours before its first data; a whole hour without any is no_capture."""
    lake = str(tmp_path / "lake")
    store = open_store(lake)
    BurstBuilder("a").received(tape(50)).write(store)
    config = pipeline_config(
        lake, str(tmp_path / "m.duckdb"), {VENUE: {"symbols": ["BTCUSDT", "ETHUSDT"]}}
    )
    defs = definitions(config)

    def eth_continuity(until: str) -> Any:
        with dg.instance_for_test() as instance:
            run = refresh(defs, instance, T0, until=until)
        evaluation = evaluations(run)[("gap_windows", "sequence_continuity")]
        failures = evaluation.metadata.get("failures")
        rows = [r.data for r in failures.value.records] if failures else []
        return next((r["summary"] for r in rows if r["stream"].endswith("ETHUSDT")), "passed")

    assert eth_continuity(utc(T0 + 30 * SECOND)) == "passed"  # the hour runs: not begun yet
    assert "no_capture" in eth_continuity("hour_end")  # a whole hour without data
    BurstBuilder("e", symbol="ETHUSDT").received(tape(10, t0=T0 + 3600 * SECOND)).write(store)
    assert eth_continuity("hour_end") == "passed"  # its capture began in the next hour
