from __future__ import annotations

import math

from orderbook_pipeline.core.book import OrderBook
from orderbook_pipeline.core.events import DiffEvent, Scales
from orderbook_pipeline.core.records import build_diff_record, build_l2_records

SC = Scales(price_decimals=2, qty_decimals=3)


def test_l2_records_per_depth_with_derived_fields():
    book = OrderBook()
    book.load(10, [(10000, 1000), (9999, 3000), (9998, 500)], [(10002, 2000), (10003, 1000)])
    ev = DiffEvent(
        "BTCUSDT", 1_700_000_000_123, None, 11, 12, None, [], [], [["100.00", "1.000"]], [], 777
    )
    r1, r2 = build_l2_records("binance-spot", ev, book, (1, 2), SC, True, True, "b1")
    assert r1["depth"] == 1 and r2["depth"] == 2
    assert r1["levels"] == [
        {"side": "bid", "px": 100.0, "qty": 1.0},
        {"side": "ask", "px": 100.02, "qty": 2.0},
    ]
    assert [lvl["px"] for lvl in r2["levels"]] == [100.0, 99.99, 100.02, 100.03]
    assert r1["mid"] == 100.01
    assert math.isclose(r1["spread_bps"], 0.02 / 100.01 * 1e4, rel_tol=1e-12)
    assert math.isclose(r1["imbalance"], (1 - 2) / 3)
    assert math.isclose(r2["imbalance"], (4 - 3) / 7)
    assert (r1["event_ts"], r1["ingest_ts"], r1["gap_detected"], r1["recovered"]) == (
        1_700_000_000_123_000,
        777,
        True,
        True,
    )


def test_one_sided_book_gives_no_record():
    book = OrderBook()
    book.load(1, [(100, 1)], [])
    ev = DiffEvent("X", 1, None, 2, 2, None, [], [], [], [], 0)
    assert build_l2_records("binance-spot", ev, book, (10,), SC, False, False, "b") == []


def test_diff_record_keeps_exact_strings():
    ev = DiffEvent("X", 5, 4, 2, 3, 1, [], [], [["1.10", "0.5"]], [["1.20", "0"]], 9)
    rec = build_diff_record("binance-usdm", ev, "b")
    assert rec["bids"] == [{"px": "1.10", "qty": "0.5"}]
    assert rec["asks"] == [{"px": "1.20", "qty": "0"}]
    assert (rec["event_ts"], rec["transaction_ts"], rec["prev_update_id"]) == (5000, 4000, 1)
