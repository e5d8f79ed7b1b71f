"""trades: every trade (<sym>@trade), exact strings as sent.

Prices and quantities appear twice: `px`/`qty` are doubles, float() of the exchange's string;
`*_str` are the strings exactly as sent. Records go through the bronze writer's fastavro path.
"""

from __future__ import annotations

from orderbook_pipeline.core.trades import trade_record
from orderbook_pipeline.lanes.avro_types import TS
from orderbook_pipeline.lanes.finish import recount_missing
from orderbook_pipeline.lanes.spec import FIRST_RECEIVED, Lane, LaneCheck, asc

LANE = Lane(
    name="trades",
    record="TradeRecord",
    fields=(
        {"name": "event_ts", "type": TS},
        {"name": "trade_ts", "type": TS},
        {"name": "ingest_ts", "type": TS},
        {"name": "trade_id", "type": "long"},
        {"name": "px", "type": "double"},
        {"name": "qty", "type": "double"},
        {"name": "px_str", "type": "string"},
        {"name": "qty_str", "type": "string"},
        {"name": "is_buyer_maker", "type": "boolean"},
        {"name": "is_best_match", "type": ["null", "boolean"], "default": None},
        # Trade ids skipped since the previous trade this burst received (0: continuous, and
        # for a burst's first trade, which has nothing to continue).
        {"name": "missing_before", "type": "long", "default": 0},
    ),
    partition_ts="event_ts",
    key=("trade_id",),
    preference=FIRST_RECEIVED,
    order=asc("trade_id"),
    description="Every trade (<sym>@trade), exact strings; missing_before: trade ids skipped.",
    finish=recount_missing("trade_id"),
    carry="trade_id",
    feed="stream",
    stream="@trade",
    checks=(
        LaneCheck(
            "trade_continuity",
            "No trade id missing in the hour (recounted over the union of bursts).",
        ),
    ),
    parse=trade_record,
)
