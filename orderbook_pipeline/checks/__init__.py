"""Pure logic of the hourly partition checks (continuity, coverage, crossed book, reconcile,
book verified against the exchange, trade continuity)."""

from orderbook_pipeline.checks.logic import (
    CheckOutcome,
    book_verified,
    bronze_distinct_l2_count,
    continuity,
    coverage,
    no_crossed_book,
    reconcile,
    trade_continuity,
)

__all__ = [
    "CheckOutcome",
    "book_verified",
    "bronze_distinct_l2_count",
    "continuity",
    "coverage",
    "no_crossed_book",
    "reconcile",
    "trade_continuity",
]
