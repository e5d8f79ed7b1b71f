"""The pipeline's configuration: one YAML file (orderbook_pipeline.yaml), overridable by the
environment and the command line, read by the CLI and the Dagster definitions alike."""

from orderbook_pipeline.config.errors import ConfigError, Problem
from orderbook_pipeline.config.loader import (
    DEFAULT_FILE,
    dagster_home,
    find_config_file,
    load_config,
    log_level,
    validated,
)
from orderbook_pipeline.config.schema import (
    DEFAULT_SIM_PORTS,
    SIM_HOST,
    CaptureSection,
    MartSection,
    OrchestrationSection,
    PipelineConfig,
    VenueSection,
)

__all__ = [
    "DEFAULT_FILE",
    "DEFAULT_SIM_PORTS",
    "SIM_HOST",
    "CaptureSection",
    "ConfigError",
    "MartSection",
    "OrchestrationSection",
    "PipelineConfig",
    "Problem",
    "VenueSection",
    "dagster_home",
    "find_config_file",
    "load_config",
    "log_level",
    "validated",
]
