"""Helpers of SCIM-service's tests (the fixtures they use come from tests/conftest.py and tests/directory/conftest.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.conftest import ApiClient
from tests.directory.conftest import ScimClient, body, listed, user_payload


def claim(api: ApiClient, slug: str, domain: str) -> None:
    """The operator claims ``domain`` for ``slug``: the account becomes the home of its people."""
    response = api.post(f"/api/v1/accounts/{slug}/domains", {"domain": domain})
    assert response.status_code == 201, response.content


def provision(scim: ScimClient, email: str, *names: str, **fields: Any) -> dict[str, Any]:
    """POST /Users, 201 expected."""
    return body(scim.post("/Users", user_payload(email, *names, **fields)), 201)


def search(scim: ScimClient, resource: str, text: str, extra: str = "") -> list[dict[str, Any]]:
    return listed(scim.get(f"/{resource}?filter={quote(text)}{extra}"))


def patch_body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": list(operations)}
