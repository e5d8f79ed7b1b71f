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
