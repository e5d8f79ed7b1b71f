"""Alerts: each failed check evaluation and each failed run, sent to a person once.

The sensor reads the check evaluations and run failures recorded since its cursor (the newest
it has seen of each, so a history that existed before alerting was configured is not sent),
and sends one alert for each (alerts.py). An hour whose refresh fails the same check on the
same streams again is not sent again: the sensor keeps the most recent few hundred (check,
hour, streams) it sent. Without `alerts.webhook_url` it says so and does nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

import dagster as dg

from orderbook_pipeline import alerts
from orderbook_pipeline.assets.keys import silver_key
from orderbook_pipeline.checks.specs import CHECKS
from orderbook_pipeline.dagster_private import AssetCheckExecutionRecordStatus
from orderbook_pipeline.sensors.reseed import FAILED_STREAMS, failed_streams_of

LOOKBACK = 100  # failed evaluations per check, run failures, read each tick
REMEMBERED = 500  # (check, hour, streams) sent, kept against repeats
UNDELIVERED = 100  # alerts the webhook did not take, retried on the next ticks (the newest)


def _signature(check: str, hour: str | None, failed: dict[str, Any]) -> str:
    identity = json.dumps([check, hour, failed], sort_keys=True)
    return hashlib.sha1(identity.encode()).hexdigest()[:16]


def _check_alerts(instance: dg.DagsterInstance, state: dict[str, Any]) -> list[alerts.Alert]:
    storage = instance.event_log_storage
    out = []
    for check in CHECKS:
        key = dg.AssetCheckKey(silver_key(check.asset), check.name)
        records = storage.get_asset_check_execution_history(
            key, limit=LOOKBACK, status={AssetCheckExecutionRecordStatus.FAILED}
        )
        seen = state["checks"].get(check.name)
        newest = max((r.id for r in records), default=seen or 0)
        state["checks"][check.name] = max(newest, seen or 0)
        if seen is None:  # the first tick: from here on
            continue
        for rec in sorted(records, key=lambda r: r.id):
            if rec.id <= seen or rec.evaluation is None:
                continue
            metadata = dict(rec.evaluation.metadata)
            failed = failed_streams_of(metadata) if FAILED_STREAMS in metadata else {}
            signature = _signature(check.name, rec.partition, failed)
            if signature in state["sent"]:
                continue
            state["sent"].append(signature)
            out.append(
                alerts.check_failed(
                    check.name,
                    f"silver/{check.asset}",
                    rec.partition or "-",
                    rec.evaluation.description or "",
                    failed,
                )
            )
    del state["sent"][:-REMEMBERED]
    return out


def _run_alerts(instance: dg.DagsterInstance, state: dict[str, Any]) -> list[alerts.Alert]:
    first = state["runs"] is None
    found = instance.fetch_run_status_changes(
        dg.RunStatusChangeRecordsFilter(
            dg.DagsterEventType.RUN_FAILURE, after_storage_id=state["runs"]
        ),
        limit=LOOKBACK,
        ascending=not first,
    )
    if first:  # the first tick: the newest failure is where alerting starts
        state["runs"] = max((r.storage_id for r in found.records), default=0)
        return []
    out = []
    for record in found.records:
        state["runs"] = max(state["runs"], record.storage_id)
        run = instance.get_run_by_id(record.run_id)
        if run is None:
            continue
        message = record.event_log_entry.message or ""
        out.append(
            alerts.run_failed(run.job_name, run.run_id, message, run.tags.get("dagster/partition"))
        )
    return out


def build_alerts_sensor(webhook_url: str, timeout_s: float) -> dg.SensorDefinition:
    """The sensor of a deployment; `webhook_url` stays inside it (never shown in the UI)."""

    @dg.sensor(
        name="alerts_sensor",
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Sends each failed check evaluation and each failed run to alerts.webhook_url "
        "(one JSON POST each, Slack-compatible), once.",
    )
    def alerts_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        if not webhook_url:
            return dg.SkipReason("no alerts.webhook_url configured: nobody to tell")
        state: dict[str, Any] = {"checks": {}, "runs": None, "sent": [], "undelivered": []}
        if context.cursor:
            state.update(json.loads(context.cursor))
        pending = [alerts.Alert(**a) for a in state["undelivered"]]
        pending += _check_alerts(context.instance, state) + _run_alerts(context.instance, state)
        failed = [a for a in pending if not alerts.send(webhook_url, a, timeout_s)]
        state["undelivered"] = [dataclasses.asdict(a) for a in failed[-UNDELIVERED:]]
        context.update_cursor(json.dumps(state))
        if not pending:
            return dg.SkipReason("no new failed check or run")
        return dg.SkipReason(
            f"{len(pending) - len(failed)} of {len(pending)} alert(s) delivered"
            + (f"; {len(failed)} kept to retry" if failed else "")
        )

    return alerts_sensor
