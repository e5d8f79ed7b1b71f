"""Where the configuration comes from: built-in defaults < YAML file < environment < command line.

The file is `--config PATH`, else $OBP_CONFIG, else ./orderbook_pipeline.yaml if present. Any
field can be overridden by `--set dotted.path=value` or by an environment variable OBP__<PATH>
(`__` between levels, venue names upper-cased with `-` as `_`). The single-venue variables the
project always had (OBP_EXCHANGE, OBP_VENUE, OBP_SYMBOLS ...) still work as aliases. Every problem
is reported with its field path and the file, variable or option that set it.

Not pydantic-settings: its YAML and environment sources would replace only the reading of the
file and of OBP__ variables (a few lines here), not the legacy aliases, `--set`, the text-to-type
parsing by field, or the record of which source set each field that every error names; the
merged mapping is validated by the same PipelineConfig either way. Every environment variable
the package reads is read in this package (orderbook_pipeline_tests/test_environment_reads.py).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, Literal, Union, get_args, get_origin

import yaml  # type: ignore[import-untyped]
from pydantic import BaseModel, ValidationError

from orderbook_pipeline.config.errors import ConfigError, Problem
from orderbook_pipeline.config.schema import PipelineConfig, config_problems, resolved
from orderbook_pipeline.storage.store import DEFAULT_ROOT

DEFAULT_FILE = "orderbook_pipeline.yaml"
ENV_PREFIX = "OBP__"
# The project's original variables, each an alias of one field.
LEGACY_ENV = {
    "OBP_EXCHANGE": ("exchange",),
    "OBP_DATA_ROOT": ("data_root",),
    "OBP_S3_ENDPOINT_URL": ("s3_endpoint_url",),
    "OBP_DUCKDB_PATH": ("duckdb_path",),
    "OBP_BURST_SECONDS": ("capture", "burst_seconds"),
    "OBP_OVERLAP_SECONDS": ("capture", "overlap_seconds"),
    "OBP_COVERAGE_THRESHOLD": ("capture", "coverage_threshold"),
    "OBP_PARTITIONS_START": ("orchestration", "partitions_start"),
}
# Aliases of a field of one venue: $OBP_VENUE, else the configuration's first venue.
LEGACY_VENUE_ENV = {"OBP_SYMBOLS": "symbols", "OBP_SIM_PORT": "sim_port"}

FieldPath = tuple[str, ...]


class _Layers:
    """The merged raw mapping, and which source last set each path (for error messages)."""

    def __init__(self, base: dict[str, Any], base_source: str) -> None:
        self.raw = base
        self.base_source = base_source
        self.sources: dict[FieldPath, str] = {}

    def set(self, path: FieldPath, value: Any, source: str) -> None:
        node = self.raw
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[path[-1]] = value
        # A later source owns this path and everything under it.
        for key in [k for k in self.sources if k[: len(path)] == path]:
            del self.sources[key]
        self.sources[path] = source

    def set_text(self, path: FieldPath, text: str, source: str) -> None:
        self.set(path, parse_value(text, field_annotation(path), path, source), source)

    def source_of(self, path: FieldPath) -> str:
        owners = [k for k in self.sources if path[: len(k)] == k]
        if owners:
            return self.sources[max(owners, key=len)]
        below = [k for k in self.sources if k[: len(path)] == path]
        return self.sources[below[-1]] if below else self.base_source


def log_level(env: Mapping[str, str] | None = None) -> str:
    """The CLI's default --log-level: $OBP_LOG_LEVEL, else INFO (logging starts before the
    file is read, so it is a variable, not a field)."""
    env = os.environ if env is None else env
    return env.get("OBP_LOG_LEVEL") or "INFO"


def dagster_home(env: Mapping[str, str] | None = None) -> str | None:
    """$DAGSTER_HOME, Dagster's own variable: where the partitions' start is remembered."""
    env = os.environ if env is None else env
    return env.get("DAGSTER_HOME") or None


# --------------------------------------------------------------------- parsing values
def field_annotation(path: FieldPath) -> Any:
    """The type of the field at `path` (venue names are keys of `venues`), or None."""
    model: type[BaseModel] = PipelineConfig
    i = 0
    while i < len(path):
        field = model.model_fields.get(path[i])
        if field is None:
            return None
        ann: Any = field.annotation
        i += 1
        if get_origin(ann) is dict and i < len(path):  # skip the key (a venue name)
            ann = get_args(ann)[1]
            i += 1
        if i == len(path):
            return ann
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return None
        model = ann
    return None


def _optional(ann: Any) -> tuple[Any, bool]:
    if get_origin(ann) in (Union, UnionType):
        args = [a for a in get_args(ann) if a is not NoneType]
        if len(args) == 1:
            return args[0], True
    return ann, False


def _yaml(text: str, path: FieldPath, source: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(".".join(path), f"not a YAML value: {exc}", source)]) from None


def parse_value(text: str, ann: Any, path: FieldPath, source: str) -> Any:
    """Text from the environment or command line as the field wants it: strings verbatim,
    lists as `a,b,c` or a YAML list, everything else as a YAML scalar."""
    inner, nullable = _optional(ann)
    if nullable and text.strip() in ("null", "~"):
        return None
    if inner is str or (
        get_origin(inner) is Literal and all(isinstance(a, str) for a in get_args(inner))
    ):
        return text
    if get_origin(inner) is list:
        if text.strip().startswith("["):
            return _yaml(text, path, source)
        (item,) = get_args(inner)
        return [parse_value(p.strip(), item, path, source) for p in text.split(",") if p.strip()]
    return _yaml(text, path, source)


# --------------------------------------------------------------------- sources
def find_config_file(
    path: str | os.PathLike[str] | None, env: Mapping[str, str], cwd: Path
) -> Path | None:
    """--config, else $OBP_CONFIG, else ./orderbook_pipeline.yaml if it exists."""
    chosen = path or env.get("OBP_CONFIG") or None
    if chosen:
        return cwd / Path(chosen)
    default = cwd / DEFAULT_FILE
    return default if default.is_file() else None


def read_file(path: Path) -> dict[str, Any]:
    source = str(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError([Problem("", f"cannot read the file: {exc.strerror}", source)]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem("", f"not valid YAML: {exc}", source)]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([Problem("", "the file must hold a mapping of fields", source)])
    return data


def _apply_legacy_env(layers: _Layers, env: Mapping[str, str]) -> None:
    for name, path in LEGACY_ENV.items():
        if env.get(name):  # empty means unset, as it always did
            layers.set_text(path, env[name], f"environment variable {name}")
    venues = layers.raw.get("venues")
    first = next(iter(venues), None) if isinstance(venues, dict) else None
    venue = env.get("OBP_VENUE") or first or "binance-spot"
    if env.get("OBP_VENUE") and not (isinstance(venues, dict) and venue in venues):
        layers.set(("venues", venue), {}, "environment variable OBP_VENUE")  # added
    for name, field in LEGACY_VENUE_ENV.items():
        if env.get(name):
            layers.set_text(("venues", venue, field), env[name], f"environment variable {name}")


def env_path(name: str) -> FieldPath:
    """OBP__VENUES__BINANCE_SPOT__SYMBOLS -> ("venues", "binance-spot", "symbols")."""
    parts = [p.lower() for p in name[len(ENV_PREFIX) :].split("__")]
    if len(parts) > 1 and parts[0] == "venues":
        parts[1] = parts[1].replace("_", "-")
    return tuple(parts)


def _apply_env(layers: _Layers, env: Mapping[str, str]) -> None:
    for name in sorted(k for k in env if k.startswith(ENV_PREFIX)):
        path = env_path(name)
        source = f"environment variable {name}"
        if not all(path):
            raise ConfigError([Problem(".".join(path), "empty level in the name", source)])
        layers.set_text(path, env[name], source)


def _apply_set(layers: _Layers, assignment: str) -> None:
    source = f"--set {assignment}"
    key, sep, text = assignment.partition("=")
    path = tuple(key.strip().split("."))
    if not sep or not all(path):
        raise ConfigError([Problem(key, "expected --set dotted.path=value", source)])
    layers.set_text(path, text, source)


# --------------------------------------------------------------------- validation
def _message(err: Mapping[str, Any], loc: FieldPath) -> str:
    if err["type"] == "extra_forbidden":
        parent = field_annotation(loc[:-1]) if loc[:-1] else PipelineConfig
        is_model = isinstance(parent, type) and issubclass(parent, BaseModel)
        known = list(parent.model_fields) if is_model else []
        close = difflib.get_close_matches(loc[-1], known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown field{hint} (known: {', '.join(known)})"
    value = err.get("input")
    if isinstance(value, str | int | float | bool):
        return f"{err['msg']}, got {value!r}"
    return str(err["msg"])


def validated(
    raw: dict[str, Any], layers: _Layers | None = None, source: str = "the given settings"
) -> PipelineConfig:
    """The configuration, or a ConfigError naming every bad field and who set it."""
    layers = layers or _Layers(raw, source)
    venues = raw.get("venues")
    if isinstance(venues, dict):  # "binance-us:" with nothing under it: all defaults
        for name, section in venues.items():
            if section is None:
                venues[name] = {}
    try:
        config = PipelineConfig.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(str(p) for p in err["loc"])
            problems.append(Problem(".".join(loc), _message(err, loc), layers.source_of(loc)))
        raise ConfigError(problems) from None
    found = config_problems(config)
    if found:
        raise ConfigError([Problem(p, m, layers.source_of(tuple(p.split(".")))) for p, m in found])
    return resolved(config)


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    sets: Sequence[str] = (),
    flags: Sequence[tuple[str, str, str]] = (),
    ensure_venue: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> PipelineConfig:
    """The effective configuration. `sets` are `--set` assignments; `flags` are explicit
    command-line options as (dotted path, text, option name), applied last; `ensure_venue`
    adds that venue's section (defaults) if no source has one."""
    env = os.environ if env is None else env
    base = Path(cwd) if cwd is not None else Path.cwd()
    file = find_config_file(path, env, base)
    if file is not None and not file.is_file():
        source = "--config" if path else "environment variable OBP_CONFIG"
        raise ConfigError([Problem("", f"no configuration file {str(file)!r}", source)])
    layers = _Layers(read_file(file) if file else {}, str(file) if file else "built-in defaults")
    _apply_legacy_env(layers, env)
    _apply_env(layers, env)
    for assignment in sets:
        _apply_set(layers, assignment)
    for dotted, text, option in flags:
        layers.set_text(tuple(dotted.split(".")), text, option)
    venues = layers.raw.get("venues")
    if ensure_venue and not (isinstance(venues, dict) and ensure_venue in venues):
        layers.set(("venues", ensure_venue), {}, "--venue")
    config = validated(layers.raw, layers)
    # One folder holds everything by default: the lake and the mart database.
    home = env.get("OBP_HOME") or DEFAULT_ROOT
    return config.model_copy(
        update={
            "data_root": config.data_root or home,
            "duckdb_path": config.duckdb_path or str(Path(home) / "marts.duckdb"),
        }
    )
