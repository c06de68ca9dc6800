"""/Groups: members, and groups named like a mapping role granting its roles — managed, locked for administrators."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ApiClient
from tests.directory.conftest import GROUP_URN, ScimClient, body, listed, scim_error
from tests.directory.support import claim, provision, search
from vestibule.accounts.models import Account, Project, RoleGrant, User
from vestibule.audit.models import AuditEvent
from vestibule.directory.models import SCIM_SOURCE, ScimGroup

pytestmark = pytest.mark.django_db

FINANCE = {"name": "Finance", "grants": [{"scope": "account", "roles": ["analyst", "report-viewer"]}]}


@pytest.fixture
def acme(api: ApiClient, make_account: Any) -> Account:
    account: Account = make_account("acme")
    claim(api, "acme", "example.com")
    Project.objects.create(account=account, slug="production", name="Production")
    assert api.post("/api/v1/accounts/acme/mapping-roles", FINANCE).status_code == 201
    return account


@pytest.fixture
def ada(acme: Account, scim: ScimClient) -> dict[str, Any]:
    return provision(scim, "ada@example.com")


@pytest.fixture
def bob(acme: Account, scim: ScimClient) -> dict[str, Any]:
    return provision(scim, "bob@example.com", "Bob", "Builder")


def group(name: str, *members: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"schemas": [GROUP_URN], "displayName": name, "members": [{"value": m["id"]} for m in members], **extra}


def roles_of(api: ApiClient, user: dict[str, Any]) -> dict[str, Any]:
    pk = User.objects.get(subject=user["id"]).pk
    out: dict[str, Any] = api.get(f"/api/v1/accounts/acme/users/{pk}/roles").json()
    return out


def scim_grants(user: dict[str, Any]) -> set[str]:
    return set(
        RoleGrant.objects.filter(user__subject=user["id"], source=SCIM_SOURCE, managed=True).values_list(
            "role", flat=True
        )
    )


def test_a_group_named_like_a_mapping_role_grants_its_roles(
    acme: Account, scim: ScimClient, ada: dict[str, Any], bob: dict[str, Any], api: ApiClient
) -> None:
    response = scim.post("/Groups", group("Finance", ada, externalId="grp-1"))
    created = body(response, 201)
    assert response["Location"].endswith(f"/Groups/{created['id']}")
    assert [m["value"] for m in created["members"]] == [ada["id"]]
    assert created["members"][0]["$ref"].endswith(f"/Users/{ada['id']}")
    assert scim_grants(ada) == {"analyst", "report-viewer"} and scim_grants(bob) == set()
    shown = roles_of(api, ada)
    assert {"role": "report-viewer", "source": "scim"} in shown["grants"]
    assert "report-viewer" in shown["roles"]
    assert AuditEvent.objects.filter(code="scim.group_created").exists()


def test_a_group_named_like_nothing_grants_nothing(acme: Account, scim: ScimClient, ada: dict[str, Any]) -> None:
    body(scim.post("/Groups", group("Book club", ada)), 201)
    assert scim_grants(ada) == set()


def test_an_administrator_cannot_remove_roles_a_group_grants(
    acme: Account, scim: ScimClient, ada: dict[str, Any], api: ApiClient
) -> None:
    body(scim.post("/Groups", group("Finance", ada)), 201)
    pk = User.objects.get(subject=ada["id"]).pk
    response = api.put(f"/api/v1/accounts/acme/users/{pk}/roles", {"roles": []})
    assert response.status_code == 200, response.content
    assert scim_grants(ada) == {"analyst", "report-viewer"}
    assert "report-viewer" in response.json()["roles"]


def test_membership_changes_recompute_the_grants(
    acme: Account, scim: ScimClient, ada: dict[str, Any], bob: dict[str, Any]
) -> None:
    created = body(scim.post("/Groups", group("Finance", ada)), 201)
    path = f"/Groups/{created['id']}"
    body(scim.patch(path, {"op": "add", "path": "members", "value": [{"value": bob["id"]}]}))
    assert scim_grants(bob) == {"analyst", "report-viewer"}
    # Entra ID removes members with a value array.
    patched = body(scim.patch(path, {"op": "Remove", "path": "members", "value": [{"value": ada["id"]}]}))
    assert [m["value"] for m in patched["members"]] == [bob["id"]]
    assert scim_grants(ada) == set() and scim_grants(bob) == {"analyst", "report-viewer"}
    body(scim.patch(path, {"op": "remove", "path": f'members[value eq "{bob["id"]}"]'}))
    assert scim_grants(bob) == set()
    body(scim.put(path, group("Finance", ada, bob)))
    assert scim_grants(ada) == scim_grants(bob) == {"analyst", "report-viewer"}


def test_renaming_or_deleting_the_group_removes_what_it_granted(
    acme: Account, scim: ScimClient, ada: dict[str, Any]
) -> None:
    created = body(scim.post("/Groups", group("Finance", ada)), 201)
    path = f"/Groups/{created['id']}"
    body(scim.patch(path, {"op": "replace", "path": "displayName", "value": "Finance (old)"}))
    assert scim_grants(ada) == set()
    body(scim.patch(path, {"op": "replace", "value": {"displayName": "Finance"}}))
    assert scim_grants(ada) == {"analyst", "report-viewer"}
    assert scim.delete(path).status_code == 204
    assert scim_grants(ada) == set() and not ScimGroup.objects.exists()


def test_mapping_role_changes_reach_group_members(
    acme: Account, scim: ScimClient, ada: dict[str, Any], api: ApiClient, django_capture_on_commit_callbacks: Any
) -> None:
    """Applied once the mapping role's change commits (its grants are replaced after its row is saved)."""
    body(scim.post("/Groups", group("Finance", ada)), 201)
    mapping_role = api.get("/api/v1/accounts/acme/mapping-roles").json()[0]
    grants = [
        {"scope": "account", "roles": ["customer-support"]},
        {"scope": "project:production", "roles": ["report-manager"]},
    ]
    with django_capture_on_commit_callbacks(execute=True):
        changed = api.patch(f"/api/v1/accounts/acme/mapping-roles/{mapping_role['id']}", {"grants": grants})
    assert changed.status_code == 200, changed.content
    assert scim_grants(ada) == {"customer-support", "report-manager"}
    assert RoleGrant.objects.get(user__subject=ada["id"], role="report-manager").project is not None
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"/api/v1/accounts/acme/mapping-roles/{mapping_role['id']}").status_code == 204
    assert scim_grants(ada) == set()


def test_removing_a_person_removes_them_from_groups(
    acme: Account, scim: ScimClient, ada: dict[str, Any], bob: dict[str, Any]
) -> None:
    created = body(scim.post("/Groups", group("Finance", ada, bob)), 201)
    assert scim.delete(f"/Users/{bob['id']}").status_code == 204
    assert [m["value"] for m in body(scim.get(f"/Groups/{created['id']}"))["members"]] == [ada["id"]]


def test_group_names_and_external_ids_are_unique_per_directory(
    acme: Account, scim: ScimClient, ada: dict[str, Any]
) -> None:
    body(scim.post("/Groups", group("Finance", externalId="g1")), 201)
    scim_error(scim.post("/Groups", group("Finance")), 409, "uniqueness")
    scim_error(scim.post("/Groups", group("Other", externalId="g1")), 409, "uniqueness")
    assert ScimGroup.objects.count() == 1


def test_members_must_be_users_of_this_directory(acme: Account, scim: ScimClient, make_user: Any) -> None:
    stranger = make_user("eve@example.com", account="globex")
    scim_error(scim.post("/Groups", group("Finance", {"id": str(stranger.subject)})), 400, "invalidValue")
    scim_error(scim.post("/Groups", group("Finance", {"id": "not-a-uuid"})), 400, "invalidValue")
    assert not ScimGroup.objects.exists()
    assert not RoleGrant.objects.filter(user=stranger, account=acme).exists()


def test_group_filters_and_listing(acme: Account, scim: ScimClient, ada: dict[str, Any], bob: dict[str, Any]) -> None:
    finance = body(scim.post("/Groups", group("Finance", ada, bob)), 201)
    body(scim.post("/Groups", group("Book club", bob)), 201)
    assert [g["displayName"] for g in search(scim, "Groups", 'displayName eq "finance"')] == ["Finance"]
    assert sorted(g["displayName"] for g in search(scim, "Groups", f'members.value eq "{bob["id"]}"')) == [
        "Book club",
        "Finance",
    ]
    assert [g["id"] for g in search(scim, "Groups", f'members[value eq "{ada["id"]}"]')] == [finance["id"]]
    page = body(scim.get("/Groups?count=1&excludedAttributes=members"))
    assert page["totalResults"] == 2 and "members" not in page["Resources"][0]
    scim_error(scim.get("/Groups?filter=" + "userName%20eq%20%22x%22"), 400, "invalidFilter")
    assert len(listed(scim.get("/Groups"))) == 2


def test_patch_removes_a_groups_external_id(acme: Account, scim: ScimClient) -> None:
    created = body(scim.post("/Groups", group("Finance", externalId="g1")), 201)
    patched = body(scim.patch(f"/Groups/{created['id']}", {"op": "remove", "path": "externalId"}))
    assert "externalId" not in patched and ScimGroup.objects.get().external_id == ""


def test_a_member_removed_elsewhere_leaves_the_groups(
    acme: Account, scim: ScimClient, ada: dict[str, Any], bob: dict[str, Any], api: ApiClient
) -> None:
    """The admin API removes bob: acme's groups drop him, and the next PATCH of the group still works."""
    created = body(scim.post("/Groups", group("Finance", ada, bob)), 201)
    pk = User.objects.get(subject=bob["id"]).pk
    assert api.delete(f"/api/v1/accounts/acme/users/{pk}").status_code == 204
    patched = body(scim.patch(f"/Groups/{created['id']}", {"op": "replace", "path": "displayName", "value": "Fin"}))
    assert [m["value"] for m in patched["members"]] == [ada["id"]]


def test_a_large_group_still_takes_one_more_member(acme: Account, scim: ScimClient, ada: dict[str, Any]) -> None:
    """Entra adds members to big groups one PATCH at a time: the 1001st must not hit the per-request bound."""
    from vestibule.accounts.models import Membership
    from vestibule.directory.models import ScimGroupMember

    people = User.objects.bulk_create(
        User(email=f"p{i}@example.com", email_key=f"p{i}@example.com") for i in range(1000)
    )
    Membership.objects.bulk_create(Membership(user=u, account=acme) for u in people)
    created = body(scim.post("/Groups", group("Everyone")), 201)
    ScimGroupMember.objects.bulk_create(ScimGroupMember(group_id=created["id"], user=u) for u in people)
    patched = body(
        scim.patch(f"/Groups/{created['id']}", {"op": "add", "path": "members", "value": [{"value": ada["id"]}]})
    )
    assert len(patched["members"]) == 1001
