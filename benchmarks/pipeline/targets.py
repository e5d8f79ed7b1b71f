"""The issue's targets, each judged from the headline figures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from benchmarks.pipeline.settings import (
    CLOSED_HOUR_TARGET_S,
    HOME_TARGET_MB_PER_STREAM_DAY,
    ORCHESTRATION_TARGET_PCT,
    QUEUE_SLACK,
    STOP_TARGET_S,
    UI_TARGET_S,
)


@dataclass(frozen=True)
class Target:
    name: str
    value: float | None
    unit: str
    target: str
    met: bool | None  # None: not observed in this run
    notes: str = ""

    @property
    def verdict(self) -> str:
        return {True: "MET", False: "NOT MET", None: "NOT OBSERVED"}[self.met]


def queue_bounded(series: Sequence[int]) -> bool:
    """Not growing: the last third of the samples never holds more queued runs than the
    earlier two thirds did, give or take QUEUE_SLACK (a refresh waiting behind a capture)."""
    if not series:
        return True
    split = max(1, (2 * len(series)) // 3)
    early, late = series[:split], series[split:]
    return max(late, default=0) <= max(early) + QUEUE_SLACK


@dataclass
class Headline:
    """The figures the targets judge (the rest of the report is context)."""

    interval_s: float
    drops_missing: int | None = None
    drops_in_span: int | None = None
    stall_resyncs: int | None = None
    resyncs_by_cause: dict[str, int] = field(default_factory=dict)
    lag_p95_s: dict[str, float | None] = field(default_factory=dict)  # silver, gap_windows, ...
    lag_notes: dict[str, str] = field(default_factory=dict)
    closed_hours_s: dict[str, float | None] = field(default_factory=dict)  # hour -> s (None: no
    # successful final refresh by the end)
    orchestration_pct: float | None = None
    orchestration_notes: str = ""
    queued: list[int] = field(default_factory=list)
    home_mb_per_stream_day: float | None = None
    home_notes: str = ""
    ui_p95_s: dict[str, float | None] = field(default_factory=dict)
    ui_notes: str = ""
    stop_s: float | None = None
    failed_runs: list[str] = field(default_factory=list)  # ended FAILURE
    canceled_runs: list[str] = field(default_factory=list)  # ended CANCELED (by the stop)
    stop_notes: str = ""


LAG_TITLES = {
    "silver": "bronze -> silver",
    "gap_windows": "bronze -> gap windows",
    "marts": "bronze -> marts",
    "checks": "bronze -> checks",
}


def targets(h: Headline) -> list[Target]:
    limit = 2 * h.interval_s
    rate = None
    if h.drops_missing is not None and h.drops_in_span:
        rate = h.drops_missing / h.drops_in_span
    out = [
        Target(
            "client drop rate",
            None if rate is None else rate * 1e6,
            "ppm",
            "0",
            None if rate is None else h.drops_missing == 0,
            f"{h.drops_missing} of {h.drops_in_span} sent events missing from every burst's "
            "diff lane",
        ),
        Target(
            "resyncs caused by stalls",
            h.stall_resyncs,
            "resyncs",
            "0",
            None if h.stall_resyncs is None else h.stall_resyncs == 0,
            f"all causes {h.resyncs_by_cause}",
        ),
    ]
    for kind, title in LAG_TITLES.items():
        value = h.lag_p95_s.get(kind)
        out.append(
            Target(
                f"{title} p95, hour in progress",
                value,
                "s",
                f"<= {limit:.0f} (2 x {h.interval_s:.0f})",
                None if value is None else value <= limit,
                h.lag_notes.get(kind, ""),
            )
        )
    observed = [v for v in h.closed_hours_s.values() if v is not None]
    pending = [hour for hour, v in h.closed_hours_s.items() if v is None]
    worst = max(observed, default=None)
    met: bool | None = None
    if pending:
        met = False
    elif observed:
        met = worst is not None and worst <= CLOSED_HOUR_TARGET_S
    out.append(
        Target(
            "closed hour: end -> final refresh done",
            worst,
            "s",
            f"<= {CLOSED_HOUR_TARGET_S:.0f}",
            met,
            (
                ", ".join(
                    f"{hour}: {'no final refresh' if v is None else f'{v:.0f} s'}"
                    for hour, v in h.closed_hours_s.items()
                )
                or "no hour closed during the run"
            ),
        )
    )
    out += [
        Target(
            "orchestration CPU",
            h.orchestration_pct,
            "% of one core",
            f"<= {ORCHESTRATION_TARGET_PCT:.0f}",
            None if h.orchestration_pct is None else h.orchestration_pct <= 50,
            h.orchestration_notes,
        ),
        Target(
            "queued runs",
            max(h.queued, default=None),
            "runs (max)",
            "bounded, not growing",
            None if not h.queued else queue_bounded(h.queued),
            f"samples {h.queued}" if len(h.queued) <= 60 else f"{len(h.queued)} samples",
        ),
        Target(
            "DAGSTER_HOME growth",
            h.home_mb_per_stream_day,
            "MB/stream-day",
            f"<= {HOME_TARGET_MB_PER_STREAM_DAY:g}",
            None
            if h.home_mb_per_stream_day is None
            else h.home_mb_per_stream_day <= HOME_TARGET_MB_PER_STREAM_DAY,
            h.home_notes,
        ),
    ]
    for name, value in h.ui_p95_s.items():
        out.append(
            Target(
                f"UI {name} query p95",
                value,
                "s",
                f"< {UI_TARGET_S:g}",
                None if value is None else value < UI_TARGET_S,
                h.ui_notes,
            )
        )
    out += [
        Target(
            "stop: Ctrl-C as run.sh -> all processes gone",
            h.stop_s,
            "s",
            f"< {STOP_TARGET_S:g}",
            None if h.stop_s is None and not h.stop_notes else _lt(h.stop_s, STOP_TARGET_S),
            h.stop_notes,
        ),
        Target(
            "failed runs",
            len(h.failed_runs),
            "runs ended FAILURE",
            "0",
            not h.failed_runs,
            (", ".join(h.failed_runs[:10]) or "none")
            + (
                f"; CANCELED (not counted): {', '.join(h.canceled_runs)}" if h.canceled_runs else ""
            ),
        ),
    ]
    return out


def _lt(value: float | None, limit: float) -> bool:
    return value is not None and value < limit
