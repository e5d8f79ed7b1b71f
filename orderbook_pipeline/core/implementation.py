"""Which core keeps the books: the compiled one (core/_book.pyx, Cython) or the pure-Python
reference (core/book.py, core/avro_binary.L2Encoder). Both have the same public behaviour and
write the same bronze bytes; the compiled one is built during the normal install when the
machine has a C compiler (setup.py) and is several times cheaper per event.

A burst gets its Core from its settings (`capture.core: auto | compiled | python`) and hands it
to each SymbolCapture and BookSync: nothing here is global state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from orderbook_pipeline.core import avro_binary, book, depth_codec
from orderbook_pipeline.core.depth_codec import DepthCodec

CoreChoice = Literal["auto", "compiled", "python"]
CHOICES: tuple[CoreChoice, ...] = ("auto", "compiled", "python")


class L2EncoderFactory(Protocol):
    def __call__(self, venue: str, symbol: str, depths: tuple[int, ...], burst_id: str) -> Any: ...


@dataclass(frozen=True)
class Core:
    """One implementation: its name, the book class (OrderBook(max_depth)), the L2 encoder
    class (L2Encoder(venue, symbol, depths, burst_id) with encode_book), and the depth frame's
    decode with the diff lane's encoder (core/depth_codec.py)."""

    name: Literal["compiled", "python"]
    book: Callable[[int], book.OrderBook]
    l2_encoder: L2EncoderFactory
    depth: DepthCodec


PYTHON = Core("python", book.OrderBook, avro_binary.L2Encoder, depth_codec.PYTHON)


class CompiledCoreMissing(RuntimeError):
    """`compiled` was asked for, but the extension was not built (or does not import)."""


def compiled() -> Core:
    """The compiled core; raises CompiledCoreMissing (with the ImportError) without it."""
    try:
        from orderbook_pipeline.core import _book  # type: ignore[attr-defined]

        depth = depth_codec.codec("compiled")
    except ImportError as exc:
        raise CompiledCoreMissing(
            f"the compiled core (orderbook_pipeline.core._book) does not import: {exc}. "
            "Reinstall with a C compiler and the Python headers (`pip install -e .`, or "
            "`python setup.py build_ext --inplace` in a checkout), or set capture.core: python"
        ) from exc
    return Core("compiled", _book.OrderBook, _book.L2Encoder, depth)


def choose(choice: str) -> tuple[Core, str]:
    """(the core for `choice`, one line saying which runs and, for an `auto` without the
    compiled core, that it fell back to pure Python and why)."""
    if choice == "python":
        return PYTHON, "capture core: python (pure-Python reference, as configured)"
    if choice == "compiled":
        return compiled(), "capture core: compiled"
    if choice != "auto":
        raise ValueError(f"capture core must be one of {CHOICES}, got {choice!r}")
    try:
        return compiled(), "capture core: compiled (auto)"
    except CompiledCoreMissing as exc:
        return PYTHON, (
            "capture core: python (auto fell back to pure Python: the compiled core was not "
            f"built at install, usually for want of a C compiler or the Python headers: "
            f"{exc.__cause__})"
        )
