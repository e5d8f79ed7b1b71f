"""The capture_target resource is the configuration flattened: same fields, same defaults."""

from __future__ import annotations

from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel

from orderbook_pipeline.config import PipelineConfig, VenueSection
from orderbook_pipeline.resources import (
    NOT_TARGET_FIELDS,
    TARGET_FIELDS,
    CaptureTarget,
    VenueTarget,
)


def _leaf_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    paths: set[tuple[str, ...]] = set()
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            paths |= _leaf_paths(ann, (*prefix, name))
        elif name != "venues":
            paths.add((*prefix, name))
    return paths


def _as_dagster_type(ann: Any) -> Any:
    """Dagster's config takes a Literal of strings as str."""
    if get_origin(ann) is Literal and all(isinstance(a, str) for a in get_args(ann)):
        return str
    return ann


def _at(config: BaseModel, path: tuple[str, ...]) -> Any:
    value: Any = config
    for part in path:
        value = getattr(value, part)
    return value


def test_every_configuration_field_is_the_resources_or_named_as_someone_elses() -> None:
    assert set(TARGET_FIELDS.values()) | set(NOT_TARGET_FIELDS) == _leaf_paths(PipelineConfig)
    assert not set(TARGET_FIELDS.values()) & set(NOT_TARGET_FIELDS)
    assert set(CaptureTarget.model_fields) == {*TARGET_FIELDS, "venues"}


def test_the_resource_defaults_are_the_configuration_models() -> None:
    defaults = PipelineConfig()
    target = CaptureTarget()
    for name, path in TARGET_FIELDS.items():
        assert getattr(target, name) == _at(defaults, path), name
    assert list(target.venues) == list(defaults.venues)
    assert VenueTarget().model_dump() == VenueSection().model_dump()
    # The built-in exchange is the configuration's: the real venues (a file chooses embedded).
    assert target.exchange == "binance" == target.pipeline_config.exchange


def test_the_resource_fields_have_the_configuration_types() -> None:
    for name, path in TARGET_FIELDS.items():
        section: type[BaseModel] = PipelineConfig
        for part in path[:-1]:
            section = PipelineConfig.model_fields[part].annotation  # type: ignore[assignment]
        expected = _as_dagster_type(section.model_fields[path[-1]].annotation)
        assert CaptureTarget.model_fields[name].annotation in (expected, expected.__name__), name


def test_a_configuration_survives_the_round_trip_through_the_resource() -> None:
    """Every field set to a value other than its default comes back unchanged."""
    raw = {
        "data_root": "/srv/lake",
        "s3_endpoint_url": "http://127.0.0.1:9000",
        "exchange": "embedded",
        "capture": {
            "burst_seconds": 120,
            "overlap_seconds": 30,
            "file_seconds": 20,
            "coverage_threshold": 0.5,
            "allow_empty_symbols": True,
            "core": "python",
        },
        "mart": {"time_basis": "receive"},
        "orchestration": {
            "refresh_interval_seconds": 60,
            "report_interval_seconds": 10,
            "run_retention_hours": 2,
        },
        "venues": {"binance-usdm": {"symbols": ["ETHUSDT"], "lanes": ["l2"]}},
    }
    config = PipelineConfig.model_validate(raw)
    defaults = PipelineConfig()
    for path in TARGET_FIELDS.values():  # the example sets every field
        assert _at(config, path) != _at(defaults, path), path
    again = CaptureTarget.from_config(config).pipeline_config
    for path in TARGET_FIELDS.values():
        assert _at(again, path) == _at(config, path), path
    assert again.venues["binance-usdm"].symbols == ["ETHUSDT"]
    assert again.venues["binance-usdm"].lanes == ["l2"]
