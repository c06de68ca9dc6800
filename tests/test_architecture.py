"""Protocol and domain code has no Django in it (house style, "Architecture" rule 1).

Two checks: a walk over the source's import statements, which names the
offending line, and a fresh interpreter importing every module of those
packages, which also catches an import that pulls Django in transitively.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import vestibule

ROOT = Path(vestibule.__file__).parent
PURE = ("domain", "saml", "oidc", "jose", "protocol_errors", "outbound")
PACKAGES = [ROOT / name for name in PURE if (ROOT / name).is_dir()]
# Single-module pure parts, walked like a package of one file.
PURE_FILES = [ROOT / f"{name}.py" for name in PURE if (ROOT / f"{name}.py").is_file()]
FORBIDDEN = ("django", "ninja")


def _modules(package: Path) -> list[Path]:
    if package.is_file():
        return [package]
    return sorted(p for p in package.rglob("*.py") if "migrations" not in p.parts)


def _package_of(path: Path) -> str:
    return ".".join(path.relative_to(ROOT.parent).with_suffix("").parts[:-1])


def _imports(path: Path, package: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import, relative ones resolved against ``package``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.append((node.lineno, module))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            # importlib.import_module("django...") / __import__("django...")
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in {"import_module", "__import__"} and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
    return found


def test_the_domain_package_exists() -> None:
    assert ROOT / "domain" in PACKAGES


@pytest.mark.parametrize("package", PACKAGES + PURE_FILES, ids=lambda p: p.stem)
def test_pure_packages_import_no_django(package: Path) -> None:
    offenders = []
    for path in _modules(package):
        for line, module in _imports(path, _package_of(path)):
            top = module.split(".")[0]
            if top in FORBIDDEN:
                offenders.append(f"{path.relative_to(ROOT.parent)}:{line} imports {module}")
            elif top == "vestibule":
                # Other Vestibule packages are Django apps; only the pure ones may be used.
                parts = module.split(".")
                if len(parts) > 1 and parts[1] not in PURE:
                    offenders.append(f"{path.relative_to(ROOT.parent)}:{line} imports {module} (a Django layer)")
    assert offenders == []


def test_importing_pure_packages_loads_no_django() -> None:
    names = [
        ".".join(p.relative_to(ROOT.parent).with_suffix("").parts).removesuffix(".__init__")
        for package in PACKAGES + PURE_FILES
        for p in _modules(package)
    ]
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'ninja'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env={"PATH": ""})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"Django modules loaded: {result.stdout}"


def test_the_walker_catches_imports(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import os\nfrom django.conf import settings\nimport importlib\nimportlib.import_module('django.db')\n"
        "from ..accounts import models\n"
    )
    modules = {m for _, m in _imports(bad, "vestibule.domain")}
    assert modules == {"os", "django.conf", "importlib", "django.db", "vestibule.accounts"}
