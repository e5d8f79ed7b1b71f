"""agg_trades: aggregate trades (<sym>@aggTrade), exact strings as sent, encoded as trades.py."""

from __future__ import annotations

from typing import Any

from orderbook_pipeline.core.avro_record import record_encoder
from orderbook_pipeline.core.trades import agg_trade_record
from orderbook_pipeline.lanes.finish import recount_missing
from orderbook_pipeline.lanes.spec import FIRST_RECEIVED, Lane, LaneCheck, asc
from orderbook_pipeline.lanes.trades import TIME_FIELDS, TRADE_FIELDS

FIELDS: tuple[dict[str, Any], ...] = (
    *TIME_FIELDS,
    {"name": "agg_id", "type": "long"},
    {"name": "first_trade_id", "type": "long"},
    {"name": "last_trade_id", "type": "long"},
    *TRADE_FIELDS,
    # Aggregate ids skipped since the previous one this burst received.
    {"name": "missing_before", "type": "long", "default": 0},
)
encode_fields = record_encoder(FIELDS, "encode_agg_trade_fields")

LANE = Lane(
    name="agg_trades",
    record="AggTradeRecord",
    fields=FIELDS,
    partition_ts="event_ts",
    key=("agg_id",),
    preference=FIRST_RECEIVED,
    order=asc("agg_id"),
    description="Aggregate trades (<sym>@aggTrade), exact strings; missing_before: agg ids skipped.",
    finish=recount_missing("agg_id"),
    carry="agg_id",
    feed="stream",
    stream="@aggTrade",
    checks=(
        LaneCheck(
            "trade_continuity",
            "No aggregate trade id missing in the hour (recounted over the union of bursts).",
        ),
    ),
    parse=agg_trade_record,
    encode=encode_fields,
)
