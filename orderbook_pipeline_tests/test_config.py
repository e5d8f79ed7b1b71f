"""The configuration: file, environment and command line, and refusals that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from orderbook_pipeline.capture.settings import CaptureSettings, default_lanes
from orderbook_pipeline.config import (
    ConfigError,
    PipelineConfig,
    VenueSection,
    load_config,
)
from orderbook_pipeline.config.schema import SETTINGS_FIELDS
from orderbook_pipeline.venues import BINANCE_USDM, VENUES

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = [ROOT / "orderbook_pipeline.yaml", *sorted((ROOT / "examples").glob("*.yaml"))]


def _load(tmp_path: Path, text: str | None = None, **kw: object) -> PipelineConfig:
    """Load with no process environment and tmp_path as the working directory."""
    if text is not None:
        (tmp_path / "c.yaml").write_text(text)
    kw.setdefault("env", {})
    return load_config(tmp_path / "c.yaml" if text is not None else None, cwd=tmp_path, **kw)


def _refusal(tmp_path: Path, text: str | None = None, **kw: object) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text, **kw)
    return info.value


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_file_loads(path):
    config = load_config(path, env={}, cwd=path.parent)
    assert config.venues
    for name, section in config.venues.items():
        settings = config.capture_settings(name)  # a burst can be built for every venue
        assert settings.symbols == section.symbols


def test_the_shipped_file_states_the_built_in_defaults_but_the_exchange(tmp_path):
    """README: with no file, built-in defaults, the same values as that file except
    `exchange` (the file: the bundled exchange; built in: the real venue)."""
    shipped = load_config(ROOT / "orderbook_pipeline.yaml", env={})
    built_in = _load(tmp_path)
    assert (shipped.exchange, built_in.exchange) == ("embedded", "binance")
    assert shipped == built_in.model_copy(update={"exchange": "embedded"})


def test_a_default_venue_section_is_a_default_burst():
    """The configuration's venue defaults are the burst's own (CaptureSettings)."""
    for name, venue in VENUES.items():
        configured = PipelineConfig(venues={name: VenueSection()}).capture_settings(
            name, burst_id="b"
        )
        plain = CaptureSettings(venue=venue, symbols=VenueSection().symbols, burst_id="b")
        for field in SETTINGS_FIELDS:
            assert getattr(configured, field) == getattr(plain, field), (name, field)


def test_example_covers_several_venues_and_lanes():
    config = load_config(ROOT / "examples" / "multi_venue.yaml", env={})
    assert len(config.venues) >= 3 and config.exchange == "binance"
    assert len({tuple(s.lanes or ()) for s in config.venues.values()}) == len(config.venues)


def test_no_file_means_the_real_venue_as_the_capture_command_line_says(tmp_path):
    config = _load(tmp_path)
    assert config.exchange == "binance" and list(config.venues) == ["binance-spot"]
    settings = config.capture_settings("binance-spot")
    assert (settings.ws_url, settings.rest_url) == (None, None)  # None: the venue's endpoints
    spot = config.venues["binance-spot"]
    assert spot.symbols == ["BTCUSDT", "ETHUSDT"] and spot.sim_port == 9443
    assert config.data_root == "./data"
    assert Path(config.duckdb_path) == Path("data/marts.duckdb")


def test_the_default_file_in_the_working_directory_is_read(tmp_path):
    (tmp_path / "orderbook_pipeline.yaml").write_text("capture: {burst_seconds: 42}\n")
    assert _load(tmp_path).capture.burst_seconds == 42
    other = tmp_path / "other.yaml"
    other.write_text("capture: {burst_seconds: 7}\n")
    assert _load(tmp_path, env={"OBP_CONFIG": str(other)}).capture.burst_seconds == 7


def test_an_invalid_file_is_refused_with_a_message_naming_the_field(tmp_path):
    error = _refusal(
        tmp_path,
        """
venues:
  binance-spot:
    symbols: [BTCUSDT]
    depht: [10]
""",
    )
    assert error.path == "venues.binance-spot.depht"
    assert "unknown field; did you mean 'depths'?" in str(error)
    assert "c.yaml" in str(error)


def test_venue_rules_are_refused_at_the_offending_element(tmp_path):
    error = _refusal(
        tmp_path,
        """
venues:
  binance-usdm:
    lanes: [l2, trades]
    depths: [10, 0]
    snapshot_limit: 7
    partial_depth_levels: 7
    kline_intervals: [1m, 2m]
""",
    )
    problems = {p.path: p.message for p in error.problems}
    assert problems["venues.binance-usdm.lanes.1"] == (
        "binance-usdm publishes no stream for 'trades'"
    )
    assert "got 0" in problems["venues.binance-usdm.depths.1"]
    assert "snapshot limit must be one of" in problems["venues.binance-usdm.snapshot_limit"]
    assert "(5, 10, 20)" in problems["venues.binance-usdm.partial_depth_levels"]
    assert "'2m'" in problems["venues.binance-usdm.kline_intervals.1"]
    assert len(problems) == 5  # everything wrong at once, nothing else


@pytest.mark.parametrize(
    ("text", "path", "words"),
    [
        ("venues: {kraken: {}}", "venues.kraken", "unknown venue 'kraken'"),
        ("venues: {}", "venues", "at least one venue"),
        ("exchange: elsewhere", "exchange", "'embedded' or 'binance'"),
        ("capture: {burst_seconds: -1}", "capture.burst_seconds", "greater than 0"),
        ("mart: {time_basis: local}", "mart.time_basis", "'exchange' or 'receive'"),
        ("venues: {binance-spot: {depths: [10, x]}}", "venues.binance-spot.depths.1", "integer"),
        ("venues: {binance-spot: {lanes: []}}", "venues.binance-spot.lanes", "at least one"),
        (
            "venues: {binance-spot: {sim_port: 9500}, binance-us: {sim_port: 9500}}",
            "venues.binance-us.sim_port",
            "binance-spot's port",
        ),
        ("- just a list", "", "mapping"),
        ("venues: [", "", "not valid YAML"),
    ],
)
def test_each_kind_of_mistake_names_its_field(tmp_path, text, path, words):
    error = _refusal(tmp_path, text)
    assert error.path == path
    assert words in str(error)


def test_a_missing_named_file_is_refused(tmp_path):
    error = _refusal(tmp_path, env={"OBP_CONFIG": str(tmp_path / "nope.yaml")})
    assert "nope.yaml" in str(error) and "OBP_CONFIG" in str(error)


FILE = """
data_root: /from/file
capture: {burst_seconds: 100}
venues:
  binance-spot: {symbols: [BTCUSDT], depths: [10, 20]}
"""


def test_precedence_file_then_environment_then_command_line(tmp_path):
    assert _load(tmp_path, FILE).capture.burst_seconds == 100
    env = {"OBP__CAPTURE__BURST_SECONDS": "200", "OBP__DATA_ROOT": "/from/env"}
    config = _load(tmp_path, FILE, env=env)
    assert config.capture.burst_seconds == 200 and config.data_root == "/from/env"
    config = _load(tmp_path, FILE, env=env, sets=["capture.burst_seconds=300"])
    assert config.capture.burst_seconds == 300
    config = _load(
        tmp_path,
        FILE,
        env=env,
        sets=["capture.burst_seconds=300"],
        flags=[("capture.burst_seconds", "400", "--duration")],
    )
    assert config.capture.burst_seconds == 400
    assert config.venues["binance-spot"].depths == [10, 20]  # untouched fields stay


def test_every_field_is_reachable_from_environment_and_command_line(tmp_path):
    env = {
        "OBP__VENUES__BINANCE_SPOT__SYMBOLS": "btcusdt, SOLUSDT",
        "OBP__VENUES__BINANCE_USDM__LANES": "[l2, agg_trades]",  # a venue added from env
        "OBP__VENUES__BINANCE_USDM__SNAPSHOT_LIMIT": "500",
        "OBP__MART__TIME_BASIS": "receive",
    }
    sets = [
        "venues.binance-spot.band_pcts=0.1,1",
        "venues.binance-spot.deep_snapshot_limit=null",
        "venues.binance-spot.kline_intervals=1m,1h",
        "s3_endpoint_url=http://127.0.0.1:9000",
    ]
    config = _load(tmp_path, FILE, env=env, sets=sets)
    spot, usdm = config.venues["binance-spot"], config.venues["binance-usdm"]
    assert spot.symbols == ["BTCUSDT", "SOLUSDT"]
    assert spot.band_pcts == [0.1, 1.0] and spot.deep_snapshot_limit is None
    assert spot.kline_intervals == ["1m", "1h"]
    assert usdm.lanes == ["l2", "agg_trades"] and usdm.snapshot_limit == 500
    assert usdm.sim_port == 9444  # each venue's exchange has its own default port
    assert config.mart.time_basis == "receive"
    assert config.s3_endpoint_url == "http://127.0.0.1:9000"


def test_a_bad_override_names_the_field_and_where_it_came_from(tmp_path):
    error = _refusal(tmp_path, FILE, env={"OBP__CAPTURE__BURST_SECONDS": "soon"})
    assert error.path == "capture.burst_seconds"
    assert "OBP__CAPTURE__BURST_SECONDS" in str(error)
    error = _refusal(tmp_path, FILE, sets=["venues.binance-usdm.lanes=l2,trades"])
    assert error.path == "venues.binance-usdm.lanes.1"
    assert "--set venues.binance-usdm.lanes=l2,trades" in str(error)
    error = _refusal(tmp_path, FILE, env={"OBP__VENUES__KRAKEN__SYMBOLS": "X"})
    assert error.path == "venues.kraken" and "OBP__VENUES__KRAKEN__SYMBOLS" in str(error)
    error = _refusal(tmp_path, FILE, sets=["capture.burst_seconds"])
    assert "dotted.path=value" in str(error)


def test_the_original_variables_still_work(tmp_path):
    env = {
        "OBP_EXCHANGE": "binance",
        "OBP_SYMBOLS": "ETHUSDT",  # the first venue's, when OBP_VENUE is unset
        "OBP_DATA_ROOT": "s3://bucket/prefix",
        "OBP_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
        "OBP_BURST_SECONDS": "120",
        "OBP_OVERLAP_SECONDS": "30",
        "OBP_COVERAGE_THRESHOLD": "0.9",
        "OBP_DUCKDB_PATH": "/tmp/m.duckdb",
        "OBP_SIM_PORT": "9555",
    }
    config = _load(tmp_path, FILE, env=env)
    assert config.exchange == "binance" and config.data_root == "s3://bucket/prefix"
    assert config.s3_endpoint_url == "http://127.0.0.1:9000"
    assert (config.capture.burst_seconds, config.capture.overlap_seconds) == (120, 30)
    assert config.capture.coverage_threshold == 0.9 and config.duckdb_path == "/tmp/m.duckdb"
    assert config.venues["binance-spot"].symbols == ["ETHUSDT"]
    assert config.venues["binance-spot"].sim_port == 9555
    assert config.endpoints("binance-spot") == (None, None)
    # OBP_VENUE names the venue they apply to; one not in the file is added.
    config = _load(tmp_path, FILE, env={"OBP_VENUE": "binance-usdm", "OBP_SYMBOLS": "SOLUSDT"})
    assert config.venues["binance-usdm"].symbols == ["SOLUSDT"]
    assert config.venues["binance-spot"].symbols == ["BTCUSDT"]
    error = _refusal(tmp_path, FILE, env={"OBP_BURST_SECONDS": "0"})
    assert error.path == "capture.burst_seconds" and "OBP_BURST_SECONDS" in str(error)


def test_obp_home_holds_the_lake_and_the_mart_by_default(tmp_path):
    config = _load(tmp_path, env={"OBP_HOME": "/srv/obp"})
    assert config.data_root == "/srv/obp"
    assert Path(config.duckdb_path) == Path("/srv/obp/marts.duckdb")
    config = _load(tmp_path, FILE, env={"OBP_HOME": "/srv/obp"})
    assert config.data_root == "/from/file"  # a field set anywhere wins over the default


def test_venue_defaults_are_made_explicit_and_feed_the_burst(tmp_path):
    config = _load(
        tmp_path, "exchange: embedded\nvenues: {binance-usdm: , binance-us: {lanes: [l2]}}"
    )
    usdm = config.venues["binance-usdm"]
    assert usdm.lanes == list(default_lanes(BINANCE_USDM)) and "trades" not in usdm.lanes
    settings = config.capture_settings("binance-us", duration_s=5)
    assert settings.lanes == ("l2",) and settings.duration_s == 5
    assert settings.rest_url == "http://127.0.0.1:9445"
    assert settings.max_file_seconds == config.capture.file_seconds
    with pytest.raises(ValueError, match="not configured"):
        config.capture_settings("binance-spot")
