"""The layering of ../shared/DESIGN.md, checked on the source: ui -> pipelines -> {models, storage} -> reid_app
types; Qt only in ui/, no storage imports in ui/, torch never in storage/ or ui/."""

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


@pytest.mark.parametrize("package,forbidden", [
    ("ui", {"storage", "torch", "sqlalchemy"}),
    ("storage", {"torch", "PySide6", "ui", "pipelines", "models"}),
    ("pipelines", {"PySide6", "ui"}),
    ("models", {"PySide6", "ui", "storage", "pipelines"}),
])
def test_packages_import_only_what_their_layer_allows(package, forbidden):
    offenders = {f: sorted(names & forbidden) for f, names in _imports(package).items() if names & forbidden}
    assert offenders == {}
