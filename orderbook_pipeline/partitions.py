"""The hourly partitions every asset and check shares, and where they start.

One partition per UTC hour (exchange time), holding every venue and symbol: derived data is
refreshed an hour at a time in one run, so Dagster's cost follows the hours, not hours times
streams. Per-stream results are in each partition's metadata (see assets/refresh.py).

Partitions start where the capture started, not at a fixed date: `orchestration.
partitions_start` if set, else the hour this DAGSTER_HOME first loaded the project, remembered
in a file there so that every process (webserver, daemon, code server, runs) agrees.
"""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

HOUR_FORMAT = "%Y-%m-%d-%H:%M"
START_FILE = "orderbook_partitions_start"  # in $DAGSTER_HOME


def hour_key(hour_start_us: int) -> str:
    return datetime.fromtimestamp(hour_start_us / 1e6, UTC).strftime(HOUR_FORMAT)


def hour_start_of(hour: str) -> int:
    dt = datetime.strptime(hour, HOUR_FORMAT).replace(tzinfo=UTC)
    return int(dt.timestamp()) * 1_000_000


def current_hour_key(now_s: float) -> str:
    return hour_key(int(now_s // 3600 * 3600) * 1_000_000)


def partitions_start(configured: str, dagster_home: str | None, now_s: float) -> str:
    """The first partition: `configured` if given; else the hour remembered in
    $DAGSTER_HOME/START_FILE, created now (the current hour) if absent. Without a DAGSTER_HOME
    (a definitions check, an ad-hoc script) the start of the current UTC day."""
    if configured:
        return configured
    if not dagster_home:
        return hour_key(int(now_s // 86400 * 86400) * 1_000_000)
    path = Path(dagster_home) / START_FILE
    with contextlib.suppress(FileExistsError):
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: of two processes starting together, one writes and both read its hour.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w") as fh:
            fh.write(current_hour_key(now_s) + "\n")
    text = path.read_text().strip()
    hour_start_of(text)  # refuse a damaged file loudly rather than start somewhere odd
    return text


def hourly_partitions(start: str) -> dg.HourlyPartitionsDefinition:
    # end_offset=1: the hour in progress is a partition too, since captures write into it.
    return dg.HourlyPartitionsDefinition(start_date=start, fmt=HOUR_FORMAT, end_offset=1)
