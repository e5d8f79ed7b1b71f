from __future__ import annotations

import time

import dagster as dg

from orderbook_pipeline.jobs import CaptureConfig, capture_job
from orderbook_pipeline.resources import CaptureTarget, VenueTarget
from orderbook_pipeline.simulator.runner import SimulatorThread
from orderbook_pipeline.storage.roots import open_store
from orderbook_pipeline.venues import BINANCE_SPOT

from .capture.conftest import SIM_DEFAULTS
from .capture.truth import verify_capture


def test_capture_job_runs_one_exact_burst_against_the_bundled_exchange(tmp_path):
    with SimulatorThread(venue=BINANCE_SPOT, symbols=["BTCUSDT"], **SIM_DEFAULTS) as sim:
        target = CaptureTarget(
            exchange="embedded",
            sim_port=sim.port,
            data_root=str(tmp_path),
            lanes=["l2", "diffs"],  # the book lanes; the stream lanes have their own tests
        )
        config = CaptureConfig(symbols=["BTCUSDT"], depths=[5], duration_s=2.0, file_seconds=1.0)
        result = capture_job.execute_in_process(
            resources={"capture_target": target},
            run_config=dg.RunConfig(ops={"capture_burst": config}),
        )
        assert result.success
        summary = result.output_for_node("capture_burst")
        assert summary["records"] > 0 and summary["resyncs"] == 0
        seen = verify_capture(sim, open_store(str(tmp_path)), BINANCE_SPOT, ["BTCUSDT"], (5,))
        assert len(seen.records[("BTCUSDT", 5)]) == summary["records"]
        outputs = [e for e in result.all_node_events if e.event_type_value == "STEP_OUTPUT"]
        metadata = outputs[0].event_specific_data.metadata
        assert metadata["records"].value == summary["records"]
        assert metadata["burst_id"].value == summary["burst_id"]
        mats = result.get_asset_materialization_events()
        lanes = {m.asset_key.path[-1] for m in mats}
        assert lanes == {"l2", "diffs", "snapshots"}
        hours = {m.partition for m in mats}
        assert hours and all("|" not in h and h.endswith(":00") for h in hours)  # hourly keys
        assert all(
            m.materialization.metadata["burst_id"].value == summary["burst_id"] for m in mats
        )
        # Coalesced per lane and hour, off the event loop: the first files at once, the rest
        # when the burst ends (the interval is two minutes): never one report per file.
        by_lane = {lane: [m for m in mats if m.asset_key.path[-1] == lane] for lane in lanes}
        assert all(1 <= len(reports) <= 2 * len(hours) for reports in by_lane.values())
        assert sum(m.materialization.metadata["files"].value for m in mats) == summary["files"]
        assert metadata["bronze_reports"].value == len(mats)
        assert metadata["bronze_report_failures"].value == 0


def test_a_slow_instance_database_delays_the_reports_not_the_books(tmp_path):
    """Every event-log write of a materialization takes a second (a locked or overloaded
    instance database). The burst's books keep up: no stale resync, lag in milliseconds, as
    many events as the exchange sent; the reports arrive late, but all of them arrive."""
    with SimulatorThread(venue=BINANCE_SPOT, symbols=["BTCUSDT"], **SIM_DEFAULTS) as sim:
        target = CaptureTarget(
            exchange="embedded",
            sim_port=sim.port,
            data_root=str(tmp_path),
            symbols=["BTCUSDT"],  # the exchange's only one
            lanes=["l2", "diffs"],
            report_interval_seconds=1.0,  # reports while the burst runs, each write slow
        )
        with dg.instance_for_test() as instance:
            storage = instance.event_log_storage
            store_event = storage.store_event
            slow: list[float] = []

            def slow_store_event(event):  # type: ignore[no-untyped-def]
                if event.dagster_event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
                    slow.append(time.monotonic())
                    time.sleep(1.0)
                return store_event(event)

            storage.store_event = slow_store_event
            config = CaptureConfig(duration_s=4.0, depths=[5], file_seconds=0.5)
            started = time.monotonic()
            result = capture_job.execute_in_process(
                instance=instance,
                resources={"capture_target": target},
                run_config=dg.RunConfig(ops={"capture_burst": config}),
            )
        assert result.success
        summary = result.output_for_node("capture_burst")
        # Writes were blocked for seconds while the burst ran...
        assert len(slow) >= 3 and slow[0] - started < 4.0
        # ...and the books never waited for them.
        assert summary["resyncs"] == 0 and summary["reconnects"] == 0
        # (Reporting from the event loop, as before: p50 660 ms, p95 1.9 s on this test.)
        assert summary["ingest_lag_ms"]["p95"] < 250 and summary["ingest_lag_ms"]["max"] < 1000
        sent = len(sim.sent_log("BTCUSDT"))
        assert summary["events"] >= 0.9 * sent
        assert len(result.get_asset_materialization_events()) == len(slow)


def test_reseed_job_writes_reseed_snapshots_and_reports_them(tmp_path):
    from orderbook_pipeline.jobs import ReseedConfig, reseed_job
    from orderbook_pipeline.storage.reader import iter_lane_records

    with SimulatorThread(venue=BINANCE_SPOT, symbols=["BTCUSDT"], **SIM_DEFAULTS) as sim:
        # Two venues: the op config's venue picks the section (and so the exchange's port).
        target = CaptureTarget(
            exchange="embedded",
            data_root=str(tmp_path),
            venues={
                "binance-usdm": VenueTarget(sim_port=9),  # nothing listens there
                "binance-spot": VenueTarget(sim_port=sim.port),
            },
        )
        config = ReseedConfig(
            venue="binance-spot",
            symbols=["BTCUSDT"],
            failed_partition="2026-11-21-16:00",
        )
        result = reseed_job.execute_in_process(
            resources={"capture_target": target},
            run_config=dg.RunConfig(ops={"reseed_snapshots": config}),
        )
        assert result.success
        (snap,) = list(iter_lane_records(open_store(str(tmp_path)), "snapshots"))
        assert snap["reason"] == "reseed" and snap["limit"] == 5000
        bids, _ = sim.true_book("BTCUSDT", snap["last_update_id"], 5)
        assert [[b["px"], b["qty"]] for b in snap["bids"][:5]] == [list(b) for b in bids]
        (mat,) = result.get_asset_materialization_events()
        assert mat.asset_key.path == ["bronze", "snapshots"]
        assert mat.materialization.metadata["venue"].value == "binance-spot"
        assert mat.materialization.metadata["streams"].value == 1


def test_mart_connection_is_closed_even_when_a_statement_fails(tmp_path):
    import duckdb
    import pytest

    from orderbook_pipeline.resources import MartDuckDB

    resource = MartDuckDB(database=str(tmp_path / "m.duckdb"))
    with pytest.raises(duckdb.Error), resource.get_connection() as conn:
        conn.execute("SELECT * FROM no_such_table")
    with pytest.raises(duckdb.ConnectionException):
        conn.execute("SELECT 1")  # closed: the file lock is released


def test_an_op_without_a_venue_needs_a_single_venue_target():
    import pytest

    from orderbook_pipeline.jobs import run_venue

    single = CaptureTarget(venue="binance-usdm", symbols=["BTCUSDT"])
    assert run_venue(single, "") == "binance-usdm"
    multi = CaptureTarget(venues={"binance-spot": VenueTarget(), "binance-us": VenueTarget()})
    assert run_venue(multi, "binance-us") == "binance-us"
    with pytest.raises(ValueError, match="must name a venue"):
        run_venue(multi, "")
