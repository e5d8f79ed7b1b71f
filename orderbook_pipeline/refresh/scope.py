"""What one hour's refresh covers: the configured venues and symbols, their lanes and depths,
and the time up to which the hour has settled (compaction/parts.py)."""

from __future__ import annotations

from dataclasses import dataclass

from orderbook_pipeline.capture.settings import default_lanes, written_lanes
from orderbook_pipeline.compaction.parts import settled_cut
from orderbook_pipeline.config import PipelineConfig
from orderbook_pipeline.lanes.registry import LANES
from orderbook_pipeline.storage.layout import HOUR_US
from orderbook_pipeline.venues import VENUES, SyncRule

KLINES = "klines"  # fetched over REST by its own asset; compacted with the other lanes


@dataclass(frozen=True)
class VenueScope:
    venue: str
    symbols: tuple[str, ...]
    lanes: tuple[str, ...]  # silver lanes: every bronze lane its bursts write, and klines
    depths: tuple[int, ...]  # of the l2 lane, ascending
    sync_rule: SyncRule


@dataclass(frozen=True)
class HourScope:
    hour_start_us: int
    now_us: int
    cut_us: int  # rows before this have settled: compacted and judged
    venues: tuple[VenueScope, ...]

    @property
    def hour_end_us(self) -> int:
        return self.hour_start_us + HOUR_US

    @property
    def closed(self) -> bool:
        """The hour is over and its last files have landed: this refresh is its final one."""
        return self.cut_us >= self.hour_end_us

    def streams(self) -> int:
        return sum(len(v.symbols) for v in self.venues)


def venue_scopes(config: PipelineConfig) -> tuple[VenueScope, ...]:
    out = []
    for name, section in config.venues.items():
        venue = VENUES[name]
        lanes = tuple(section.lanes) if section.lanes is not None else default_lanes(venue)
        out.append(
            VenueScope(
                venue=name,
                symbols=tuple(section.symbols),
                lanes=(*written_lanes(lanes), KLINES),
                depths=tuple(sorted(set(section.depths))),
                sync_rule=venue.sync_rule,
            )
        )
    return tuple(out)


def hour_scope(
    config: PipelineConfig, hour_start_us: int, now_us: int, until_us: int | None = None
) -> HourScope:
    """The refresh of one hour at `now_us`: settled up to `settled_cut`, or up to `until_us`
    when given (a caller who knows no capture writes into the hour any more)."""
    hour_end = hour_start_us + HOUR_US
    if until_us is None:
        cut = settled_cut(now_us, hour_start_us, hour_end, config.capture.file_seconds)
    else:
        cut = max(hour_start_us, min(hour_end, until_us))
    return HourScope(hour_start_us, now_us, cut, venue_scopes(config))


def silver_lanes(config: PipelineConfig) -> tuple[str, ...]:
    """Every silver lane some configured venue fills, in the registry's order."""
    used = {lane for scope in venue_scopes(config) for lane in scope.lanes}
    return tuple(lane for lane in LANES if lane in used)
