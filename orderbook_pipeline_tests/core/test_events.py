from __future__ import annotations

import orjson
import pytest

from orderbook_pipeline.core.avro_binary import string_pairs
from orderbook_pipeline.core.events import (
    BadEvent,
    NotDepth,
    classify_frame,
    parse_snapshot,
)

SYMBOLS = frozenset({"BTCUSDT"})


def payload(**over):
    data = {
        "e": "depthUpdate",
        "E": 1700000000123,
        "s": "BTCUSDT",
        "U": 157,
        "u": 160,
        "b": [["65000.01000000", "0.01230000"]],
        "a": [["65000.02000000", "0.00000000"]],
    }
    data.update(over)
    return data


def frame(**over) -> bytes:
    return orjson.dumps({"stream": "btcusdt@depth@100ms", "data": payload(**over)})


def test_spot_event_decoded_to_exact_doubles_with_raw_strings_kept(depth_codec):
    e = depth_codec.decode_depth_frame(frame(), SYMBOLS, ingest_us=5, with_prev_id=False)
    assert (e.first_id, e.last_id, e.prev_id, e.event_ms, e.ingest_us) == (
        157,
        160,
        None,
        1700000000123,
        5,
    )
    assert e.bids == [(float("65000.01000000"), float("0.01230000"))]
    assert e.asks == [(65000.02, 0.0)]
    assert e.raw_levels == string_pairs([("65000.01000000", "0.01230000")]) + string_pairs(
        [("65000.02000000", "0.00000000")]
    )


def test_plain_stream_frames_and_strings_left_out_on_request(depth_codec):
    raw = orjson.dumps(payload())
    e = depth_codec.decode_depth_frame(raw, SYMBOLS, 0, False, keep_strings=False, combined=False)
    assert e.raw_levels is None and e.bids == [(65000.01, 0.0123)]


def test_futures_event_needs_pu(depth_codec):
    e = depth_codec.decode_depth_frame(
        frame(pu=149, T=1700000000120), SYMBOLS, 0, with_prev_id=True
    )
    assert (e.prev_id, e.transaction_ms) == (149, 1700000000120)
    with pytest.raises(BadEvent) as exc:
        depth_codec.decode_depth_frame(frame(), SYMBOLS, 0, with_prev_id=True)
    assert exc.value.reason == "wrong_types"


def test_spot_ignores_a_stray_pu(depth_codec):
    assert (
        depth_codec.decode_depth_frame(frame(pu=3), SYMBOLS, 0, with_prev_id=False).prev_id is None
    )


def test_unknown_symbol_and_reversed_ids_are_named_by_the_fast_path(depth_codec):
    with pytest.raises(BadEvent) as exc:
        depth_codec.decode_depth_frame(frame(s="DOGEUSDT"), SYMBOLS, 0, False)
    assert (exc.value.reason, exc.value.symbol) == ("unknown_symbol", "DOGEUSDT")
    with pytest.raises(BadEvent) as exc:
        depth_codec.decode_depth_frame(frame(u=150), SYMBOLS, 0, False)
    assert exc.value.reason == "wrong_types"


@pytest.mark.parametrize(
    ("over", "reason"),
    [
        ({"U": "abc"}, "wrong_types"),
        ({"E": -1}, "wrong_types"),
        ({"b": "x"}, "wrong_types"),
        ({"b": [["65000.01", 5]]}, "wrong_types"),
        ({"b": [["65000.01", "1", "2"]]}, "wrong_types"),
        ({"b": [["65000.01", "NaN"]]}, "bad_number"),
        ({"b": [["65000.01", "inf"]]}, "bad_number"),
        ({"a": [["65000.01", "-1.00000000"]]}, "bad_number"),
        ({"a": [["0.00000000", "1"]]}, "bad_number"),
        ({"a": [["abc", "1"]]}, "bad_number"),
        ({"s": 5}, "wrong_types"),
    ],
)
def test_bad_events_are_refused_fast_then_named_by_the_slow_path(over, reason, depth_codec):
    bad = frame(**over)
    with pytest.raises(NotDepth):
        depth_codec.decode_depth_frame(bad, SYMBOLS, 0, with_prev_id=False)
    problem = classify_frame(orjson.loads(bad)["data"])
    assert problem is not None and problem.reason == reason


def test_other_frames_are_not_depth_and_not_problems(depth_codec):
    with pytest.raises(NotDepth):
        depth_codec.decode_depth_frame(b'{"id":1,"result":null}', SYMBOLS, 0, False)
    with pytest.raises(NotDepth):
        depth_codec.decode_depth_frame(b"not json", SYMBOLS, 0, False)
    assert classify_frame({"e": "serverShutdown", "E": 1}) is None


def test_snapshot_parsed():
    s = parse_snapshot(
        {"lastUpdateId": 9, "bids": [["1.00", "2"]], "asks": [["1.01", "3"]]}, "BTCUSDT"
    )
    assert (s.last_update_id, s.bids, s.asks) == (9, [(1.0, 2.0)], [(1.01, 3.0)])
    assert s.raw_asks == [["1.01", "3"]]
    with pytest.raises(BadEvent):
        parse_snapshot({"lastUpdateId": "x", "bids": [], "asks": []}, "BTCUSDT")
    with pytest.raises(BadEvent) as exc:
        parse_snapshot({"lastUpdateId": 1, "bids": [["1", "nan"]], "asks": []}, "BTCUSDT")
    assert exc.value.reason == "bad_number"


def test_snapshot_listing_a_price_twice_is_refused_before_it_reaches_the_book():
    with pytest.raises(BadEvent) as exc:
        parse_snapshot(
            {"lastUpdateId": 1, "bids": [["1.00", "2"], ["1.0", "3"]], "asks": []}, "BTCUSDT"
        )
    assert exc.value.reason == "bad_number"
