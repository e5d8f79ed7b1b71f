"""Synthetic bronze for silver/gap/mart/check tests, written with the project's BronzeWriter.

A test describes what the exchange sent (a tape of events with update ids and times) and what
each burst received and applied; BurstBuilder turns that into the book lanes' records. The
other lanes' records come from the `*_record` functions below and are added with
BurstBuilder.add, which files each under the hour of its lane's partition field.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field, replace
from typing import Any

import fastavro
import pyarrow as pa

from orderbook_pipeline.compaction.gaps import GAP_SCHEMA, write_gap_windows
from orderbook_pipeline.lanes.registry import LANES
from orderbook_pipeline.storage.bronze_writer import BronzeWriter
from orderbook_pipeline.storage.layout import HOUR_US, Partition, partition_for
from orderbook_pipeline.storage.store import Store

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in µs: an hour start
H1 = T0 + HOUR_US
VENUE, SYMBOL = "binance-spot", "BTCUSDT"
SECOND = 1_000_000


@dataclass(frozen=True)
class Ev:
    """One exchange event: U, u, pu (futures), event time (µs) and the book's mid after it."""

    U: int
    u: int
    pu: int | None
    ts: int
    mid: float = 100.0


def tape(
    n: int,
    *,
    t0: int = T0 + SECOND,
    step_us: int = 100_000,
    start_id: int = 1000,
    futures: bool = False,
) -> list[Ev]:
    """n consecutive events. Spot: U = previous u + 1 (3 ids each). Futures: ids skip (U =
    previous u + 5), chained by pu = previous u, so only the pu rule sees them as continuous."""
    out: list[Ev] = []
    prev_u = start_id - 1
    for i in range(n):
        first = prev_u + (5 if futures else 1)
        last = first + 2
        mid = 100.0 + ((i * 7) % 11 - 5) * 0.01
        out.append(Ev(first, last, prev_u if futures else None, t0 + i * step_us, mid))
        prev_u = last
    return out


def levels(
    mid: float, depth: int, *, spread: float = 0.02, skew: float = 1.0
) -> list[dict[str, Any]]:
    """Bids best first then asks best first, three levels a side (fewer than any depth)."""
    n = min(depth, 3)
    bids = [
        {"side": "bid", "px": mid - spread / 2 - 0.01 * k, "qty": skew * (1.0 + k)}
        for k in range(n)
    ]
    asks = [{"side": "ask", "px": mid + spread / 2 + 0.01 * k, "qty": 1.0 + k} for k in range(n)]
    return bids + asks


def l2_record(
    ev: Ev,
    depth: int,
    burst: str,
    *,
    venue: str = VENUE,
    symbol: str = SYMBOL,
    gap_detected: bool = False,
    recovered: bool = False,
    ingest_lag_us: int = 1000,
    lv: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    lv = levels(ev.mid, depth, skew=1.0 + depth / 100) if lv is None else lv
    bids = [x for x in lv if x["side"] == "bid"]
    asks = [x for x in lv if x["side"] == "ask"]
    bq, aq = sum(x["qty"] for x in bids), sum(x["qty"] for x in asks)
    bb, ba = bids[0]["px"], asks[0]["px"]
    mid = (bb + ba) / 2
    return {
        "venue": venue,
        "symbol": symbol,
        "event_ts": ev.ts,
        "ingest_ts": ev.ts + ingest_lag_us,
        "first_update_id": ev.U,
        "last_update_id": ev.u,
        "prev_update_id": ev.pu,
        "depth": depth,
        "levels": lv,
        "mid": mid,
        "spread_bps": (ba - bb) / mid * 1e4,
        "imbalance": (bq - aq) / (bq + aq),
        "gap_detected": gap_detected,
        "recovered": recovered,
        "burst_id": burst,
    }


def diff_record(
    ev: Ev, burst: str, *, venue: str = VENUE, symbol: str = SYMBOL, ingest_lag_us: int = 1000
) -> dict[str, Any]:
    return {
        "venue": venue,
        "symbol": symbol,
        "event_ts": ev.ts,
        "transaction_ts": ev.ts - 5 if ev.pu is not None else None,
        "ingest_ts": ev.ts + ingest_lag_us,
        "first_update_id": ev.U,
        "last_update_id": ev.u,
        "prev_update_id": ev.pu,
        "bids": [{"px": f"{ev.mid - 0.01:.8f}", "qty": "1.00000000"}],
        "asks": [],
        "burst_id": burst,
    }


@dataclass
class BurstBuilder:
    """Collects one burst's records of all three lanes; write() stores them with BronzeWriter."""

    burst_id: str
    venue: str = VENUE
    symbol: str = SYMBOL
    depths: tuple[int, ...] = (10, 20)
    ingest_lag_us: int = 1000
    records: list[tuple[str, int, int | None, dict[str, Any]]] = field(default_factory=list)

    def diffs(self, events: list[Ev]) -> BurstBuilder:
        for ev in events:
            rec = diff_record(
                ev,
                self.burst_id,
                venue=self.venue,
                symbol=self.symbol,
                ingest_lag_us=self.ingest_lag_us,
            )
            self.records.append(("diffs", ev.ts, None, rec))
        return self

    def l2(
        self,
        events: list[Ev],
        *,
        gap_detected_first: bool = False,
        recovered: bool = False,
        depths: tuple[int, ...] | None = None,
    ) -> BurstBuilder:
        """L2 records (every depth) for events applied in order; after a rebuild pass
        gap_detected_first=True, recovered=True as the capture does."""
        for i, ev in enumerate(events):
            for depth in depths or self.depths:
                rec = l2_record(
                    ev,
                    depth,
                    self.burst_id,
                    venue=self.venue,
                    symbol=self.symbol,
                    gap_detected=gap_detected_first and i == 0,
                    recovered=recovered,
                    ingest_lag_us=self.ingest_lag_us,
                )
                self.records.append(("l2", ev.ts, depth, rec))
        return self

    def received(self, events: list[Ev], **l2_flags: Any) -> BurstBuilder:
        """Events both received (diff lane) and applied (L2 lane)."""
        return self.diffs(events).l2(events, **l2_flags)

    def snapshot(
        self,
        last_update_id: int,
        request_ts: int,
        *,
        took_us: int = 200_000,
        reason: str = "bootstrap",
        used_weight: int | None = None,
    ) -> BurstBuilder:
        rec = {
            "venue": self.venue,
            "symbol": self.symbol,
            "last_update_id": last_update_id,
            "request_ts": request_ts,
            "response_ts": request_ts + took_us,
            "limit": 1000,
            "used_weight_1m": used_weight,
            "bids": [{"px": "99.99000000", "qty": "1.00000000"}],
            "asks": [{"px": "100.01000000", "qty": "1.00000000"}],
            "reason": reason,
            "burst_id": self.burst_id,
        }
        # Partitioned by response time, as the capture does.
        self.records.append(("snapshots", request_ts + took_us, None, rec))
        return self

    def add(self, lane: str, *records: dict[str, Any]) -> BurstBuilder:
        """Records of any lane but l2, stamped with this burst's venue, symbol and id (klines:
        the fetching run's id) and filed under the hour of the lane's partition field."""
        ts_field = LANES[lane].partition_ts
        for rec in records:
            rec = {**rec, "venue": self.venue, "symbol": self.symbol, "burst_id": self.burst_id}
            self.records.append((lane, rec[ts_field], None, rec))
        return self

    def write(self, store: Store) -> list[str]:
        with BronzeWriter(store, self.burst_id) as writer:
            for lane, ts, depth, rec in sorted(self.records, key=lambda r: r[1]):
                writer.write(partition_for(lane, self.venue, self.symbol, ts, depth), rec)
        return list(writer.published)


def shifted(events: list[Ev], **changes: Any) -> list[Ev]:
    return [replace(ev, **changes) for ev in events]


def put_avro(store: Store, partition: Partition, name: str, records: list[dict[str, Any]]) -> str:
    """One bronze file written directly with fastavro under `partition` as `{name}.avro` (a
    file BronzeWriter would not make: a second copy of a burst's records, e.g. salvaged)."""
    out = io.BytesIO()
    fastavro.writer(out, LANES[partition.lane].parsed, records, codec="snappy")
    rel = f"{partition.directory('bronze')}/{name}.avro"
    store.write_bytes(rel, out.getvalue())
    return rel


# -- records of the other lanes (venue, symbol and burst_id are set by BurstBuilder.add) ----------

_STREAM = {"venue": VENUE, "symbol": SYMBOL, "burst_id": ""}


def trade_record(
    trade_id: int, ts: int, *, px: float = 100.0, qty: float = 0.5, ingest_lag_us: int = 1000
) -> dict[str, Any]:
    return {
        **_STREAM,
        "event_ts": ts,
        "trade_ts": ts - 2,
        "ingest_ts": ts + ingest_lag_us,
        "trade_id": trade_id,
        "px": px,
        "qty": qty,
        "px_str": f"{px:.8f}",
        "qty_str": f"{qty:.8f}",
        "is_buyer_maker": trade_id % 2 == 0,
        "is_best_match": True,
        "missing_before": 0,
    }


def agg_trade_record(agg_id: int, ts: int, *, ingest_lag_us: int = 1000) -> dict[str, Any]:
    rec = trade_record(agg_id, ts, ingest_lag_us=ingest_lag_us)
    del rec["trade_id"]
    return {
        **rec,
        "agg_id": agg_id,
        "first_trade_id": 10 * agg_id,
        "last_trade_id": 10 * agg_id + 1,
    }


def book_ticker_record(
    update_id: int, ts: int, *, book_check: str = "match", ingest_lag_us: int = 1000
) -> dict[str, Any]:
    return {
        **_STREAM,
        "update_id": update_id,
        "ts": ts,
        "ts_source": "exchange",
        "event_ts": ts,
        "transaction_ts": None,
        "ingest_ts": ts + ingest_lag_us,
        "bid_px": 99.99,
        "bid_qty": 1.0,
        "ask_px": 100.01,
        "ask_qty": 2.0,
        "bid_px_str": "99.99000000",
        "bid_qty_str": "1.00000000",
        "ask_px_str": "100.01000000",
        "ask_qty_str": "2.00000000",
        "book_check": book_check,
    }


def partial_depth_record(
    last_update_id: int,
    ts: int,
    *,
    levels: int = 20,
    book_check: str = "match",
    ingest_lag_us: int = 1000,
) -> dict[str, Any]:
    return {
        **_STREAM,
        "levels": levels,
        "last_update_id": last_update_id,
        "first_update_id": None,
        "prev_update_id": None,
        "ts": ts,
        "ts_source": "receive",
        "event_ts": None,
        "transaction_ts": None,
        "ingest_ts": ts + ingest_lag_us,
        "bids": [{"px": "99.99000000", "qty": "1.00000000"}],
        "asks": [{"px": "100.01000000", "qty": "2.00000000"}],
        "book_check": book_check,
    }


Band = tuple[
    float, float, float, float, float, bool
]  # pct, bid/ask qty, bid/ask notional, complete


def depth_bands_record(
    last_update_id: int,
    ts: int,
    bands: list[Band] | None = None,
    *,
    mid: float = 100.0,
    gap_detected: bool = False,
    recovered: bool = False,
    ingest_lag_us: int = 1000,
) -> dict[str, Any]:
    bands = [(0.1, 1.0, 2.0, 100.0, 200.0, True)] if bands is None else bands
    names = ("pct", "bid_qty", "ask_qty", "bid_notional", "ask_notional", "complete")
    return {
        **_STREAM,
        "event_ts": ts,
        "ingest_ts": ts + ingest_lag_us,
        "last_update_id": last_update_id,
        "mid": mid,
        "bands": [dict(zip(names, b, strict=True)) for b in bands],
        "gap_detected": gap_detected,
        "recovered": recovered,
    }


def deep_snapshot_record(
    last_update_id: int,
    request_ts: int,
    *,
    verify_result: str = "match",
    compared_levels: int = 1000,
    mismatched_levels: int = 0,
    took_us: int = 150_000,
) -> dict[str, Any]:
    return {
        **_STREAM,
        "last_update_id": last_update_id,
        "request_ts": request_ts,
        "response_ts": request_ts + took_us,
        "limit": 5000,
        "used_weight_1m": 250,
        "bids": [{"px": "99.99000000", "qty": "1.00000000"}],
        "asks": [{"px": "100.01000000", "qty": "2.00000000"}],
        "verify_result": verify_result,
        "verify_note": None if verify_result != "not_compared" else "book not in sync",
        "compared_levels": compared_levels if verify_result != "not_compared" else 0,
        "mismatched_levels": mismatched_levels,
    }


def book_mismatch_record(
    source: str,
    update_id: int,
    detected_ts: int,
    *,
    last_verified_update_id: int | None = None,
    last_verified_ts: int | None = None,
    differing_levels: int = 1,
) -> dict[str, Any]:
    return {
        **_STREAM,
        "source": source,
        "update_id": update_id,
        "detected_ts": detected_ts,
        "compared_levels": 20,
        "last_verified_update_id": last_verified_update_id,
        "last_verified_ts": last_verified_ts,
        "differences": [
            {"side": "bid", "px": 99.99 - 0.01 * k, "local_qty": 1.0, "exchange_qty": None}
            for k in range(differing_levels)
        ],
    }


def kline_record(
    open_ts: int, fetched_ts: int, *, interval: str = "1m", close: float = 100.0
) -> dict[str, Any]:
    prices = {"open": 100.0, "high": max(100.0, close), "low": min(100.0, close), "close": close}
    volumes = {"volume": 3.0, "quote_volume": 300.0, "taker_buy_volume": 1.0}
    volumes["taker_buy_quote_volume"] = 100.0
    return {
        **_STREAM,
        "interval": interval,
        "open_ts": open_ts,
        "close_ts": open_ts + 60 * SECOND - 1,
        **prices,
        **volumes,
        "trades": 7,
        **{f"{k}_str": f"{v:.8f}" for k, v in {**prices, **volumes}.items()},
        "fetched_ts": fetched_ts,
    }


def write_gap_window(
    store: Store,
    hour: int,
    from_ts: int,
    to_ts: int,
    ids: tuple[int, int] = (1, 2),
    symbol: str = SYMBOL,
) -> None:
    """Write the partition's gap windows by hand: one sequence_gap window of burst "a"."""
    window = {
        "venue": VENUE,
        "symbol": symbol,
        "hour_start": hour,
        "from_update_id": ids[0],
        "to_update_id": ids[1],
        "from_ts": from_ts,
        "to_ts": to_ts,
        "cause": "sequence_gap",
        "bursts": "a",
    }
    table = pa.Table.from_pylist([window], schema=GAP_SCHEMA)
    write_gap_windows(store, table, VENUE, symbol, hour)
