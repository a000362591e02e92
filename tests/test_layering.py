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


#: reid_app's top floor: the CLI (the composition root), the runners and the cluster drivers. The rest of reid_app
#: (types, errors, settings, time formatting, weights, redaction, boxes...) is the ground every layer stands on.
TOP_FLOOR = {"cli", "cli_helpers", "matching_cli", "live_cli", "training_cli", "ingest_runner", "live_session",
             "cluster_ingest", "cluster_watch", "console"}


def _reid_app_modules(package: str) -> dict[str, set[str]]:
    """Per file of ``package``: the ``reid_app`` modules it imports (``from reid_app import X`` counts as X)."""
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module == "reid_app":
                    names |= {a.name for a in node.names}
                elif node.module.startswith("reid_app."):
                    names.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                names |= {a.name.split(".")[1] for a in node.names if a.name.startswith("reid_app.")}
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize("package", ["models", "pipelines", "storage", "ui"])
def test_no_lower_layer_reaches_up_into_the_cli_floor(package):
    offenders = {f: sorted(names & (TOP_FLOOR | {"__version__"})) for f, names in _reid_app_modules(package).items()
                 if names & (TOP_FLOOR | {"__version__"})}
    assert offenders == {}  # the version comes from the package metadata (importlib.metadata)
