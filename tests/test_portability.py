"""Every module of reid-app imports where there is no ``fcntl`` (Windows): locks come from ``filelock`` and
process checks from ``psutil``, so no command fails at import on a system without POSIX calls. Run in a child
process whose ``fcntl`` is made unimportable (what a Windows Python lacks); the Alembic migration scripts, which
run only inside Alembic, are left out."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

from tests.conftest import ROOT

PACKAGES = ("reid_app", "models", "pipelines", "storage", "ui")


def test_every_module_imports_without_posix_only_modules():
    modules = []
    for name in PACKAGES:
        package = importlib.import_module(name)
        modules += [m.name for m in pkgutil.walk_packages(package.__path__, f"{name}.") if ".migrations" not in m.name]
    assert len(modules) > 90
    code = (
        "import importlib, sys, warnings\n"
        "sys.modules['fcntl'] = None  # as on Windows\n"
        "warnings.simplefilter('ignore')\n"
        "failed = []\n"
        f"for name in {modules!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError as exc:\n"
        "        failed.append(f'{name}: {exc}')\n"
        "print('\\n'.join(failed))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "", result.stdout
