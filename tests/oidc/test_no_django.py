"""House style rule 1: the protocol package never imports Django."""

from __future__ import annotations

import ast
from pathlib import Path

import vestibule.oidc

PACKAGE = Path(vestibule.oidc.__file__).parent


def test_oidc_package_has_no_django_imports() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}:{node.lineno} {n}" for n in names if n.split(".")[0] in ("django", "ninja")]
    assert offenders == []


def test_public_surface_is_exported() -> None:
    for name in vestibule.oidc.__all__:
        assert hasattr(vestibule.oidc, name), name
