"""The configuration's shape (pydantic) and the venue rules it must satisfy.

Types and plain ranges are pydantic's job; every venue-specific rule (lanes a venue publishes,
partial-depth sizes, snapshot limits, band percentages) is checked by building the burst's own
CaptureSettings, so the rules live once, in capture/settings.py and venues.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from orderbook_pipeline.capture.settings import WEIGHT_SAFETY, CaptureSettings, default_lanes
from orderbook_pipeline.core.klines import INTERVALS as KLINE_INTERVALS
from orderbook_pipeline.storage.roots import open_store
from orderbook_pipeline.storage.store import DEFAULT_ROOT, Store
from orderbook_pipeline.venues import VENUES, normalised_symbols

# The bundled exchange's port per venue: a multi-venue file needs no port settings.
DEFAULT_SIM_PORTS = {"binance-spot": 9443, "binance-usdm": 9444, "binance-us": 9445}
SIM_HOST = "127.0.0.1"  # the bundled exchange listens on loopback only


class Section(BaseModel):
    # A typo'd key is an error naming it, never a silently ignored setting.
    model_config = ConfigDict(extra="forbid")


class CaptureSection(Section):
    """Burst scheduling of the Dagster capture sensor (and the CLI's defaults)."""

    burst_seconds: float = Field(default=300.0, gt=0)
    # The next burst starts this long before the running one ends (lengthened automatically to
    # cover the next burst's snapshot bootstrap, up to half a burst).
    overlap_seconds: float = Field(default=60.0, ge=0)
    file_seconds: float = Field(default=60.0, gt=0)  # bronze files roll this often
    coverage_threshold: float = Field(default=0.99, ge=0, le=1)
    # A burst that captured nothing of a requested symbol (unknown, rate-limited, silent) fails:
    # the CLI exits 3, the Dagster run fails. True accepts it (the summary still names them).
    allow_empty_symbols: bool = False
    # Which core keeps the books and encodes the L2 records (core/implementation.py): the
    # compiled one when it was built (auto), or always one of them. Both write the same bytes.
    core: Literal["auto", "compiled", "python"] = "auto"


class MartSection(Section):
    time_basis: Literal["exchange", "receive"] = "exchange"


class AlertsSection(Section):
    """Where failed checks and runs are sent (sensors/alerts.py)."""

    # A URL taking JSON POSTs ({"text": …, …}; a Slack incoming webhook as it is). It holds the
    # receiver's secret: set it through OBP__ALERTS__WEBHOOK_URL rather than a committed file.
    webhook_url: str = ""
    timeout_seconds: float = Field(default=5.0, gt=0, le=60)


class OrchestrationSection(Section):
    """How Dagster keeps derived data current and its own history bounded."""

    # The hour in progress is refreshed (silver, gap windows, marts, checks) this often; a
    # closed hour once more when its last files have landed.
    refresh_interval_seconds: float = Field(default=300.0, ge=30)
    # A capture burst reports its bronze files to Dagster at most this often per lane and hour
    # (and once more when the hour closes, and when the burst ends).
    report_interval_seconds: float = Field(default=180.0, ge=1)
    # First hourly partition, "YYYY-MM-DD-HH:00" (UTC). Empty: the hour Dagster first loaded
    # this project with its DAGSTER_HOME (remembered there).
    partitions_start: str = ""
    # Finished runs older than this are deleted, except the latest refresh of each hour (it
    # holds the hour's status); sensor ticks follow dagster.yaml's retention settings.
    run_retention_hours: float = Field(default=24.0, gt=0)

    @field_validator("partitions_start")
    @classmethod
    def _hour(cls, value: str) -> str:
        value = value.strip()
        if value:
            try:
                parsed = datetime.strptime(value, "%Y-%m-%d-%H:%M")
            except ValueError:
                raise ValueError(f"expected YYYY-MM-DD-HH:00 (UTC), got {value!r}") from None
            if parsed.minute:
                raise ValueError(f"partitions start on a whole hour, got {value!r}")
        return value


class VenueSection(Section):
    """One venue's streams and lanes. None means "the venue's own default". The burst's
    defaults are CaptureSettings' own, not a second table of the same values."""

    symbols: list[str] = ["BTCUSDT", "ETHUSDT"]
    lanes: list[str] | None = None  # None: every lane the venue feeds
    depths: list[int] = list(CaptureSettings.depths)
    partial_depth_levels: int = CaptureSettings.partial_depth_levels
    band_pcts: list[float] = list(CaptureSettings.band_pcts)
    band_interval_s: float = CaptureSettings.band_interval_s
    deep_snapshot_interval_s: float = CaptureSettings.deep_snapshot_interval_s
    deep_snapshot_limit: int | None = None
    snapshot_limit: int | None = None
    clock_check_interval_s: float = CaptureSettings.clock_check_interval_s
    kline_intervals: list[str] = ["1m"]
    sim_port: int | None = None  # None: DEFAULT_SIM_PORTS

    @field_validator("symbols")
    @classmethod
    def _upper_symbols(cls, symbols: list[str]) -> list[str]:
        return normalised_symbols(symbols)


class PipelineConfig(Section):
    data_root: str = ""  # "" -> $OBP_HOME (default ./data); or s3://bucket/prefix
    s3_endpoint_url: str = ""
    # Built in: the venue's real endpoints, as design.md's capture command line says; this
    # repository's orderbook_pipeline.yaml chooses the bundled exchange (the embedded default
    # of `make run`, which needs no internet).
    exchange: Literal["embedded", "binance"] = "binance"
    duckdb_path: str = ""  # "" -> $OBP_HOME/marts.duckdb
    capture: CaptureSection = CaptureSection()
    mart: MartSection = MartSection()
    orchestration: OrchestrationSection = OrchestrationSection()
    alerts: AlertsSection = AlertsSection()
    venues: dict[str, VenueSection] = {"binance-spot": VenueSection()}

    def venue(self, name: str) -> VenueSection:
        try:
            return self.venues[name]
        except KeyError:
            raise ValueError(
                f"venue {name!r} is not configured; configured: {sorted(self.venues)}"
            ) from None

    def endpoints(self, venue: str) -> tuple[str | None, str | None]:
        """(ws base, REST base); None means the venue's real endpoints."""
        section = self.venue(venue)
        if self.exchange == "binance":
            return None, None
        port = section.sim_port or DEFAULT_SIM_PORTS[venue]
        return f"ws://{SIM_HOST}:{port}", f"http://{SIM_HOST}:{port}"

    def capture_settings(
        self, venue: str, symbols: list[str] | None = None, **overrides: Any
    ) -> CaptureSettings:
        """One burst of `venue` as configured (all its symbols unless given); `overrides` are
        CaptureSettings fields, e.g. duration_s."""
        section = self.venue(venue)
        ws_url, rest_url = self.endpoints(venue)
        kwargs: dict[str, Any] = {
            **settings_kwargs(section),
            "duration_s": self.capture.burst_seconds,
            "max_file_seconds": self.capture.file_seconds,
            "allow_empty_symbols": self.capture.allow_empty_symbols,
            "core": self.capture.core,
            "data_root": self.data_root or DEFAULT_ROOT,  # as store() opens it
            "s3_endpoint_url": self.s3_endpoint_url or None,
            "ws_url": ws_url,
            "rest_url": rest_url,
        }
        if symbols:
            kwargs["symbols"] = list(symbols)
        kwargs.update(overrides)
        return CaptureSettings(venue=VENUES[venue], **kwargs)

    def store(self) -> Store:
        """The lake: data_root ("" is ./data) on the configured S3 endpoint."""
        return open_store(
            self.data_root or DEFAULT_ROOT, s3_endpoint_url=self.s3_endpoint_url or None
        )

    def effective_overlap_seconds(self, venue: str) -> float:
        """The overlap, lengthened so that the next burst's books are in sync before this one
        ends: with many symbols, snapshots wait for the request-weight budget (200 spot symbols
        need about two minutes). At most half a burst; beyond that the seams show as gaps."""
        section, spec = self.venue(venue), VENUES[venue]
        n = len(section.symbols)
        limit = section.snapshot_limit or spec.snapshot_limit_for(n, WEIGHT_SAFETY)
        weight = n * spec.snapshot_weight(limit)
        bootstrap_s = 60.0 * weight / (spec.weight_limit_1m * WEIGHT_SAFETY)
        capture = self.capture
        return max(capture.overlap_seconds, min(bootstrap_s + 20.0, capture.burst_seconds / 2))


# --------------------------------------------------------------------- venue rules
# VenueSection fields that CaptureSettings takes (and validates): every field of the section
# but kline_intervals and sim_port, which are the klines asset's and the bundled exchange's.
SETTINGS_FIELDS = tuple(
    name for name in VenueSection.model_fields if name in CaptureSettings.__dataclass_fields__
)
# Those that are lists: an element failing alone is reported at its index.
_LIST_FIELDS = {"symbols", "depths", "lanes", "band_pcts"}
_BASELINE = {"symbols": ["BTCUSDT"]}  # a valid burst; one field at a time is swapped in


def settings_kwargs(section: VenueSection) -> dict[str, Any]:
    """VenueSection values as CaptureSettings takes them (tuples where it wants tuples)."""
    out: dict[str, Any] = {}
    for name in SETTINGS_FIELDS:
        value = getattr(section, name)
        out[name] = tuple(value) if isinstance(value, list) and name != "symbols" else value
    return out


def _settings_error(venue_name: str, kwargs: dict[str, Any]) -> str | None:
    try:
        CaptureSettings(venue=VENUES[venue_name], **{**_BASELINE, **kwargs})
    except ValueError as exc:
        message = str(exc)
        for name in kwargs:  # "lanes: unknown lane ..." -> "unknown lane ..." (path says lanes)
            message = message.removeprefix(f"{name}: ").removeprefix(f"{name} ")
        return message
    return None


def _field_problems(name: str, field: str, value: Any) -> list[tuple[str, str]]:
    path = f"venues.{name}.{field}"
    message = _settings_error(name, {field: value})
    if message is None:
        return []
    if field in _LIST_FIELDS and value:
        items = [
            # The element was checked as a one-element list: name it alone.
            (f"{path}.{i}", m.replace(f"got {(item,)!r}", f"got {item!r}"))
            for i, item in enumerate(value)
            if (m := _settings_error(name, {field: type(value)([item])})) is not None
        ]
        if items:
            return items
    return [(path, message)]


def venue_problems(name: str, section: VenueSection) -> list[tuple[str, str]]:
    """(field path, message) of everything wrong with one venue section."""
    if name not in VENUES:
        return [(f"venues.{name}", f"unknown venue {name!r}; expected one of {sorted(VENUES)}")]
    problems: list[tuple[str, str]] = []
    kwargs = settings_kwargs(section)
    if section.lanes == []:
        problems.append((f"venues.{name}.lanes", "at least one lane is required"))
        kwargs["lanes"] = None
    for field in SETTINGS_FIELDS:
        problems += _field_problems(name, field, kwargs[field])
    if not problems and (message := _settings_error(name, kwargs)) is not None:
        problems.append((f"venues.{name}", message))  # only the combination is wrong
    for i, interval in enumerate(section.kline_intervals):
        if interval not in KLINE_INTERVALS:
            problems.append(
                (
                    f"venues.{name}.kline_intervals.{i}",
                    f"unknown interval {interval!r}; expected some of {list(KLINE_INTERVALS)}",
                )
            )
    if section.sim_port is not None and not 1 <= section.sim_port <= 65535:
        problems.append((f"venues.{name}.sim_port", f"not a port: {section.sim_port}"))
    return problems


def config_problems(config: PipelineConfig) -> list[tuple[str, str]]:
    """(field path, message) of every rule a type-valid configuration breaks."""
    if not config.venues:
        return [("venues", "at least one venue is required")]
    problems: list[tuple[str, str]] = []
    for name, section in config.venues.items():
        problems += venue_problems(name, section)
    if problems:
        return problems
    # Embedded: each venue's exchange listens on its own port.
    owner: dict[int, str] = {}
    for name, section in resolved(config).venues.items():
        port = section.sim_port
        assert port is not None
        if port in owner:
            problems.append((f"venues.{name}.sim_port", f"port {port} is {owner[port]}'s port too"))
        owner.setdefault(port, name)
    return problems


def resolved(config: PipelineConfig) -> PipelineConfig:
    """The venues' "default" settings made explicit (lanes, sim_port), so what is shown is
    what runs. Call on a configuration without problems."""
    venues = {
        name: section.model_copy(
            update={
                "lanes": section.lanes
                if section.lanes is not None
                else list(default_lanes(VENUES[name])),
                "sim_port": section.sim_port or DEFAULT_SIM_PORTS[name],
            }
        )
        for name, section in config.venues.items()
    }
    return config.model_copy(update={"venues": venues})
