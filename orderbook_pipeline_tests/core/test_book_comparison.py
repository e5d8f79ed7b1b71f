"""Book verification logic: the book rolled to a snapshot's id, and level-by-level comparison."""

from __future__ import annotations

import random

from orderbook_pipeline.core.book_comparison import (
    INF,
    KnownRange,
    PendingVerification,
    compare_books,
    compare_top,
    snapshot_range,
)


def _desc(d: dict[float, float]) -> list[tuple[float, float]]:
    return sorted(d.items(), reverse=True)


def _asc(d: dict[float, float]) -> list[tuple[float, float]]:
    return sorted(d.items())


def test_snapshot_range_is_cut_only_where_a_side_filled_its_limit() -> None:
    bids = [(10.0, 1.0), (9.0, 1.0), (8.0, 1.0)]
    asks = [(11.0, 1.0), (12.0, 1.0)]
    assert snapshot_range(bids, asks, 3) == KnownRange(8.0, INF)
    assert snapshot_range(bids, asks, 2) == KnownRange(8.0, 12.0)
    assert snapshot_range(bids, asks, 5) == KnownRange(0.0, INF)


def test_equal_books_match_and_every_level_counts() -> None:
    bids = {10.0: 1.0, 9.0: 2.0}
    asks = {11.0: 3.0, 12.0: 4.0}
    result = compare_books(bids, asks, _desc(bids), _asc(asks), 100, KnownRange())
    assert result.matches
    assert result.compared == 4


def test_a_phantom_level_and_a_wrong_quantity_are_named() -> None:
    local_bids = {10.0: 1.0, 9.5: 7.0, 9.0: 2.0}
    local_asks = {11.0: 3.0}
    result = compare_books(
        local_bids, local_asks, [(10.0, 1.0), (9.0, 2.5)], [(11.0, 3.0)], 100, KnownRange()
    )
    assert not result.matches
    found = {(d.side, d.px, d.local_qty, d.exchange_qty) for d in result.differences}
    assert found == {("bid", 9.5, 7.0, None), ("bid", 9.0, 2.0, 2.5)}


def test_only_prices_both_sides_know_are_compared() -> None:
    # The local book knows bids down to 9 (its snapshot was cut there); it has learned 8 since.
    local_bids = {10.0: 1.0, 9.0: 1.0, 8.0: 5.0}
    # The exchange's snapshot (limit 2) is cut at 9.5 and has a level the book never knew (7).
    snap_bids = [(10.0, 1.0), (9.5, 0.5)]
    result = compare_books(local_bids, {}, snap_bids, [], 2, KnownRange(bid_floor=9.0))
    # 9.5 is inside both ranges: a real difference. 9, 8 and 7 are outside the snapshot's range.
    assert [(d.px, d.local_qty, d.exchange_qty) for d in result.differences] == [(9.5, None, 0.5)]
    assert result.compared == 2


def test_excluded_prices_are_left_out() -> None:
    result = compare_books({10.0: 1.0}, {}, [(10.0, 2.0)], [], 10, KnownRange(), frozenset({10.0}))
    assert result.matches and result.compared == 0


def test_state_at_replays_the_journal_exactly() -> None:
    pv = PendingVerification(100, {10.0: 1.0, 9.0: 1.0}, {11.0: 1.0})
    pv.record(101, 103, [(10.0, 0.0), (9.5, 2.0)], [])
    pv.record(104, 110, [], [(11.0, 4.0), (12.0, 1.0)])
    assert pv.state_at(99) is None  # older than the copy
    assert pv.state_at(111) is None  # the book has not got there
    assert pv.state_at(100) == ({10.0: 1.0, 9.0: 1.0}, {11.0: 1.0}, frozenset())
    assert pv.state_at(103) == ({9.5: 2.0, 9.0: 1.0}, {11.0: 1.0}, frozenset())
    bids, _asks, excluded = pv.state_at(107) or ({}, {}, frozenset())
    # 107 lies inside the second event: its prices are unknown there, the rest is known.
    assert excluded == frozenset({11.0, 12.0})
    assert bids == {9.5: 2.0, 9.0: 1.0}
    # The copy itself is never modified, so a second question gets the same answer.
    assert pv.state_at(100) == ({10.0: 1.0, 9.0: 1.0}, {11.0: 1.0}, frozenset())


def test_random_books_rolled_to_any_event_match_the_truth() -> None:
    rng = random.Random(5)
    book = {round(100 - i * 0.01, 2): float(rng.randint(1, 9)) for i in range(300)}
    pv = PendingVerification(0, dict(book), {})
    truth = {0: dict(book)}
    for uid in range(1, 60):
        changes = []
        for _ in range(rng.randint(1, 8)):
            px = round(100 - rng.randrange(320) * 0.01, 2)
            qty = 0.0 if rng.random() < 0.3 else float(rng.randint(1, 9))
            changes.append((px, qty))
            if qty:
                book[px] = qty
            else:
                book.pop(px, None)
        pv.record(uid, uid, changes, [])
        truth[uid] = dict(book)
    for uid, expected in truth.items():
        state = pv.state_at(uid)
        assert state is not None
        bids, _asks, excluded = state
        assert bids == expected and not excluded
        limit = 250
        snap = _desc(expected)[:limit]
        assert compare_books(bids, {}, snap, [], limit, KnownRange()).matches
        wrong = dict(bids)
        wrong[snap[10][0]] = snap[10][1] + 1
        assert not compare_books(wrong, {}, snap, [], limit, KnownRange()).matches


def test_top_comparison_names_a_phantom_once() -> None:
    local = [(10.0, 1.0), (9.5, 1.0), (9.0, 1.0)]  # a phantom at 9.5 pushed 8.0 out
    exchange = [(10.0, 1.0), (9.0, 1.0), (8.0, 1.0)]
    result = compare_top(local, [(11.0, 1.0)], exchange, [(11.0, 1.0)])
    assert [(d.side, d.px, d.local_qty, d.exchange_qty) for d in result.differences] == [
        ("bid", 9.5, 1.0, None)
    ]
    assert compare_top(exchange, [(11.0, 1.0)], exchange, [(11.0, 1.0)]).matches
    ticker = compare_top([(10.0, 1.0)], [(11.0, 2.0)], [(10.0, 1.0)], [(11.0, 3.0)])
    assert [(d.side, d.local_qty, d.exchange_qty) for d in ticker.differences] == [
        ("ask", 2.0, 3.0)
    ]
