"""Contenders of the capture hot-path benchmark, and the interface they share.

A contender module defines ``CONTENDERS = {name: (setup, notes)}`` where

- ``setup(snapshot: bytes, history: list[bytes]) -> process`` builds its book from the REST
  snapshot and brings it, untimed, to the state after the history frames (apply only is fine);
- ``process(msgs: list[bytes]) -> summary`` is the timed part: it must do the full per-event
  work it claims (e.g. one depth-20 record per event) and return ``summary(top_b, top_a)`` of
  its final book (cross-checked between contenders), or None if it keeps no book. It may return
  a dict {"check": summary, "extra": {...}} to report extra figures (e.g. bytes per record).

Modules: floor (parse only), baseline (off-the-shelf parts), ours (the project's hot path, if
present), plus files named in $OBP_BENCH_PLUGINS (joined by ':'), e.g. for tests.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Process = Callable[[list[bytes]], Any]
Setup = Callable[[bytes, list[bytes]], Process]

DEPTH = 20  # the depth the cross-check summary covers
PLUGINS_ENV = "OBP_BENCH_PLUGINS"
BUILTIN = ("benchmarks.contenders.floor", "benchmarks.contenders.baseline")
OPTIONAL = ("benchmarks.contenders.ours",)  # written separately; absent is not an error


@dataclass(frozen=True)
class Contender:
    name: str
    setup: Setup
    notes: str
    source: str


def summary(top_b: Sequence[Sequence[Any]], top_a: Sequence[Sequence[Any]]) -> list[float]:
    """Cross-check value of a final book: best bid, best ask, total qty of the top DEPTH levels
    of both sides. top_b/top_a are (px, qty) pairs best first; numbers or decimal strings."""
    levels = [*top_b[:DEPTH], *top_a[:DEPTH]]  # one running sum, bids first, as anchors.py
    return [float(top_b[0][0]), float(top_a[0][0]), round(sum(float(q) for _, q in levels), 6)]


def in_sequence(d: dict[str, Any], last: int) -> bool:
    """Binance spot rule: drop an event with u <= last; the next one must have U <= last + 1."""
    if d["u"] <= last:
        return False
    if d["U"] > last + 1:
        raise RuntimeError(f"gap: U={d['U']} last={last}")
    return True


def float_book(snapshot: bytes) -> tuple[dict[float, float], dict[float, float], int]:
    """(bids, asks, lastUpdateId) of a REST depth snapshot, as {price: qty} floats."""
    import orjson

    s = orjson.loads(snapshot)
    bids = {float(p): float(q) for p, q in s["bids"]}
    asks = {float(p): float(q) for p, q in s["asks"]}
    return bids, asks, s["lastUpdateId"]


def _plugin_module(path: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"obp_bench_plugin_{Path(path).stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def discover() -> tuple[dict[str, Contender], list[str]]:
    """All contenders that load, in report order, and a line per module that failed to load."""
    found: dict[str, Contender] = {}
    problems: list[str] = []
    sources: list[tuple[str, Callable[[], Any]]] = [
        (name, lambda name=name: importlib.import_module(name)) for name in (*BUILTIN, *OPTIONAL)
    ]
    plugins = [p for p in os.environ.get(PLUGINS_ENV, "").split(os.pathsep) if p]
    sources += [(path, lambda path=path: _plugin_module(path)) for path in plugins]
    for source, load in sources:
        try:
            module = load()
        except ModuleNotFoundError as exc:
            if source in OPTIONAL and exc.name == source:
                continue
            problems.append(f"{source}: {type(exc).__name__}: {exc}")
            continue
        except Exception as exc:  # a broken contender module must not hide the others
            problems.append(f"{source}: {type(exc).__name__}: {exc}")
            continue
        for name, (setup, notes) in getattr(module, "CONTENDERS", {}).items():
            if name in found:
                problems.append(
                    f"{source}: contender {name!r} already defined by {found[name].source}"
                )
                continue
            found[name] = Contender(name, setup, notes, source)
    return found, problems
