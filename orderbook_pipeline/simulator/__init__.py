"""Bundled Binance-compatible exchange: seeded market model, fault injection, loopback server."""

from orderbook_pipeline.simulator.faults import FaultKind, MalformedKind
from orderbook_pipeline.simulator.klines import KlineQuery, KlineSource
from orderbook_pipeline.simulator.market import Event, Market, SymbolSpec, symbol_spec
from orderbook_pipeline.simulator.runner import SimulatorThread, serve_forever
from orderbook_pipeline.simulator.server import SimulatedExchange

__all__ = [
    "Event",
    "FaultKind",
    "KlineQuery",
    "KlineSource",
    "MalformedKind",
    "Market",
    "SimulatedExchange",
    "SimulatorThread",
    "SymbolSpec",
    "serve_forever",
    "symbol_spec",
]
