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
PURE = ("domain", "saml", "oidc", "scim", "jose", "protocol_errors", "outbound")
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


# --- The Django side: apps depend on each other in one direction ------------------------------
#
# Bottom-up. A layer may import the pure packages and any layer *before* it in
# this list, never one after it: the login pipeline sits on people and login,
# which sit on accounts and connections, and only the REST layer, the CLI and
# the URL map see everything. ``settings.INSTALLED_APPS`` lists the apps in
# the same order.
LAYERS = (
    "conf",
    "accounts",
    "connections",
    "authority",
    "audit",
    "login",
    "people",
    "signin",
    "provider",
    "directory",
    "testidp",
    "setup",
    "console",
    "demo",
    "api",
    "urls",
    "wsgi",
    "cli",
)

# Function-local imports of Vestibule modules, each for a documented reason.
# Any other one is an import cycle being hidden: fix the layering instead.
LOCAL_IMPORTS_ALLOWED = {
    # Registers the system checks once the app registry is ready (Django's documented pattern).
    ("vestibule/connections/apps.py", "vestibule.connections.checks"),
    # ``vestibule.conf.settings`` reads the environment; it is imported only when a command runs.
    ("vestibule/cli/common.py", "vestibule.conf.env"),
    # Connects the provider's signal receivers once the app registry is ready (the same pattern).
    ("vestibule/provider/apps.py", "vestibule.provider.signals"),
}
# The CLI configures Django before it imports a model (``vestibule --help`` and
# configuration errors must work without a database): see ``vestibule.cli.common``.
LOCAL_IMPORTS_ALLOWED_UNDER = ("vestibule/cli/",)


def _layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "vestibule" or len(parts) < 2:
        return None
    return parts[1]


def _django_modules() -> list[Path]:
    return sorted(
        p
        for p in ROOT.rglob("*.py")
        if "migrations" not in p.parts
        and p.relative_to(ROOT).parts[0] not in PURE
        and p.relative_to(ROOT).with_suffix("").parts[0] not in PURE
    )


def _app_edges() -> dict[str, set[tuple[str, str]]]:
    """layer -> {(imported layer, 'file:line')} for imports between different layers."""
    edges: dict[str, set[tuple[str, str]]] = {}
    for path in _django_modules():
        rel = path.relative_to(ROOT)
        here = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        if here == "__init__":
            continue
        for line, module in _imports(path, _package_of(path)):
            there = _layer_of(module)
            if there is None or there == here or there in PURE or there == "__version__":
                continue
            edges.setdefault(here, set()).add((there, f"{rel}:{line}"))
    return edges


def test_every_django_layer_is_placed() -> None:
    found = {p.relative_to(ROOT).parts[0] if len(p.relative_to(ROOT).parts) > 1 else p.stem for p in _django_modules()}
    assert found - {"__init__"} <= set(LAYERS), f"place these in LAYERS: {sorted(found - {'__init__'} - set(LAYERS))}"


def test_installed_apps_follow_the_layers() -> None:
    from django.conf import settings

    # ``api`` is listed last (its migrations only record where ApiKey's table was born).
    ours = [app.removeprefix("vestibule.") for app in settings.INSTALLED_APPS if app.startswith("vestibule.")]
    assert ours == sorted(ours, key=LAYERS.index)


def test_apps_import_only_layers_below_them() -> None:
    upward = [
        f"{where}: {here} imports {there}"
        for here, targets in _app_edges().items()
        for there, where in targets
        if LAYERS.index(there) > LAYERS.index(here)
    ]
    assert upward == []


def test_the_app_import_graph_has_no_cycle() -> None:
    graph = {here: {there for there, _ in targets} for here, targets in _app_edges().items()}
    seen: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str, path: list[str]) -> list[str] | None:
        seen[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if seen.get(nxt) == 1:
                return [*path, node, nxt]
            if nxt not in seen and (cycle := visit(nxt, [*path, node])):
                return cycle
        seen[node] = 2
        return None

    cycles = [c for node in sorted(graph) if node not in seen and (c := visit(node, []))]
    assert cycles == []


def _local_imports(path: Path, package: str | None = None) -> list[tuple[int, str]]:
    """Vestibule imports inside a function body, except typing-only ones."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = package if package is not None else _package_of(path)
    found: list[tuple[int, str]] = []

    def walk(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if in_function and isinstance(child, (ast.Import, ast.ImportFrom)):
                for line, module in _imports_of(child, package):
                    if module.startswith("vestibule"):
                        found.append((line, module))
            walk(child, inside)

    walk(tree, False)
    return found


def _imports_of(node: ast.Import | ast.ImportFrom, package: str) -> list[tuple[int, str]]:
    if isinstance(node, ast.Import):
        return [(node.lineno, alias.name) for alias in node.names]
    if node.level:
        base = package.split(".")[: len(package.split(".")) - node.level + 1]
        module = ".".join([*base, node.module] if node.module else base)
    else:
        module = node.module or ""
    # ``from package import name``: name the imported thing, which may be a module.
    return [(node.lineno, f"{module}.{alias.name}") for alias in node.names]


def test_function_local_imports_are_on_the_allow_list() -> None:
    hidden = []
    for path in sorted(ROOT.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        rel = str(path.relative_to(ROOT.parent))
        if rel.startswith(LOCAL_IMPORTS_ALLOWED_UNDER):
            continue
        hidden += [
            f"{rel}:{line} imports {module}"
            for line, module in _local_imports(path)
            if (rel, module) not in LOCAL_IMPORTS_ALLOWED
        ]
    assert hidden == []


def test_the_local_import_finder_sees_through_functions_but_not_type_checking(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from typing import TYPE_CHECKING\nfrom vestibule.accounts import models\n"
        "if TYPE_CHECKING:\n    from vestibule.signin import pipeline\n"
        "def f():\n    from vestibule.login import sessions\n    def g():\n        import vestibule.people.members\n"
    )
    assert [m for _, m in _local_imports(sample, "vestibule.domain")] == [
        "vestibule.login.sessions",
        "vestibule.people.members",
    ]
