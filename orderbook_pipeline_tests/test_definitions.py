from __future__ import annotations

import dagster as dg

from orderbook_pipeline.definitions import defs


def test_definitions_load_with_capture_job_sensor_and_resource():
    assert defs.resolve_job_def("capture_job").name == "capture_job"
    assert defs.resolve_sensor_def("capture_sensor").job_name == "capture_job"
    repo = defs.get_repository_def()
    assert "capture_target" in repo.get_top_level_resources()
    assert repo.get_job("capture_job").tags["orderbook/role"] == "capture"


def test_capture_target_refuses_an_unknown_exchange_setting():
    from orderbook_pipeline.resources import CaptureTarget

    target = CaptureTarget(exchange="elsewhere")
    try:
        target.endpoints()
    except ValueError as exc:
        assert "OBP_EXCHANGE" in str(exc)
    else:
        raise AssertionError("an unknown exchange setting must be refused")
    assert CaptureTarget(exchange="binance").endpoints() == (None, None)
    assert CaptureTarget(sim_port=1234).endpoints() == (
        "ws://127.0.0.1:1234",
        "http://127.0.0.1:1234",
    )


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
