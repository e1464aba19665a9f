"""House style rule 1: dependencies point one way."""

from __future__ import annotations

import ast
import json
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


IMPORTS = """
import importlib, json, sys, threading
before = {t.name for t in threading.enumerate()}
streamlit = {}
for package in ("dropblock", "models"):  # the library first, alone: does it pull streamlit in?
    importlib.import_module(package)
    streamlit[package] = "streamlit" in sys.modules
for name in MODULES:
    importlib.import_module(name)
print(json.dumps({"streamlit": streamlit, "started": [t.name for t in threading.enumerate() if t.name not in before]}))
"""


@pytest.fixture(scope="module")
def fresh_imports() -> dict:
    """What importing the project does in a fresh interpreter (one for both checks: torch takes seconds
    to import): whether ``dropblock`` and then ``models`` brought in streamlit, and the threads that
    importing every module of dropblock/, models/ and ui/ started."""
    modules = sorted({f"{p.parent.name}.{p.stem}" for package in ("dropblock", "models", "ui")
                      for p in (ROOT / package).glob("*.py") if p.stem not in ("__init__", "__main__")})
    run = subprocess.run([sys.executable, "-c", IMPORTS.replace("MODULES", repr(modules))], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("package", ["dropblock", "models"])
def test_library_never_imports_streamlit(package, fresh_imports):
    if not (ROOT / package).exists():
        pytest.skip(f"{package} not present")
    assert "streamlit" not in imported_roots(package)
    assert fresh_imports["streamlit"][package] is False, f"importing {package} imported streamlit"


def test_importing_any_project_module_starts_no_thread(fresh_imports):
    """Pools and threads are created on first use: importing a module of ui/, models/ or dropblock/
    starts no thread (a page that never computes a heavy view never starts the heavy pool)."""
    assert fresh_imports["started"] == [], fresh_imports["started"]


# ------------------------------------------------------------------ no private name across packages

PACKAGES = ("dropblock", "models", "ui", "deploy")  # importable project packages (pages/ and app.py import them)


def _private(name: str) -> bool:
    """A private name: ``_x``, not a dunder nor gettext's ``_``."""
    return name.startswith("_") and name != "_" and not name.startswith("__")


def _resolve_relative(node: ast.ImportFrom, package: str) -> str:
    """The absolute module of ``from .x import y`` in a module of ``package`` (one level deep packages)."""
    if node.level == 0:
        return node.module or ""
    return ".".join(p for p in (package, node.module) if p)


def private_uses(source: str, package: str) -> list[str]:
    """``pkg.module._name`` reached from a module of ``package`` into another project package, by
    attribute (``db.functional._check``) or by import (``from models.engine import _draw``)."""
    tree = ast.parse(source)
    aliases: dict[str, str] = {}  # local name -> the dotted project path it stands for
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in PACKAGES:
                    aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            module = _resolve_relative(node, package)
            if module.split(".")[0] not in PACKAGES:
                continue
            for a in node.names:
                if _private(a.name) and module.split(".")[0] != package:
                    found.append(f"from {module} import {a.name}")
                aliases[a.asname or a.name] = f"{module}.{a.name}"
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        chain, base = [node.attr], node.value
        while isinstance(base, ast.Attribute):
            chain.insert(0, base.attr)
            base = base.value
        if not isinstance(base, ast.Name) or base.id not in aliases:
            continue
        path = aliases[base.id]
        if path.split(".")[0] == package:
            continue
        private = [name for name in chain if _private(name)]
        if private:
            found.append(f"{base.id}.{'.'.join(chain)} ({path})")
    return found


def test_the_private_name_check_finds_what_it_is_for():
    assert private_uses("import dropblock as db\ndb.functional._check_keep_prob(1)", "models")
    assert private_uses("from dropblock import functional as F\nF._scaled_gamma(1, 2, 3, 4, 1)", "models")
    assert private_uses("from models.engine import _draw", "ui")
    assert private_uses("import models.engine\nmodels.engine._Part", "ui")
    assert not private_uses("from . import functional as F\nF._check_spatial(1, 1)", "dropblock")  # one package
    assert not private_uses("import dropblock as db\ndb.check_keep_prob(1)\nx._private", "models")
    assert not private_uses("import torch\ntorch._C", "models")  # third-party internals are another matter
    assert not private_uses("from ui.i18n import _\n_('Home')", "pages")  # gettext's _ is the public API


def test_no_module_reaches_into_another_packages_private_names():
    """dropblock/ and models/ talk through their exported API only; ui/, pages/ and app.py too."""
    files = [(p, p.relative_to(ROOT).parts[0]) for package in ("dropblock", "models", "ui", "pages", "deploy")
             for p in sorted((ROOT / package).rglob("*.py"))] + [(ROOT / "app.py", "app")]
    found = {str(path.relative_to(ROOT)): uses for path, package in files
             if (uses := private_uses(path.read_text(), package))}
    assert not found, found
