"""Package contracts: no Django in protocol code, a checked public surface, mypy --strict."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import vestibule.saml
from vestibule.saml import errors

PACKAGE = Path(vestibule.saml.__file__).parent


def test_no_django_imports() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in {"django", "ninja"}]
    assert offenders == []


def test_public_surface() -> None:
    for name in vestibule.saml.__all__:
        assert hasattr(vestibule.saml, name), name


def test_error_codes_are_unique_and_stable() -> None:
    codes = [cls.code for cls in errors.ALL_ERRORS]
    assert len(codes) == len(set(codes))
    assert all(code.startswith("saml.") for code in codes)
    for cls in errors.ALL_ERRORS:
        assert issubclass(cls, errors.SamlError)
    e = errors.AudienceMismatchError(expected="a", received="b" * 1000)
    assert e.to_dict()["fix_in"] == "identity_provider" and len(e.received or "") < 300


def test_every_module_cites_its_spec() -> None:
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text())
        doc = ast.get_docstring(tree)
        assert doc, f"{path.name} has no module docstring"


@pytest.mark.skipif(shutil.which("mypy") is None and not (Path(sys.executable).parent / "mypy").exists(),
                    reason="mypy not installed")  # fmt: skip
def test_mypy_strict_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", str(PACKAGE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
