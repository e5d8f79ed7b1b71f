from __future__ import annotations

import pytest

from orderbook_pipeline.core.events import BadEvent, Scales, parse_depth_event, parse_snapshot

SCALES = {"BTCUSDT": Scales(price_decimals=2, qty_decimals=5)}


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


def test_spot_event_parsed_exactly_with_raw_strings_kept():
    e = parse_depth_event(payload(), SCALES, ingest_us=5, with_prev_id=False)
    assert (e.first_id, e.last_id, e.prev_id, e.event_ms) == (157, 160, None, 1700000000123)
    assert e.bids == [(6500001, 1230)] and e.asks == [(6500002, 0)]
    assert e.raw_bids == [["65000.01000000", "0.01230000"]]


def test_futures_event_needs_pu():
    e = parse_depth_event(payload(pu=149, T=1700000000120), SCALES, 0, with_prev_id=True)
    assert (e.prev_id, e.transaction_ms) == (149, 1700000000120)
    with pytest.raises(BadEvent) as exc:
        parse_depth_event(payload(), SCALES, 0, with_prev_id=True)
    assert exc.value.reason == "wrong_types"


@pytest.mark.parametrize(
    ("over", "reason"),
    [
        ({"U": "abc"}, "wrong_types"),
        ({"u": 150}, "wrong_types"),
        ({"b": "x"}, "wrong_types"),
        ({"b": [["65000.01", "NaN"]]}, "bad_number"),
        ({"a": [["65000.01", "-1.00000000"]]}, "bad_number"),
        ({"a": [["65000.011", "1"]]}, "bad_number"),
        ({"s": "DOGEUSDT"}, "unknown_symbol"),
        ({"s": 5}, "wrong_types"),
    ],
)
def test_bad_events_are_named(over, reason):
    with pytest.raises(BadEvent) as exc:
        parse_depth_event(payload(**over), SCALES, 0, with_prev_id=False)
    assert exc.value.reason == reason


def test_snapshot_parsed():
    s = parse_snapshot(
        {"lastUpdateId": 9, "bids": [["1.00", "2"]], "asks": [["1.01", "3"]]},
        SCALES["BTCUSDT"],
        "BTCUSDT",
    )
    assert (s.last_update_id, s.bids, s.asks) == (9, [(100, 200000)], [(101, 300000)])
    with pytest.raises(BadEvent):
        parse_snapshot({"lastUpdateId": "x", "bids": [], "asks": []}, SCALES["BTCUSDT"], "BTCUSDT")
