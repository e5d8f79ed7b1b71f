"""The baseline: the full capture hot path from the best off-the-shelf parts, written plainly.

orjson parse -> Binance sequence check -> sortedcontainers.SortedDict per side (bids keyed by
-price so both sides iterate best first; float px/qty) -> the project's L2 record (a dict
matching the l2 lane's schema) per configured depth -> fastavro Writer(codec="snappy"), one
writer per depth as the bronze lanes are split by depth, into memory. This is anchors.py's G2 with
the project's record, i.e. what the project's own hot path has to beat.
"""

from __future__ import annotations

import io
import time
from itertools import islice
from typing import Any

import orjson
from fastavro.write import Writer
from sortedcontainers import SortedDict

from benchmarks.contenders import Process, float_book, in_sequence, summary
from orderbook_pipeline.lanes.registry import LANES
from orderbook_pipeline.venues import BINANCE_SPOT

_BURST_ID = "bench"


def _setup(depths: tuple[int, ...]) -> Any:
    max_depth = max(depths)

    def setup(snapshot: bytes, history: list[bytes]) -> Process:
        b0, a0, last = float_book(snapshot)
        bids = SortedDict({-p: q for p, q in b0.items()})
        asks = SortedDict(a0)
        loads = orjson.loads
        venue = BINANCE_SPOT.name
        parsed = LANES["l2"].parsed
        # Writer's default block size (16,000 B) is the bronze writer's BLOCK_BYTES.
        sinks = [(depth, io.BytesIO()) for depth in depths]
        writers = [(depth, Writer(buf, parsed, codec="snappy")) for depth, buf in sinks]

        def apply(d: dict[str, Any]) -> None:
            for p, q in d["b"]:
                px, qty = -float(p), float(q)
                if qty == 0.0:
                    bids.pop(px, None)
                else:
                    bids[px] = qty
            for p, q in d["a"]:
                px, qty = float(p), float(q)
                if qty == 0.0:
                    asks.pop(px, None)
                else:
                    asks[px] = qty

        for m in history:  # untimed: bring the book to the window's start
            d = loads(m)
            if in_sequence(d, last):
                last = d["u"]
                apply(d)

        def process(msgs: list[bytes]) -> dict[str, Any]:
            nonlocal last
            records = 0
            for m in msgs:
                ingest_us = time.time_ns() // 1000  # stamped on receipt, as a capture would
                d = loads(m)
                if not in_sequence(d, last):
                    continue
                last = d["u"]
                apply(d)
                bid_levels = [
                    {"side": "bid", "px": -p, "qty": q} for p, q in islice(bids.items(), max_depth)
                ]
                ask_levels = [
                    {"side": "ask", "px": p, "qty": q} for p, q in islice(asks.items(), max_depth)
                ]
                if not bid_levels or not ask_levels:
                    continue
                best_bid, best_ask = bid_levels[0]["px"], ask_levels[0]["px"]
                mid = (best_bid + best_ask) * 0.5
                spread_bps = (best_ask - best_bid) / mid * 1e4
                for depth, writer in writers:
                    bid_qty = sum(lvl["qty"] for lvl in bid_levels[:depth])
                    ask_qty = sum(lvl["qty"] for lvl in ask_levels[:depth])
                    writer.write(
                        {
                            "venue": venue,
                            "symbol": d["s"],
                            "event_ts": d["E"] * 1000,
                            "ingest_ts": ingest_us,
                            "first_update_id": d["U"],
                            "last_update_id": d["u"],
                            "prev_update_id": None,  # spot events carry no `pu`
                            "depth": depth,
                            "levels": bid_levels[:depth] + ask_levels[:depth],
                            "mid": mid,
                            "spread_bps": spread_bps,
                            "imbalance": (bid_qty - ask_qty) / (bid_qty + ask_qty),
                            "gap_detected": False,
                            "recovered": False,
                            "burst_id": _BURST_ID,
                        }
                    )
                    records += 1
            for _, writer in writers:
                writer.flush()
            top_b = [(-p, q) for p, q in islice(bids.items(), 20)]
            top_a = list(islice(asks.items(), 20))
            size = sum(buf.tell() for _, buf in sinks)
            return {
                "check": summary(top_b, top_a),
                "extra": {"avro_B_per_record": round(size / max(1, records), 1)},
            }

        return process

    return setup


CONTENDERS = {
    "baseline depth 20": (
        _setup((20,)),
        "orjson + SortedDict (-px bids, floats) + seq check + L2 record + fastavro Writer(snappy)",
    ),
    "baseline depths 10,20,50": (
        _setup((10, 20, 50)),
        "as baseline depth 20, three records per event (one writer per depth, shared level dicts)",
    ),
}
