"""Pure logic of the hourly partition checks (continuity, coverage, crossed book, reconcile)."""

from orderbook_pipeline.checks.logic import (
    CheckOutcome,
    bronze_distinct_l2_count,
    continuity,
    coverage,
    no_crossed_book,
    reconcile,
)

__all__ = [
    "CheckOutcome",
    "bronze_distinct_l2_count",
    "continuity",
    "coverage",
    "no_crossed_book",
    "reconcile",
]
