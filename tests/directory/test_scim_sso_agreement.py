"""SSO and SCIM agree on who is who: a token bound to a connection makes externalId the person's subject there.

The directory provisions ada with ``externalId`` = her Okta user ID; the next
SAML login through the same connection (pysaml2's IdP, asserting that ID as
the NameID) finds the provisioned person instead of creating or refusing
one. A value already linked to someone else at the connection is refused.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.conftest import ApiClient
from tests.directory.conftest import ScimClient, body, scim_error, user_payload
from tests.directory.support import claim, provision
from vestibule.accounts.models import User
from vestibule.connections.models import ExternalIdentity

pytestmark = pytest.mark.django_db


@pytest.fixture
def driver() -> Any:
    from tests.e2e.drivers.saml_driver import SamlDriver

    return SamlDriver()


@pytest.fixture
def connection(api: ApiClient, make_account: Any, driver: Any) -> dict[str, Any]:
    make_account("acme")
    claim(api, "acme", "example.com")
    payload = {"protocol": "saml", "name": "Okta", "domains": ["example.com"], **driver.connection_settings()}
    created = api.post("/api/v1/accounts/acme/connections", payload)
    assert created.status_code == 201, created.content
    enabled = api.patch(f"/api/v1/connections/{created.json()['id']}", {"enabled": True})
    assert enabled.status_code == 200, enabled.content
    made: dict[str, Any] = enabled.json()
    return made


@pytest.fixture
def bound(api: ApiClient, connection: dict[str, Any]) -> ScimClient:
    made = api.post("/api/v1/accounts/acme/scim-tokens", {"name": "Okta", "connection": connection["id"]})
    assert made.status_code == 201, made.content
    assert made.json()["connection"] == connection["id"]
    return ScimClient(made.json()["token"])


def test_the_next_sso_login_finds_the_provisioned_person(
    bound: ScimClient, connection: dict[str, Any], driver: Any
) -> None:
    created = provision(bound, "ada@example.com", external_id="00u-ada")
    ada = User.objects.get(subject=created["id"])
    link = ExternalIdentity.objects.get(connection_id=connection["id"], external_id="00u-ada")
    assert link.user == ada

    browser = Client()
    response = driver.login(browser, connection, subject="00u-ada", claims={"email": "ada@example.com", "name": "Ada"})
    assert response.status_code == 302, response.content[:2000]
    session = browser.get("/api/v1/session").json()
    assert session["email"] == "ada@example.com"
    assert User.objects.filter(email_key="ada@example.com").count() == 1
    assert ExternalIdentity.objects.filter(connection_id=connection["id"]).count() == 1


def test_changing_the_external_id_moves_the_link(bound: ScimClient, connection: dict[str, Any]) -> None:
    created = provision(bound, "ada@example.com", external_id="00u-ada")
    body(bound.patch(f"/Users/{created['id']}", {"op": "replace", "path": "externalId", "value": "00u-ada-2"}))
    assert list(
        ExternalIdentity.objects.filter(connection_id=connection["id"]).values_list("external_id", flat=True)
    ) == ["00u-ada-2"]


def test_a_subject_linked_to_someone_else_is_refused(
    bound: ScimClient, connection: dict[str, Any], make_user: Any
) -> None:
    """Taking over a linked subject would hand carl's sign-in to dave: 409, and dave is not created."""
    carl = make_user("carl@example.com", account="acme")
    ExternalIdentity.objects.create(connection_id=connection["id"], external_id="00u-carl", user=carl)
    scim_error(bound.post("/Users", user_payload("dave@example.com", external_id="00u-carl")), 409, "uniqueness")
    assert not User.objects.filter(email_key="dave@example.com").exists()
    assert ExternalIdentity.objects.get(connection_id=connection["id"], external_id="00u-carl").user == carl


def test_an_unbound_token_keeps_external_ids_to_itself(
    api: ApiClient, connection: dict[str, Any], scim: ScimClient
) -> None:
    provision(scim, "ada@example.com", external_id="00u-ada")
    assert not ExternalIdentity.objects.exists()
