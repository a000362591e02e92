"""The layering of README's architecture section, checked on the source: reid_app (the top floor) -> ui ->
pipelines -> {models, storage} -> common (the ground floor); Qt only in ui/, no storage imports in ui/, torch never
in storage/ or ui/, no import cycles."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _imports(package: str) -> dict[str, set[str]]:
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize(
    "package,forbidden",
    [
        ("ui", {"storage", "torch", "sqlalchemy"}),
        ("storage", {"torch", "PySide6", "ui", "pipelines", "models"}),
        ("pipelines", {"PySide6", "ui"}),
        ("models", {"PySide6", "ui", "storage", "pipelines"}),
    ],
)
def test_packages_import_only_what_their_layer_allows(package, forbidden):
    offenders = {f: sorted(names & forbidden) for f, names in _imports(package).items() if names & forbidden}
    assert offenders == {}


def _module_imports(package: str) -> dict[str, set[str]]:
    """Per module of ``package`` (dotted name): the project modules it imports, at module level or inside functions
    (``from pkg import name`` counts as ``pkg.name`` when that is a module)."""
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets.add(node.module)
                targets |= {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
        found[name] = {t for t in targets if _is_our_module(t)}
    return found


def _is_our_module(dotted: str) -> bool:
    path = ROOT / Path(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


@pytest.mark.parametrize("package", ["common", "models", "pipelines", "storage", "ui"])
def test_only_scripts_and_benchmarks_stand_on_the_top_floor(package):
    """``reid_app`` is the top floor (CLI, runners, cluster drivers): no layer below imports any of it, not even
    its version (read from the package metadata)."""
    offenders = {
        f: sorted(t for t in targets if t.split(".")[0] == "reid_app")
        for f, targets in _module_imports(package).items()
    }
    assert {f: t for f, t in offenders.items() if t} == {}


def test_the_ground_floor_stands_on_nothing_of_ours():
    """``common`` (types, errors, settings, weights, time formatting, redaction, boxes) imports no other layer."""
    ours = {"reid_app", "models", "pipelines", "storage", "ui"}
    offenders = {
        f: sorted(t for t in targets if t.split(".")[0] in ours) for f, targets in _module_imports("common").items()
    }
    assert {f: t for f, t in offenders.items() if t} == {}


def test_no_import_cycles_between_modules():
    """No two modules of the project import each other, directly or through others (function-level imports
    included: a cycle hidden in a function is still a cycle a reader has to untangle)."""
    graph: dict[str, set[str]] = {}
    for package in ("common", "models", "pipelines", "storage", "ui", "reid_app"):
        graph.update(_module_imports(package))
    graph = {m: {t for t in targets if t in graph and t != m} for m, targets in graph.items()}
    cycles, state = [], {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycles.append(path[path.index(target) :] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_test_modules_share_helpers_through_conftest_and_factories_not_each_other():
    """Shared fixtures live in conftest.py and shared builders in tests/factories.py (and the few helper modules
    beside them); no test module imports another test module's privates."""
    offenders = {
        f: sorted(t for t in targets if t.split(".")[-1].startswith("test_"))
        for f, targets in _module_imports("tests").items()
    }
    assert {f: t for f, t in offenders.items() if t} == {}


@pytest.mark.parametrize("package", ["pipelines", "models", "ui", "reid_app", "common"])
def test_sql_is_built_only_in_storage(package):
    """Outside ``storage/`` nothing builds a query or touches the schema's tables: the pipelines catch
    ``sqlalchemy.exc`` errors, and that is all of SQLAlchemy they see."""
    offenders = {
        f: sorted(t for t in targets if (t.startswith("sqlalchemy") and not t.startswith("sqlalchemy.exc")))
        for f, targets in _all_imports(package).items()
    }
    assert {f: t for f, t in offenders.items() if t} == {}


def _all_imports(package: str) -> dict[str, set[str]]:
    """Per module of ``package``: every module it imports (dotted names, ours and third parties')."""
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets.add(node.module)
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
        found[str(path.relative_to(ROOT))] = targets
    return found


def test_the_cli_starts_without_torch():
    """Every command's --help and argument checks come before any model loads (torch takes seconds)."""
    import subprocess
    import sys

    code = "import sys, reid_app.cli; print(sorted(m for m in ('torch', 'ultralytics') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
