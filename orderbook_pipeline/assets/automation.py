"""When the derived assets refresh: after new bronze lands in their partition.

Like `eager()`, but it looks back three hours rather than only at the latest one, because a
burst that straddles an hour boundary (and a reseed) writes bronze into the previous hour too.
It does not wait for every upstream partition: an hour can lack snapshots yet have diffs.
"""

from datetime import timedelta

import dagster as dg

AFTER_NEW_BRONZE = (
    dg.AutomationCondition.in_latest_time_window(lookback_delta=timedelta(hours=3))
    & dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("after new bronze")

automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)
