"""The pipeline's configuration: one YAML file (orderbook_pipeline.yaml), overridable by the
environment and the command line, read by the CLI and the Dagster definitions alike."""

from orderbook_pipeline.config.errors import ConfigError, Problem
from orderbook_pipeline.config.loader import (
    DEFAULT_FILE,
    find_config_file,
    load_config,
    validated,
)
from orderbook_pipeline.config.schema import (
    DEFAULT_SIM_PORTS,
    CaptureSection,
    MartSection,
    OrchestrationSection,
    PipelineConfig,
    VenueSection,
)

__all__ = [
    "DEFAULT_FILE",
    "DEFAULT_SIM_PORTS",
    "CaptureSection",
    "ConfigError",
    "MartSection",
    "OrchestrationSection",
    "PipelineConfig",
    "Problem",
    "VenueSection",
    "find_config_file",
    "load_config",
    "validated",
]
