"""The one module that imports Dagster's private `dagster._core` (ruff bans it elsewhere:
pyproject's banned-api, with a per-file exception for this file).

Dagster 1.13 has no public way to do these; each name says who needs it and why. On a Dagster
upgrade, check here first: private names move without notice.
"""

# sensors/reseed.py and sensors/refresh.py read one check's executions through
# `instance.event_log_storage.get_asset_check_execution_history`, the only API that lists them
# per partition and by status; its `status` and `partition_filter` take these private types.
from dagster._core.event_api import PartitionKeyFilter
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

# sensors/housekeeping.py: deleting a run leaves its sqlite event-log shard file (>= 112 KB);
# only this class knows the shard's path (`path_for_shard`).
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

__all__ = ["AssetCheckExecutionRecordStatus", "PartitionKeyFilter", "SqliteEventLogStorage"]
