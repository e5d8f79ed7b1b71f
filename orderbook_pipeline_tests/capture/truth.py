"""Proof obligations for a capture against the bundled exchange, shared by the capture tests.

Each check reads what the capture left under its data root and compares it with the exchange's
own truth (its true book at any update id, the events it generated and the ones it sent).
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from orderbook_pipeline.storage.reader import iter_lane_records
from orderbook_pipeline.storage.store import Store
from orderbook_pipeline.venues import SyncRule, Venue


@dataclass
class Verified:
    records: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=dict)
    diffs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    gaps_flagged: dict[str, int] = field(default_factory=dict)
    coverage: dict[str, float] = field(default_factory=dict)


def load_records(store: Store, lane: str) -> list[dict[str, Any]]:
    return list(iter_lane_records(store, lane))


def _us(ts: Any) -> int:
    """fastavro returns timestamp-micros as datetimes; the contract is µs since the epoch."""
    if isinstance(ts, int):
        return ts
    return int(ts.timestamp() * 1_000_000 + 0.5)


def _continues(rule: SyncRule, prev: dict[str, Any], rec: dict[str, Any]) -> bool:
    if rule is SyncRule.FUTURES:
        return rec["prev_update_id"] == prev["last_update_id"]
    return rec["first_update_id"] == prev["last_update_id"] + 1


def verify_capture(
    sim: Any,
    store: Store,
    venue: Venue,
    symbols: list[str],
    depths: tuple[int, ...],
    min_coverage: float = 0.99,
) -> Verified:
    """Assert every obligation; return what was seen so tests can assert fault specifics."""
    out = Verified()
    by_key: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for rec in load_records(store, "l2"):
        by_key[(rec["symbol"], rec["depth"])].append(rec)
    for symbol in symbols:
        sent = sim.sent_log(symbol)
        for depth in depths:
            all_recs = by_key[(symbol, depth)]
            assert all_recs, f"{symbol} depth {depth}: no L2 records"
            _check_exact(sim, symbol, depth, all_recs)
            # Chains, coverage and uniqueness hold within one burst: bursts overlap in time.
            for burst, recs in _by_burst(all_recs).items():
                ids = [r["last_update_id"] for r in recs]
                assert len(ids) == len(set(ids)), f"{symbol}/{depth}/{burst}: a book state twice"
                _check_chain(venue.sync_rule, symbol, depth, recs)
                out.coverage[f"{symbol}/{depth}/{burst}"] = _check_coverage(
                    symbol, depth, recs, sent, min_coverage
                )
            out.records[(symbol, depth)] = sorted(all_recs, key=lambda r: r["last_update_id"])
        out.gaps_flagged[symbol] = sum(r["gap_detected"] for r in out.records[(symbol, depths[0])])
        out.diffs[symbol] = _check_diffs(sim, store, venue, symbol, sent)
    return out


def _by_burst(recs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rec in recs:
        groups[rec["burst_id"]].append(rec)
    return {b: sorted(g, key=lambda r: r["last_update_id"]) for b, g in groups.items()}


def _check_exact(sim: Any, symbol: str, depth: int, recs: list[dict[str, Any]]) -> None:
    for rec in recs:
        bids, asks = sim.true_book(symbol, rec["last_update_id"], depth)
        expected = [("bid", float(p), float(q)) for p, q in bids] + [
            ("ask", float(p), float(q)) for p, q in asks
        ]
        got = [(lvl["side"], lvl["px"], lvl["qty"]) for lvl in rec["levels"]]
        assert got == expected, (
            f"{symbol}/{depth} at u={rec['last_update_id']}: record differs from the true book"
        )
        best_bid, best_ask = float(bids[0][0]), float(asks[0][0])
        assert math.isclose(rec["mid"], (best_bid + best_ask) / 2, rel_tol=1e-15)
        assert best_bid < best_ask


def _check_chain(rule: SyncRule, symbol: str, depth: int, recs: list[dict[str, Any]]) -> None:
    flagged = False
    for prev, rec in itertools.pairwise(recs):
        if rec["gap_detected"]:
            flagged = True
            assert rec["recovered"], "a gap_detected record must also be recovered"
            continue
        assert _continues(rule, prev, rec), (
            f"{symbol}/{depth}: record u={rec['last_update_id']} does not continue "
            f"u={prev['last_update_id']} yet gap_detected is false (an unflagged loss)"
        )
        if flagged:
            assert rec["recovered"], "records after a rebuild must say recovered"
    assert not recs[0]["gap_detected"] or recs[0]["recovered"]


def _check_coverage(
    symbol: str, depth: int, recs: list[dict[str, Any]], sent: list[int], min_coverage: float
) -> float:
    """Events sent while the capture was in sync (between a record and the next one that does
    not follow a gap) must become records: at least min_coverage of them."""
    written = {r["last_update_id"] for r in recs}
    windows: list[tuple[int, int]] = []  # in-sync spans [first u, last u]
    start = recs[0]["last_update_id"]
    for prev, rec in itertools.pairwise(recs):
        if rec["gap_detected"]:
            windows.append((start, prev["last_update_id"]))
            start = rec["last_update_id"]
    windows.append((start, recs[-1]["last_update_id"]))
    expected = {u for u in set(sent) if any(a <= u <= b for a, b in windows)}
    covered = len(expected & written) / len(expected) if expected else 1.0
    assert covered >= min_coverage, (
        f"{symbol}/{depth}: only {covered:.4f} of in-sync events recorded"
    )
    return covered


def _check_diffs(
    sim: Any, store: Store, venue: Venue, symbol: str, sent: list[int]
) -> list[dict[str, Any]]:
    diffs = [d for d in load_records(store, "diffs") if d["symbol"] == symbol]
    for burst, group in _by_burst(diffs).items():
        keys = [(d["first_update_id"], d["last_update_id"]) for d in group]
        assert len(keys) == len(set(keys)), f"{symbol}/{burst}: an event stored twice"
    generated = {p["u"]: p for p in sim.generated(symbol)}
    sent_set = set(sent)
    for d in diffs:
        u = d["last_update_id"]
        assert u in sent_set, f"{symbol}: diff lane holds u={u} the exchange never sent"
        payload = generated[u]
        assert d["first_update_id"] == payload["U"]
        assert [[lvl["px"], lvl["qty"]] for lvl in d["bids"]] == payload["b"]
        assert [[lvl["px"], lvl["qty"]] for lvl in d["asks"]] == payload["a"]
        assert _us(d["event_ts"]) == payload["E"] * 1000
        assert d["prev_update_id"] == payload.get("pu")
    return diffs
