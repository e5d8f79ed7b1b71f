"""What the sensors share: run statuses that count as active, and the tags they read."""

from __future__ import annotations

import dagster as dg

# A sensor-requested run starts QUEUED under the queued run coordinator, so queued and
# not-started runs count as active too (dagster's own list of these is private).
ACTIVE_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
FINISHED_STATUSES = [
    dg.DagsterRunStatus.SUCCESS,
    dg.DagsterRunStatus.FAILURE,
    dg.DagsterRunStatus.CANCELED,
]
VENUE_TAG = "orderbook/venue"
CAPTURE_VENUE_TAG = "orderbook/capture_venue"  # on capture runs only
BURST_SECONDS_TAG = "orderbook/burst_seconds"
PARTITION_TAG = "dagster/partition"  # Dagster's own: the hour a refresh run is for
FINAL_TAG = "orderbook/final"  # a refresh of a closed hour whose files have all landed
