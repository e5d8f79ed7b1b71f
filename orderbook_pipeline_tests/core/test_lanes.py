from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro
import fastavro.validation
import pytest

from orderbook_pipeline.core.events import BadEvent
from orderbook_pipeline.core.tickers import (
    book_ticker_record,
    parse_partial_depth,
    partial_depth_record,
)
from orderbook_pipeline.core.trades import (
    AggTradeContinuity,
    IdContinuity,
    agg_trade_record,
    trade_record,
)
from orderbook_pipeline.lanes.registry import LANES

SYM = "BTCUSDT"
INGEST = 1_700_000_000_456_789
BURST = "b-1"
E_MS = 1_700_000_000_123
T_MS = 1_700_000_000_120


def spot_trade(**over: Any) -> dict[str, Any]:
    d = {
        "e": "trade",
        "E": E_MS,
        "s": SYM,
        "t": 12345,
        "p": "65000.01000000",
        "q": "0.00100000",
        "T": T_MS,
        "m": True,
        "M": True,
    }
    d.update(over)
    return d


def agg_trade(usdm: bool = False, **over: Any) -> dict[str, Any]:
    d = {
        "e": "aggTrade",
        "E": E_MS,
        "s": SYM,
        "a": 777,
        "p": "65000.1" if usdm else "65000.10000000",
        "q": "0.003" if usdm else "0.00300000",
        "f": 100,
        "l": 105,
        "T": T_MS,
        "m": False,
    }
    if not usdm:
        d["M"] = True
    d.update(over)
    return d


def spot_ticker(**over: Any) -> dict[str, Any]:
    d = {
        "u": 400900217,
        "s": SYM,
        "b": "25.35190000",
        "B": "31.21000000",
        "a": "25.36520000",
        "A": "40.66000000",
    }
    d.update(over)
    return d


def usdm_ticker(**over: Any) -> dict[str, Any]:
    d = {"e": "bookTicker", "E": E_MS, "T": T_MS, **spot_ticker(b="25.3519", a="25.3652")}
    d.update(over)
    return d


def spot_partial(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "lastUpdateId": 160,
        "bids": [["0.00240000", "10.00000000"], ["0.00230000", "5.00000000"]],
        "asks": [["0.00260000", "100.00000000"], ["0.00270000", "0.50000000"]],
    }
    d.update(over)
    return d


def usdm_partial(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "e": "depthUpdate",
        "E": E_MS,
        "T": T_MS,
        "s": SYM,
        "U": 157,
        "u": 160,
        "pu": 149,
        "b": [["7.05", "10"], ["7.04", "2.5"]],
        "a": [["7.06", "100"]],
    }
    d.update(over)
    return d


def roundtrip(lane: str, record: dict[str, Any]) -> dict[str, Any]:
    """The record as written and read back by fastavro, timestamps turned back into µs."""
    schema = LANES[lane].parsed
    assert fastavro.validation.validate(record, schema, raise_errors=True)
    buf = io.BytesIO()
    fastavro.writer(buf, schema, [record])
    buf.seek(0)
    (back,) = list(fastavro.reader(buf))
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return {
        k: (v - epoch) // timedelta(microseconds=1) if isinstance(v, datetime) else v
        for k, v in back.items()
    }


def assert_schema_fields(lane: str, record: dict[str, Any]) -> None:
    assert list(record) == [f["name"] for f in LANES[lane].avro["fields"]]
    assert roundtrip(lane, record) == record


# --- stream names ------------------------------------------------------------------------


# --- trades ------------------------------------------------------------------------------


def test_spot_trade_record():
    rec = trade_record(spot_trade(), "binance-spot", SYM, INGEST, BURST)
    assert rec == {
        "venue": "binance-spot",
        "symbol": SYM,
        "event_ts": E_MS * 1000,
        "trade_ts": T_MS * 1000,
        "ingest_ts": INGEST,
        "trade_id": 12345,
        "px": 65000.01,
        "qty": 0.001,
        "px_str": "65000.01000000",
        "qty_str": "0.00100000",
        "is_buyer_maker": True,
        "is_best_match": True,
        "missing_before": 0,
        "burst_id": BURST,
    }
    assert_schema_fields("trades", rec)


def test_trade_without_best_match_flag_records_none():
    data = spot_trade(m=False)
    del data["M"]
    rec = trade_record(data, "binance-us", SYM, INGEST, BURST)
    assert (rec["is_best_match"], rec["is_buyer_maker"]) == (None, False)
    assert_schema_fields("trades", rec)


def test_spot_agg_trade_record():
    rec = agg_trade_record(agg_trade(), "binance-spot", SYM, INGEST, BURST)
    assert rec == {
        "venue": "binance-spot",
        "symbol": SYM,
        "event_ts": E_MS * 1000,
        "trade_ts": T_MS * 1000,
        "ingest_ts": INGEST,
        "agg_id": 777,
        "first_trade_id": 100,
        "last_trade_id": 105,
        "px": 65000.1,
        "qty": 0.003,
        "px_str": "65000.10000000",
        "qty_str": "0.00300000",
        "is_buyer_maker": False,
        "is_best_match": True,
        "missing_before": 0,
        "burst_id": BURST,
    }
    assert_schema_fields("agg_trades", rec)


def test_usdm_agg_trade_has_no_best_match_flag():
    rec = agg_trade_record(agg_trade(usdm=True), "binance-usdm", SYM, INGEST, BURST)
    assert rec["is_best_match"] is None
    assert (rec["px_str"], rec["px"], rec["qty_str"]) == ("65000.1", 65000.1, "0.003")
    assert_schema_fields("agg_trades", rec)


def test_a_single_trade_aggregate_is_fine():
    rec = agg_trade_record(agg_trade(f=100, l=100), "binance-spot", SYM, INGEST, BURST)
    assert (rec["first_trade_id"], rec["last_trade_id"]) == (100, 100)


# --- book ticker -------------------------------------------------------------------------


def test_spot_book_ticker_is_timed_by_receipt():
    rec = book_ticker_record(spot_ticker(), "binance-spot", SYM, INGEST, BURST)
    assert rec == {
        "venue": "binance-spot",
        "symbol": SYM,
        "update_id": 400900217,
        "ts": INGEST,
        "ts_source": "receive",
        "event_ts": None,
        "transaction_ts": None,
        "ingest_ts": INGEST,
        "bid_px": 25.3519,
        "bid_qty": 31.21,
        "ask_px": 25.3652,
        "ask_qty": 40.66,
        "bid_px_str": "25.35190000",
        "bid_qty_str": "31.21000000",
        "ask_px_str": "25.36520000",
        "ask_qty_str": "40.66000000",
        "book_check": "unchecked",
        "burst_id": BURST,
    }
    assert_schema_fields("book_ticker", rec)


def test_usdm_book_ticker_is_timed_by_the_exchange():
    rec = book_ticker_record(usdm_ticker(), "binance-usdm", SYM, INGEST, BURST)
    assert (rec["ts"], rec["ts_source"], rec["event_ts"], rec["transaction_ts"]) == (
        E_MS * 1000,
        "exchange",
        E_MS * 1000,
        T_MS * 1000,
    )
    assert (rec["ingest_ts"], rec["bid_px_str"], rec["bid_px"]) == (INGEST, "25.3519", 25.3519)
    assert_schema_fields("book_ticker", rec)


# --- partial depth -----------------------------------------------------------------------


def test_spot_partial_depth_record():
    rec = partial_depth_record(spot_partial(), "binance-spot", SYM, 5, INGEST, BURST)
    assert rec == {
        "venue": "binance-spot",
        "symbol": SYM,
        "levels": 5,
        "last_update_id": 160,
        "first_update_id": None,
        "prev_update_id": None,
        "ts": INGEST,
        "ts_source": "receive",
        "event_ts": None,
        "transaction_ts": None,
        "ingest_ts": INGEST,
        "bids": [
            {"px": "0.00240000", "qty": "10.00000000"},
            {"px": "0.00230000", "qty": "5.00000000"},
        ],
        "asks": [
            {"px": "0.00260000", "qty": "100.00000000"},
            {"px": "0.00270000", "qty": "0.50000000"},
        ],
        "book_check": "unchecked",
        "burst_id": BURST,
    }
    assert_schema_fields("partial_depth", rec)


def test_usdm_partial_depth_record():
    rec = partial_depth_record(usdm_partial(), "binance-usdm", SYM, 20, INGEST, BURST)
    assert (rec["last_update_id"], rec["first_update_id"], rec["prev_update_id"]) == (160, 157, 149)
    assert (rec["ts"], rec["ts_source"], rec["event_ts"], rec["transaction_ts"]) == (
        E_MS * 1000,
        "exchange",
        E_MS * 1000,
        T_MS * 1000,
    )
    assert rec["bids"] == [{"px": "7.05", "qty": "10"}, {"px": "7.04", "qty": "2.5"}]
    assert rec["asks"] == [{"px": "7.06", "qty": "100"}]
    assert rec["levels"] == 20
    assert_schema_fields("partial_depth", rec)


def test_partial_depth_may_be_thinner_than_its_stream_even_empty():
    rec = partial_depth_record(spot_partial(asks=[]), "binance-us", SYM, 20, INGEST, BURST)
    assert rec["asks"] == [] and len(rec["bids"]) == 2
    assert_schema_fields("partial_depth", rec)
    full = [[f"0.00{24 - i}", "1"] for i in range(5)]
    rec = partial_depth_record(spot_partial(bids=full), "binance-spot", SYM, 5, INGEST, BURST)
    assert [lvl["px"] for lvl in rec["bids"]] == ["0.0024", "0.0023", "0.0022", "0.0021", "0.0020"]


def test_partial_depth_decimals_are_judged_by_float_like_the_other_lanes():
    # msgspec, which checks the levels in C, reads fewer spellings than float(): float decides.
    odd = spot_partial(bids=[["0.0024", "1."], ["+0.0023", "1"]], asks=[[".0026", "2"]])
    rec = partial_depth_record(odd, "binance-spot", SYM, 5, INGEST, BURST)
    assert rec["bids"] == [{"px": "0.0024", "qty": "1."}, {"px": "+0.0023", "qty": "1"}]
    parsed = parse_partial_depth(odd, SYM, 5)
    assert (parsed.bids[0], parsed.asks[0]) == ((0.0024, 1.0), (0.0026, 2.0))
    with pytest.raises(BadEvent) as exc:
        partial(spot_partial(bids=[["0.0023", "1."], ["0.0024", "1"]]))
    assert exc.value.reason == "unsorted"


def test_spot_partial_depth_carrying_its_symbol_is_checked():
    rec = partial_depth_record(spot_partial(s=SYM), "binance-spot", SYM, 5, INGEST, BURST)
    assert rec["symbol"] == SYM
    with pytest.raises(BadEvent) as exc:
        partial_depth_record(spot_partial(s="ETHUSDT"), "binance-spot", SYM, 5, INGEST, BURST)
    assert exc.value.reason == "unknown_symbol"


# --- refusals ----------------------------------------------------------------------------


def without(data: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != key}


def trade(d):
    return trade_record(d, "binance-spot", SYM, INGEST, BURST)


def agg(d):
    return agg_trade_record(d, "binance-spot", SYM, INGEST, BURST)


def ticker(d):
    return book_ticker_record(d, "binance-spot", SYM, INGEST, BURST)


def partial(d):
    return partial_depth_record(d, "binance-spot", SYM, 5, INGEST, BURST)


BAD = [
    # wrong_types: shapes, missing fields, JSON types
    (trade, ["not", "a", "dict"], "wrong_types", "payload must be an object, got list"),
    (trade, spot_trade(e="aggTrade"), "wrong_types", "event type must be 'trade'"),
    (trade, without(spot_trade(), "e"), "wrong_types", "event type must be 'trade', got None"),
    (trade, without(spot_trade(), "t"), "wrong_types", "field 't' is missing"),
    (trade, without(spot_trade(), "s"), "wrong_types", "field 's' is missing"),
    (trade, spot_trade(t="12345"), "wrong_types", "'t' must be a non-negative integer"),
    (trade, spot_trade(t=-1), "wrong_types", "'t' must be a non-negative integer"),
    (trade, spot_trade(t=True), "wrong_types", "'t' must be a non-negative integer"),
    (trade, spot_trade(t=1.0), "wrong_types", "'t' must be a non-negative integer"),
    (trade, spot_trade(E=2**62), "wrong_types", "'E' must be a non-negative integer"),
    (trade, spot_trade(p=65000.01), "wrong_types", "'p' must be a decimal string"),
    (trade, spot_trade(q=None), "wrong_types", "'q' must be a decimal string"),
    (trade, spot_trade(m=1), "wrong_types", "'m' must be a boolean"),
    (trade, spot_trade(M="true"), "wrong_types", "'M' must be a boolean"),
    (trade, spot_trade(s=1), "wrong_types", "'s' must be a string"),
    (agg, without(agg_trade(), "a"), "wrong_types", "field 'a' is missing"),
    (agg, agg_trade(f=106), "wrong_types", "l=105 < f=106"),
    (agg, agg_trade(e="trade"), "wrong_types", "event type must be 'aggTrade'"),
    (ticker, without(spot_ticker(), "B"), "wrong_types", "field 'B' is missing"),
    (ticker, spot_ticker(u="1"), "wrong_types", "'u' must be a non-negative integer"),
    (ticker, spot_ticker(a=25.4), "wrong_types", "'a' must be a decimal string"),
    (ticker, without(usdm_ticker(), "E"), "wrong_types", "field 'E' is missing"),
    (ticker, without(usdm_ticker(), "T"), "wrong_types", "field 'T' is missing"),
    (ticker, usdm_ticker(e="24hrTicker"), "wrong_types", "event type must be 'bookTicker'"),
    (partial, None, "wrong_types", "payload must be an object, got NoneType"),
    (partial, without(spot_partial(), "lastUpdateId"), "wrong_types", "'lastUpdateId' is missing"),
    (partial, without(spot_partial(), "asks"), "wrong_types", "field 'asks' is missing"),
    (partial, spot_partial(bids={"1": "2"}), "wrong_types", "bids must be a list, got dict"),
    (partial, spot_partial(bids=[["1.0"]]), "wrong_types", "level must be [price, qty] strings"),
    (partial, spot_partial(asks=[[3.0, "1"]]), "wrong_types", "level must be [price, qty] strings"),
    (partial, spot_partial(asks=[["3.0", "1", "2"]]), "wrong_types", "level must be [price, qty]"),
    (partial, spot_partial(asks=[["3.0", None]]), "wrong_types", "level must be [price, qty]"),
    (
        partial,
        spot_partial(bids=[[f"{100 - i}.0", "1"] for i in range(6)]),
        "wrong_types",
        "bids: 6 levels on a stream of 5",
    ),
    (partial, usdm_partial(U=161), "wrong_types", "u=160 < U=161"),
    (partial, without(usdm_partial(), "pu"), "wrong_types", "field 'pu' is missing"),
    (partial, without(usdm_partial(), "s"), "wrong_types", "field 's' is missing"),
    (partial, usdm_partial(e="depth"), "wrong_types", "event type must be 'depthUpdate'"),
    # bad_number
    (trade, spot_trade(p="abc"), "bad_number", "trade price is not a decimal: 'abc'"),
    (trade, spot_trade(p="NaN"), "bad_number", "trade price must be finite and > 0: 'NaN'"),
    (trade, spot_trade(p="inf"), "bad_number", "trade price must be finite and > 0: 'inf'"),
    (trade, spot_trade(p="0.00000000"), "bad_number", "price must be finite and > 0"),
    (trade, spot_trade(p="-1"), "bad_number", "price must be finite and > 0"),
    (trade, spot_trade(q="0.00000000"), "bad_number", "quantity must be finite and > 0"),
    (trade, spot_trade(q="1e999"), "bad_number", "quantity must be finite and > 0: '1e999'"),
    (agg, agg_trade(q="0"), "bad_number", "aggTrade quantity must be finite and > 0"),
    (agg, agg_trade(p=""), "bad_number", "aggTrade price is not a decimal: ''"),
    (ticker, spot_ticker(B="-0.1"), "bad_number", "quantity must be finite and >= 0: '-0.1'"),
    (ticker, spot_ticker(A="nan"), "bad_number", "quantity must be finite and >= 0: 'nan'"),
    (ticker, spot_ticker(b="0.00000000"), "bad_number", "bookTicker price must be finite"),
    (partial, spot_partial(asks=[["x", "1"]]), "bad_number", "asks price is not a decimal"),
    (partial, spot_partial(bids=[["1", "-2"]]), "bad_number", "quantity must be finite and >= 0"),
    (partial, spot_partial(bids=[["1", "nan"]]), "bad_number", "bids quantity must be finite"),
    (partial, spot_partial(asks=[["1", "1e400"]]), "bad_number", "asks quantity must be finite"),
    (partial, spot_partial(asks=[["Infinity", "1"]]), "bad_number", "asks price must be finite"),
    (partial, spot_partial(asks=[["-0.0026", "1"]]), "bad_number", "asks price must be finite"),
    (
        partial,
        spot_partial(bids=[["0.0024", "1"], ["0.00240000", "2"]]),
        "bad_number",
        "bids list the price 0.00240000 twice",
    ),
    # unknown_symbol
    (trade, spot_trade(s="ETHUSDT"), "unknown_symbol", "trade for 'ETHUSDT' on the stream of"),
    (agg, agg_trade(s="btcusdt"), "unknown_symbol", "aggTrade for 'btcusdt'"),
    (ticker, spot_ticker(s="ETHUSDT"), "unknown_symbol", "bookTicker for 'ETHUSDT'"),
    (partial, usdm_partial(s="ETHUSDT"), "unknown_symbol", "partial depth for 'ETHUSDT'"),
    # crossed
    (ticker, spot_ticker(b="25.4", a="25.3"), "crossed", "bookTicker bid 25.4 >= ask 25.3"),
    (ticker, spot_ticker(b="25.3", a="25.30000000"), "crossed", "bid 25.3 >= ask 25.30000000"),
    (
        partial,
        spot_partial(asks=[["0.00240000", "1"]]),
        "crossed",
        "best bid 0.00240000 >= best ask 0.00240000",
    ),
    # unsorted
    (
        partial,
        spot_partial(bids=[["0.0023", "1"], ["0.0024", "1"]]),
        "unsorted",
        "bids are not descending: 0.0024 after 0.0023",
    ),
    (
        partial,
        usdm_partial(a=[["7.07", "1"], ["7.06", "1"]]),
        "unsorted",
        "asks are not ascending: 7.06 after 7.07",
    ),
]


@pytest.mark.parametrize(("build", "data", "reason", "message"), BAD)
def test_unusable_payloads_are_refused_with_a_reason_and_the_problem(build, data, reason, message):
    with pytest.raises(BadEvent) as exc:
        build(data)
    assert exc.value.reason == reason
    assert message in str(exc.value)
    assert exc.value.symbol == SYM  # the stream's symbol, whatever the payload says


def test_every_reason_is_exercised():
    assert {reason for _, _, reason, _ in BAD} == {
        "wrong_types",
        "bad_number",
        "unknown_symbol",
        "crossed",
        "unsorted",
    }


# --- continuity --------------------------------------------------------------------------


def test_ids_that_continue_miss_nothing_and_the_first_item_misses_nothing():
    c = IdContinuity()
    assert [c.observe(i, i) for i in (500, 501, 502)] == [0, 0, 0]
    assert (c.last_id, c.missing, c.dropped) == (502, 0, 0)


def test_a_gap_reports_the_ids_skipped():
    c = IdContinuity()
    assert [c.observe(i, i) for i in (10, 11, 15, 16, 20)] == [0, 0, 3, 0, 3]
    assert c.missing == 6


def test_repeats_and_older_items_are_dropped():
    c = IdContinuity()
    assert [c.observe(i, i) for i in (10, 11, 12, 11, 12, 10, 13)] == [0, 0, 0, None, None, None, 0]
    assert (c.dropped, c.missing, c.last_id) == (3, 0, 13)


def test_a_reordered_item_is_counted_missing_by_the_one_that_jumped_ahead_and_then_dropped():
    c = IdContinuity()
    assert [c.observe(i, i) for i in (1, 2, 4, 3, 5)] == [0, 0, 1, None, 0]
    assert (c.missing, c.dropped) == (1, 1)


def test_ranges_overlapping_the_newest_seen_continue_and_ranges_within_it_are_repeats():
    c = IdContinuity()
    assert c.observe(100, 105) == 0
    assert c.observe(103, 108) == 0  # reaches past 105: new ids, nothing skipped
    assert c.observe(101, 108) is None
    assert c.observe(110, 112) == 1
    assert c.last_id == 112


def test_agg_trades_report_missing_aggregates_and_cross_check_trade_ids():
    c = AggTradeContinuity()
    assert c.observe(1, 100, 105) == (0, 0)  # first aggregate
    assert c.observe(2, 106, 106) == (0, 0)  # f == previous l + 1
    # USD-M: trades 107..109 (insurance fund / ADL) were not aggregated; no aggregate missing.
    assert c.observe(3, 110, 111) == (0, 3)
    # Aggregate 4 lost: its trades are missing too.
    assert c.observe(5, 115, 115) == (1, 3)
    assert c.observe(5, 115, 115) is None  # repeat
    assert c.observe(4, 112, 114) is None  # late: dropped
    assert (c.aggs.missing, c.missing_trades, c.aggs.dropped) == (1, 6, 2)


def test_agg_trade_ids_overlapping_the_previous_aggregate_count_nothing_missing():
    c = AggTradeContinuity()
    c.observe(1, 100, 105)
    assert c.observe(2, 104, 107) == (0, 0)
    assert c.last_trade_id == 107


def test_missing_before_is_the_continuity_of_the_record_ids():
    c = IdContinuity()
    out = []
    for t in (7, 8, 11):
        rec = trade_record(spot_trade(t=t), "binance-spot", SYM, INGEST, BURST)
        missing = c.observe(rec["trade_id"], rec["trade_id"])
        assert missing is not None
        rec["missing_before"] = missing
        out.append(roundtrip("trades", rec)["missing_before"])
    assert out == [0, 0, 2]


# --- book views --------------------------------------------------------------------------


def test_filled_in_checks_still_fit_the_schema():
    rec = book_ticker_record(usdm_ticker(), "binance-usdm", SYM, INGEST, BURST)
    rec["book_check"] = "mismatch"
    assert roundtrip("book_ticker", rec)["book_check"] == "mismatch"
