"""agg_trades: aggregate trades (<sym>@aggTrade), exact strings as sent (as trades.py)."""

from __future__ import annotations

from orderbook_pipeline.core.trades import agg_trade_record
from orderbook_pipeline.lanes.avro_types import TS
from orderbook_pipeline.lanes.finish import recount_missing
from orderbook_pipeline.lanes.spec import FIRST_RECEIVED, Lane, LaneCheck, asc

LANE = Lane(
    name="agg_trades",
    record="AggTradeRecord",
    fields=(
        {"name": "event_ts", "type": TS},
        {"name": "trade_ts", "type": TS},
        {"name": "ingest_ts", "type": TS},
        {"name": "agg_id", "type": "long"},
        {"name": "first_trade_id", "type": "long"},
        {"name": "last_trade_id", "type": "long"},
        {"name": "px", "type": "double"},
        {"name": "qty", "type": "double"},
        {"name": "px_str", "type": "string"},
        {"name": "qty_str", "type": "string"},
        {"name": "is_buyer_maker", "type": "boolean"},
        {"name": "is_best_match", "type": ["null", "boolean"], "default": None},
        # Aggregate ids skipped since the previous one this burst received.
        {"name": "missing_before", "type": "long", "default": 0},
    ),
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
)
