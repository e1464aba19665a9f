"""House style rule 1: dependencies point one way."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_roots(package: str) -> set[str]:
    roots: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots.add(node.module.split(".")[0])
    return roots


STDLIB = set(sys.stdlib_module_names)


def test_dropblock_imports_only_torch():
    third_party = imported_roots("dropblock") - STDLIB - {"__future__"}
    assert third_party <= {"torch"}, third_party


@pytest.mark.parametrize("package", ["dropblock", "models"])
def test_library_never_imports_streamlit(package):
    if not (ROOT / package).exists():
        pytest.skip(f"{package} not present")
    assert "streamlit" not in imported_roots(package)
    code = f"import sys, {package}; assert 'streamlit' not in sys.modules, 'streamlit imported'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_importing_any_project_module_starts_no_thread():
    """Pools and threads are created on first use: importing a module of ui/, models/ or dropblock/
    starts no thread (a page that never computes a heavy view never starts the heavy pool)."""
    modules = sorted({f"{p.parent.name}.{p.stem}" for package in ("dropblock", "models", "ui")
                      for p in (ROOT / package).glob("*.py") if p.stem not in ("__init__", "__main__")})
    code = ("import threading, importlib, sys\n"
            "before = {t.name for t in threading.enumerate()}\n"
            f"for name in {modules!r}:\n"
            "    importlib.import_module(name)\n"
            "started = [t.name for t in threading.enumerate() if t.name not in before]\n"
            "assert not started, started\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=300)
