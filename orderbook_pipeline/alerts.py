"""Telling a person: one JSON POST per alert to the configured webhook (`alerts.webhook_url`).

The body is `{"text": …, "kind": …, …}`: a Slack (or Mattermost, Rocket.Chat, Teams workflow)
incoming webhook shows `text` as the message, and any other receiver gets the fields as well.
The URL carries the receiver's secret: it is never logged, and never in Dagster metadata or a
resource's configuration (the UI shows those). A receiver that fails or is slow costs one
bounded request and a log line; the sensor sending it goes on (sensors/alerts.py).
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Any

log = logging.getLogger("orderbook_pipeline.alerts")


@dataclass(frozen=True)
class Alert:
    kind: str  # check_failed | run_failed
    title: str
    details: list[str] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        text = "\n".join([f"orderbook_pipeline: {self.title}", *self.details])
        return {"text": text, **asdict(self)}


def check_failed(check: str, asset: str, hour: str, summary: str, failed: dict[str, Any]) -> Alert:
    streams = [
        f"{venue}.{symbol}" for venue, symbols in sorted(failed.items()) for symbol in symbols
    ]
    return Alert(
        kind="check_failed",
        title=f"check {check} failed for hour {hour} ({asset})",
        details=[summary] + ([f"streams: {', '.join(streams)}"] if streams else []),
        fields={"check": check, "asset": asset, "hour": hour, "streams": streams},
    )


def run_failed(job: str, run_id: str, message: str, partition: str | None) -> Alert:
    where = f" for hour {partition}" if partition else ""
    return Alert(
        kind="run_failed",
        title=f"run {job}{where} failed ({run_id[:8]})",
        details=[message] if message else [],
        fields={"job": job, "run_id": run_id, "partition": partition},
    )


def send(url: str, alert: Alert, timeout_s: float) -> bool:
    """POST the alert; False (and a log line without the URL) if the receiver did not take it.

    The standard library's urllib, not httpx: httpx logs every request's full URL at INFO, and
    this URL is the receiver's secret."""
    request = urllib.request.Request(
        url, json.dumps(alert.body()).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            status = answer.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:  # URLError, timeouts, refused; a malformed URL
        reason = getattr(exc, "reason", exc)
        log.warning("alert %r not delivered: %s", alert.title, type(reason).__name__)
        return False
    if status >= 300:
        log.warning("alert %r not delivered: the webhook answered %d", alert.title, status)
        return False
    return True
