from __future__ import annotations

import time

import dagster as dg

from orderbook_pipeline.jobs import capture_job
from orderbook_pipeline.partitions import current_hour_key
from orderbook_pipeline.resources import CaptureTarget, VenueTarget
from orderbook_pipeline.sensors import capture_sensor, reseed_sensor
from orderbook_pipeline.sensors.capture import ActiveBurst, burst_due, capture_request
from orderbook_pipeline.sensors.runs import BURST_SECONDS_TAG, CAPTURE_VENUE_TAG, VENUE_TAG
from orderbook_pipeline_tests.dagster_helpers import report_failed_check

TARGET = CaptureTarget(symbols=["BTCUSDT", "ETHUSDT"], burst_seconds=300, overlap_seconds=60)


def test_burst_due_overlaps_the_previous_burst_by_the_overlap():
    now = 10_000.0
    assert burst_due([], now, 60) is None
    running = ActiveBurst("a", started_at=now - 200, planned_s=300)  # ends in 100 s
    assert burst_due([running], now, 60) is not None
    assert burst_due([running], now + 39, 60) is not None
    assert burst_due([running], now + 40, 60) is None  # ends in 60 s: start the successor
    successor = ActiveBurst("b", started_at=now + 45, planned_s=300)
    assert burst_due([running, successor], now + 50, 60) == "two capture bursts already overlap"
    assert (
        burst_due([ActiveBurst("q", None, 300)], now, 60) == "a capture burst is queued or starting"
    )
    stuck = ActiveBurst("s", started_at=now - 900, planned_s=300)  # past its end: replace it
    assert burst_due([stuck], now, 60) is None


def _evaluate(instance: dg.DagsterInstance) -> dg.SensorResult:
    with dg.build_sensor_context(instance=instance, resources={"capture_target": TARGET}) as ctx:
        return capture_sensor(ctx)


def test_sensor_requests_a_tagged_burst():
    with dg.instance_for_test() as instance:
        result = _evaluate(instance)
        assert len(result.run_requests) == 1
        req = result.run_requests[0]
        assert req.tags[VENUE_TAG] == "binance-spot"
        assert req.tags["dagster/max_runtime"] == str(300 + 180)
        assert req.run_config["ops"]["capture_burst"]["config"]["duration_s"] == 300
        assert req.run_config["ops"]["capture_burst"]["config"]["venue"] == "binance-spot"
        assert not result.dynamic_partitions_requests  # streams are metadata, not partitions


def test_sensor_never_starts_a_second_burst_before_the_overlap():
    with dg.instance_for_test() as instance:
        run = instance.create_run_for_job(
            job_def=capture_job,
            status=dg.DagsterRunStatus.NOT_STARTED,
            tags={VENUE_TAG: "binance-spot", BURST_SECONDS_TAG: "300"},
        )
        result = _evaluate(instance)
        assert not result.run_requests and "queued or starting" in result.skip_reason.skip_message
        instance.delete_run(run.run_id)
        # A different venue's burst does not hold this venue back.
        instance.create_run_for_job(
            job_def=capture_job,
            status=dg.DagsterRunStatus.STARTED,
            tags={VENUE_TAG: "binance-usdm", BURST_SECONDS_TAG: "300"},
        )
        assert len(_evaluate(instance).run_requests) == 1


def _started(instance: dg.DagsterInstance, burst_seconds: int, venue: str = "binance-spot") -> str:
    run = instance.create_run_for_job(
        job_def=capture_job,
        status=dg.DagsterRunStatus.NOT_STARTED,
        tags={VENUE_TAG: venue, BURST_SECONDS_TAG: str(burst_seconds)},
    )
    instance.report_dagster_event(
        dg.DagsterEvent(
            event_type_value=dg.DagsterEventType.RUN_START.value, job_name=capture_job.name
        ),
        run.run_id,
    )
    return run.run_id


def test_sensor_starts_the_successor_only_within_the_overlap():
    with dg.instance_for_test() as instance:
        long_run = _started(instance, burst_seconds=300)  # just started: ends in ~300 s
        result = _evaluate(instance)
        assert not result.run_requests
        assert long_run in result.skip_reason.skip_message
    with dg.instance_for_test() as instance:
        _started(instance, burst_seconds=30)  # ends within the 60 s overlap
        assert len(_evaluate(instance).run_requests) == 1
        _started(instance, burst_seconds=300)  # the successor is running too
        result = _evaluate(instance)
        assert not result.run_requests and "already overlap" in result.skip_reason.skip_message


def test_overlap_covers_the_next_bursts_snapshot_bootstrap():
    spot = "binance-spot"
    assert TARGET.effective_overlap_seconds(spot) == 60  # two symbols sync in seconds
    many = CaptureTarget(symbols=[f"S{i}USDT" for i in range(200)], burst_seconds=600)
    # 200 x 1,000-level snapshots = 10,000 weight at 4,800 a minute: ~125 s, plus a margin.
    assert 140 <= many.effective_overlap_seconds(spot) <= 150
    short = CaptureTarget(symbols=[f"S{i}USDT" for i in range(200)], burst_seconds=120)
    assert short.effective_overlap_seconds(spot) == 60  # never more than half a burst


MULTI = CaptureTarget(
    exchange="embedded",
    burst_seconds=300,
    overlap_seconds=60,
    venues={
        "binance-spot": VenueTarget(symbols=["BTCUSDT"], depths=[10]),
        "binance-usdm": VenueTarget(
            symbols=["ETHUSDT", "SOLUSDT"], lanes=["l2", "agg_trades"], depths=[20]
        ),
    },
)


def _evaluate_multi(instance: dg.DagsterInstance) -> dg.SensorResult:
    with dg.build_sensor_context(instance=instance, resources={"capture_target": MULTI}) as ctx:
        return capture_sensor(ctx)


def test_sensor_runs_one_burst_per_configured_venue_with_its_settings():
    with dg.instance_for_test() as instance:
        result = _evaluate_multi(instance)
        by_venue = {r.tags[VENUE_TAG]: r for r in result.run_requests}
        assert sorted(by_venue) == ["binance-spot", "binance-usdm"]
        for venue, req in by_venue.items():
            assert req.tags[CAPTURE_VENUE_TAG] == venue
            assert req.run_config["ops"]["capture_burst"]["config"]["venue"] == venue
            assert venue in req.run_key
        # Each venue on its own schedule: a running spot burst holds back spot only.
        _started(instance, burst_seconds=300, venue="binance-spot")
        result = _evaluate_multi(instance)
        assert [r.tags[VENUE_TAG] for r in result.run_requests] == ["binance-usdm"]
        _started(instance, burst_seconds=300, venue="binance-usdm")
        result = _evaluate_multi(instance)
        assert not result.run_requests
        assert "binance-spot: burst" in result.skip_reason.skip_message
        assert "binance-usdm: burst" in result.skip_reason.skip_message


def test_capture_request_carries_the_venue_into_the_bursts_settings():
    req = capture_request(MULTI, "binance-usdm", 1000.0)
    op_config = req.run_config["ops"]["capture_burst"]["config"]
    settings = MULTI.capture_settings(op_config["venue"], duration_s=op_config["duration_s"])
    assert settings.venue.name == "binance-usdm"
    assert settings.symbols == ["ETHUSDT", "SOLUSDT"]
    assert settings.lanes == ("l2", "agg_trades") and settings.depths == (20,)
    assert settings.ws_url == "ws://127.0.0.1:9444"  # usdm's default embedded port


def _failed_check(
    instance: dg.DagsterInstance,
    hour: str,
    failed: dict[str, dict[str, str]],
    name: str = "sequence_continuity",
) -> None:
    report_failed_check(instance, hour, failed, name)


def _reseed(instance: dg.DagsterInstance, target: CaptureTarget = MULTI) -> list[dg.RunRequest]:
    with dg.build_sensor_context(instance=instance, resources={"capture_target": target}) as ctx:
        return list(reseed_sensor(ctx).run_requests or [])


HOUR = current_hour_key(time.time())


def test_reseed_runs_in_the_failed_streams_venue_with_exactly_those_symbols():
    with dg.instance_for_test() as instance:
        _failed_check(
            instance,
            HOUR,
            {
                "binance-usdm": {"SOLUSDT": "g1"},
                "binance-us": {"BTCUSD": "g2"},
            },  # us: not configured
        )
        _failed_check(instance, HOUR, {"binance-usdm": {"ETHUSDT": "m1"}}, "book_verified")
        _started(instance, burst_seconds=300, venue="binance-spot")
        requests = _reseed(instance)
        reseeds = [r for r in requests if r.job_name == "reseed_job"]
        configs = [r.run_config["ops"]["reseed_snapshots"]["config"] for r in reseeds]
        assert sorted(c["symbols"][0] for c in configs) == ["ETHUSDT", "SOLUSDT"]
        assert {c["venue"] for c in configs} == {"binance-usdm"}
        assert {c["failed_partition"] for c in configs} == {HOUR}
        reseed = next(
            r for r, c in zip(reseeds, configs, strict=True) if c["symbols"] == ["SOLUSDT"]
        )
        assert reseed.tags[VENUE_TAG] == "binance-usdm"
        # usdm has no burst running: one starts; spot's running burst is not duplicated.
        (capture,) = [r for r in requests if r.job_name == "capture_job"]
        assert capture.tags[VENUE_TAG] == "binance-usdm"
        assert capture.run_config["ops"]["capture_burst"]["config"]["venue"] == "binance-usdm"
        # The same failures again (a re-judged hour, or coverage on the same gaps): the same
        # run key, which Dagster never launches twice.
        before = {r.run_key for r in reseeds}
        _failed_check(instance, HOUR, {"binance-usdm": {"SOLUSDT": "g1"}}, "coverage")
        assert {r.run_key for r in _reseed(instance) if r.job_name == "reseed_job"} == before
        # New gaps in that hour: one more reseed.
        _failed_check(instance, HOUR, {"binance-usdm": {"SOLUSDT": "g9"}})
        keys = {r.run_key for r in _reseed(instance) if r.job_name == "reseed_job"}
        assert len(keys - before) == 1 and reseed.run_key in keys
        # A failure of an hour long past (a backfill) is recorded, not reseeded.
        _failed_check(instance, "2026-11-21-16:00", {"binance-usdm": {"SOLUSDT": "old"}})
        assert {r.run_key for r in _reseed(instance) if r.job_name == "reseed_job"} == keys


def test_reseed_sensor_says_which_checks_it_watches_when_idle():
    with dg.instance_for_test() as instance:
        with dg.build_sensor_context(instance=instance, resources={"capture_target": MULTI}) as ctx:
            result = reseed_sensor(ctx)
        assert not result.run_requests
        message = result.skip_reason.skip_message
        for check in ("sequence_continuity", "coverage", "book_verified"):
            assert check in message
