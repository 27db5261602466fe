"""The core package keeps the project's structural rules.

Proves, by parsing every module under alliance/ with `ast` (nothing is imported): the core
imports neither app (`gateway`, `settlement`), and raises only project errors, never bare
`Exception` or `ValueError` (after web3.py's `tests/core/test_library_files.py`). The audit
tool (alliance/audit/, alliance_cli/audit.py) also stays off the database (`alliance.db`):
checked by the same scan and, for indirect imports, in a fresh interpreter.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

APPS = ("gateway", "settlement")
FORBIDDEN_RAISES = ("Exception", "ValueError")


def core_modules(repo_root: Path) -> list[Path]:
    """Every Python file of the `alliance` package."""
    return sorted((repo_root / "alliance").rglob("*.py"))


def imported_modules(tree: ast.AST) -> Iterator[str]:
    """Yield the dotted name of every absolute import in `tree`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def raised_names(tree: ast.AST) -> Iterator[tuple[str, int]]:
    """Yield (exception name, line) for every `raise Name` / `raise Name(...)` in `tree`."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Raise) or node.exc is None:
            continue
        target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        if isinstance(target, ast.Name):
            yield target.id, node.lineno


def parse(path: Path) -> ast.AST:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def test_core_package_has_modules(repo_root: Path) -> None:
    assert len(core_modules(repo_root)) >= 5


def test_core_imports_neither_app(repo_root: Path) -> None:
    offenders = [
        f"{path.relative_to(repo_root)} imports {module}"
        for path in core_modules(repo_root)
        for module in imported_modules(parse(path))
        if module.split(".")[0] in APPS
    ]
    assert offenders == []


AUDIT_FORBIDDEN = ("gateway", "settlement", "alliance.db")
"""The audit tool reads the chain only: never the apps or the operator's database."""


def test_audit_package_imports_no_app_and_no_database(repo_root: Path) -> None:
    modules = sorted((repo_root / "alliance" / "audit").rglob("*.py"))
    modules.append(repo_root / "alliance_cli" / "audit.py")
    offenders = [
        f"{path.relative_to(repo_root)} imports {module}"
        for path in modules
        for module in imported_modules(parse(path))
        if any(module == name or module.startswith(name + ".") for name in AUDIT_FORBIDDEN)
    ]
    assert len(modules) >= 5
    assert offenders == []


def test_gateway_imports_no_settlement(repo_root: Path) -> None:
    # The settlement service builds on the gateway (its pipeline, its webhooks); the reverse
    # would make the two apps one. What both need lives in the core (alliance.db).
    offenders = [
        f"{path.relative_to(repo_root)} imports {module}"
        for path in sorted((repo_root / "gateway").rglob("*.py"))
        for module in imported_modules(parse(path))
        if module.split(".")[0] == "settlement"
    ]
    assert offenders == []


def test_audit_package_loads_no_app_and_no_database_even_indirectly(repo_root: Path) -> None:
    # The static scan sees direct imports; a fresh interpreter also catches indirect ones.
    script = (
        "import importlib, pkgutil, sys, alliance.audit\n"
        "for m in pkgutil.iter_modules(alliance.audit.__path__):\n"
        "    importlib.import_module('alliance.audit.' + m.name)\n"
        "import alliance_cli.audit\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('gateway', 'settlement')"
        " or m == 'alliance.db' or m.startswith('alliance.db.')))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], cwd=repo_root, capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"


def test_core_raises_no_bare_exception_or_value_error(repo_root: Path) -> None:
    offenders = [
        f"{path.relative_to(repo_root)}:{line} raises {name}"
        for path in core_modules(repo_root)
        for name, line in raised_names(parse(path))
        if name in FORBIDDEN_RAISES
    ]
    assert offenders == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import gateway.app", ["gateway.app"]),
        ("from settlement import run", ["settlement"]),
        ("from . import errors", []),
    ],
)
def test_import_scanner_sees_absolute_imports(source: str, expected: list[str]) -> None:
    assert list(imported_modules(ast.parse(source))) == expected


def test_raise_scanner_sees_bare_and_called_raises() -> None:
    tree = ast.parse("raise ValueError('x')\nraise Exception\nraise errors.Custom()\n")
    assert [name for name, _ in raised_names(tree)] == ["ValueError", "Exception"]
