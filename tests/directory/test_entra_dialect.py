"""Microsoft Entra ID's provisioning service, replayed: the requests its documentation shows, as it sends them.

Sources: Microsoft Learn, "Tutorial: Develop and plan provisioning for a SCIM
endpoint in Microsoft Entra ID" (the request/response examples: user lookup by
``userName eq`` before the create, the create with the enterprise extension,
``"op": "Replace"`` with a capital R, group create with Microsoft's own schema
URN, ``excludedAttributes=members``, ``Add``/``Remove`` of members with a value
array), and "Known issues and resolutions with SCIM 2.0 protocol compliance of
the Microsoft Entra user provisioning service" (booleans sent as the strings
``"False"``/``"True"``, path-less ``replace`` with a value object whose keys
are paths, member removal by ``members[value eq "…"]``). Both forms stay in
use: which one a tenant sends depends on its feature flag.

After each step the test reads what Vestibule holds (the database, the admin
API), not only the status code.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import ApiClient
from tests.directory.conftest import (
    ENTERPRISE_URN,
    GROUP_URN,
    USER_URN,
    ScimClient,
    body,
    find_user,
    listed,
    membership_of,
    scim_error,
)
from vestibule.accounts.models import User

# The extra schema Entra puts in a group it creates (documented request "Create Group").
ENTRA_GROUP_URN = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
ADA = "ada.lovelace@example.com"
GRACE = "grace.hopper@example.com"


@pytest.fixture(autouse=True)
def acme_owns_example(api: ApiClient, make_account: Any) -> None:
    """acme's directory is the home of example.com addresses: its IdP owns these identities."""
    make_account("acme", "Acme")
    assert api.post("/api/v1/accounts/acme/domains", {"domain": "example.com"}).status_code == 201


def entra_user(user_name: str, given: str, family: str, external_id: str) -> dict[str, Any]:
    """The documented "Create User" body: enterprise extension, meta, an empty roles list and all."""
    return {
        "schemas": [USER_URN, ENTERPRISE_URN],
        "externalId": external_id,
        "userName": user_name,
        "active": True,
        "displayName": f"{given} {family}",
        "emails": [{"primary": True, "type": "work", "value": user_name}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": f"{given} {family}", "familyName": family, "givenName": given},
        "roles": [],
        ENTERPRISE_URN: {"department": "Engineering", "employeeNumber": "1815"},
    }


def provision(scim: ScimClient, user_name: str, given: str, family: str, external_id: str) -> dict[str, Any]:
    """What Entra does for each assigned person: look them up by userName, and create them when absent."""
    assert find_user(scim, user_name) == []
    response = scim.post("/Users", entra_user(user_name, given, family, external_id))
    created = body(response, 201)
    assert created["id"] and created["userName"] == user_name and created["active"] is True, created
    # RFC 7644 §3.3: the new resource's URI in the Location header and in meta.location.
    assert response["Location"] == created["meta"]["location"]
    return created


def member_view(api: ApiClient, email: str) -> dict[str, Any]:
    """The member as acme's administrators see them (``GET /api/v1/accounts/acme/users/<id>``)."""
    user = User.objects.get_by_email(email)
    response = api.get(f"/api/v1/accounts/acme/users/{user.pk}")
    assert response.status_code == 200, response.content
    view: dict[str, Any] = response.json()
    return view


def test_entra_looks_up_by_username_then_creates_and_reads_the_user(scim: ScimClient, api: ApiClient) -> None:
    # "Get User by query - Zero results": an empty ListResponse, not a 404.
    page = body(scim.get("/Users?filter=" + quote(f'userName eq "{ADA}"')))
    assert page["totalResults"] == 0 and page.get("Resources", []) == [], page
    assert not User.objects.filter(email=ADA).exists()

    created = provision(scim, ADA, "Ada", "Lovelace", "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159")
    assert created["schemas"][0] == USER_URN and created["externalId"] == "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159"
    assert created["meta"]["resourceType"] == "User" and created["meta"]["location"].endswith(f"/Users/{created['id']}")

    # The person and their membership in acme exist, in force.
    ada = User.objects.get_by_email(ADA)
    assert ada.is_active and ada.name == "Ada Lovelace"
    membership = membership_of(ADA, "acme")
    assert membership is not None and membership.is_active and membership.approval == "approved"
    view = member_view(api, ADA)
    assert view["is_active"] is True and view["membership_active"] is True and view["name"] == "Ada Lovelace"

    # "Get User by query", encoded as Entra sends it (spaces as '+'): the one match, the same id.
    [found] = listed(scim.get(f'/Users?filter=userName+eq+"{quote(ADA)}"'))
    assert found["id"] == created["id"] and found["externalId"] == created["externalId"]
    fetched = body(scim.get(f"/Users/{created['id']}"))
    assert fetched["userName"] == ADA and fetched["name"]["familyName"] == "Lovelace"
    # Entra also matches by externalId.
    [by_external] = listed(scim.get("/Users?filter=" + quote('externalId eq "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159"')))
    assert by_external["id"] == created["id"]


def test_entra_creating_a_user_twice_is_a_uniqueness_conflict(scim: ScimClient) -> None:
    provision(scim, ADA, "Ada", "Lovelace", "ext-ada")
    again = scim.post("/Users", entra_user(ADA, "Ada", "Lovelace", "ext-ada"))
    scim_error(again, 409, "uniqueness")
    assert User.objects.filter(email=ADA).count() == 1


def test_entra_replace_with_capital_r_updates_the_name(scim: ScimClient, api: ApiClient) -> None:
    ada = provision(scim, ADA, "Ada", "Lovelace", "ext-ada")
    # "Update User [Multi-valued properties]" as Entra sends it: "Replace", sub-attribute paths.
    response = scim.patch(
        f"/Users/{ada['id']}",
        {"op": "Replace", "path": "name.familyName", "value": "King"},
        {"op": "Replace", "path": "name.formatted", "value": "Ada King"},
        {"op": "Replace", "path": "displayName", "value": "Ada King"},
    )
    assert response.status_code in (200, 204), response.content
    assert User.objects.get_by_email(ADA).name == "Ada King"
    assert member_view(api, ADA)["name"] == "Ada King"
    fetched = body(scim.get(f"/Users/{ada['id']}"))
    assert fetched["name"]["familyName"] == "King" and fetched["name"]["givenName"] == "Ada"


def test_entra_disables_with_the_string_false_and_enables_with_the_string_true(
    scim: ScimClient, api: ApiClient
) -> None:
    ada = provision(scim, ADA, "Ada", "Lovelace", "ext-ada")
    # Entra without the compliance flag: {"op":"Replace","path":"active","value":"False"}.
    response = scim.patch(f"/Users/{ada['id']}", {"op": "Replace", "path": "active", "value": "False"})
    assert response.status_code in (200, 204), response.content
    membership = membership_of(ADA, "acme")
    assert membership is not None and membership.is_active is False
    assert member_view(api, ADA)["is_active"] is False
    # Entra's validator: a disabled user is still found, by id and by filter, with active false.
    assert body(scim.get(f"/Users/{ada['id']}"))["active"] is False
    [found] = find_user(scim, ADA)
    assert found["id"] == ada["id"] and found["active"] is False

    response = scim.patch(f"/Users/{ada['id']}", {"op": "Replace", "path": "active", "value": "True"})
    assert response.status_code in (200, 204), response.content
    membership.refresh_from_db()
    assert membership.is_active is True
    assert member_view(api, ADA)["is_active"] is True
    assert body(scim.get(f"/Users/{ada['id']}"))["active"] is True


def test_entra_disables_with_a_real_boolean_too(scim: ScimClient) -> None:
    """With the compliance flag on, Entra sends lower-case ``replace`` and a JSON boolean."""
    ada = provision(scim, ADA, "Ada", "Lovelace", "ext-ada")
    response = scim.patch(f"/Users/{ada['id']}", {"op": "replace", "path": "active", "value": False})
    assert response.status_code in (200, 204), response.content
    membership = membership_of(ADA, "acme")
    assert membership is not None and membership.is_active is False


def test_entra_path_less_replace_with_a_value_object_whose_keys_are_paths(scim: ScimClient, api: ApiClient) -> None:
    ada = provision(scim, ADA, "Ada", "Lovelace", "ext-ada")
    # "Requests to replace multiple attributes", compliance-flag form: one op, no path, keys that are paths
    # (sub-attributes and an extension attribute named by its schema URN).
    response = scim.patch(
        f"/Users/{ada['id']}",
        {
            "op": "replace",
            "value": {
                "displayName": "Ada King",
                "name.givenName": "Ada",
                "name.familyName": "King",
                "name.formatted": "Ada King",
                "externalId": "ext-ada-2",
                f"{ENTERPRISE_URN}:employeeNumber": "1816",
            },
        },
    )
    assert response.status_code in (200, 204), response.content
    assert User.objects.get_by_email(ADA).name == "Ada King"
    fetched = body(scim.get(f"/Users/{ada['id']}"))
    assert fetched["externalId"] == "ext-ada-2" and fetched["name"]["familyName"] == "King"
    assert [f["id"] for f in listed(scim.get("/Users?filter=" + quote('externalId eq "ext-ada-2"')))] == [ada["id"]]

    # The same shape switches the person off: {"op":"Replace","value":{"active":false}}.
    response = scim.patch(f"/Users/{ada['id']}", {"op": "Replace", "value": {"active": False}})
    assert response.status_code in (200, 204), response.content
    membership = membership_of(ADA, "acme")
    assert membership is not None and membership.is_active is False
    assert member_view(api, ADA)["membership_active"] is False


def test_entra_hard_delete_removes_the_membership(scim: ScimClient) -> None:
    ada = provision(scim, ADA, "Ada", "Lovelace", "ext-ada")
    # Entra soft-deletes first (active false), then deletes 30 days later.
    assert scim.patch(f"/Users/{ada['id']}", {"op": "Replace", "path": "active", "value": "False"}).status_code in (
        200,
        204,
    )
    response = scim.delete(f"/Users/{ada['id']}")
    assert response.status_code == 204, response.content
    assert membership_of(ADA, "acme") is None
    assert scim.get(f"/Users/{ada['id']}").status_code == 404
    assert find_user(scim, ADA) == []


def group_ids(group: dict[str, Any]) -> set[str]:
    return {m["value"] for m in group.get("members") or []}


def test_entra_group_sequence_create_add_remove_rename(scim: ScimClient) -> None:
    ada = provision(scim, ADA, "Ada", "Lovelace", "ext-ada")
    grace = provision(scim, GRACE, "Grace", "Hopper", "ext-grace")
    by_name = '/Groups?excludedAttributes=members&filter=displayName+eq+"Engineering"'

    # "Get Group by displayName" before the create: nothing yet.
    assert listed(scim.get(by_name)) == []
    created = body(
        scim.post(
            "/Groups",
            {
                "schemas": [GROUP_URN, ENTRA_GROUP_URN],
                "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
                "displayName": "Engineering",
                "meta": {"resourceType": "Group"},
            },
        ),
        201,
    )
    group = created["id"]
    assert created["displayName"] == "Engineering" and group_ids(created) == set()
    [found] = listed(scim.get(by_name))
    assert found["id"] == group and "members" not in found
    assert "members" not in body(scim.get(f"/Groups/{group}?excludedAttributes=members"))

    # "Update Group [Add Members]": capital A, a value array with a null $ref.
    added = scim.patch(
        f"/Groups/{group}",
        {
            "op": "Add",
            "path": "members",
            "value": [{"$ref": None, "value": ada["id"]}, {"$ref": None, "value": grace["id"]}],
        },
    )
    assert added.status_code in (200, 204), added.content
    assert group_ids(body(scim.get(f"/Groups/{group}"))) == {ada["id"], grace["id"]}
    # Adding someone already there changes nothing (no duplicate member).
    again = scim.patch(f"/Groups/{group}", {"op": "Add", "path": "members", "value": [{"value": ada["id"]}]})
    assert again.status_code in (200, 204), again.content
    members = body(scim.get(f"/Groups/{group}"))["members"]
    assert sorted(m["value"] for m in members) == sorted([ada["id"], grace["id"]])

    # "Update Group [Remove Members]": the value-array form, capital R.
    removed = scim.patch(
        f"/Groups/{group}", {"op": "Remove", "path": "members", "value": [{"$ref": None, "value": grace["id"]}]}
    )
    assert removed.status_code in (200, 204), removed.content
    assert group_ids(body(scim.get(f"/Groups/{group}"))) == {ada["id"]}
    # The compliance-flag form: a value filter in the path.
    removed = scim.patch(f"/Groups/{group}", {"op": "remove", "path": f'members[value eq "{ada["id"]}"]'})
    assert removed.status_code in (200, 204), removed.content
    assert group_ids(body(scim.get(f"/Groups/{group}"))) == set()
    # Removing the members took nobody out of acme.
    for email in (ADA, GRACE):
        membership = membership_of(email, "acme")
        assert membership is not None and membership.is_active

    # "Update Group [Non-member attributes]".
    renamed = scim.patch(f"/Groups/{group}", {"op": "Replace", "path": "displayName", "value": "Engineering Team"})
    assert renamed.status_code in (200, 204), renamed.content
    assert body(scim.get(f"/Groups/{group}"))["displayName"] == "Engineering Team"
    assert listed(scim.get(by_name)) == []
    [renamed_found] = listed(scim.get("/Groups?filter=" + quote('displayName eq "Engineering Team"')))
    assert renamed_found["id"] == group

    # "Delete Group".
    assert scim.delete(f"/Groups/{group}").status_code == 204
    assert scim.get(f"/Groups/{group}").status_code == 404


def test_entra_group_named_after_a_mapping_role_grants_its_roles_to_its_members(
    scim: ScimClient, api: ApiClient
) -> None:
    """Groups map to mapping roles by name: membership of "Engineering" grants what that mapping role grants."""
    made = api.post(
        "/api/v1/accounts/acme/mapping-roles",
        {"name": "Engineering", "grants": [{"scope": "account", "roles": ["analyst", "pii-viewer"]}]},
    )
    assert made.status_code == 201, made.content
    ada = provision(scim, ADA, "Ada", "Lovelace", "ext-ada")
    assert "pii-viewer" not in member_view(api, ADA)["roles"]

    group = body(scim.post("/Groups", {"schemas": [GROUP_URN, ENTRA_GROUP_URN], "displayName": "Engineering"}), 201)
    added = scim.patch(f"/Groups/{group['id']}", {"op": "Add", "path": "members", "value": [{"value": ada["id"]}]})
    assert added.status_code in (200, 204), added.content
    view = member_view(api, ADA)
    assert "pii-viewer" in view["roles"], view
    # Locked like SSO-managed roles: the grant is not a manual one an administrator edits away.
    assert {g["source"] for g in view["grants"] if g["role"] == "pii-viewer"} - {"manual"}, view["grants"]

    # Locked: an administrator replacing Ada's roles does not take away what her directory group grants.
    person = User.objects.get_by_email(ADA)
    replaced = api.put(f"/api/v1/accounts/acme/users/{person.pk}/roles", {"roles": []})
    assert replaced.status_code in (200, 409), replaced.content
    assert "pii-viewer" in member_view(api, ADA)["roles"]

    removed = scim.patch(f"/Groups/{group['id']}", {"op": "Remove", "path": "members", "value": [{"value": ada["id"]}]})
    assert removed.status_code in (200, 204), removed.content
    assert "pii-viewer" not in member_view(api, ADA)["roles"]

    # Back in, then the group renamed away from the mapping role's name: the grant goes with the name.
    assert scim.patch(
        f"/Groups/{group['id']}", {"op": "Add", "path": "members", "value": [{"value": ada["id"]}]}
    ).status_code in (200, 204)
    assert "pii-viewer" in member_view(api, ADA)["roles"]
    renamed = scim.patch(f"/Groups/{group['id']}", {"op": "Replace", "path": "displayName", "value": "Engineers"})
    assert renamed.status_code in (200, 204), renamed.content
    assert "pii-viewer" not in member_view(api, ADA)["roles"]
    # And named so again, then deleted.
    assert scim.patch(
        f"/Groups/{group['id']}", {"op": "Replace", "path": "displayName", "value": "Engineering"}
    ).status_code in (200, 204)
    assert "pii-viewer" in member_view(api, ADA)["roles"]
    assert scim.delete(f"/Groups/{group['id']}").status_code == 204
    assert "pii-viewer" not in member_view(api, ADA)["roles"]


def test_entra_finds_a_user_by_work_email_value_filter(scim: ScimClient) -> None:
    """Entra's other matching attribute: ``emails[type eq "work"].value eq "…"``."""
    ada = provision(scim, ADA, "Ada", "Lovelace", "ext-ada")
    provision(scim, GRACE, "Grace", "Hopper", "ext-grace")
    [found] = listed(scim.get("/Users?filter=" + quote(f'emails[type eq "work"].value eq "{ADA}"')))
    assert found["id"] == ada["id"]
    [by_value] = listed(scim.get("/Users?filter=" + quote(f'emails.value eq "{ADA}"')))
    assert by_value["id"] == ada["id"]
    both = listed(scim.get("/Users?filter=" + quote(f'userName eq "{ADA}" or userName eq "{GRACE}"')))
    assert sorted(u["userName"] for u in both) == sorted([ADA, GRACE])
    assert listed(scim.get("/Users?filter=" + quote(f'userName eq "{ADA}" and externalId eq "ext-grace"'))) == []


def test_entra_renames_the_username_within_the_accounts_domains(scim: ScimClient, api: ApiClient) -> None:
    """ "Update User [Single-valued properties]": a new userName is the person's new address, at a domain acme owns."""
    ada = provision(scim, ADA, "Ada", "Lovelace", "ext-ada")
    person = User.objects.get_by_email(ADA)
    response = scim.patch(f"/Users/{ada['id']}", {"op": "Replace", "path": "userName", "value": "ada.king@example.com"})
    assert response.status_code in (200, 204), response.content
    person.refresh_from_db()
    assert person.email == "ada.king@example.com"
    assert [u["id"] for u in find_user(scim, "ada.king@example.com")] == [ada["id"]]
    assert find_user(scim, ADA) == []


def test_entra_cannot_move_a_person_to_another_accounts_domain(
    scim: ScimClient, api: ApiClient, make_account: Any
) -> None:
    """An email change may not cross owners: acme's IdP cannot hand Ada an address globex owns."""
    make_account("globex", "Globex")
    assert api.post("/api/v1/accounts/globex/domains", {"domain": "globex.test"}).status_code == 201
    ada = provision(scim, ADA, "Ada", "Lovelace", "ext-ada")
    for attempt in (
        scim.patch(f"/Users/{ada['id']}", {"op": "Replace", "path": "userName", "value": "ada@globex.test"}),
        scim.put(
            f"/Users/{ada['id']}", {**entra_user("ada@globex.test", "Ada", "Lovelace", "ext-ada"), "id": ada["id"]}
        ),
    ):
        assert 400 <= attempt.status_code < 500, (attempt.status_code, attempt.content)
        scim_error(attempt, attempt.status_code)
    assert User.objects.get(pk=User.objects.get_by_email(ADA).pk).email == ADA
    assert not User.objects.filter(email="ada@globex.test").exists()
    assert body(scim.get(f"/Users/{ada['id']}"))["userName"] == ADA


def test_entra_work_email_replace_is_accepted_and_never_moves_the_identity(
    scim: ScimClient, api: ApiClient, make_account: Any
) -> None:
    """ "Update User [Multi-valued properties]" as documented: the work email and the family name in one PATCH.

    Entra maps emails from ``mail`` and userName from the UPN, so the two may
    differ; refusing the message would stall Entra's provisioning of the
    person. Vestibule's address is the userName: an emails write must not be
    a way around the userName's ownership check (here an address globex owns).
    """
    make_account("globex", "Globex")
    assert api.post("/api/v1/accounts/globex/domains", {"domain": "globex.test"}).status_code == 201
    ada = provision(scim, ADA, "Ada", "Lovelace", "ext-ada")
    response = scim.patch(
        f"/Users/{ada['id']}",
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "ada@globex.test"},
        {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
    )
    assert response.status_code in (200, 204), response.content
    assert body(scim.get(f"/Users/{ada['id']}"))["name"]["familyName"] == "updatedFamilyName"
    person = User.objects.get(pk=User.objects.get_by_email(ADA).pk)
    assert person.email == ADA and not User.objects.filter(email="ada@globex.test").exists()
    assert member_view(api, ADA)["email"] == ADA


def test_entra_matches_addresses_with_plus_and_apostrophe(scim: ScimClient) -> None:
    """Entra encodes the filter's spaces as '+' and a literal '+' as %2B: both reach the same person."""
    for address in ("ada+scim@example.com", "o'brien@example.com"):
        created = provision(scim, address, "Ada", "Obrien", f"ext-{address}")
        [found] = listed(scim.get(f'/Users?filter=userName+eq+"{quote(address, safe="")}"'))
        assert found["id"] == created["id"] and found["userName"] == address
    assert listed(scim.get('/Users?filter=userName+eq+"ada scim@example.com"')) == []
