"""Avro schemas of the bronze lanes: the public record contracts of design.md.

Times are microseconds since the epoch with the logical type inside the type, so readers that
honour logical types see timestamps and the rest see plain longs.
"""

from __future__ import annotations

from typing import Any

import fastavro

_TS = {"type": "long", "logicalType": "timestamp-micros"}
_OPT_TS = ["null", _TS]

_STRING_LEVEL = {
    "type": "record",
    "name": "StringLevel",
    "fields": [{"name": "px", "type": "string"}, {"name": "qty", "type": "string"}],
}

L2_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "L2Record",
    "namespace": "orderbook_pipeline",
    "fields": [
        {"name": "venue", "type": "string"},
        {"name": "symbol", "type": "string"},
        {"name": "event_ts", "type": _TS},
        {"name": "ingest_ts", "type": _TS},
        {"name": "first_update_id", "type": "long"},
        {"name": "last_update_id", "type": "long"},
        {"name": "prev_update_id", "type": ["null", "long"], "default": None},
        {"name": "depth", "type": "int"},
        {
            "name": "levels",
            "type": {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "Level",
                    "fields": [
                        {
                            "name": "side",
                            "type": {"type": "enum", "name": "Side", "symbols": ["bid", "ask"]},
                        },
                        {"name": "px", "type": "double"},
                        {"name": "qty", "type": "double"},
                    ],
                },
            },
        },
        {"name": "mid", "type": "double"},
        {"name": "spread_bps", "type": "double"},
        {"name": "imbalance", "type": "double"},
        {"name": "gap_detected", "type": "boolean", "default": False},
        {"name": "recovered", "type": "boolean", "default": False},
        {"name": "burst_id", "type": "string"},
    ],
}

DIFF_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "DiffRecord",
    "namespace": "orderbook_pipeline",
    "fields": [
        {"name": "venue", "type": "string"},
        {"name": "symbol", "type": "string"},
        {"name": "event_ts", "type": _TS},
        {"name": "transaction_ts", "type": _OPT_TS, "default": None},
        {"name": "ingest_ts", "type": _TS},
        {"name": "first_update_id", "type": "long"},
        {"name": "last_update_id", "type": "long"},
        {"name": "prev_update_id", "type": ["null", "long"], "default": None},
        {"name": "bids", "type": {"type": "array", "items": _STRING_LEVEL}},
        {"name": "asks", "type": {"type": "array", "items": "StringLevel"}},
        {"name": "burst_id", "type": "string"},
    ],
}

SNAPSHOT_REASONS = ("bootstrap", "gap", "reconnect", "verify", "reseed", "book_mismatch")

SNAPSHOT_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "SnapshotRecord",
    "namespace": "orderbook_pipeline",
    "fields": [
        {"name": "venue", "type": "string"},
        {"name": "symbol", "type": "string"},
        {"name": "last_update_id", "type": "long"},
        {"name": "request_ts", "type": _TS},
        {"name": "response_ts", "type": _TS},
        {"name": "limit", "type": "int"},
        {"name": "used_weight_1m", "type": ["null", "int"], "default": None},
        {"name": "bids", "type": {"type": "array", "items": _STRING_LEVEL}},
        {"name": "asks", "type": {"type": "array", "items": "StringLevel"}},
        {
            "name": "reason",
            "type": {"type": "enum", "name": "SnapshotReason", "symbols": list(SNAPSHOT_REASONS)},
        },
        {"name": "burst_id", "type": "string"},
    ],
}

# --- the lanes added for issue 5 ---------------------------------------------------------
# Prices and quantities appear twice: `px`/`qty` (and other plain names) are doubles, equal to
# float() of the exchange's string; `*_str` are the strings exactly as sent.

# Where a record's `ts` came from: the exchange's event time, or (spot bookTicker and spot
# partial depth carry none) the local receive time standing in for it.
_TS_SOURCE = {"type": "enum", "name": "TsSource", "symbols": ["exchange", "receive"]}
# Result of comparing an exchange-published view of the book with the local book.
_BOOK_CHECK = {
    "type": "enum",
    "name": "BookCheck",
    "symbols": ["match", "mismatch", "unchecked"],
    "default": "unchecked",
}

TRADE_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "TradeRecord",
    "namespace": "orderbook_pipeline",
    "fields": [
        {"name": "venue", "type": "string"},
        {"name": "symbol", "type": "string"},
        {"name": "event_ts", "type": _TS},
        {"name": "trade_ts", "type": _TS},
        {"name": "ingest_ts", "type": _TS},
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
        {"name": "burst_id", "type": "string"},
    ],
}

AGG_TRADE_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "AggTradeRecord",
    "namespace": "orderbook_pipeline",
    "fields": [
        {"name": "venue", "type": "string"},
        {"name": "symbol", "type": "string"},
        {"name": "event_ts", "type": _TS},
        {"name": "trade_ts", "type": _TS},
        {"name": "ingest_ts", "type": _TS},
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
        {"name": "burst_id", "type": "string"},
    ],
}

BOOK_TICKER_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "BookTickerRecord",
    "namespace": "orderbook_pipeline",
    "fields": [
        {"name": "venue", "type": "string"},
        {"name": "symbol", "type": "string"},
        {"name": "update_id", "type": "long"},
        {"name": "ts", "type": _TS},
        {"name": "ts_source", "type": _TS_SOURCE},
        {"name": "event_ts", "type": _OPT_TS, "default": None},
        {"name": "transaction_ts", "type": _OPT_TS, "default": None},
        {"name": "ingest_ts", "type": _TS},
        {"name": "bid_px", "type": "double"},
        {"name": "bid_qty", "type": "double"},
        {"name": "ask_px", "type": "double"},
        {"name": "ask_qty", "type": "double"},
        {"name": "bid_px_str", "type": "string"},
        {"name": "bid_qty_str", "type": "string"},
        {"name": "ask_px_str", "type": "string"},
        {"name": "ask_qty_str", "type": "string"},
        {"name": "book_check", "type": _BOOK_CHECK, "default": "unchecked"},
        {"name": "burst_id", "type": "string"},
    ],
}

PARTIAL_DEPTH_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "PartialDepthRecord",
    "namespace": "orderbook_pipeline",
    "fields": [
        {"name": "venue", "type": "string"},
        {"name": "symbol", "type": "string"},
        {"name": "levels", "type": "int"},  # N of <sym>@depth<N>
        {"name": "last_update_id", "type": "long"},
        {"name": "first_update_id", "type": ["null", "long"], "default": None},  # USD-M U
        {"name": "prev_update_id", "type": ["null", "long"], "default": None},  # USD-M pu
        {"name": "ts", "type": _TS},
        {"name": "ts_source", "type": _TS_SOURCE},
        {"name": "event_ts", "type": _OPT_TS, "default": None},
        {"name": "transaction_ts", "type": _OPT_TS, "default": None},
        {"name": "ingest_ts", "type": _TS},
        {"name": "bids", "type": {"type": "array", "items": _STRING_LEVEL}},
        {"name": "asks", "type": {"type": "array", "items": "StringLevel"}},
        {"name": "book_check", "type": _BOOK_CHECK, "default": "unchecked"},
        {"name": "burst_id", "type": "string"},
    ],
}

DEFAULT_BAND_PCTS = (0.01, 0.05, 0.1, 0.5, 1.0)

DEPTH_BANDS_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "DepthBandsRecord",
    "namespace": "orderbook_pipeline",
    "fields": [
        {"name": "venue", "type": "string"},
        {"name": "symbol", "type": "string"},
        {"name": "event_ts", "type": _TS},
        {"name": "ingest_ts", "type": _TS},
        {"name": "last_update_id", "type": "long"},
        {"name": "mid", "type": "double"},
        {
            "name": "bands",
            "type": {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "Band",
                    "fields": [
                        # Levels with price within pct % of mid: bids >= mid*(1-pct/100),
                        # asks <= mid*(1+pct/100).
                        {"name": "pct", "type": "double"},
                        {"name": "bid_qty", "type": "double"},
                        {"name": "ask_qty", "type": "double"},
                        {"name": "bid_notional", "type": "double"},  # sum of px * qty
                        {"name": "ask_notional", "type": "double"},
                        # False when the band reaches past the levels the book is known to
                        # hold exactly (beyond the snapshot's depth): its sums are then a floor.
                        {"name": "complete", "type": "boolean"},
                    ],
                },
            },
        },
        {"name": "gap_detected", "type": "boolean", "default": False},
        {"name": "recovered", "type": "boolean", "default": False},
        {"name": "burst_id", "type": "string"},
    ],
}

VERIFY_RESULTS = ("match", "mismatch", "not_compared")

DEEP_SNAPSHOT_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "DeepSnapshotRecord",
    "namespace": "orderbook_pipeline",
    "fields": [
        {"name": "venue", "type": "string"},
        {"name": "symbol", "type": "string"},
        {"name": "last_update_id", "type": "long"},
        {"name": "request_ts", "type": _TS},
        {"name": "response_ts", "type": _TS},
        {"name": "limit", "type": "int"},
        {"name": "used_weight_1m", "type": ["null", "int"], "default": None},
        {"name": "bids", "type": {"type": "array", "items": _STRING_LEVEL}},
        {"name": "asks", "type": {"type": "array", "items": "StringLevel"}},
        {
            "name": "verify_result",
            "type": {"type": "enum", "name": "VerifyResult", "symbols": list(VERIFY_RESULTS)},
        },
        # Why it was not compared (book not in sync, snapshot older than the book, ...).
        {"name": "verify_note", "type": ["null", "string"], "default": None},
        {"name": "compared_levels", "type": "int", "default": 0},
        {"name": "mismatched_levels", "type": "int", "default": 0},
        {"name": "burst_id", "type": "string"},
    ],
}

MISMATCH_SOURCES = ("deep_snapshot", "partial_depth", "book_ticker")

BOOK_MISMATCH_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "BookMismatchRecord",
    "namespace": "orderbook_pipeline",
    "fields": [
        {"name": "venue", "type": "string"},
        {"name": "symbol", "type": "string"},
        {
            "name": "source",
            "type": {"type": "enum", "name": "MismatchSource", "symbols": list(MISMATCH_SOURCES)},
        },
        {"name": "update_id", "type": "long"},  # the book state compared (lastUpdateId / u)
        {"name": "detected_ts", "type": _TS},
        {"name": "compared_levels", "type": "int"},
        # The last state this burst verified as equal (deep snapshot, or the bootstrap
        # snapshot): the book may have been wrong anywhere after it.
        {"name": "last_verified_update_id", "type": ["null", "long"], "default": None},
        {"name": "last_verified_ts", "type": _OPT_TS, "default": None},
        {
            "name": "differences",
            "type": {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "LevelDifference",
                    "fields": [
                        {
                            "name": "side",
                            "type": {"type": "enum", "name": "DiffSide", "symbols": ["bid", "ask"]},
                        },
                        {"name": "px", "type": "double"},
                        {"name": "local_qty", "type": ["null", "double"], "default": None},
                        {"name": "exchange_qty", "type": ["null", "double"], "default": None},
                    ],
                },
            },
        },
        {"name": "burst_id", "type": "string"},
    ],
}

KLINE_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "KlineRecord",
    "namespace": "orderbook_pipeline",
    "fields": [
        {"name": "venue", "type": "string"},
        {"name": "symbol", "type": "string"},
        {"name": "interval", "type": "string"},
        {"name": "open_ts", "type": _TS},
        {"name": "close_ts", "type": _TS},
        {"name": "open", "type": "double"},
        {"name": "high", "type": "double"},
        {"name": "low", "type": "double"},
        {"name": "close", "type": "double"},
        {"name": "volume", "type": "double"},
        {"name": "quote_volume", "type": "double"},
        {"name": "trades", "type": "long"},
        {"name": "taker_buy_volume", "type": "double"},
        {"name": "taker_buy_quote_volume", "type": "double"},
        {"name": "open_str", "type": "string"},
        {"name": "high_str", "type": "string"},
        {"name": "low_str", "type": "string"},
        {"name": "close_str", "type": "string"},
        {"name": "volume_str", "type": "string"},
        {"name": "quote_volume_str", "type": "string"},
        {"name": "taker_buy_volume_str", "type": "string"},
        {"name": "taker_buy_quote_volume_str", "type": "string"},
        {"name": "fetched_ts", "type": _TS},
        {"name": "burst_id", "type": "string"},  # the backfill run that fetched it
    ],
}

LANE_SCHEMAS: dict[str, dict[str, Any]] = {
    "l2": L2_SCHEMA,
    "diffs": DIFF_SCHEMA,
    "snapshots": SNAPSHOT_SCHEMA,
    "trades": TRADE_SCHEMA,
    "agg_trades": AGG_TRADE_SCHEMA,
    "book_ticker": BOOK_TICKER_SCHEMA,
    "partial_depth": PARTIAL_DEPTH_SCHEMA,
    "depth_bands": DEPTH_BANDS_SCHEMA,
    "deep_snapshots": DEEP_SNAPSHOT_SCHEMA,
    "book_mismatches": BOOK_MISMATCH_SCHEMA,
    "klines": KLINE_SCHEMA,
}

PARSED_SCHEMAS: dict[str, Any] = {
    lane: fastavro.parse_schema(s) for lane, s in LANE_SCHEMAS.items()
}
