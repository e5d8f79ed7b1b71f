from __future__ import annotations

import dagster as dg
import pytest

from orderbook_pipeline.definitions import defs


def test_definitions_load_with_capture_job_sensor_and_resource():
    assert defs.resolve_job_def("capture_job").name == "capture_job"
    assert defs.resolve_sensor_def("capture_sensor").job_name == "capture_job"
    repo = defs.get_repository_def()
    assert "capture_target" in repo.get_top_level_resources()
    assert repo.get_job("capture_job").tags["orderbook/role"] == "capture"


def test_capture_target_refuses_an_unknown_exchange_setting():
    import pytest

    from orderbook_pipeline.config import ConfigError
    from orderbook_pipeline.resources import CaptureTarget

    with pytest.raises(ConfigError) as info:
        CaptureTarget(exchange="elsewhere").endpoints("binance-spot")
    assert info.value.path == "exchange"
    assert CaptureTarget(exchange="binance").endpoints("binance-spot") == (None, None)
    assert CaptureTarget(sim_port=1234).endpoints("binance-spot") == (
        "ws://127.0.0.1:1234",
        "http://127.0.0.1:1234",
    )


def test_the_definitions_read_the_configuration_file(tmp_path, monkeypatch):
    from orderbook_pipeline.resources import capture_target_from_env, mart_db_from_env

    config = tmp_path / "two.yaml"
    config.write_text(
        "exchange: embedded\nduckdb_path: /srv/m.duckdb\nmart: {time_basis: receive}\nvenues:\n"
        "  binance-spot: {symbols: [BTCUSDT], depths: [5], kline_intervals: [1m, 1h]}\n"
        "  binance-usdm: {symbols: [ETHUSDT], lanes: [l2, agg_trades]}\n"
    )
    monkeypatch.setenv("OBP_CONFIG", str(config))
    monkeypatch.setenv("OBP__CAPTURE__BURST_SECONDS", "120")
    target = capture_target_from_env()
    assert target.venue_names() == ["binance-spot", "binance-usdm"]
    assert target.symbols_for("binance-usdm") == ["ETHUSDT"]
    assert target.depths_for("binance-spot") == [5]
    assert target.lanes_for("binance-usdm") == ["l2", "agg_trades"]
    assert target.kline_intervals_for("binance-spot") == ["1m", "1h"]
    assert target.endpoints("binance-usdm") == ("ws://127.0.0.1:9444", "http://127.0.0.1:9444")
    assert target.stream_keys() == ["binance-spot.BTCUSDT", "binance-usdm.ETHUSDT"]
    assert target.burst_seconds == 120 and target.time_basis == "receive"
    assert mart_db_from_env().database == "/srv/m.duckdb"
    settings = target.capture_settings("binance-usdm", duration_s=3)
    assert settings.lanes == ("l2", "agg_trades") and settings.duration_s == 3
    # Round trip: the resource's own config is the same configuration, validated once.
    config = target.pipeline_config
    assert target.pipeline_config is config
    again = target.from_config(config).pipeline_config
    assert (again.venues, again.capture, again.mart) == (config.venues, config.capture, config.mart)


def test_an_invalid_configuration_stops_the_definitions_with_the_field_named(tmp_path, monkeypatch):
    import pytest

    from orderbook_pipeline.config import ConfigError
    from orderbook_pipeline.resources import capture_target_from_env

    monkeypatch.setenv("OBP__VENUES__BINANCE_USDM__LANES", "l2,trades")
    with pytest.raises(ConfigError, match=r"venues\.binance-usdm\.lanes\.1: .*'trades'"):
        capture_target_from_env()


def test_the_dagster_resource_mirrors_the_venue_section():
    from orderbook_pipeline.config import VenueSection
    from orderbook_pipeline.resources import VenueTarget

    assert VenueTarget().model_dump() == VenueSection().model_dump()
    # Its checks too: a typo'd field is refused, symbols are upper-cased.
    assert VenueTarget(symbols=["btcusdt"]).symbols == ["BTCUSDT"]
    with pytest.raises(ValueError, match="depht"):
        VenueTarget(depht=[10])


def test_definitions_validate_like_dg_check_defs():
    assert dg.Definitions.validate_loadable(defs) is None


def test_every_loader_names_the_code_location_orderbook_pipeline():
    """dagster dev (-w workspace.yaml or pyproject), dg dev and dg check defs must agree."""
    import tomllib
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[1]
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    workspace = yaml.safe_load((root / "workspace.yaml").read_text())
    (entry,) = workspace["load_from"]
    assert entry["python_module"]["location_name"] == "orderbook_pipeline"
    assert entry["python_module"]["module_name"] == "orderbook_pipeline.definitions"
    assert pyproject["tool"]["dagster"]["code_location_name"] == "orderbook_pipeline"
    assert pyproject["tool"]["dagster"]["module_name"] == "orderbook_pipeline.definitions"
    dg_project = pyproject["tool"]["dg"]["project"]
    assert dg_project["code_location_name"] == "orderbook_pipeline"
    assert dg_project["code_location_target_module"] == "orderbook_pipeline.definitions"
