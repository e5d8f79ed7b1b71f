"""Every hourly check: its name, the silver asset it judges, what it says, whether a failure
starts a reseed: the gap windows' here, each lane's with the lane (lanes/). Judged per stream by the refresh (refresh/stream.py), reported per hour with
the failing streams named (assets/refresh.py)."""

from __future__ import annotations

from dataclasses import dataclass

from orderbook_pipeline.lanes.registry import LANES

GAP_WINDOWS = "gap_windows"  # the silver asset of the hour's gap windows (not a bronze lane)


@dataclass(frozen=True)
class CheckSpec:
    name: str
    asset: str  # a silver lane, or GAP_WINDOWS
    description: str
    reseeds: bool = False  # a failure starts fresh snapshots of the failed streams

    @property
    def key(self) -> tuple[str, str]:
        return (self.asset, self.name)


CHECKS = (
    CheckSpec(
        "sequence_continuity",
        GAP_WINDOWS,
        "No loss of book continuity anywhere in the hour, seams between bursts included: "
        "fails on any gap window, and names its cause.",
        reseeds=True,
    ),
    CheckSpec(
        "coverage",
        GAP_WINDOWS,
        "Seconds of in-sync book / the hour's elapsed seconds, at least capture."
        "coverage_threshold, for every configured stream (one with no data at all fails).",
        reseeds=True,
    ),
    CheckSpec(
        "judged_in_time",
        GAP_WINDOWS,
        "Every configured stream of the hour was judged by a refresh, in time: within two "
        "refresh intervals while the hour runs, within five minutes once it has closed. Fails "
        "when a refresh is overdue or a stream could not be judged (the error is named).",
    ),
    # The checks of the lanes' silver, each defined with its lane (lanes/).
    *(
        CheckSpec(check.name, spec.name, check.description, check.reseeds)
        for spec in LANES.values()
        for check in spec.checks
    ),
)
RESEED_CHECKS = tuple(c for c in CHECKS if c.reseeds)


def checks_on(assets: set[str] | frozenset[str]) -> tuple[CheckSpec, ...]:
    """The checks whose asset is among `assets` (silver lanes and GAP_WINDOWS)."""
    return tuple(c for c in CHECKS if c.asset in assets)
