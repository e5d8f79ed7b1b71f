"""A wheel install works: the wheel carries every subpackage, the compiled capture core (built
by setup.py with the machine's compiler) and every `sql/*.sql` file where marts/sql_files.py
reads them, and the loader finds them from an unpacked wheel alone.

The wheel is built from a copy of the sources (setuptools writes build/ and *.egg-info next to
pyproject.toml), offline, with the environment's setuptools (the dev extra's).
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SETUPTOOLS_FLOOR = (77,)  # pyproject's build-system floor: the SPDX `license` string


def _setuptools_version() -> tuple[int, ...]:
    version = importlib.metadata.version("setuptools")
    return tuple(int(p) for p in version.split(".")[:2] if p.isdigit())


def _build_wheel(tmp_path_factory: pytest.TempPathFactory, **env: str) -> Path:
    if _setuptools_version() < SETUPTOOLS_FLOOR:
        pytest.skip("setuptools >= 77 (the dev extra: `make install`) builds the wheel offline")
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "setup.py"):
        shutil.copy2(REPO / name, src / name)
    # Not the checkout's in-place build: the wheel must compile the extension itself.
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "*.c")
    for name in ("orderbook_pipeline", "sql"):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    out = tmp_path_factory.mktemp("dist")
    pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*pip, "--no-index", "-w", str(out), str(src)],
        check=True,
        timeout=180,
        env={**os.environ, "PIP_NO_INPUT": "1", **env},
    )
    (built,) = out.glob("orderbook_pipeline-*.whl")
    return built


def _run_from(wheel: Path, tmp_path: Path, probe: str) -> subprocess.CompletedProcess[str]:
    """`probe` in a fresh interpreter that sees the unpacked wheel, not the checkout."""
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)
    # -I would drop PYTHONPATH; -P keeps the cwd (the checkout) off sys.path; the editable
    # install's finder sits behind sys.path entries, so the unpacked wheel wins.
    return subprocess.run(
        [sys.executable, "-P", "-c", probe, str(site)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_wheel(tmp_path_factory)


def test_the_wheel_carries_every_sql_file_where_the_loader_reads_it(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    expected = {f"orderbook_pipeline/sql/{p.name}" for p in (REPO / "sql").glob("*.sql")}
    assert expected, "no SQL files in the checkout's sql/"
    assert expected <= names, sorted(expected - names)
    # Only the package: no tests, no top-level `sql` package, nothing from the checkout's root.
    name, version = wheel.name.split("-")[:2]
    assert {n.split("/")[0] for n in names} == {"orderbook_pipeline", f"{name}-{version}.dist-info"}


def test_the_wheel_carries_every_subpackage(wheel: Path) -> None:
    """pyproject lists the packages (sql/ cannot be found by setuptools): none may be missed."""
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    modules = {
        p.relative_to(REPO).as_posix()
        for p in (REPO / "orderbook_pipeline").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert modules <= names, sorted(modules - names)


def test_the_loader_reads_the_sql_from_an_unpacked_wheel(wheel: Path, tmp_path: Path) -> None:
    """In a fresh interpreter that sees only the unpacked wheel (and the venv's dependencies),
    not the checkout: SQL_DIR is inside the package, and a statement loads from it."""
    probe = (
        "import sys, pathlib\n"
        "from orderbook_pipeline.marts import sql_files\n"
        "pkg = pathlib.Path(sql_files.__file__).resolve().parents[1]\n"
        "assert pkg == pathlib.Path(sys.argv[1]).resolve() / 'orderbook_pipeline', pkg\n"
        "assert sql_files.SQL_DIR == pkg / 'sql', sql_files.SQL_DIR\n"
        "(stmt,) = sql_files.sql_statements('create_mart_l2_5s.sql')\n"
        "print(stmt.split('(')[0].strip())\n"
    )
    result = _run_from(wheel, tmp_path, probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().upper().startswith("CREATE"), result.stdout


def test_the_wheel_carries_the_compiled_core_and_it_imports(wheel: Path, tmp_path: Path) -> None:
    from orderbook_pipeline_tests.cores import compiler_problem

    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        compiled = [n for n in names if n.startswith("orderbook_pipeline/core/_book.")]
        if not any(n.endswith((".so", ".pyd")) for n in compiled):
            problem = compiler_problem()
            if problem is not None:
                pytest.skip(f"the wheel has no compiled core, as expected here: {problem}")
            pytest.fail(f"a compiler is here but the wheel has no compiled core: {compiled}")
    probe = (
        "import sys, pathlib\n"
        "from orderbook_pipeline.core import _book\n"
        "from orderbook_pipeline.core.implementation import choose\n"
        "where = pathlib.Path(_book.__file__).resolve()\n"
        "assert where.is_relative_to(pathlib.Path(sys.argv[1]).resolve()), where\n"
        "core, line = choose('auto')\n"
        "book = core.book(5)\n"
        "book.load(1, [(1.0, 2.0)], [(3.0, 4.0)])\n"
        "print(core.name, book.bids.top(1))\n"
    )
    result = _run_from(wheel, tmp_path, probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "compiled [(1.0, 2.0)]", result.stdout


def test_without_a_compiler_the_wheel_builds_and_the_pure_python_core_runs(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """A machine with no C compiler (CC that always fails): the install still succeeds, the wheel
    has no extension, and the capture's core choice falls back to pure Python and says why."""
    built = _build_wheel(tmp_path_factory, CC="false", LDSHARED="false")
    with zipfile.ZipFile(built) as zf:
        assert not [n for n in zf.namelist() if n.endswith((".so", ".pyd"))]
    probe = (
        "from orderbook_pipeline.core.implementation import choose\n"
        "core, line = choose('auto')\n"
        "print(core.name)\n"
        "print(line)\n"
        "try:\n"
        "    choose('compiled')\n"
        "except Exception as exc:\n"
        "    print('refused:', type(exc).__name__)\n"
    )
    result = _run_from(built, tmp_path, probe)
    assert result.returncode == 0, result.stderr
    name, line, refused = result.stdout.strip().splitlines()
    assert name == "python"
    assert "fell back to pure Python" in line and "not built at install" in line, line
    assert "_book" in line, line  # the ImportError itself, naming the missing module
    assert refused.startswith("refused: "), refused
