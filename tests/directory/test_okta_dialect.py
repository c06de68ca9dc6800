"""Okta's SCIM 2.0 client, replayed: the requests of Okta's "SCIM 2.0" reference, as Okta sends them.

Source: developer.okta.com, "Okta and SCIM Version 2.0" (SCIM User operations:
the ``userName eq`` lookup with ``startIndex=1&count=100``, the create with
``locale``, ``groups`` and ``password``, the full-user ``PUT``, deactivation
with a path-less ``{"op": "replace", "value": {"active": false}}``, never
``DELETE``; Group Push: create with an empty ``members``, rename by a path-less
replace whose value carries the group's own ``id``, membership changes as a
``remove`` by value filter and an ``add`` in one message, ``PUT`` of the whole
group, ``DELETE``). Okta keeps a deactivated user and expects to find it again
(reactivation is the same replace with ``true``).

Every step is judged by what Vestibule holds afterwards.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from django.test import Client

from tests.conftest import ApiClient, password_login
from tests.directory.conftest import GROUP_URN, USER_URN, ScimClient, body, listed, membership_of, scim_error
from vestibule.accounts.models import User

TEST_USER = "test.user@example.com"
OKTA_PASSWORD = "1mz050nq-Okta-synced-42"
OTHER_USER = "other.user@example.com"


@pytest.fixture(autouse=True)
def acme_owns_example(api: ApiClient, make_account: Any) -> None:
    """acme's Okta is the home directory of example.com addresses."""
    make_account("acme", "Acme")
    assert api.post("/api/v1/accounts/acme/domains", {"domain": "example.com"}).status_code == 201


def okta_user(user_name: str, given: str, family: str, *, external_id: str, active: bool = True) -> dict[str, Any]:
    """Okta's documented "Create the User" body (``password`` included: Okta sends it when password sync is on)."""
    return {
        "schemas": [USER_URN],
        "userName": user_name,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"primary": True, "value": user_name, "type": "work"}],
        "displayName": f"{given} {family}",
        "locale": "en-US",
        "externalId": external_id,
        "groups": [],
        "password": OKTA_PASSWORD,
        "active": active,
    }


def lookup(scim: ScimClient, user_name: str) -> dict[str, Any]:
    """Okta's lookup: ``filter=userName eq "…"&startIndex=1&count=100``; the whole ListResponse."""
    return body(scim.get("/Users?filter=" + quote(f'userName eq "{user_name}"') + "&startIndex=1&count=100"))


def okta_create(scim: ScimClient, user_name: str, given: str, family: str, external_id: str) -> dict[str, Any]:
    page = lookup(scim, user_name)
    assert page["totalResults"] == 0 and page.get("Resources", []) == [], page
    created = body(scim.post("/Users", okta_user(user_name, given, family, external_id=external_id)), 201)
    assert created["id"] and created["active"] is True, created
    return created


def in_force(email: str) -> bool:
    membership = membership_of(email, "acme")
    assert membership is not None, f"{email} has no membership in acme"
    return bool(membership.is_active and membership.approval == "approved")


def test_okta_user_lifecycle_create_get_put(scim: ScimClient, api: ApiClient) -> None:
    created = okta_create(scim, TEST_USER, "Test", "User", "00ujl29u0le5T6Aj10h7")
    user = User.objects.get_by_email(TEST_USER)
    assert user.name == "Test User" and user.is_active and in_force(TEST_USER)
    # The password Okta synced is not a way in: /ServiceProviderConfig says changePassword is unsupported.
    assert body(scim.get("/ServiceProviderConfig"))["changePassword"]["supported"] is False
    assert not user.has_usable_password()
    assert password_login(Client(), TEST_USER, OKTA_PASSWORD).status_code != 302

    page = lookup(scim, TEST_USER)
    assert page["totalResults"] == 1 and page["startIndex"] == 1 and page["itemsPerPage"] == 1, page
    assert page["Resources"][0]["id"] == created["id"]

    fetched = body(scim.get(f"/Users/{created['id']}"))
    assert fetched["userName"] == TEST_USER and fetched["externalId"] == "00ujl29u0le5T6Aj10h7"
    # The password Okta sent is never returned (RFC 7643: returned "never").
    assert "password" not in fetched and "password" not in created

    # "Update a specific User (PUT)": the whole user, a new name.
    replaced = {
        **okta_user(TEST_USER, "Another", "User", external_id="00ujl29u0le5T6Aj10h7"),
        "id": created["id"],
        "name": {"givenName": "Another", "middleName": "Test", "familyName": "User"},
        "displayName": "Another User",
    }
    replaced.pop("password")
    put = body(scim.put(f"/Users/{created['id']}", replaced))
    assert put["id"] == created["id"] and put["name"]["givenName"] == "Another"
    assert User.objects.get_by_email(TEST_USER).name == "Another User"
    view = api.get(f"/api/v1/accounts/acme/users/{user.pk}").json()
    assert view["name"] == "Another User" and view["is_active"] is True


def test_okta_deactivates_with_a_path_less_replace_and_reactivates(scim: ScimClient, api: ApiClient) -> None:
    created = okta_create(scim, TEST_USER, "Test", "User", "00ujl29u0le5T6Aj10h7")
    user = User.objects.get_by_email(TEST_USER)

    off = scim.patch(f"/Users/{created['id']}", {"op": "replace", "value": {"active": False}})
    assert off.status_code in (200, 204), off.content
    assert not in_force(TEST_USER)
    assert api.get(f"/api/v1/accounts/acme/users/{user.pk}").json()["is_active"] is False
    # Okta never deletes: the user stays, found by id and by its lookup, inactive.
    assert body(scim.get(f"/Users/{created['id']}"))["active"] is False
    [found] = lookup(scim, TEST_USER)["Resources"]
    assert found["id"] == created["id"] and found["active"] is False

    on = scim.patch(f"/Users/{created['id']}", {"op": "replace", "value": {"active": True}})
    assert on.status_code in (200, 204), on.content
    assert in_force(TEST_USER)
    assert api.get(f"/api/v1/accounts/acme/users/{user.pk}").json()["is_active"] is True
    assert body(scim.get(f"/Users/{created['id']}"))["active"] is True


def test_okta_deactivates_and_reactivates_with_put(scim: ScimClient) -> None:
    created = okta_create(scim, TEST_USER, "Test", "User", "00ujl29u0le5T6Aj10h7")
    whole = okta_user(TEST_USER, "Test", "User", external_id="00ujl29u0le5T6Aj10h7", active=False)
    whole.pop("password")
    whole["id"] = created["id"]

    assert body(scim.put(f"/Users/{created['id']}", whole))["active"] is False
    assert not in_force(TEST_USER)
    assert User.objects.get_by_email(TEST_USER).name == "Test User"

    assert body(scim.put(f"/Users/{created['id']}", {**whole, "active": True}))["active"] is True
    assert in_force(TEST_USER)


def test_okta_creating_a_deactivated_user_gives_a_membership_not_in_force(scim: ScimClient) -> None:
    """Okta may push a user assigned while suspended: ``active: false`` on the create itself."""
    created = body(scim.post("/Users", okta_user(TEST_USER, "Test", "User", external_id="00u1", active=False)), 201)
    assert created["active"] is False
    assert not in_force(TEST_USER)


def test_okta_paginates_the_user_list(scim: ScimClient) -> None:
    ids = [okta_create(scim, f"user{i}@example.com", "User", str(i), f"00u{i}")["id"] for i in range(3)]
    first = body(scim.get("/Users?startIndex=1&count=2"))
    assert first["totalResults"] == 3 and first["itemsPerPage"] == 2 and first["startIndex"] == 1, first
    second = body(scim.get("/Users?startIndex=3&count=2"))
    assert second["totalResults"] == 3 and second["itemsPerPage"] == 1 and second["startIndex"] == 3, second
    seen = [r["id"] for r in first["Resources"] + second["Resources"]]
    assert sorted(seen) == sorted(ids)


def members_of(scim: ScimClient, group_id: str) -> set[str]:
    return {m["value"] for m in body(scim.get(f"/Groups/{group_id}")).get("members") or []}


def test_okta_group_push(scim: ScimClient) -> None:
    test_user = okta_create(scim, TEST_USER, "Test", "User", "00u1")
    other_user = okta_create(scim, OTHER_USER, "Other", "User", "00u2")

    # "Create Groups": an empty members list.
    group = body(scim.post("/Groups", {"schemas": [GROUP_URN], "displayName": "Test SCIMv2", "members": []}), 201)
    group_id = group["id"]
    assert group["displayName"] == "Test SCIMv2" and not group.get("members")
    [found] = listed(scim.get("/Groups?filter=" + quote('displayName eq "Test SCIMv2"') + "&startIndex=1&count=100"))
    assert found["id"] == group_id
    assert "members" not in body(scim.get(f"/Groups/{group_id}?excludedAttributes=members"))

    # "Update specific Group membership": add with display, as Okta sends it.
    added = scim.patch(
        f"/Groups/{group_id}",
        {"op": "add", "path": "members", "value": [{"value": test_user["id"], "display": TEST_USER}]},
    )
    assert added.status_code in (200, 204), added.content
    assert members_of(scim, group_id) == {test_user["id"]}

    # One message, a remove by value filter and an add.
    changed = scim.patch(
        f"/Groups/{group_id}",
        {"op": "remove", "path": f'members[value eq "{test_user["id"]}"]'},
        {"op": "add", "path": "members", "value": [{"value": other_user["id"], "display": OTHER_USER}]},
    )
    assert changed.status_code in (200, 204), changed.content
    assert members_of(scim, group_id) == {other_user["id"]}

    # "Update a specific Group name": path-less replace, the group's own id in the value.
    renamed = scim.patch(
        f"/Groups/{group_id}", {"op": "replace", "value": {"id": group_id, "displayName": "Test SCIMv2 renamed"}}
    )
    assert renamed.status_code in (200, 204), renamed.content
    assert body(scim.get(f"/Groups/{group_id}"))["displayName"] == "Test SCIMv2 renamed"
    assert members_of(scim, group_id) == {other_user["id"]}

    # PUT of the whole group replaces its members.
    put = scim.put(
        f"/Groups/{group_id}",
        {
            "schemas": [GROUP_URN],
            "id": group_id,
            "displayName": "Test SCIMv2 renamed",
            "members": [{"value": test_user["id"], "display": TEST_USER}],
        },
    )
    assert body(put)["displayName"] == "Test SCIMv2 renamed"
    assert members_of(scim, group_id) == {test_user["id"]}

    # Group changes never touch the people's membership in acme.
    assert in_force(TEST_USER) and in_force(OTHER_USER)

    assert scim.delete(f"/Groups/{group_id}").status_code == 204
    assert scim.get(f"/Groups/{group_id}").status_code == 404
    assert in_force(TEST_USER) and in_force(OTHER_USER)


def test_okta_lookup_and_uniqueness_ignore_the_case_of_the_username(scim: ScimClient) -> None:
    """userName is caseExact false (RFC 7643 §4.1.1): Okta's lookup in another case finds the user, a create conflicts."""
    created = okta_create(scim, TEST_USER, "Test", "User", "00u1")
    [found] = lookup(scim, "Test.User@Example.COM")["Resources"]
    assert found["id"] == created["id"]
    again = scim.post("/Users", okta_user("TEST.USER@example.com", "Test", "User", external_id="00u2"))
    scim_error(again, 409, "uniqueness")
    assert User.objects.filter(email__iexact=TEST_USER).count() == 1
