from __future__ import annotations

import dagster as dg
import pytest

from orderbook_pipeline.config import load_config
from orderbook_pipeline.definitions import REFRESH_JOB, build_definitions, defs
from orderbook_pipeline.partitions import START_FILE, partitions_start
from orderbook_pipeline.resources import CaptureTarget, MartDuckDB


def test_definitions_load_with_jobs_sensors_and_resources():
    assert defs.resolve_job_def("capture_job").name == "capture_job"
    assert defs.resolve_sensor_def("capture_sensor").job_name == "capture_job"
    assert defs.resolve_sensor_def("refresh_sensor").job_name == REFRESH_JOB
    for name in ("reseed_sensor", "housekeeping_sensor"):
        assert defs.resolve_sensor_def(name).description
    repo = defs.get_repository_def()
    assert {"capture_target", "mart_db"} <= set(repo.get_top_level_resources())
    assert repo.get_job("capture_job").tags["orderbook/role"] == "capture"
    assert repo.get_job(REFRESH_JOB).tags["orderbook/role"] == "refresh"


def test_one_refresh_step_makes_every_derived_asset_and_check_of_an_hour():
    """The refresh job is one op (one process, one step) for all silver lanes, the gap
    windows, both marts and every check: runs per hour do not grow with streams or assets."""
    job = defs.resolve_job_def(REFRESH_JOB)
    assert [node.name for node in job.nodes] == ["hourly_refresh"]
    refresh = defs.get_assets_def(dg.AssetKey(["silver", "gap_windows"]))
    keys = {k.to_user_string() for k in refresh.keys}
    assert {"silver/l2", "silver/diffs", "silver/gap_windows", "gold/mart_l2_5s"} <= keys
    checks = {(k.asset_key.path[-1], k.name) for k in refresh.check_keys}
    assert ("gap_windows", "sequence_continuity") in checks
    assert ("gap_windows", "judged_in_time") in checks
    assert refresh.backfill_policy is not None  # a range of hours is one run
    assert refresh.partitions_def is not None
    assert "|" not in refresh.partitions_def.get_first_partition_key()  # hours, not streams


def test_partitions_start_where_capture_starts(tmp_path):
    now = 1_796_083_200.0 + 7 * 3600 + 125  # 2026-12-01 07:02:05 UTC
    assert partitions_start("2026-11-30-05:00", str(tmp_path), now) == "2026-11-30-05:00"
    # No start configured: the hour this DAGSTER_HOME first loaded the project, remembered.
    assert partitions_start("", str(tmp_path), now) == "2026-12-01-07:00"
    assert (tmp_path / START_FILE).read_text().strip() == "2026-12-01-07:00"
    assert partitions_start("", str(tmp_path), now + 86_400) == "2026-12-01-07:00"
    # Without a DAGSTER_HOME (a definitions check): the start of the day.
    assert partitions_start("", None, now) == "2026-12-01-00:00"
    config = load_config(env={}, cwd=tmp_path).model_copy(deep=True)
    built = build_definitions(config, str(tmp_path))
    first = built.get_assets_def(dg.AssetKey(["silver", "l2"])).partitions_def
    assert first.get_first_partition_key() == "2026-12-01-07:00"


def test_capture_target_refuses_an_unknown_exchange_setting():
    from orderbook_pipeline.config import ConfigError

    with pytest.raises(ConfigError) as info:
        CaptureTarget(exchange="elsewhere").endpoints("binance-spot")
    assert info.value.path == "exchange"
    assert CaptureTarget(exchange="binance").endpoints("binance-spot") == (None, None)
    # Built in, as without a file: the real venues (orderbook_pipeline.yaml says embedded).
    assert CaptureTarget().endpoints("binance-spot") == (None, None)
    assert CaptureTarget(exchange="embedded", sim_port=1234).endpoints("binance-spot") == (
        "ws://127.0.0.1:1234",
        "http://127.0.0.1:1234",
    )


def test_the_definitions_read_the_configuration_file(tmp_path, monkeypatch):
    config = tmp_path / "two.yaml"
    config.write_text(
        "exchange: embedded\nduckdb_path: /srv/m.duckdb\nmart: {time_basis: receive}\nvenues:\n"
        "  binance-spot: {symbols: [BTCUSDT], depths: [5], kline_intervals: [1m, 1h]}\n"
        "  binance-usdm: {symbols: [ETHUSDT], lanes: [l2, agg_trades]}\n"
    )
    monkeypatch.setenv("OBP_CONFIG", str(config))
    monkeypatch.setenv("OBP__CAPTURE__BURST_SECONDS", "120")
    loaded = load_config()
    target = CaptureTarget.from_config(loaded)
    assert target.venue_names() == ["binance-spot", "binance-usdm"]
    assert target.symbols_for("binance-usdm") == ["ETHUSDT"]
    assert target.depths_for("binance-spot") == [5]
    assert target.lanes_for("binance-usdm") == ["l2", "agg_trades"]
    assert target.kline_intervals_for("binance-spot") == ["1m", "1h"]
    assert target.endpoints("binance-usdm") == ("ws://127.0.0.1:9444", "http://127.0.0.1:9444")
    assert target.burst_seconds == 120 and target.time_basis == "receive"
    built = build_definitions(loaded)
    mart_db = (built.resources or {})["mart_db"]
    assert isinstance(mart_db, MartDuckDB) and mart_db.database == "/srv/m.duckdb"
    settings = target.capture_settings("binance-usdm", duration_s=3)
    assert settings.lanes == ("l2", "agg_trades") and settings.duration_s == 3
    # Round trip: the resource's own config is the same configuration, validated once.
    config = target.pipeline_config
    assert target.pipeline_config is config
    again = target.from_config(config).pipeline_config
    assert (again.venues, again.capture, again.mart, again.orchestration) == (
        config.venues,
        config.capture,
        config.mart,
        config.orchestration,
    )


def test_an_invalid_configuration_stops_the_definitions_with_the_field_named(tmp_path, monkeypatch):
    import pytest

    from orderbook_pipeline.config import ConfigError

    monkeypatch.setenv("OBP__VENUES__BINANCE_USDM__LANES", "l2,trades")
    with pytest.raises(ConfigError, match=r"venues\.binance-usdm\.lanes\.1: .*'trades'"):
        load_config()


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


def test_every_asset_check_and_sensor_says_what_it_is():
    """The UI showed "No description provided" for some: every one has a description now."""
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    undescribed = [
        key.to_user_string()
        for key in graph.get_all_asset_keys()
        if not (graph.get(key).description or "").strip()
    ]
    undescribed += [
        str(key) for key in graph.asset_check_keys if not (graph.get(key).description or "").strip()
    ]
    undescribed += [s.name for s in repo.sensor_defs if not (s.description or "").strip()]
    assert undescribed == []
    assert "alerts_sensor" in {s.name for s in repo.sensor_defs}
