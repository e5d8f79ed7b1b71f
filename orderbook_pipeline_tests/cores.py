"""Both capture cores for the tests: `core` is a fixture parametrized over them.

The compiled param FAILS when the extension is missing on a machine that could have built it
(a C compiler and the Python headers are there: the build was skipped or broke), and is skipped
only where no compiler exists, saying so: the suite then checks the pure-Python core alone.
"""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

import pytest

from orderbook_pipeline.core.implementation import PYTHON, CompiledCoreMissing, Core, compiled

CORE_NAMES = ("python", "compiled")


def compiler_problem() -> str | None:
    """Why this interpreter cannot build the extension here, or None when it can."""
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        return f"no C compiler ({cc!r} is not on PATH)"
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not headers.exists():
        return f"no Python headers ({headers} is missing)"
    return None


def load_core(name: str) -> Core:
    if name == "python":
        return PYTHON
    try:
        return compiled()
    except CompiledCoreMissing as exc:
        problem = compiler_problem()
        if problem is None:
            pytest.fail(
                f"{exc}: this machine has a compiler, so the extension should have been built "
                "(`pip install -e .` or `python setup.py build_ext --inplace`)"
            )
        pytest.skip(f"compiled core not built and it cannot be here: {problem}")


@pytest.fixture(params=CORE_NAMES)
def core(request: pytest.FixtureRequest) -> Core:
    """Each capture core in turn."""
    return load_core(request.param)
