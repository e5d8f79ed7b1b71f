"""trades: every trade (<sym>@trade), exact strings as sent.

Prices and quantities appear twice: `px`/`qty` are doubles, float() of the exchange's string;
`*_str` are the strings exactly as sent. The capture encodes a record with `encode_fields`
(generated from the fields below, core/avro_record.py): prefix = encoded venue + symbol, then
every field in order as positional arguments; the burst id follows.
"""

from __future__ import annotations

from typing import Any

from orderbook_pipeline.core.avro_record import record_encoder
from orderbook_pipeline.core.trades import trade_record
from orderbook_pipeline.lanes.avro_types import TS
from orderbook_pipeline.lanes.finish import recount_missing
from orderbook_pipeline.lanes.spec import FIRST_RECEIVED, Lane, LaneCheck, asc

# When the trade happened, was published and was received (before its ids), and the trade
# itself (after them): agg_trades.py shares both.
TIME_FIELDS: tuple[dict[str, Any], ...] = (
    {"name": "event_ts", "type": TS},
    {"name": "trade_ts", "type": TS},
    {"name": "ingest_ts", "type": TS},
)
TRADE_FIELDS: tuple[dict[str, Any], ...] = (
    {"name": "px", "type": "double"},
    {"name": "qty", "type": "double"},
    {"name": "px_str", "type": "string"},
    {"name": "qty_str", "type": "string"},
    {"name": "is_buyer_maker", "type": "boolean"},
    {"name": "is_best_match", "type": ["null", "boolean"], "default": None},
)

FIELDS: tuple[dict[str, Any], ...] = (
    *TIME_FIELDS,
    {"name": "trade_id", "type": "long"},
    *TRADE_FIELDS,
    # Trade ids skipped since the previous trade this burst received (0: continuous, and
    # for a burst's first trade, which has nothing to continue).
    {"name": "missing_before", "type": "long", "default": 0},
)
encode_fields = record_encoder(FIELDS, "encode_trade_fields")

LANE = Lane(
    name="trades",
    record="TradeRecord",
    fields=FIELDS,
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
    encode=encode_fields,
)
