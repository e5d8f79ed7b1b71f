"""An hour's verdict per check, from its streams' verdicts: pure, no Dagster.

A check passes for the hour when every stream it judged passed. The verdict names the streams
that failed (with each one's summary and signature, which the reseed sensor reads) and sums up
the streams' numbers: integer counts add up, fractions (coverage) keep the worst stream's
(`min_<name>`); with one stream, its own numbers are given as they are.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from orderbook_pipeline.checks.logic import CheckOutcome
from orderbook_pipeline.compaction.gaps import EXCHANGE_SIDE_CAUSES
from orderbook_pipeline.refresh.stream import SIGNATURE, CheckKey, StreamReport

MAX_LISTED = 50  # failing streams listed with their summaries (all are in failed_streams)


@dataclass(frozen=True)
class HourVerdict:
    passed: bool
    summary: str
    totals: dict[str, Any]  # the streams' numbers, summed (ints) or worst (floats)
    failures: list[dict[str, str]] = field(default_factory=list)  # stream, summary
    # venue -> symbol -> signature of what failed: the reseed's input
    failed_streams: dict[str, dict[str, str]] = field(default_factory=dict)
    judged: int = 0


def hour_verdict(key: CheckKey, streams: list[StreamReport]) -> HourVerdict | None:
    """The hour's verdict of one check, or None when no stream was judged by it."""
    judged = [(s, s.checks[key]) for s in streams if key in s.checks]
    if not judged:
        return None
    failed = [(s, o) for s, o in judged if not o.passed]
    failures = [{"stream": s.stream, "summary": o.summary} for s, o in failed[:MAX_LISTED]]
    by_venue: dict[str, dict[str, str]] = {}
    for s, o in failed:
        by_venue.setdefault(s.venue, {})[s.symbol] = str(o.metadata.get(SIGNATURE, ""))
    totals = _totals([o for _s, o in judged])
    if not failed:
        summary = (
            f"all {len(judged)} stream(s): {judged[0][1].summary}"
            if len(judged) == 1
            else (f"all {len(judged)} streams passed")
        )
        return HourVerdict(True, summary, totals, [], {}, len(judged))
    first = failed[0]
    summary = (
        f"{len(failed)} of {len(judged)} stream(s) failed; {first[0].stream}: {first[1].summary}"
    )
    return HourVerdict(False, summary, totals, failures, by_venue, len(judged))


def exchange_side_only(totals: dict[str, Any]) -> bool:
    """The hour's gap windows (the continuity check's `causes_<cause>` counts) all have an
    exchange-side cause, and there is at least one."""
    counts = {k.removeprefix("causes_"): v for k, v in totals.items() if k.startswith("causes_")}
    ours = sum(n for cause, n in counts.items() if cause not in EXCHANGE_SIDE_CAUSES)
    return bool(ours == 0 and sum(counts.values()) > 0)


def _totals(outcomes: list[CheckOutcome]) -> dict[str, Any]:
    """The streams' numbers as one: counts add up, fractions keep the worst (`min_<name>`),
    and what describes one item (first_*, last_*: an id, a time) is the first failed
    stream's, else the first stream's."""
    if len(outcomes) == 1:  # one stream: its numbers as they are
        return {k: v for k, v in outcomes[0].metadata.items() if k != SIGNATURE and v is not None}
    failed = [o for o in outcomes if not o.passed]
    describing = (failed or outcomes)[0].metadata
    sums: Counter[str] = Counter()
    worst: dict[str, float] = {}
    for o in outcomes:
        for name, value in o.metadata.items():
            if name == SIGNATURE or name.startswith(("first_", "last_")):
                continue
            if isinstance(value, bool):
                continue
            if isinstance(value, int):
                sums[name] += value
            elif isinstance(value, float):
                worst[name] = min(worst.get(name, value), value)
    items = {
        k: v for k, v in describing.items() if k.startswith(("first_", "last_")) and v is not None
    }
    return {**dict(sums), **{f"min_{k}": v for k, v in worst.items()}, **items}
