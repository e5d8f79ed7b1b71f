"""Builds the compiled capture core (Cython) during every install: `pip install -e .`,
`make install`, a wheel. pyproject.toml holds everything else.

Each `orderbook_pipeline/**/*.pyx` becomes an extension module beside its `.py` reference.
The extensions are optional: without a C compiler (or the Python headers) the build warns and
the package installs without them, and the capture runs the pure-Python core
(orderbook_pipeline/core/implementation.py says which one it chose, once, at start-up).
"""

from __future__ import annotations

from pathlib import Path

from setuptools import Extension, setup

ROOT = Path(__file__).resolve().parent


def _extensions() -> list[Extension]:
    sources = sorted(p.relative_to(ROOT) for p in (ROOT / "orderbook_pipeline").rglob("*.pyx"))
    if not sources:
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:  # only without build isolation and without the dev extra's Cython
        print("orderbook_pipeline: Cython is not installed; the pure-Python core is used")
        return []
    modules = [
        Extension(
            ".".join(src.with_suffix("").parts),
            [str(src)],
            # No fused multiply-add: the compiled core must round p * q as the Python one does.
            extra_compile_args=["-O3", "-ffp-contract=off"],
        )
        for src in sources
    ]
    built = cythonize(
        modules,
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True},
        quiet=True,
    )
    for ext in built:
        # A failed compile warns and the pure-Python core stays. Set here, after cythonize,
        # which builds new Extension objects without the flag.
        ext.optional = True
    return list(built)


setup(ext_modules=_extensions())
