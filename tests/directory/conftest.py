"""Fixtures for the SCIM acceptance tests: an account, its SCIM token made through the real API, a SCIM client.

The tests here speak only HTTP to ``/scim/v2`` (RFC 7644), as an identity
provider does, and judge the result by what Vestibule holds afterwards (the
ORM, the admin API, a signed-in browser), never by the service's internals.
The token is created the way an administrator creates it,
``POST /api/v1/accounts/<slug>/scim-tokens`` with the operator key, and the
client sends ``application/scim+json`` with ``Authorization: Bearer``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from tests.conftest import ApiClient

SCIM_JSON = "application/scim+json"
USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST_URN = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_URN = "urn:ietf:params:scim:api:messages:2.0:Error"
BASE = "/scim/v2"


class ScimClient:
    """An identity provider's SCIM client: the Django test client, a bearer token, ``application/scim+json``.

    Paths are relative to ``/scim/v2`` (``scim.get("/Users?filter=...")``).
    A client of its own (no cookies shared with a browser of the same test).
    """

    def __init__(self, token: str | None, client: Client | None = None) -> None:
        self.token = token
        self.client = client or Client()

    def with_token(self, token: str | None) -> ScimClient:
        return ScimClient(token, self.client)

    def request(self, method: str, path: str, body: Any = None, *, raw: str | None = None) -> Any:
        headers = {"Accept": SCIM_JSON}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        kwargs: dict[str, Any] = {"headers": headers}
        if raw is not None:
            kwargs.update(data=raw, content_type=SCIM_JSON)
        elif body is not None:
            kwargs.update(data=json.dumps(body), content_type=SCIM_JSON)
        return getattr(self.client, method.lower())(BASE + path, **kwargs)

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, body)

    def patch(self, path: str, *operations: dict[str, Any]) -> Any:
        """A PatchOp message with these operations, as sent (op case, string booleans and all)."""
        return self.request("PATCH", path, {"schemas": [PATCH_URN], "Operations": list(operations)})

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)


def body(response: Any, status: int = 200) -> dict[str, Any]:
    """The SCIM JSON of a response expected to have ``status``; the assertion message shows what came back."""
    assert response.status_code == status, (response.status_code, response.content[:1500])
    assert response["Content-Type"].split(";")[0].strip() == SCIM_JSON, response["Content-Type"]
    parsed: dict[str, Any] = json.loads(response.content)
    return parsed


def scim_error(response: Any, status: int, scim_type: str | None = None) -> dict[str, Any]:
    """An RFC 7644 §3.12 error with this status (and ``scimType``, when given)."""
    assert response.status_code == status, (response.status_code, response.content[:1500])
    parsed: dict[str, Any] = json.loads(response.content)
    assert parsed.get("schemas") == [ERROR_URN], parsed
    assert str(parsed.get("status")) == str(status), parsed
    if scim_type is not None:
        assert parsed.get("scimType") == scim_type, parsed
    assert parsed.get("detail"), parsed
    return parsed


def listed(response: Any) -> list[dict[str, Any]]:
    """The ``Resources`` of a ListResponse (an empty list when it has none), its counts checked."""
    page = body(response)
    assert page["schemas"] == [LIST_URN], page
    resources: list[dict[str, Any]] = page.get("Resources", [])
    assert page["totalResults"] >= len(resources), page
    if not resources:
        assert page["totalResults"] == 0, page
    return resources


def user_payload(
    user_name: str,
    given: str = "Ada",
    family: str = "Lovelace",
    *,
    external_id: str | None = None,
    active: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    """A User as identity providers send it: userName = the work email, name, emails, active, externalId."""
    payload: dict[str, Any] = {
        "schemas": [USER_URN],
        "userName": user_name,
        "name": {"givenName": given, "familyName": family, "formatted": f"{given} {family}"},
        "emails": [{"value": user_name, "type": "work", "primary": True}],
        "active": active,
    }
    if external_id is not None:
        payload["externalId"] = external_id
    payload.update(extra)
    return payload


@pytest.fixture
def issue_scim_token(api: ApiClient, make_account: Callable[..., Any]) -> Callable[[str], str]:
    """``issue_scim_token("acme")``: a SCIM token of that account (made if missing), through the admin API."""

    def issue(slug: str) -> str:
        make_account(slug)
        response = api.post(f"/api/v1/accounts/{slug}/scim-tokens", {"name": f"IdP of {slug}"})
        assert response.status_code == 201, (response.status_code, response.content[:1000])
        made = response.json()
        assert made["base_url"] == f"{settings.VESTIBULE_BASE_URL.rstrip('/')}/scim/v2", made
        token: str = made["token"]
        assert token
        return token

    return issue


@pytest.fixture
def scim_for(issue_scim_token: Callable[[str], str]) -> Callable[[str], ScimClient]:
    """``scim_for("globex")``: a SCIM client holding a fresh token of that account."""
    return lambda slug: ScimClient(issue_scim_token(slug))


@pytest.fixture
def scim(scim_for: Callable[[str], ScimClient]) -> ScimClient:
    """The SCIM client of account ``acme`` (its identity provider)."""
    return scim_for("acme")


def create_user(scim: ScimClient, user_name: str, **fields: Any) -> dict[str, Any]:
    """``POST /Users``: 201 with the created User (its ``id`` is what the IdP keeps)."""
    created = body(scim.post("/Users", user_payload(user_name, **fields)), 201)
    assert created["id"] and created["userName"].lower() == user_name.lower(), created
    return created


def find_user(scim: ScimClient, user_name: str) -> list[dict[str, Any]]:
    """``GET /Users?filter=userName eq "<userName>"``, as Entra and Okta look a person up."""
    from urllib.parse import quote

    return listed(scim.get("/Users?filter=" + quote(f'userName eq "{user_name}"')))


def membership_of(email: str, slug: str) -> Any:
    """The person's membership in ``slug`` as the database holds it (None when there is none)."""
    from vestibule.accounts.models import Membership
    from vestibule.domain.emails import email_key

    return (
        Membership.objects.filter(user__email_key=email_key(email), account__slug=slug).select_related("user").first()
    )
