"""Hour × stream partitions shared by every asset and check.

A stream is one venue's symbol ("binance-spot.BTCUSDT"). Streams are dynamic partitions, added by
the capture sensor from configuration, so capturing a new symbol needs no code change.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import dagster as dg

# Keep the hourly range short: UIs and partition status slow down with tens of thousands of keys.
PARTITIONS_START = os.environ.get("OBP_PARTITIONS_START", "2026-11-01-00:00")
HOUR_FORMAT = "%Y-%m-%d-%H:%M"

# end_offset=1: the hour in progress is a partition too, since captures write into it as it runs.
hourly = dg.HourlyPartitionsDefinition(start_date=PARTITIONS_START, fmt=HOUR_FORMAT, end_offset=1)
streams = dg.DynamicPartitionsDefinition(name="streams")
hour_stream = dg.MultiPartitionsDefinition({"hour": hourly, "stream": streams})


def stream_key(venue: str, symbol: str) -> str:
    return f"{venue}.{symbol.upper()}"


def parse_stream_key(key: str) -> tuple[str, str]:
    venue, _, symbol = key.rpartition(".")
    if not venue or not symbol:
        raise ValueError(f"not a stream key (venue.SYMBOL): {key!r}")
    return venue, symbol


def hour_key(hour_start_us: int) -> str:
    return datetime.fromtimestamp(hour_start_us / 1e6, UTC).strftime(HOUR_FORMAT)


def hour_start_of(hour: str) -> int:
    dt = datetime.strptime(hour, HOUR_FORMAT).replace(tzinfo=UTC)
    return int(dt.timestamp()) * 1_000_000


def partition_key(venue: str, symbol: str, hour_start_us: int) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey(
        {"hour": hour_key(hour_start_us), "stream": stream_key(venue, symbol)}
    )


def split_partition_key(key: str | dg.MultiPartitionKey) -> tuple[str, str, int]:
    """(venue, symbol, hour start µs) of an hour × stream partition key."""
    if not isinstance(key, dg.MultiPartitionKey):
        hour, stream = str(key).split("|")  # dimensions join in alphabetical order: hour|stream
        key = dg.MultiPartitionKey({"hour": hour, "stream": stream})
    dims = key.keys_by_dimension
    venue, symbol = parse_stream_key(dims["stream"])
    return venue, symbol, hour_start_of(dims["hour"])
