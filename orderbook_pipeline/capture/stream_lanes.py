"""One symbol's stream lanes besides depth: trades, aggregate trades, bookTicker, partial depth.

Records are decoded and validated by core/lanes.py. Trade and aggregate-trade ids must run on
without a hole (like update ids): a jump is counted and written into the next record
(`missing_before`), a repeat (reconnect overlap) is dropped. bookTicker and partial depth are
handed to the book verifier, which writes them once it has compared them with the local book.

Two paths give the same records, byte for byte: `on_frame`, the fast one, decodes the whole
frame in C into typed payloads (core/lane_frames.py) and encodes each record straight to Avro
binary; it declines (returns False) any frame it does not find well formed, and the router
then hands the orjson-decoded payload to `on_data`, the reference, whose readers (core/lanes.py)
decide the outcome and word the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple

from orderbook_pipeline.capture.verification import View
from orderbook_pipeline.core.avro_binary import encode_string
from orderbook_pipeline.core.avro_record import COMPILED, record_encoder
from orderbook_pipeline.core.lane_frames import (
    fast_agg_trade,
    fast_book_ticker,
    fast_partial_depth,
    fast_trade,
)
from orderbook_pipeline.core.tickers import book_ticker_record, parse_partial_depth
from orderbook_pipeline.core.trades import (
    AggTradeContinuity,
    IdContinuity,
    agg_trade_record,
    trade_record,
)
from orderbook_pipeline.lanes import agg_trades, book_ticker, partial_depth, trades
from orderbook_pipeline.storage.layout import HOUR_US, partition_for

if TYPE_CHECKING:
    from orderbook_pipeline.capture.metrics import BurstMetrics
    from orderbook_pipeline.capture.ports import AnyRecordWriter, OpenFile
    from orderbook_pipeline.capture.verification import BookVerifier
    from orderbook_pipeline.core.book import OrderBook


class LaneEncoders(NamedTuple):
    """The record encoders of the stream lanes (generated from their fields)."""

    book_ticker: Callable[..., bytes]  # up to book_check
    partial_depth: Callable[..., bytes]  # up to book_check
    trades: Callable[..., bytes]
    agg_trades: Callable[..., bytes]


@cache
def lane_encoders(compiled: bool) -> LaneEncoders:
    """The compiled encoders (core/avro_record_c.pyx) when asked for and built, else the
    pure-Python reference ones."""
    c = compiled and COMPILED
    return LaneEncoders(
        record_encoder(book_ticker.BEFORE_CHECK, "encode_book_ticker_head", c),
        record_encoder(partial_depth.BEFORE_CHECK, "encode_partial_depth_fields", c),
        record_encoder(trades.FIELDS, "encode_trade_fields", c),
        record_encoder(agg_trades.FIELDS, "encode_agg_trade_fields", c),
    )


class StreamLanes:
    def __init__(
        self,
        venue: str,
        symbol: str,
        burst_id: str,
        writer: AnyRecordWriter,
        metrics: BurstMetrics,
        verifier: BookVerifier,
        compiled: bool = False,
    ) -> None:
        """compiled: encode with the compiled encoders (the burst's core is the compiled
        one, core/implementation.py), else the pure-Python ones."""
        self.venue = venue
        self.symbol = symbol
        self.burst_id = burst_id
        self.writer = writer
        self.metrics = metrics
        self.verifier = verifier
        self.encoders = lane_encoders(compiled)
        self._prefix = encode_string(venue) + encode_string(symbol)
        self._suffix = encode_string(burst_id)
        self._trade_ids = IdContinuity()
        self._agg_ids = AggTradeContinuity()
        # Open bronze files of the trade lanes, kept while live and in the record's hour.
        self._files: dict[str, OpenFile] = {}

    def on_frame(
        self,
        lane: str,
        stream: str,
        frame: str | bytes,
        ingest_us: int,
        levels: int | None,
        book: OrderBook,
    ) -> bool:
        """The fast path: one whole combined frame of `stream` (of `lane`) decoded, checked and
        written; False, having done nothing, when it is not well formed (then on_data of the
        orjson payload decides)."""
        symbol = self.symbol
        if lane == "book_ticker":
            t = fast_book_ticker(frame, stream, symbol)
            if t is None:
                return False
            d, bid, bid_qty, ask, ask_qty = t
            e_ms, t_ms = d.event_ms, d.transaction_ms
            if type(e_ms) is int and type(t_ms) is int:
                ts, ts_source, event_us, transaction_us = (
                    e_ms * 1000,
                    "exchange",
                    e_ms * 1000,
                    t_ms * 1000,
                )
            else:
                ts, ts_source, event_us, transaction_us = ingest_us, "receive", None, None
            head = self.encoders.book_ticker(
                self._prefix,
                d.update_id,
                ts,
                ts_source,
                event_us,
                transaction_us,
                ingest_us,
                bid,
                bid_qty,
                ask,
                ask_qty,
                d.bid,
                d.bid_qty,
                d.ask,
                d.ask_qty,
            )
            view = View(lane, d.update_id, ts, ingest_us, [(bid, bid_qty)], [(ask, ask_qty)], head)
            self.verifier.check_view(view, book)
            return True
        if lane == "partial_depth":
            n = levels or 20
            p = fast_partial_depth(frame, stream, symbol, n)
            if p is None:
                return False
            ts = ingest_us if p.event_us is None else p.event_us
            head = partial_depth.encode_head(
                self._prefix, n, p, ingest_us, self.encoders.partial_depth
            )
            self.verifier.check_view(
                View(lane, p.last_id, ts, ingest_us, p.bids, p.asks, head), book
            )
            return True
        if lane == "trades":
            tr = fast_trade(frame, stream, symbol)
            if tr is None:
                return False
            d_t, px, qty = tr
            missing = self._trade_ids.observe(d_t.trade_id, d_t.trade_id)
            if self._counted(lane, missing):
                event_us = d_t.event_ms * 1000
                best = d_t.best_match
                data = self.encoders.trades(
                    self._prefix,
                    event_us,
                    d_t.trade_ms * 1000,
                    ingest_us,
                    d_t.trade_id,
                    px,
                    qty,
                    d_t.px,
                    d_t.qty,
                    d_t.buyer_maker,
                    None if type(best) is not bool else best,
                    missing,
                )
                self._append(lane, event_us, data)
            return True
        if lane == "agg_trades":
            ag = fast_agg_trade(frame, stream, symbol)
            if ag is None:
                return False
            d_a, px, qty = ag
            seen = self._agg_ids.observe(d_a.agg_id, d_a.first_id, d_a.last_id)
            missing = None if seen is None else seen[0]
            if self._counted(lane, missing):
                event_us = d_a.event_ms * 1000
                best = d_a.best_match
                data = self.encoders.agg_trades(
                    self._prefix,
                    event_us,
                    d_a.trade_ms * 1000,
                    ingest_us,
                    d_a.agg_id,
                    d_a.first_id,
                    d_a.last_id,
                    px,
                    qty,
                    d_a.px,
                    d_a.qty,
                    d_a.buyer_maker,
                    None if type(best) is not bool else best,
                    missing,
                )
                self._append(lane, event_us, data)
            return True
        raise ValueError(f"not a stream lane: {lane!r}")

    def _counted(self, lane: str, missing: int | None) -> bool:
        """Count a trade or aggregate with the ids missing before it; False: a repeat."""
        metrics = self.metrics
        if missing is None:
            metrics.lane_repeats[lane] += 1
            return False
        if missing:
            metrics.missing_ids[lane] += missing
        metrics.lane_records[lane] += 1
        return True

    def _append(self, lane: str, ts_us: int, data: bytes) -> None:
        """One encoded record (plus the burst id) to the lane's file of ts_us's hour."""
        f = self._files.get(lane)
        if f is None or not f.live or not 0 <= ts_us - f.partition.hour_start_us < HOUR_US:
            f = self._files[lane] = self.writer.handle(
                partition_for(lane, self.venue, self.symbol, ts_us)
            )
        self.writer.append(f, data + self._suffix)

    def on_data(
        self, lane: str, data: Any, ingest_us: int, levels: int | None, book: OrderBook
    ) -> None:
        """The reference path: one frame's payload of `lane` (raises BadEvent when it cannot
        be used); trades are written as dicts through the writer's fastavro path."""
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
            head = self.encoders.book_ticker(
                self._prefix,
                r["update_id"],
                r["ts"],
                r["ts_source"],
                r["event_ts"],
                r["transaction_ts"],
                ingest_us,
                r["bid_px"],
                r["bid_qty"],
                r["ask_px"],
                r["ask_qty"],
                r["bid_px_str"],
                r["bid_qty_str"],
                r["ask_px_str"],
                r["ask_qty_str"],
            )
            view = View(lane, r["update_id"], r["ts"], ingest_us, [bid], [ask], head)
            self.verifier.check_view(view, book)
        elif lane == "partial_depth":
            n = levels or 20
            p = parse_partial_depth(data, s, n)
            ts = ingest_us if p.event_us is None else p.event_us
            head = partial_depth.encode_head(
                self._prefix, n, p, ingest_us, self.encoders.partial_depth
            )
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
