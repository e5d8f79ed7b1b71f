"""One symbol's stream lanes besides depth: trades, aggregate trades, bookTicker, partial depth.

Records are decoded and validated by core/lanes.py. Trade and aggregate-trade ids must run on
without a hole (like update ids): a jump is counted and written into the next record
(`missing_before`), a repeat (reconnect overlap) is dropped. bookTicker and partial depth are
handed to the book verifier, which writes them once it has compared them with the local book.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orderbook_pipeline.capture.verification import View
from orderbook_pipeline.core.avro_binary import encode_string
from orderbook_pipeline.core.tickers import book_ticker_record, parse_partial_depth
from orderbook_pipeline.core.trades import (
    AggTradeContinuity,
    IdContinuity,
    agg_trade_record,
    trade_record,
)
from orderbook_pipeline.lanes import book_ticker, partial_depth
from orderbook_pipeline.storage.layout import partition_for

if TYPE_CHECKING:
    from orderbook_pipeline.capture.metrics import BurstMetrics
    from orderbook_pipeline.capture.ports import AnyRecordWriter
    from orderbook_pipeline.capture.verification import BookVerifier
    from orderbook_pipeline.core.book import OrderBook


class StreamLanes:
    def __init__(
        self,
        venue: str,
        symbol: str,
        burst_id: str,
        writer: AnyRecordWriter,
        metrics: BurstMetrics,
        verifier: BookVerifier,
    ) -> None:
        self.venue = venue
        self.symbol = symbol
        self.burst_id = burst_id
        self.writer = writer
        self.metrics = metrics
        self.verifier = verifier
        self._prefix = encode_string(venue) + encode_string(symbol)
        self._trade_ids = IdContinuity()
        self._agg_ids = AggTradeContinuity()

    def on_data(
        self, lane: str, data: Any, ingest_us: int, levels: int | None, book: OrderBook
    ) -> None:
        """One frame's payload of `lane` (raises BadEvent when it cannot be used)."""
        v, s, b = self.venue, self.symbol, self.burst_id
        if lane == "trades":
            rec = trade_record(data, v, s, ingest_us, b)
            self._write_trade(lane, rec, self._trade_ids.observe(rec["trade_id"], rec["trade_id"]))
        elif lane == "agg_trades":
            rec = agg_trade_record(data, v, s, ingest_us, b)
            seen = self._agg_ids.observe(rec["agg_id"], rec["first_trade_id"], rec["last_trade_id"])
            self._write_trade(lane, rec, None if seen is None else seen[0])
        elif lane == "book_ticker":
            r = book_ticker_record(data, v, s, ingest_us, b)
            bid, ask = (r["bid_px"], r["bid_qty"]), (r["ask_px"], r["ask_qty"])
            head = book_ticker.encode_head(
                self._prefix,
                update_id=r["update_id"],
                ts=r["ts"],
                ts_source=r["ts_source"],
                event_ts=r["event_ts"],
                transaction_ts=r["transaction_ts"],
                ingest_ts=ingest_us,
                bid_px=r["bid_px"],
                bid_qty=r["bid_qty"],
                ask_px=r["ask_px"],
                ask_qty=r["ask_qty"],
                bid_px_str=r["bid_px_str"],
                bid_qty_str=r["bid_qty_str"],
                ask_px_str=r["ask_px_str"],
                ask_qty_str=r["ask_qty_str"],
            )
            view = View(lane, r["update_id"], r["ts"], ingest_us, [bid], [ask], head)
            self.verifier.check_view(view, book)
        elif lane == "partial_depth":
            n = levels or 20
            p = parse_partial_depth(data, s, n)
            ts = ingest_us if p.event_us is None else p.event_us
            head = partial_depth.encode_head(self._prefix, n, p, ingest_us)
            view = View(lane, p.last_id, ts, ingest_us, p.bids, p.asks, head)
            self.verifier.check_view(view, book)
        else:
            raise ValueError(f"not a stream lane: {lane!r}")

    def _write_trade(self, lane: str, rec: dict[str, Any], missing: int | None) -> None:
        """Write a trade or aggregate with the ids missing before it; None: a repeat, dropped."""
        if missing is None:
            self.metrics.lane_repeats[lane] += 1
            return
        rec["missing_before"] = missing
        if missing:
            self.metrics.missing_ids[lane] += missing
        self.metrics.lane_records[lane] += 1
        self.writer.write(partition_for(lane, self.venue, self.symbol, rec["event_ts"]), rec)
