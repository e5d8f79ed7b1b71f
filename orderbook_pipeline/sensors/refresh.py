"""When hours are refreshed, and when an hour that was not is reported late.

The hour in progress is refreshed every `refresh_interval_seconds`; a closed hour once more when
its last files have settled (parts.settled_cut), and again if bronze of it is reported after
that (a reseed, a late burst). Never two refreshes of one hour at once, so the queue holds at
most one run per hour it looks at, however slow the machine.

An hour whose verdicts are overdue (no successful refresh within two intervals while it runs,
none within five minutes of its settling once closed) gets a failed `judged_in_time` check from
this sensor itself: a refresh that cannot run or keeps failing is visible, not silent. Deadlines
count from the hour's start, or from the sensor's first tick if that is later (kept in its
cursor): a deployment started mid-hour is not late for the minutes before it existed, but one
stopped and started again is, for the hours it missed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import dagster as dg

from orderbook_pipeline.assets.keys import GAP_WINDOWS_KEY, bronze_key
from orderbook_pipeline.compaction.parts import SETTLE_MARGIN_S
from orderbook_pipeline.dagster_private import PartitionKeyFilter
from orderbook_pipeline.partitions import hour_key, hour_start_of
from orderbook_pipeline.resources import CaptureTarget
from orderbook_pipeline.sensors.runs import ACTIVE_STATUSES, FINAL_TAG, PARTITION_TAG
from orderbook_pipeline.storage.layout import HOUR_US

LOOKBACK_HOURS = 3  # closed hours still watched for their final refresh and late bronze
CLOSED_DEADLINE_S = 300.0  # a closed, settled hour must be judged within this
RUNS_PER_HOUR = 25  # newest refresh runs of an hour read per tick (12 an hour at 5 min)
JUDGED_IN_TIME = "judged_in_time"


@dataclass(frozen=True)
class HourRuns:
    """What the instance says about one hour's refresh runs."""

    active: bool = False
    last_requested_s: float | None = None  # creation of the newest refresh run of the hour
    last_success_start_s: float | None = None  # start of the newest successful one
    final_success_start_s: float | None = None  # start of the newest successful final one
    late_bronze: bool = False  # bronze reported after that final refresh started


@dataclass(frozen=True)
class Due:
    hour: str
    final: bool
    reason: str


def settle_s(file_seconds: float) -> float:
    return file_seconds + SETTLE_MARGIN_S


def watched_hours(now_s: float, first_hour: str) -> list[str]:
    """The hour in progress and the LOOKBACK_HOURS before it (never before the first)."""
    current = int(now_s // 3600) * 3600 * 1_000_000
    first = hour_start_of(first_hour)
    return [
        hour_key(h)
        for h in range(current - LOOKBACK_HOURS * HOUR_US, current + 1, HOUR_US)
        if h >= first
    ]


def due_refreshes(
    now_s: float, interval_s: float, settle: float, hours: dict[str, HourRuns]
) -> list[Due]:
    """The hours to refresh now, oldest first."""
    out = []
    for hour, runs in sorted(hours.items()):
        if runs.active:
            continue
        start = hour_start_of(hour) / 1e6
        end = start + 3600
        since = None if runs.last_requested_s is None else now_s - runs.last_requested_s
        if now_s < end:  # in progress: every interval, once something has settled
            if now_s - settle > start and (since is None or since >= interval_s):
                out.append(Due(hour, False, "hour in progress"))
        elif now_s >= end + settle:  # closed and settled
            final_asked = (
                runs.last_requested_s is not None and runs.last_requested_s >= end + settle
            )
            if runs.final_success_start_s is None:
                if not final_asked or (since is not None and since >= interval_s):
                    out.append(Due(hour, True, "hour closed, its files have landed"))
            elif runs.late_bronze and (since is None or since >= min(interval_s, 60.0)):
                out.append(Due(hour, True, "bronze landed after its final refresh"))
    return out


def overdue(
    now_s: float,
    interval_s: float,
    settle: float,
    hour: str,
    runs: HourRuns,
    watching_since_s: float = 0.0,
) -> str | None:
    """Why the hour's verdicts are late, or None if they are not. `watching_since_s`: the
    sensor's first tick; nothing is due before it."""
    start = hour_start_of(hour) / 1e6
    end = start + 3600
    if now_s >= end + settle:
        deadline = max(end, watching_since_s) + settle + CLOSED_DEADLINE_S
        if runs.final_success_start_s is None and now_s > deadline:
            return f"hour closed {now_s - end:.0f} s ago and has no successful final refresh"
        return None
    last = runs.last_success_start_s
    if last is None:
        if now_s - max(start, watching_since_s) > settle + 2 * interval_s:
            return f"no successful refresh of the hour yet, {now_s - start:.0f} s into it"
        return None
    if now_s - last > 2 * interval_s:
        return f"last successful refresh started {now_s - last:.0f} s ago (interval {interval_s:.0f} s)"
    return None


def hour_runs(instance: dg.DagsterInstance, job_name: str, hour: str, lanes: list[str]) -> HourRuns:
    records = instance.get_run_records(
        filters=dg.RunsFilter(job_name=job_name, tags={PARTITION_TAG: hour}), limit=RUNS_PER_HOUR
    )
    if not records:
        return HourRuns()
    success = [r for r in records if r.dagster_run.status == dg.DagsterRunStatus.SUCCESS]
    finals = [r for r in success if r.dagster_run.tags.get(FINAL_TAG) == "1"]
    final_start = max((r.start_time or 0.0 for r in finals), default=None)
    late = final_start is not None and _bronze_after(instance, hour, lanes, final_start)
    return HourRuns(
        active=any(r.dagster_run.status in ACTIVE_STATUSES for r in records),
        last_requested_s=max(r.create_timestamp.timestamp() for r in records),
        last_success_start_s=max((r.start_time or 0.0 for r in success), default=None),
        final_success_start_s=final_start,
        late_bronze=late,
    )


def _bronze_after(
    instance: dg.DagsterInstance, hour: str, lanes: list[str], after_s: float
) -> bool:
    """Did a capture report bronze of the hour after `after_s` (the refresh's own records of
    the lake do not count)?"""
    for lane in lanes:
        found = instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=bronze_key(lane), asset_partitions=[hour], after_timestamp=after_s
            ),
            limit=5,
        )
        for record in found.records:
            mat = record.asset_materialization
            if mat is not None and "reported_by" not in mat.metadata:
                return True
    return False


def reported_late_before(instance: dg.DagsterInstance, hour: str) -> bool:
    """Has this sensor reported the hour late already? Dagster stores one run-less evaluation
    per check and partition only (a second raises), so an hour is reported late at most once;
    the refresh runs report it judged (or not) as often as they run."""
    history = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(GAP_WINDOWS_KEY, JUDGED_IN_TIME),
        limit=RUNS_PER_HOUR,
        partition_filter=PartitionKeyFilter(key=hour),
    )
    return any(not record.run_id for record in history)


def late_evaluation(hour: str, why: str) -> dg.AssetCheckEvaluation:
    return dg.AssetCheckEvaluation(
        asset_key=GAP_WINDOWS_KEY,
        check_name=JUDGED_IN_TIME,
        passed=False,
        partition=hour,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"not judged in time: {why}",
        metadata={"reported_by": "refresh_sensor", "why": why},
    )


def build_refresh_sensor(
    refresh_job: dg.UnresolvedAssetJobDefinition, first_hour: str, bronze_lanes: list[str]
) -> dg.SensorDefinition:
    @dg.sensor(
        job=refresh_job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Refreshes the hour in progress every orchestration.refresh_interval_seconds "
        "and each closed hour once its files have landed (again if bronze lands later); reports "
        "an hour whose verdicts are overdue as a failed judged_in_time check.",
    )
    def refresh_sensor(
        context: dg.SensorEvaluationContext, capture_target: CaptureTarget
    ) -> dg.SensorResult:
        now = time.time()
        interval = capture_target.refresh_interval_seconds
        settle = settle_s(capture_target.file_seconds)
        hours = {
            h: hour_runs(context.instance, refresh_job.name, h, bronze_lanes)
            for h in watched_hours(now, first_hour)
        }
        state = json.loads(context.cursor) if context.cursor else {}
        reported = set(state.get("late", []))
        since = float(state.get("since", now))
        events = []
        for hour, runs in hours.items():
            why = overdue(now, interval, settle, hour, runs, since)
            if why is None:
                reported.discard(hour)
            elif hour not in reported:
                reported.add(hour)
                if not reported_late_before(context.instance, hour):
                    events.append(late_evaluation(hour, why))
        requests = [
            dg.RunRequest(
                run_key=f"refresh-{due.hour}-{now:.0f}",
                partition_key=due.hour,
                tags={FINAL_TAG: "1" if due.final else "0", "orderbook/why": due.reason},
            )
            for due in due_refreshes(now, interval, settle, hours)
        ]
        cursor = json.dumps({"late": sorted(reported & set(hours)), "since": since})
        if not requests:
            waiting = ", ".join(
                f"{h}: {'running' if r.active else 'up to date'}" for h, r in hours.items()
            )
            return dg.SensorResult(
                skip_reason=waiting or "no hour to refresh", cursor=cursor, asset_events=events
            )
        return dg.SensorResult(run_requests=requests, cursor=cursor, asset_events=events)

    return refresh_sensor
