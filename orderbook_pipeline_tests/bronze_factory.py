"""Synthetic bronze for silver/gap/mart/check tests, written with the project's BronzeWriter.

A test describes what the exchange sent (a tape of events with update ids and times) and what
each burst received and applied; BurstBuilder turns that into the three lanes' records.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from orderbook_pipeline.storage.bronze_writer import BronzeWriter
from orderbook_pipeline.storage.layout import HOUR_US, partition_for
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

    def write(self, store: Store) -> list[str]:
        with BronzeWriter(store, self.burst_id) as writer:
            for lane, ts, depth, rec in sorted(self.records, key=lambda r: r[1]):
                writer.write(partition_for(lane, self.venue, self.symbol, ts, depth), rec)
        return list(writer.published)


def shifted(events: list[Ev], **changes: Any) -> list[Ev]:
    return [replace(ev, **changes) for ev in events]
