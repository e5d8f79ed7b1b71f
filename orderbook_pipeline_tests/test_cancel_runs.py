"""The stop's first step: runs in flight canceled through the UI's GraphQL API."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import graphql
import pytest
from dagster_graphql.schema import create_schema

from orderbook_pipeline import cancel_runs
from orderbook_pipeline.jobs import CAPTURE_ROLE_TAG, RESEED_ROLE_TAG


@pytest.mark.parametrize("document", [cancel_runs.RUNS_QUERY, cancel_runs.TERMINATE])
def test_the_documents_are_valid_against_dagsters_own_schema(document: str) -> None:
    schema = create_schema().graphql_schema
    assert graphql.validate(schema, graphql.parse(document)) == []


def test_the_roles_left_to_their_own_sigint_handling_are_the_jobs_tags() -> None:
    tags = {**CAPTURE_ROLE_TAG}, {**RESEED_ROLE_TAG}
    assert {(cancel_runs.ROLE_TAG, role) for role in cancel_runs.ENDS_ON_SIGINT} == {
        next(iter(t.items())) for t in tags
    }


def _run(run_id: str, role: str | None, step_started: bool) -> dict[str, Any]:
    return {
        "runId": run_id,
        "status": "STARTED" if step_started or "starting" not in run_id else "STARTING",
        "tags": [{"key": "orderbook/role", "value": role}] if role else [],
        "stepStats": [{"startTime": 1.5 if step_started else None}],
    }


class _FakeUI(http.server.BaseHTTPRequestHandler):
    runs: list[dict[str, Any]] = []
    seen: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append(body)
        if "runsOrError" in body["query"]:
            data: dict[str, Any] = {"runsOrError": {"results": self.runs}}
        else:
            data = {
                "terminateRuns": {
                    "terminateRunResults": [
                        {"__typename": "TerminateRunSuccess", "run": {"runId": i}}
                        for i in body["variables"]["ids"]
                    ]
                }
            }
        out = json.dumps({"data": data}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def ui() -> Iterator[str]:
    _FakeUI.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeUI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_every_run_in_flight_is_canceled_but_a_capture_at_work(ui: str) -> None:
    _FakeUI.runs = [
        _run("refresh-at-work", "refresh", True),
        _run("refresh-starting", "refresh", False),
        _run("capture-at-work", "capture", True),  # ends on the SIGINT itself, as SUCCESS
        _run("capture-starting", "capture", False),  # its signal handling is not set up yet
        _run("reseed-at-work", "reseed", True),
        _run("backfill", None, False),
    ]
    canceled = cancel_runs.cancel_in_flight(ui)
    assert canceled == ["refresh-at-work", "backfill", "refresh-starting", "capture-starting"]
    query, safely, at_once = _FakeUI.seen
    assert query["variables"] == {"statuses": ["STARTING", "STARTED"]}
    # Dagster refuses a safe termination of a STARTING run: those are marked canceled at once.
    assert safely["variables"] == {"ids": canceled[:2], "policy": "SAFE_TERMINATE"}
    assert at_once["variables"] == {"ids": canceled[2:], "policy": "MARK_AS_CANCELED_IMMEDIATELY"}


def test_nothing_in_flight_sends_no_termination(ui: str) -> None:
    _FakeUI.runs = [_run("capture-at-work", "capture", True)]
    assert cancel_runs.cancel_in_flight(ui) == []
    assert len(_FakeUI.seen) == 1


def test_an_unreachable_ui_is_said_and_the_stop_goes_on(capsys: pytest.CaptureFixture[str]) -> None:
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeUI) as closed:
        port = closed.server_address[1]  # bound, then closed: nothing listens there
    assert cancel_runs.main([f"http://127.0.0.1:{port}"]) == 0
    assert "Runs in flight not canceled first" in capsys.readouterr().err
