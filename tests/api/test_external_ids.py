"""External user IDs through the users API (seed 000): identity, so the home account's to set.

``acme`` owns acme.example and acme.org and shares acme.example with
``globex``; ann@acme.example is acme's person and also a member of globex.
Each refusal is checked against the stored links, not only the status code.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.policy_support import reuse_sp_key_pairs  # noqa: F401 (autouse: one SP key pair per run)
from vestibule.accounts.models import Account, User
from vestibule.authority.models import ApiKey
from vestibule.connections.models import ExternalIdentity

pytestmark = pytest.mark.django_db

V1 = "/api/v1"


def links(email: str) -> list[tuple[str, str]]:
    user = User.objects.get(email_key=email)
    return sorted(
        (c.name, e) for c, e in ((i.connection, i.external_id) for i in ExternalIdentity.objects.filter(user=user))
    )


@pytest.fixture
def world(api: Any) -> dict[str, Any]:
    for slug in ("acme", "globex"):
        assert api.post(f"{V1}/accounts", {"slug": slug, "name": slug.title()}).status_code == 201
    for domain in ("acme.example", "acme.org"):
        assert api.post(f"{V1}/accounts/acme/domains", {"domain": domain}).status_code == 201
    assert api.post(f"{V1}/accounts/acme/domains/acme.example/shares", {"account": "globex"}).status_code == 201

    def connection(slug: str, name: str, domains: list[str]) -> str:
        response = api.post(f"{V1}/accounts/{slug}/connections", {"protocol": "saml", "name": name, "domains": domains})
        assert response.status_code == 201, response.content
        return str(response.json()["id"])

    def key(slug: str, *roles: str) -> Any:
        _, secret = ApiKey.issue(account=Account.objects.get(slug=slug), name=f"{slug} key", roles=list(roles))
        return api.as_key(secret)

    ann = api.post(
        f"{V1}/accounts/acme/users", {"email": "ann@acme.example", "name": "Ann", "send_invitation": False}
    ).json()
    assert (
        api.post(f"{V1}/accounts/globex/users", {"email": "ann@acme.example", "send_invitation": False}).status_code
        == 201
    )
    return {
        "ann": ann["id"],
        "acme_okta": connection("acme", "Acme Okta", ["acme.example"]),
        "acme_org": connection("acme", "Acme.org only", ["acme.org"]),
        "globex_idp": connection("globex", "Globex IdP", ["acme.example"]),
        "acme": key("acme", "user-manager"),
        "acme_admin": key("acme", "administrator"),
        "globex": key("globex", "administrator"),
    }


def patch_ids(client: Any, slug: str, user_id: int, connection: str, external_id: str | None) -> Any:
    return client.patch(
        f"{V1}/accounts/{slug}/users/{user_id}",
        {"external_ids": [{"connection": connection, "external_id": external_id}]},
    )


def test_the_home_account_sets_edits_and_removes_an_external_id(world: dict[str, Any]) -> None:
    w = world
    response = patch_ids(w["acme"], "acme", w["ann"], w["acme_okta"], "00u-ann")
    assert response.status_code == 200, response.content
    assert response.json()["external_ids"] == [{"connection": w["acme_okta"], "external_id": "00u-ann"}]
    assert patch_ids(w["acme"], "acme", w["ann"], w["acme_okta"], "00u-ann-2").status_code == 200
    assert links("ann@acme.example") == [("Acme Okta", "00u-ann-2")]
    assert patch_ids(w["acme"], "acme", w["ann"], w["acme_okta"], None).json()["external_ids"] == []
    assert links("ann@acme.example") == []


def test_another_account_may_not_set_the_persons_external_id(world: dict[str, Any]) -> None:
    """globex shares acme.example and has ann as a member, but her identity is acme's."""
    w = world
    response = patch_ids(w["globex"], "globex", w["ann"], w["globex_idp"], "g-ann")
    assert response.status_code == 403 and response.json()["field"] == "external_ids"
    assert "identity" in response.json()["detail"]
    assert links("ann@acme.example") == []


def test_a_connection_of_another_account_is_not_found(world: dict[str, Any]) -> None:
    w = world
    for connection in (w["globex_idp"], "00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        response = patch_ids(w["acme"], "acme", w["ann"], connection, "00u-ann")
        assert response.status_code == 404, (connection, response.content)
        assert response.json()["field"] == "external_ids[0].connection"
    assert links("ann@acme.example") == []


def test_the_operator_may_set_it_through_any_account(world: dict[str, Any], api: Any) -> None:
    w = world
    assert patch_ids(api, "globex", w["ann"], w["globex_idp"], "g-ann").status_code == 200
    assert links("ann@acme.example") == [("Globex IdP", "g-ann")]


def test_a_connection_that_cannot_sign_the_person_in_is_refused(world: dict[str, Any]) -> None:
    w = world
    response = patch_ids(w["acme"], "acme", w["ann"], w["acme_org"], "00u-ann")
    assert response.status_code == 422 and "could never sign in ann@acme.example" in response.json()["detail"]
    assert links("ann@acme.example") == []


@pytest.mark.parametrize("value", ["", " 00u-ann", "00u-ann\n", "x" * 513])
def test_external_id_must_be_the_exact_subject(world: dict[str, Any], value: str) -> None:
    response = patch_ids(world["acme"], "acme", world["ann"], world["acme_okta"], value)
    assert response.status_code == 422
    assert response.json()["field"].startswith("external_ids")
    assert links("ann@acme.example") == []


def test_a_user_manager_cannot_repoint_an_administrators_sign_in(world: dict[str, Any], api: Any) -> None:
    """Moving an admin's external ID is taking over their sign-in: an administrator's act."""
    w = world
    boss = api.post(
        f"{V1}/accounts/acme/users", {"email": "boss@acme.example", "roles": ["sso-admin"], "send_invitation": False}
    ).json()
    response = patch_ids(w["acme"], "acme", boss["id"], w["acme_okta"], "00u-mine")
    assert response.status_code == 403 and links("boss@acme.example") == []
    assert patch_ids(w["acme_admin"], "acme", boss["id"], w["acme_okta"], "00u-boss").status_code == 200


def test_set_when_the_user_is_added(world: dict[str, Any]) -> None:
    w = world
    body = {"email": "bob@acme.example", "name": "Bob", "send_invitation": False,
            "external_ids": [{"connection": w["acme_okta"], "external_id": "bob@acme.example"}]}  # fmt: skip
    created = w["acme"].post(f"{V1}/accounts/acme/users", body)
    assert created.status_code == 201, created.content
    assert created.json()["external_ids"] == [{"connection": w["acme_okta"], "external_id": "bob@acme.example"}]
    # A connection listed twice is refused, and the add with it.
    twice = {
        **body,
        "email": "cid@acme.example",
        "external_ids": [
            {"connection": w["acme_okta"], "external_id": "a"},
            {"connection": w["acme_okta"], "external_id": "b"},
        ],
    }
    assert w["acme"].post(f"{V1}/accounts/acme/users", twice).status_code == 422
    assert not User.objects.filter(email_key="cid@acme.example").exists()


def test_an_invitation_carries_no_external_id(world: dict[str, Any]) -> None:
    """globex invites someone of acme.example: their identity is not globex's to shape."""
    w = world
    body = {"email": "new@acme.example", "external_ids": [{"connection": w["globex_idp"], "external_id": "x"}]}
    response = w["globex"].post(f"{V1}/accounts/globex/users", body)
    assert response.status_code == 403 and response.json()["field"] == "external_ids"
    assert not ExternalIdentity.objects.exists()
