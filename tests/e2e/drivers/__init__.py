"""SSO drivers for the end-to-end tests, one module per protocol (interface in tests/e2e/conftest.py)."""

from __future__ import annotations

from typing import Any

import pytest


def make_driver(protocol: str, request: pytest.FixtureRequest) -> Any:
    if protocol == "saml":
        from tests.e2e.drivers.saml_driver import SamlDriver

        return SamlDriver()
    from tests.e2e.drivers.oidc_driver import make_oidc_driver

    return make_oidc_driver(request)
