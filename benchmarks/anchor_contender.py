"""The project's hot path as a contender of the shared anchor instrument (../shared/bench).

    BENCH_PLUGINS=$PWD/benchmarks/anchor_contender.py python anchors.py --only A2,C,G2,P --rounds 5

(run from the instrument's folder with a Python that has this project installed, e.g.
`.venv/bin/python`). It runs the same product code as benchmarks/contenders/ours.py, in the
same rounds as the instrument's own contenders, on the instrument's stream.
"""

from __future__ import annotations

import os
import sys

from anchors import contender, summary  # type: ignore[import-not-found]

# The instrument imports this file by path; make the project importable from a checkout too.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.contenders.ours import OurCapture


def _ours(depths: tuple[int, ...], lanes: tuple[str, ...]):  # type: ignore[no-untyped-def]
    def setup(snapshot, history):  # type: ignore[no-untyped-def]
        cap = OurCapture(snapshot, depths, lanes)
        cap.start(history)

        def process(msgs):  # type: ignore[no-untyped-def]
            cap.feed(msgs)
            cap.writer.close()
            book = cap.cap.sync.book
            return summary(book.bids.top(20), book.asks.top(20))

        return process

    return setup


contender(
    "P1 orderbook_pipeline depth 20",
    "msgspec decode + sync + region/deep book + L2 Avro binary + BronzeWriter snappy files",
)(_ours((20,), ("l2",)))
contender(
    "P2 orderbook_pipeline depths 10,20,50",
    "as P1, three L2 records per event",
)(_ours((10, 20, 50), ("l2",)))
contender(
    "P3 orderbook_pipeline depths 10,20,50 + diff lane",
    "as P2 plus the raw diff lane: a full capture",
)(_ours((10, 20, 50), ("l2", "diffs")))
