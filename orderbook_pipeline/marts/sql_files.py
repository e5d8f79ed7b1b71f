"""Run the SQL files of the repo-root `sql/` folder (one statement per file, by convention).

A wheel carries them as package data at `orderbook_pipeline/sql/` (pyproject's package-dir maps
that package to `sql/`); a source checkout (editable install, PYTHONPATH) reads `sql/` itself.

DuckDB binds parameters only to the last statement of a multi-statement string, and rejects
parameters a statement does not use ("Parameter/argument count mismatch"), so each statement is
executed on its own with exactly the named parameters (`$name`) it mentions. Values are always
bound, never formatted into the text. Comments are stripped first: keep `;` out of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import duckdb


def _sql_dir() -> Path:
    """Where the SQL files are: inside the installed package, else in the checkout."""
    packaged = resources.files("orderbook_pipeline") / "sql"
    # A wheel installed into site-packages: a plain folder (zip imports are not supported).
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    # Editable or PYTHONPATH: the package is the checkout's folder, `sql/` sits next to it.
    return Path(__file__).resolve().parents[2] / "sql"


SQL_DIR = _sql_dir()

_COMMENT = re.compile(r"--[^\n]*")
_PARAM = re.compile(r"\$([A-Za-z_]\w*)")


def sql_statements(name: str) -> list[str]:
    """The statements of `sql/{name}`, comments removed, in file order."""
    text = _COMMENT.sub("", (SQL_DIR / name).read_text(encoding="utf-8"))
    return [s.strip() for s in text.split(";") if s.strip()]


def bound_params(stmt: str, params: Mapping[str, object], name: str = "") -> dict[str, object]:
    """Exactly the params `stmt` names; KeyError naming any it lacks."""
    used = sorted(set(_PARAM.findall(stmt)))
    missing = [k for k in used if k not in params]
    if missing:
        raise KeyError(f"sql/{name}: no value for " + ", ".join(f"${k}" for k in missing))
    return {k: params[k] for k in used}


def run_sql_file(conn: duckdb.DuckDBPyConnection, name: str, params: Mapping[str, object]) -> None:
    """Execute every statement of `sql/{name}`, each bound to the params it names.

    A statement naming a parameter missing from `params` raises KeyError before anything runs.
    """
    bound = [(stmt, bound_params(stmt, params, name)) for stmt in sql_statements(name)]
    for stmt, values in bound:
        conn.execute(stmt, values or None)


def fetch_sql_file(
    conn: duckdb.DuckDBPyConnection, name: str, params: Mapping[str, object]
) -> list[tuple[object, ...]]:
    """The rows of the (one) query of `sql/{name}`."""
    (stmt,) = sql_statements(name)
    return conn.execute(stmt, bound_params(stmt, params, name) or None).fetchall()
