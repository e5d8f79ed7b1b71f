"""Cancel the runs in flight through the Dagster UI's GraphQL API: the first step of a stop.

scripts/run.sh (and the benchmark's stack, which stops as it does) calls this before the
SIGINT. Dagster records a run its SIGINT interrupts as FAILURE ("interrupted unexpectedly. No
user initiated termination request was found") unless the run was asked to terminate first: a
refresh that the stop reached while it was starting showed red in the UI after every Ctrl-C.
Asked first, the run ends CANCELED; what a refresh wrote stays consistent, and the next one
completes the hour.

Only the standard library, and run as `python -m orderbook_pipeline.cancel_runs URL`: it must
answer within the stop's budget (10 s for everything), so it imports neither Dagster nor the
pipeline. Best effort: an unreachable or slow UI is said in one line, and the stop goes on.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any

# Launched runs only: a queued one is not interrupted by the stop and starts with the next
# `make run` (the queue is Dagster's to keep).
IN_FLIGHT = ("STARTING", "STARTED")
# A capture or reseed run whose step is under way ends on the SIGINT by itself, every file
# final, as SUCCESS (jobs.py, stop_on_signals): it is left alone. Their tag, as jobs.py sets it.
ROLE_TAG = "orderbook/role"
ENDS_ON_SIGINT = ("capture", "reseed")
RUNS_QUERY = """
query InFlight($statuses: [RunStatus!]) {
  runsOrError(filter: {statuses: $statuses}) {
    ... on Runs { results { runId status tags { key value } stepStats { startTime } } }
  }
}"""
# Dagster refuses SAFE_TERMINATE for a STARTING run: it is marked canceled at once instead, and
# its worker then does not start the execution (or, interrupted, leaves the run CANCELED).
POLICIES = {"STARTED": "SAFE_TERMINATE", "STARTING": "MARK_AS_CANCELED_IMMEDIATELY"}
TERMINATE = """
mutation Cancel($ids: [String!]!, $policy: TerminateRunPolicy) {
  terminateRuns(runIds: $ids, terminatePolicy: $policy) {
    ... on TerminateRunsResult {
      terminateRunResults {
        __typename
        ... on TerminateRunSuccess { run { runId } }
        ... on TerminateRunFailure { message }
        ... on PythonError { message }
      }
    }
    ... on PythonError { message }
  }
}"""
DEFAULT_TIMEOUT_S = 3.0  # both requests together


def _post(url: str, query: str, variables: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    body = json.dumps({"query": query, "variables": variables}).encode()
    request = urllib.request.Request(
        url.rstrip("/") + "/graphql", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=max(0.1, timeout_s)) as response:
        answer: dict[str, Any] = json.loads(response.read())
    if answer.get("errors"):
        raise ValueError(f"GraphQL errors: {answer['errors']}")
    return answer["data"] or {}


def _to_cancel(run: dict[str, Any]) -> bool:
    role = next((t["value"] for t in run.get("tags", []) if t["key"] == ROLE_TAG), None)
    working = any(step.get("startTime") for step in run.get("stepStats", []))
    return not (role in ENDS_ON_SIGINT and working)


def cancel_in_flight(ui_url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> list[str]:
    """Ask Dagster to terminate every STARTING or STARTED run; the ids it accepted."""
    deadline = time.monotonic() + timeout_s
    found = _post(ui_url, RUNS_QUERY, {"statuses": list(IN_FLIGHT)}, timeout_s)
    runs = [r for r in (found.get("runsOrError") or {}).get("results", []) if _to_cancel(r)]
    accepted = []
    for status, policy in POLICIES.items():
        ids = [r["runId"] for r in runs if r.get("status") == status]
        if not ids:
            continue
        variables = {"ids": ids, "policy": policy}
        done = _post(ui_url, TERMINATE, variables, deadline - time.monotonic())
        outcome = done.get("terminateRuns") or {}
        if "message" in outcome:
            raise ValueError(outcome["message"])
        for result in outcome.get("terminateRunResults", []):
            if result.get("__typename") == "TerminateRunSuccess":
                accepted.append(result["run"]["runId"])
            else:
                print(f"run not canceled: {result.get('message')}", file=sys.stderr)
    return accepted


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m orderbook_pipeline.cancel_runs UI_URL", file=sys.stderr)
        return 2
    try:
        ids = cancel_in_flight(args[0])
    except (OSError, ValueError, KeyError, TypeError) as exc:  # URLError is an OSError
        print(f"Runs in flight not canceled first ({args[0]}: {exc}).", file=sys.stderr)
        return 0
    if ids:
        print(
            f"Canceled {len(ids)} run(s) in flight: {', '.join(i[:8] for i in ids)}",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
