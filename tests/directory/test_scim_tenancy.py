"""Tenancy: the directory of globex can do nothing to acme's people or groups, and learns nothing about them.

Each attack is made with globex's own valid token; acme's state is read back
from the database afterwards, not inferred from the status codes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import ApiClient
from tests.directory.conftest import GROUP_URN, ScimClient, body, listed, scim_error, user_payload
from tests.directory.support import claim, provision
from vestibule.accounts.models import Membership, RoleGrant, User
from vestibule.directory.models import ScimGroup, ScimGroupMember, ScimUser

pytestmark = pytest.mark.django_db


@pytest.fixture
def accounts(api: ApiClient, make_account: Any) -> None:
    make_account("acme")
    make_account("globex")
    claim(api, "acme", "example.com")
    claim(api, "globex", "globex.test")
    assert api.post("/api/v1/accounts/acme/mapping-roles", {"name": "Finance", "grants": [
        {"scope": "account", "roles": ["analyst"]}]}).status_code == 201  # fmt: skip
    assert api.post("/api/v1/accounts/globex/mapping-roles", {"name": "Finance", "grants": [
        {"scope": "account", "roles": ["administrator"]}]}).status_code == 201  # fmt: skip


@pytest.fixture
def acme_idp(accounts: None, scim_for: Any) -> ScimClient:
    client: ScimClient = scim_for("acme")
    return client


@pytest.fixture
def globex_idp(accounts: None, scim_for: Any) -> ScimClient:
    client: ScimClient = scim_for("globex")
    return client


@pytest.fixture
def victim(acme_idp: ScimClient) -> dict[str, Any]:
    ada = provision(acme_idp, "ada@example.com", external_id="acme-ada")
    finance = body(acme_idp.post("/Groups", {"schemas": [GROUP_URN], "displayName": "Finance",
                                             "members": [{"value": ada["id"]}]}), 201)  # fmt: skip
    return {"user": ada, "group": finance}


def acme_state() -> tuple[Any, ...]:
    """Everything of acme's a directory could touch."""
    ada = User.objects.get(email_key="ada@example.com")
    return (
        ada.name,
        ada.email,
        ada.is_active,
        list(Membership.objects.filter(user=ada).values_list("account__slug", "is_active")),
        list(ScimUser.objects.filter(account__slug="acme").values_list("external_id", "given_name")),
        list(ScimGroup.objects.filter(account__slug="acme").values_list("display_name", "external_id")),
        list(ScimGroupMember.objects.filter(group__account__slug="acme").values_list("user__email", flat=True)),
        sorted(RoleGrant.objects.filter(user=ada).values_list("account__slug", "role", "source")),
    )


def test_another_directory_cannot_read_acmes_users(victim: dict[str, Any], globex_idp: ScimClient) -> None:
    user_id = victim["user"]["id"]
    scim_error(globex_idp.get(f"/Users/{user_id}"), 404)
    assert listed(globex_idp.get("/Users")) == []
    for probe in (
        'userName eq "ada@example.com"',
        f'id eq "{user_id}"',
        'externalId eq "acme-ada"',
        'userName ew "example.com"',
        "userName pr",
    ):
        page = body(globex_idp.get("/Users?filter=" + quote(probe)))
        assert page["totalResults"] == 0 and page["Resources"] == [], probe


def test_another_directory_cannot_write_acmes_users(victim: dict[str, Any], globex_idp: ScimClient) -> None:
    before = acme_state()
    path = f"/Users/{victim['user']['id']}"
    scim_error(globex_idp.patch(path, {"op": "replace", "path": "active", "value": False}), 404)
    scim_error(globex_idp.put(path, user_payload("ada@example.com", "Mallory", active=False)), 404)
    scim_error(globex_idp.delete(path), 404)
    # Creating her into globex: globex does not own her domain.
    scim_error(globex_idp.post("/Users", user_payload("ada@example.com", "Mallory")), 403)
    # Reusing acme's externalId in globex's namespace links nothing of acme's.
    provision(globex_idp, "gus@globex.test", external_id="acme-ada")
    assert acme_state() == before


def test_another_directory_cannot_touch_acmes_groups(victim: dict[str, Any], globex_idp: ScimClient) -> None:
    before = acme_state()
    group_path = f"/Groups/{victim['group']['id']}"
    scim_error(globex_idp.get(group_path), 404)
    scim_error(globex_idp.patch(group_path, {"op": "add", "path": "members", "value": [{"value": "x"}]}), 404)
    scim_error(globex_idp.put(group_path, {"schemas": [GROUP_URN], "displayName": "Owned"}), 404)
    scim_error(globex_idp.delete(group_path), 404)
    assert listed(globex_idp.get("/Groups?filter=" + quote('displayName eq "Finance"'))) == []
    # Putting acme's person into globex's "Finance" (which grants administrator there) is refused.
    scim_error(
        globex_idp.post(
            "/Groups", {"schemas": [GROUP_URN], "displayName": "Finance", "members": [{"value": victim["user"]["id"]}]}
        ),
        400,
        "invalidValue",
    )
    assert acme_state() == before
    assert not RoleGrant.objects.filter(account__slug="globex").exists()


def test_same_names_in_two_directories_stay_apart(victim: dict[str, Any], globex_idp: ScimClient) -> None:
    gus = provision(globex_idp, "gus@globex.test")
    body(globex_idp.post("/Groups", {"schemas": [GROUP_URN], "displayName": "Finance",
                                     "members": [{"value": gus["id"]}]}), 201)  # fmt: skip
    gus_grants = set(RoleGrant.objects.filter(user__subject=gus["id"]).values_list("account__slug", "role"))
    assert gus_grants == {("globex", "administrator")}
    ada_grants = set(RoleGrant.objects.filter(user__subject=victim["user"]["id"]).values_list("account__slug", "role"))
    assert ada_grants == {("acme", "analyst")}
