"""Dagster's warnings about the preview and beta features this project uses on purpose, silenced
once, here: each definitions load (the code server, every run worker) printed all three, which
made hundreds of identical lines in ten minutes of `make run`. Any other warning still shows.

On a Dagster upgrade, check here: a feature that left preview or beta stops warning, and one
that changed may need this project's attention (the reasons say where each is used).
"""

from __future__ import annotations

import re
import warnings

# (the start of the warning's message, where and why the feature is used)
KNOWN = (
    (
        "Specifying a partitions_def on an AssetCheckSpec is currently in preview",
        "assets/refresh.py: every check is judged per hour partition, as its asset is",
    ),
    (
        "Parameter `backfill_policy` of function `asset` is currently in beta",
        "assets/: a backfill of many hours is one run, not one run per hour",
    ),
    (
        "Parameter `owners` of initializer `SensorDefinition.__init__` is currently in beta",
        "sensors/: each sensor names who is told when it fails",
    ),
)


def quiet_known_warnings() -> None:
    """Ignore the KNOWN warnings (and only those) from here on."""
    for message, _why in KNOWN:
        warnings.filterwarnings("ignore", message=re.escape(message))
