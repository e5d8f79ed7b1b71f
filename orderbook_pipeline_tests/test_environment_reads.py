"""The environment is read in config/ alone: every variable has one home and one precedence."""

from __future__ import annotations

import ast
from pathlib import Path

import orderbook_pipeline

PACKAGE = Path(orderbook_pipeline.__file__).resolve().parent
# Modules outside config/ that must read the environment themselves, and why.
ALLOWED = {
    # Reads credential variables (AWS_SECRET_ACCESS_KEY ...) to mask their values in log lines:
    # secrets, not configuration, and needed before and apart from any configuration.
    "log_redaction.py": "credential values to redact",
}
ENV_NAMES = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}


def _reads_environment(node: ast.AST) -> bool:
    if isinstance(node, ast.Attribute):
        on_os = isinstance(node.value, ast.Name) and node.value.id == "os"
        return (on_os and node.attr in ENV_NAMES) or node.attr == "EnvVar"
    if isinstance(node, ast.Name):
        return node.id == "EnvVar"
    if isinstance(node, ast.ImportFrom):
        return node.module == "os" and any(alias.name in ENV_NAMES for alias in node.names)
    return False


def environment_reads(tree: ast.AST) -> list[int]:
    """Lines reading or writing the process environment: os.environ, os.getenv,
    `from os import environ`, dagster's EnvVar."""
    return sorted({node.lineno for node in ast.walk(tree) if _reads_environment(node)})  # type: ignore[attr-defined]


def test_the_scan_finds_every_form_of_reading() -> None:
    source = (
        "import os\nfrom os import getenv\nimport dagster as dg\n"
        "a = os.environ['A']\nb = os.getenv('B')\nc = dg.EnvVar('C')\n"
    )
    assert environment_reads(ast.parse(source)) == [2, 4, 5, 6]


def test_no_module_outside_config_reads_the_environment() -> None:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("config/") or rel in ALLOWED:
            continue
        if lines := environment_reads(ast.parse(path.read_text(), str(path))):
            found[rel] = lines
    assert found == {}, "read the variable in config/ (or add it to ALLOWED with a reason)"
    assert all((PACKAGE / rel).is_file() for rel in ALLOWED)  # no stale entry
