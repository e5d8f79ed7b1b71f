"""Alerts: failed checks and failed runs reach a webhook on loopback, once each, with no secret
in the sensor's words; a receiver that fails gets the alert again on the next tick."""

from __future__ import annotations

import http.server
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest

from orderbook_pipeline.jobs import capture_job
from orderbook_pipeline.sensors.alerts import build_alerts_sensor
from orderbook_pipeline_tests.dagster_helpers import report_failed_check

HOUR = "2026-12-03-18:00"
SECRET = "T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX"  # what a Slack webhook URL's path holds


class _Receiver(http.server.BaseHTTPRequestHandler):
    bodies: list[dict[str, Any]] = []
    status = 200

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(type(self).status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    _Receiver.bodies, _Receiver.status = [], 200
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/services/{SECRET}"
    server.shutdown()
    server.server_close()


def _failed_check(instance: dg.DagsterInstance, failed: dict[str, dict[str, str]]) -> None:
    summary = "1 of 2 streams failed: binance-spot.BTCUSDT: 1 gap window(s): 1 gap"
    report_failed_check(instance, HOUR, failed, description=summary)


def _failed_run(instance: dg.DagsterInstance) -> str:
    run = instance.create_run_for_job(
        job_def=capture_job, status=dg.DagsterRunStatus.STARTED, tags={"dagster/partition": HOUR}
    )
    instance.report_run_failed(run, message="the burst could not keep its data safe: disk full")
    return run.run_id


def _tick(instance: dg.DagsterInstance, url: str, cursor: str | None) -> tuple[str, str | None]:
    sensor = build_alerts_sensor(url, 2.0)
    with dg.build_sensor_context(instance=instance, cursor=cursor) as ctx:
        result = sensor(ctx)
        return result.skip_message, ctx.cursor


def test_a_failed_check_and_a_failed_run_are_each_sent_once(
    webhook: str, caplog: pytest.LogCaptureFixture
) -> None:
    with dg.instance_for_test() as instance:
        _failed_check(instance, {"binance-spot": {"ETHUSDT": "old"}})  # before alerting began
        said, cursor = _tick(instance, webhook, None)
        assert _Receiver.bodies == [] and said == "no new failed check or run"

        _failed_check(instance, {"binance-spot": {"BTCUSDT": "g1"}})
        run_id = _failed_run(instance)
        with caplog.at_level(logging.DEBUG):
            said, cursor = _tick(instance, webhook, cursor)
        assert said == "2 of 2 alert(s) delivered"
        check, run = _Receiver.bodies
        assert check["kind"] == "check_failed" and check["fields"]["hour"] == HOUR
        assert check["fields"]["streams"] == ["binance-spot.BTCUSDT"]
        assert "sequence_continuity failed for hour 2026-12-03-18:00" in check["text"]
        assert "1 gap window(s)" in check["text"]
        assert run["kind"] == "run_failed" and run["fields"]["run_id"] == run_id
        assert "capture_job for hour 2026-12-03-18:00 failed" in run["text"]
        assert "disk full" in run["text"]

        # The hour judged again with the same failure, nothing new: nothing is sent again.
        _failed_check(instance, {"binance-spot": {"BTCUSDT": "g1"}})
        said, cursor = _tick(instance, webhook, cursor)
        assert len(_Receiver.bodies) == 2
        # New gaps in that hour: a new alert.
        _failed_check(instance, {"binance-spot": {"BTCUSDT": "g2"}})
        _tick(instance, webhook, cursor)
        assert len(_Receiver.bodies) == 3
    assert SECRET not in caplog.text and SECRET not in (cursor or "")


def test_an_alert_the_receiver_refused_is_sent_again(
    webhook: str, caplog: pytest.LogCaptureFixture
) -> None:
    with dg.instance_for_test() as instance:
        _, cursor = _tick(instance, webhook, None)
        _failed_run(instance)
        _Receiver.status = 500
        with caplog.at_level(logging.WARNING, logger="orderbook_pipeline.alerts"):
            said, cursor = _tick(instance, webhook, cursor)
        assert said == "0 of 1 alert(s) delivered; 1 kept to retry"
        assert "the webhook answered 500" in caplog.text and SECRET not in caplog.text
        _Receiver.status = 200
        said, cursor = _tick(instance, webhook, cursor)
        assert said == "1 of 1 alert(s) delivered"
        assert [b["kind"] for b in _Receiver.bodies] == ["run_failed", "run_failed"]


def test_an_unreachable_receiver_costs_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver) as closed:
        url = f"http://127.0.0.1:{closed.server_address[1]}/services/{SECRET}"
    with dg.instance_for_test() as instance:
        _, cursor = _tick(instance, url, None)
        _failed_run(instance)
        with caplog.at_level(logging.WARNING, logger="orderbook_pipeline.alerts"):
            said, _ = _tick(instance, url, cursor)
    assert said == "0 of 1 alert(s) delivered; 1 kept to retry"
    assert "not delivered: ConnectionRefusedError" in caplog.text and SECRET not in caplog.text


def test_without_a_webhook_the_sensor_says_so() -> None:
    with dg.instance_for_test() as instance:
        said, _ = _tick(instance, "", None)
    assert said == "no alerts.webhook_url configured: nobody to tell"
