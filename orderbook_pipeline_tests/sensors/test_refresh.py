"""The refresh sensor: when hours are refreshed, at most one run per hour at a time, and an
hour whose verdicts are overdue reported as a failed judged_in_time check (once)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import dagster as dg
import pytest

from orderbook_pipeline.definitions import REFRESH_JOB
from orderbook_pipeline.partitions import hour_key
from orderbook_pipeline.resources import CaptureTarget
from orderbook_pipeline.sensors.refresh import (
    JUDGED_IN_TIME,
    HourRuns,
    due_refreshes,
    late_evaluation,
    overdue,
    settle_s,
    watched_hours,
)
from orderbook_pipeline.sensors.runs import FINAL_TAG, PARTITION_TAG
from orderbook_pipeline_tests.dagster_helpers import definitions, pipeline_config

INTERVAL, SETTLE = 300.0, 90.0
H = 1_796_083_200.0 + 10 * 3600  # 2026-12-01 10:00 UTC, in seconds
HOUR = hour_key(int(H * 1e6))
WATCHING_LONG = json.dumps({"since": 0.0})  # a cursor: the sensor has ticked for ages


def due(now: float, runs: HourRuns, hour: str = HOUR) -> list[tuple[str, bool]]:
    return [(d.hour, d.final) for d in due_refreshes(now, INTERVAL, SETTLE, {hour: runs})]


def test_the_hour_in_progress_is_refreshed_every_interval_once_something_has_settled() -> None:
    assert due(H + 60, HourRuns()) == []  # nothing has settled yet
    assert due(H + 100, HourRuns()) == [(HOUR, False)]
    asked = HourRuns(last_requested_s=H + 100)
    assert due(H + 399, asked) == []
    assert due(H + 400, asked) == [(HOUR, False)]
    assert due(H + 1000, HourRuns(active=True, last_requested_s=H + 100)) == []  # never two


def test_a_closed_hour_gets_its_final_refresh_once_its_files_have_landed() -> None:
    end = H + 3600
    last = HourRuns(last_requested_s=end - 200, last_success_start_s=end - 200)
    assert due(end + 30, last) == []  # its last files may still be in flight
    assert due(end + SETTLE, last) == [(HOUR, True)]
    asked = HourRuns(last_requested_s=end + SETTLE)
    assert due(end + SETTLE + 10, asked) == []
    assert due(end + SETTLE + INTERVAL, asked) == [(HOUR, True)]  # that one failed: again
    done = HourRuns(last_requested_s=end + SETTLE, final_success_start_s=end + SETTLE)
    assert due(end + 3000, done) == []
    late = HourRuns(
        last_requested_s=end + SETTLE, final_success_start_s=end + SETTLE, late_bronze=True
    )
    assert due(end + SETTLE + 100, late) == [(HOUR, True)]


def test_overdue_verdicts_are_named() -> None:
    assert overdue(H + 300, INTERVAL, SETTLE, HOUR, HourRuns()) is None
    assert "no successful refresh" in (overdue(H + 700, INTERVAL, SETTLE, HOUR, HourRuns()) or "")
    fresh = HourRuns(last_success_start_s=H + 1000)
    assert overdue(H + 1500, INTERVAL, SETTLE, HOUR, fresh) is None
    assert "started 601 s ago" in (overdue(H + 1601, INTERVAL, SETTLE, HOUR, fresh) or "")
    end = H + 3600
    assert overdue(end + SETTLE + 200, INTERVAL, SETTLE, HOUR, HourRuns()) is None
    why = overdue(end + SETTLE + 301, INTERVAL, SETTLE, HOUR, HourRuns())
    assert why is not None and "no successful final refresh" in why
    done = HourRuns(final_success_start_s=end + SETTLE)
    assert overdue(end + 7200, INTERVAL, SETTLE, HOUR, done) is None


def test_nothing_is_overdue_before_the_sensor_first_ticked() -> None:
    """A deployment started 40 minutes into an hour is given its full deadline from then."""
    since = H + 2400
    assert overdue(H + 2500, INTERVAL, SETTLE, HOUR, HourRuns(), since) is None
    assert overdue(since + SETTLE + 2 * INTERVAL, INTERVAL, SETTLE, HOUR, HourRuns(), since) is None
    late = overdue(since + SETTLE + 2 * INTERVAL + 1, INTERVAL, SETTLE, HOUR, HourRuns(), since)
    assert late is not None and "no successful refresh" in late
    end = H + 3600
    started_after_close = end + 600
    assert (
        overdue(started_after_close + 60, INTERVAL, SETTLE, HOUR, HourRuns(), started_after_close)
        is None
    )
    why = overdue(
        started_after_close + SETTLE + 301, INTERVAL, SETTLE, HOUR, HourRuns(), started_after_close
    )
    assert why is not None and "no successful final refresh" in why


def test_watched_hours_start_at_the_first_partition() -> None:
    assert watched_hours(H + 10, "2026-11-01-00:00") == [
        hour_key(int((H - k * 3600) * 1e6)) for k in (3, 2, 1, 0)
    ]
    assert watched_hours(H + 10, HOUR) == [HOUR]


@pytest.fixture
def setup(tmp_path: Path):  # type: ignore[no-untyped-def]
    config = pipeline_config(str(tmp_path / "lake"), str(tmp_path / "m.duckdb"))
    defs = definitions(config)
    with dg.instance_for_test() as instance:
        yield defs, instance, CaptureTarget.from_config(config)


def _tick(defs, instance, target, now: float, monkeypatch, cursor=None):  # type: ignore[no-untyped-def]
    monkeypatch.setattr("orderbook_pipeline.sensors.refresh.time.time", lambda: now)
    sensor = defs.resolve_sensor_def("refresh_sensor")
    with dg.build_sensor_context(
        instance=instance, resources={"capture_target": target}, cursor=cursor
    ) as ctx:
        return sensor(ctx)


def _this_hour() -> tuple[str, float]:
    """The hour in progress (the sensor watches real hours): its key and start in seconds."""
    start = time.time() // 3600 * 3600
    return hour_key(int(start * 1e6)), start


def _refresh_run(defs, instance, hour: str, status, final: bool = False) -> str:  # type: ignore[no-untyped-def]
    job = defs.resolve_job_def(REFRESH_JOB)
    run = instance.create_run_for_job(
        job_def=job,
        status=dg.DagsterRunStatus.NOT_STARTED,
        tags={PARTITION_TAG: hour, FINAL_TAG: "1" if final else "0"},
    )
    for event in (dg.DagsterEventType.RUN_START, *([status] if status else [])):
        instance.report_dagster_event(
            dg.DagsterEvent(event_type_value=event.value, job_name=job.name), run.run_id
        )
    return run.run_id


def test_the_sensor_requests_one_run_per_due_hour_and_reports_a_late_one_once(
    setup, monkeypatch
) -> None:
    defs, instance, target = setup
    current, start = _this_hour()
    # 20 minutes into the hour with no refresh at all: one is due, and it is late.
    result = _tick(defs, instance, target, start + 1200, monkeypatch, WATCHING_LONG)
    (request,) = [r for r in result.run_requests if r.partition_key == current]
    assert request.tags[FINAL_TAG] == "0"
    # The earlier hours (watched, never refreshed) are overdue too: each reported once.
    late = {e.partition: e for e in result.asset_events}
    assert current in late and len(late) == len(watched_hours(start + 1200, "2026-01-01-00:00"))
    assert {(e.check_name, e.passed) for e in late.values()} == {(JUDGED_IN_TIME, False)}
    # Recorded (as the daemon does) and with the cursor: not reported again.
    for event in late.values():
        instance.report_runless_asset_event(event)
    again = _tick(defs, instance, target, start + 1230, monkeypatch, result.cursor)
    assert not again.asset_events
    # With the cursor's list lost: the instance remembers (a second run-less evaluation fails).
    lost = _tick(defs, instance, target, start + 1230, monkeypatch, WATCHING_LONG)
    assert not lost.asset_events
    # A refresh running for the hour: nothing more is queued for it.
    _refresh_run(defs, instance, current, None)
    busy = _tick(defs, instance, target, start + 1260, monkeypatch, result.cursor)
    assert [r for r in busy.run_requests if r.partition_key == current] == []


def test_a_first_tick_mid_hour_reports_nothing_late_and_remembers_when_it_began(
    setup, monkeypatch
) -> None:
    defs, instance, target = setup
    current, start = _this_hour()
    first = _tick(defs, instance, target, start + 1200, monkeypatch)
    assert not first.asset_events
    assert [r.partition_key for r in first.run_requests if r.partition_key == current] == [current]
    assert json.loads(first.cursor or "{}")["since"] == start + 1200
    deadline = start + 1200 + settle_s(target.file_seconds) + 2 * target.refresh_interval_seconds
    later = _tick(defs, instance, target, deadline + 30, monkeypatch, first.cursor)
    assert current in {e.partition for e in later.asset_events}


def test_a_late_evaluation_says_why() -> None:
    evaluation = late_evaluation(HOUR, "no successful refresh of the hour yet, 900 s into it")
    assert not evaluation.passed and evaluation.partition == HOUR
    assert evaluation.asset_key == dg.AssetKey(["silver", "gap_windows"])
    assert "900 s" in (evaluation.description or "")
