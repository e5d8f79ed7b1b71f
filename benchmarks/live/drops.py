"""Client drops: the exchange's sent log against the bronze diff lane."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class DropCount:
    """One symbol: the exchange's sent log against the client's diff lane."""

    sent: int  # distinct u the exchange dispatched while the capture was subscribed
    received: int  # distinct (U, u) in the bronze diff lane
    in_span: int  # sent with first received u <= u <= last received u
    missing: int  # sent in span, absent from the diff lane: dropped by the client
    before: int  # sent before the first event the client kept (should be 0)
    after: int  # sent after the last one: in flight when the burst stopped reading
    unknown: int  # received but never sent (must be 0: else the comparison is broken)
    runs: int = 0  # stretches of consecutive missing events (one per incident)
    longest: int = 0  # events in the longest such stretch


def count_drops(sent_u: Iterable[int], received: set[tuple[int, int]]) -> DropCount:
    sent = set(sent_u)
    got = {u for _, u in received}
    if not got:
        return DropCount(len(sent), 0, 0, 0, 0, len(sent), 0)
    lo, hi = min(got), max(got)
    in_span = {u for u in sent if lo <= u <= hi}
    runs = longest = current = 0
    for u in sorted(in_span):
        if u in got:
            current = 0
            continue
        runs += current == 0
        current += 1
        longest = max(longest, current)
    return DropCount(
        sent=len(sent),
        received=len(received),
        in_span=len(in_span),
        missing=len(in_span - got),
        before=sum(1 for u in sent if u < lo),
        after=sum(1 for u in sent if u > hi),
        unknown=len(got - sent),
        runs=runs,
        longest=longest,
    )


def fetch_sent(rest_url: str, symbol: str) -> list[int]:
    with urllib.request.urlopen(f"{rest_url}/sim/sent?symbol={symbol}", timeout=30) as resp:
        return [int(u) for u in json.loads(resp.read())["u"]]
