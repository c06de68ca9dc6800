"""/Users: provisioning people under identity ownership, deprovisioning, filters, pagination and projections."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import ApiClient
from tests.directory.conftest import USER_URN, ScimClient, body, listed, scim_error, user_payload
from tests.directory.support import claim, patch_body, provision, search
from vestibule.accounts.models import Account, Membership, User
from vestibule.audit.models import AuditEvent
from vestibule.directory.models import ScimUser

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(api: ApiClient, make_account: Any) -> Account:
    """acme owns example.com: it is the home account of the people its directory provisions."""
    account: Account = make_account("acme")
    claim(api, "acme", "example.com")
    return account


@pytest.fixture
def globex(api: ApiClient, make_account: Any) -> Account:
    account: Account = make_account("globex")
    claim(api, "globex", "globex.test")
    return account


# Create and read ---------------------------------------------------------------------------


def test_post_creates_the_person_and_the_membership(acme: Account, scim: ScimClient) -> None:
    response = scim.post("/Users", user_payload("ada@example.com", external_id="okta-1"))
    created = body(response, 201)
    user = User.objects.get(email_key="ada@example.com")
    assert created["id"] == str(user.subject) and response["Location"] == created["meta"]["location"]
    assert created["userName"] == "ada@example.com" and created["active"] is True
    assert created["name"] == {"formatted": "Ada Lovelace", "givenName": "Ada", "familyName": "Lovelace"}
    assert created["externalId"] == "okta-1" and created["meta"]["resourceType"] == "User"
    assert user.name == "Ada Lovelace"
    assert Membership.objects.get(user=user, account=acme).is_active
    event = AuditEvent.objects.get(code="scim.user_created")
    assert event.account == acme and event.detail["actor"].startswith("scim-token:")
    assert body(scim.get(f"/Users/{created['id']}")) == created


def test_post_of_an_existing_member_is_a_uniqueness_conflict(acme: Account, scim: ScimClient) -> None:
    provision(scim, "ada@example.com")
    scim_error(scim.post("/Users", user_payload("ADA@example.com")), 409, "uniqueness")
    assert User.objects.filter(email_key="ada@example.com").count() == 1


def test_post_of_a_known_identity_of_the_accounts_domain_adds_the_membership(
    acme: Account, scim: ScimClient, make_user: Any
) -> None:
    existing = make_user("bob@example.com", account="elsewhere", name="Bob")
    created = body(scim.post("/Users", user_payload("bob@example.com", "Robert", "Tables")), 201)
    assert created["id"] == str(existing.subject)
    assert Membership.objects.filter(user=existing).count() == 2
    existing.refresh_from_db()
    assert existing.name == "Robert Tables"  # acme owns the identity: its directory names the person


def test_post_for_a_domain_the_account_does_not_own_is_refused(
    acme: Account, globex: Account, scim: ScimClient, make_user: Any
) -> None:
    """The directory of acme cannot create or adopt someone of globex's domain, nor of a domain nobody owns."""
    victim = make_user("carol@globex.test", account="globex", name="Carol")
    detail = scim_error(scim.post("/Users", user_payload("carol@globex.test", "Mallory")), 403)["detail"]
    assert "does not own" in detail and "invite" in detail
    scim_error(scim.post("/Users", user_payload("drifter@gmail.example")), 403)
    victim.refresh_from_db()
    assert victim.name == "Carol" and list(victim.memberships.values_list("account__slug", flat=True)) == ["globex"]
    assert not User.objects.filter(email_key="drifter@gmail.example").exists()


@pytest.mark.parametrize("user_name", ["not-an-email", " ada@example.com", "ada@@example.com", ""])
def test_user_name_must_be_a_canonical_email(acme: Account, scim: ScimClient, user_name: str) -> None:
    scim_error(scim.post("/Users", user_payload(user_name)), 400, "invalidValue")
    assert not User.objects.exclude(is_operator=True).exists()


def test_unknown_and_foreign_shaped_ids_are_404(acme: Account, scim: ScimClient) -> None:
    for user_id in ("1", "00000000-0000-0000-0000-000000000000", "../Groups", "%00"):
        scim_error(scim.get(f"/Users/{user_id}"), 404)


# Update --------------------------------------------------------------------------------------


def test_put_replaces_what_it_sends(acme: Account, scim: ScimClient) -> None:
    created = provision(scim, "ada@example.com", external_id="okta-1")
    replaced = body(scim.put(f"/Users/{created['id']}", user_payload("ada@example.com", "Augusta", "King")))
    assert replaced["name"] == {"formatted": "Augusta King", "givenName": "Augusta", "familyName": "King"}
    assert "displayName" not in replaced  # never sent: what the directory sends is what it reads back
    assert replaced["externalId"] == "okta-1"  # not sent: kept
    assert User.objects.get(email_key="ada@example.com").name == "Augusta King"


def test_patch_sub_attribute_and_path_less_replace(acme: Account, scim: ScimClient) -> None:
    created = provision(scim, "ada@example.com")
    path = f"/Users/{created['id']}"
    patched = body(scim.patch(path, {"op": "replace", "path": "name.familyName", "value": "Byron"}))
    assert patched["name"]["familyName"] == "Byron"
    assert User.objects.get(email_key="ada@example.com").name == "Ada Byron"
    patched = body(scim.patch(path, {"op": "Replace", "value": {"displayName": "Countess Ada", "externalId": "x-9"}}))
    assert patched["displayName"] == "Countess Ada" and patched["externalId"] == "x-9"
    assert ScimUser.objects.get(external_id="x-9").membership.user.name == "Countess Ada"


def test_user_name_changes_within_the_accounts_domains_only(
    acme: Account, globex: Account, scim: ScimClient, api: ApiClient
) -> None:
    claim(api, "acme", "example.org")
    created = provision(scim, "ada@example.com")
    path = f"/Users/{created['id']}"
    assert body(scim.patch(path, {"op": "replace", "path": "userName", "value": "ada@example.org"}))["userName"] == (
        "ada@example.org"
    )
    assert AuditEvent.objects.get(code="scim.user_renamed").detail["previous"] == "ada@example.com"
    scim_error(scim.patch(path, {"op": "replace", "path": "userName", "value": "ada@globex.test"}), 403)
    provision(scim, "bob@example.com")
    scim_error(scim.patch(path, {"op": "replace", "path": "userName", "value": "bob@example.com"}), 409, "uniqueness")
    assert User.objects.get(subject=created["id"]).email == "ada@example.org"


def test_external_id_is_unique_per_directory(acme: Account, globex: Account, scim: ScimClient, scim_for: Any) -> None:
    provision(scim, "ada@example.com", external_id="E1")
    scim_error(scim.post("/Users", user_payload("bob@example.com", external_id="E1")), 409, "uniqueness")
    assert not User.objects.filter(email_key="bob@example.com").exists()
    # Another account's directory has its own namespace of externalIds.
    provision(scim_for("globex"), "carol@globex.test", external_id="E1")


def test_active_false_deactivates_and_true_restores(acme: Account, scim: ScimClient, api: ApiClient) -> None:
    created = provision(scim, "ada@example.com")
    path = f"/Users/{created['id']}"
    assert body(scim.patch(path, {"op": "Replace", "path": "active", "value": "False"}))["active"] is False
    shown = {u["email"]: u for u in api.get("/api/v1/accounts/acme/users").json()}
    assert shown["ada@example.com"]["is_active"] is False
    assert search(scim, "Users", "active eq false")[0]["id"] == created["id"]
    assert AuditEvent.objects.filter(code="scim.user_deactivated").exists()
    assert body(scim.put(path, user_payload("ada@example.com", active=True)))["active"] is True
    assert api.get("/api/v1/accounts/acme/users").json()[0]["is_active"] is True
    assert AuditEvent.objects.filter(code="scim.user_reactivated").exists()


# Identity ownership ---------------------------------------------------------------------------


@pytest.fixture
def guest(acme: Account, globex: Account, make_user: Any) -> User:
    """carol, whose home is globex, who accepted acme's invitation: acme owns her membership only."""
    carol: User = make_user("carol@globex.test", account="globex", name="Carol Danvers")
    Membership.objects.create(user=carol, account=acme)
    return carol


def test_a_directory_manages_a_guests_membership_but_not_her_identity(guest: User, scim: ScimClient) -> None:
    found = search(scim, "Users", 'userName eq "carol@globex.test"')
    assert [u["id"] for u in found] == [str(guest.subject)]
    path = f"/Users/{guest.subject}"
    detail = scim_error(scim.patch(path, {"op": "replace", "path": "displayName", "value": "Mallory"}), 403)["detail"]
    assert "identity" in detail and "membership" in detail
    scim_error(scim.put(path, user_payload("carol@globex.test", "Mal", "Lory", displayName="Mal Lory")), 403)
    # The name object is the directory's own record of her: kept, renaming nobody.
    described = body(scim.put(path, user_payload("carol@globex.test", "Caz", "Danvers")))
    assert described["name"]["givenName"] == "Caz" and described["displayName"] == "Carol Danvers"
    scim_error(scim.patch(path, {"op": "replace", "path": "userName", "value": "mallory@example.com"}), 403)
    guest.refresh_from_db()
    assert guest.name == "Carol Danvers" and guest.email == "carol@globex.test"

    # Her acme membership is acme's: deactivated here, and nowhere else.
    assert body(scim.patch(path, {"op": "replace", "value": {"active": False}}))["active"] is False
    guest.refresh_from_db()
    assert guest.is_active is True
    assert Membership.objects.get(user=guest, account__slug="globex").is_active is True
    assert Membership.objects.get(user=guest, account__slug="acme").is_active is False

    # Removing her removes acme's membership only; globex keeps her.
    assert scim.delete(path).status_code == 204
    assert list(User.objects.get(pk=guest.pk).memberships.values_list("account__slug", flat=True)) == ["globex"]


def test_deactivating_a_home_member_deactivates_the_identity_too(acme: Account, scim: ScimClient) -> None:
    """As the admin API's PATCH is_active from the home account: the person signs in nowhere."""
    created = provision(scim, "ada@example.com")
    body(scim.patch(f"/Users/{created['id']}", {"op": "replace", "path": "active", "value": False}))
    assert User.objects.get(subject=created["id"]).is_active is False


def test_the_operators_identity_is_never_a_directorys(acme: Account, scim: ScimClient, make_user: Any) -> None:
    root = make_user("root@example.com", name="Root", is_operator=True)
    path = f"/Users/{root.subject}"
    scim_error(scim.patch(path, {"op": "replace", "path": "displayName", "value": "Owned"}), 403)
    body(scim.patch(path, {"op": "replace", "path": "active", "value": False}))
    root.refresh_from_db()
    assert root.is_active and root.name == "Root"
    assert scim.delete(path).status_code == 204
    assert User.objects.filter(pk=root.pk).exists()


def test_delete_of_a_home_member_without_other_accounts_removes_the_person(acme: Account, scim: ScimClient) -> None:
    created = provision(scim, "ada@example.com", external_id="gone")
    assert scim.delete(f"/Users/{created['id']}").status_code == 204
    assert not User.objects.filter(email_key="ada@example.com").exists()
    assert not ScimUser.objects.exists()
    scim_error(scim.get(f"/Users/{created['id']}"), 404)
    assert AuditEvent.objects.get(code="scim.user_deleted").detail["identity_removed"] is True


# Filters ---------------------------------------------------------------------------------------


@pytest.fixture
def people(acme: Account, scim: ScimClient) -> dict[str, dict[str, Any]]:
    made = {}
    for local, given, external in (("ada", "Ada", "E-1"), ("bob", "Bob", "E-2"), ("cy", "Cy", None)):
        made[local] = provision(scim, f"{local}@example.com", given, "Tester", external_id=external)
    return made


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('userName eq "ADA@example.com"', ["ada"]),
        ('emails.value eq "bob@example.com"', ["bob"]),
        ('emails[value eq "bob@example.com"]', ["bob"]),
        ('emails[type eq "work"].value eq "bob@example.com"', ["bob"]),  # Entra's matching filter
        ('emails[type eq "home"].value eq "bob@example.com"', []),
        ("emails.primary eq true and emails.type pr", ["ada", "bob", "cy"]),
        ('externalId eq "E-2"', ["bob"]),
        ('externalId eq "e-2"', []),  # caseExact
        ('displayName co "y Te"', ["cy"]),
        ('userName sw "a" or userName sw "b"', ["ada", "bob"]),
        ('userName ew "example.com" and not (externalId pr)', ["cy"]),
        ("externalId pr", ["ada", "bob"]),
        ('name.givenName eq "bob"', ["bob"]),
        ('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "cy@example.com"', ["cy"]),
        ('userName ne "ada@example.com"', ["bob", "cy"]),
        ('id eq "not-a-uuid"', []),
        ("active eq true", ["ada", "bob", "cy"]),
        # Injection-looking values are plain values: parameters, never SQL or lookups.
        ("userName eq \"ada@example.com' OR '1'='1\"", []),
        ('userName co "%"', []),
        ('userName sw "_"', []),
        ('displayName eq "\\"; DROP TABLE accounts_user; --"', []),
    ],
)
def test_filter_translation(people: dict[str, Any], scim: ScimClient, text: str, expected: list[str]) -> None:
    found = search(scim, "Users", text)
    by_id = {v["id"]: k for k, v in people.items()}
    assert sorted(by_id[u["id"]] for u in found) == expected
    assert User.objects.count() >= 3  # and nothing was dropped


def test_filter_by_id(people: dict[str, Any], scim: ScimClient) -> None:
    assert [u["userName"] for u in search(scim, "Users", f'id eq "{people["bob"]["id"]}"')] == ["bob@example.com"]


@pytest.mark.parametrize(
    "text",
    [
        'password eq "x"',
        'meta.created gt "2020-01-01T00:00:00Z"',
        'userName gt "a"',
        "active eq 1",
        'title eq "boss"',
        "userName eq 12",
        'userName eq "a\\u0000b"',
        'userName eq "unterminated',
        "(" * 200 + 'userName eq "a"' + ")" * 200,
        "x" * 5000,
    ],
)
def test_unsupported_or_malformed_filters_are_invalid_filter(
    people: dict[str, Any], scim: ScimClient, text: str
) -> None:
    from urllib.parse import quote

    scim_error(scim.get(f"/Users?filter={quote(text)}"), 400, "invalidFilter")


# Pagination and projection -----------------------------------------------------------------------


def test_pagination_is_one_based_and_bounded(people: dict[str, Any], scim: ScimClient) -> None:
    page = body(scim.get("/Users?startIndex=2&count=1"))
    assert page["totalResults"] == 3 and page["startIndex"] == 2 and page["itemsPerPage"] == 1
    assert page["Resources"][0]["id"] == people["bob"]["id"]
    assert body(scim.get("/Users?startIndex=0&count=2"))["startIndex"] == 1  # below 1 means 1
    empty = body(scim.get("/Users?count=0"))
    assert empty["totalResults"] == 3 and empty["Resources"] == []
    assert body(scim.get("/Users?count=-5"))["itemsPerPage"] == 0
    assert body(scim.get("/Users?count=100000"))["itemsPerPage"] == 3
    assert body(scim.get("/Users?startIndex=99"))["Resources"] == []
    assert body(scim.get("/Users?startIndex=99999999999"))["Resources"] == []


def test_count_above_the_maximum_is_clamped(acme: Account, scim: ScimClient, make_user: Any) -> None:
    from vestibule.scim.resources import MAX_RESULTS

    acme_members = [Membership(user=User.objects.create_user(f"p{i}@example.com"), account=acme) for i in range(205)]
    Membership.objects.bulk_create(acme_members)
    page = body(scim.get("/Users?count=1000"))
    assert page["totalResults"] == 205 and page["itemsPerPage"] == MAX_RESULTS


@pytest.mark.parametrize("query", ["startIndex=abc", "count=1.5", "count=%EF%BC%91", "startIndex=1e3"])
def test_non_integer_paging_is_invalid_value(people: dict[str, Any], scim: ScimClient, query: str) -> None:
    scim_error(scim.get(f"/Users?{query}"), 400, "invalidValue")


def test_attributes_and_excluded_attributes(people: dict[str, Any], scim: ScimClient) -> None:
    only = listed(scim.get("/Users?attributes=userName,name.givenName"))[0]
    assert set(only) == {"schemas", "id", "userName", "name"} and set(only["name"]) == {"givenName"}
    without = body(scim.get(f"/Users/{people['ada']['id']}?excludedAttributes=emails,meta"))
    assert "emails" not in without and "meta" not in without and without["userName"] == "ada@example.com"


def test_discovery_documents(acme: Account, scim: ScimClient) -> None:
    config = body(scim.get("/ServiceProviderConfig"))
    assert config["patch"]["supported"] is True and config["filter"]["maxResults"] == 200
    assert config["authenticationSchemes"][0]["type"] == "oauthbearertoken"
    types = listed(scim.get("/ResourceTypes"))
    assert {t["endpoint"] for t in types} == {"/Users", "/Groups"}
    schemas = listed(scim.get("/Schemas"))
    user_schema = next(s for s in schemas if s["id"].endswith(":User"))
    assert {a["name"] for a in user_schema["attributes"]} == {"userName", "name", "displayName", "active", "emails"}
    assert body(scim.get(f"/Schemas/{user_schema['id']}"))["id"] == user_schema["id"]
    assert body(scim.get("/ResourceTypes/Group"))["endpoint"] == "/Groups"
    scim_error(scim.get("/Schemas/urn:nope"), 404)
    scim_error(scim.get("/Bulk"), 404)
    scim_error(scim.request("DELETE", "/Users"), 405)


def test_patch_message_must_be_a_patch_op(acme: Account, scim: ScimClient) -> None:
    created = provision(scim, "ada@example.com")
    response = scim.request("PATCH", f"/Users/{created['id']}", {"Operations": [{"op": "replace", "value": {}}]})
    scim_error(response, 400, "invalidSyntax")
    scim_error(
        scim.request("PATCH", f"/Users/{created['id']}", patch_body({"op": "replace", "path": "id", "value": "x"})),
        400,
        "mutability",
    )
    assert body(scim.get(f"/Users/{created['id']}"))["id"] == created["id"]


def test_post_search_takes_a_search_request(people: dict[str, Any], scim: ScimClient) -> None:
    request = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": 'userName sw "b"',
        "attributes": ["userName"],
        "startIndex": 1,
        "count": 10,
    }
    page = body(scim.post("/Users/.search", request))
    assert page["totalResults"] == 1 and page["Resources"] == [
        {"schemas": [USER_URN], "id": people["bob"]["id"], "userName": "bob@example.com"}
    ]
    scim_error(scim.post("/Users/.search", {"filter": 5}), 400, "invalidFilter")
    scim_error(scim.post("/Users/.search", {"count": "many"}), 400, "invalidValue")
    scim_error(scim.post("/Users/.search", {"attributes": [1]}), 400, "invalidValue")
    # Across resource types at once: not implemented, said so (RFC 7644 §3.12).
    scim_error(scim.post("/.search", request), 501)


def test_entras_email_patch_is_accepted_and_user_name_decides(acme: Account, scim: ScimClient) -> None:
    """emails is read-only in /Schemas (it is userName's), yet Entra's default mapping PATCHes it: 200, nothing moves."""
    created = provision(scim, "ada@example.com")
    patched = body(
        scim.patch(
            f"/Users/{created['id']}",
            {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "ada@example.com"},
        )
    )
    assert patched["emails"] == [{"value": "ada@example.com", "type": "work", "primary": True}]


def test_a_browser_session_riding_along_is_not_the_actor(
    acme: Account, scim: ScimClient, make_user: Any, login: Any
) -> None:
    from tests.conftest import PASSWORD

    make_user("admin@example.com", roles=("administrator",))
    login(scim.client, "admin@example.com", PASSWORD)
    provision(scim, "ada@example.com")
    event = AuditEvent.objects.get(code="scim.user_created")
    assert event.actor_user is None and event.detail["actor"].startswith("scim-token:")


def test_a_new_user_name_voids_links_sent_to_the_old_address(acme: Account, scim: ScimClient, api: ApiClient) -> None:
    """The old mailbox may go to someone else: a reset link waiting there must not reset the person's password."""
    from vestibule.login.models import OneTimeLink

    claim(api, "acme", "example.org")
    created = provision(scim, "ada@example.com")
    user = User.objects.get(subject=created["id"])
    _, token = OneTimeLink.issue(OneTimeLink.Purpose.PASSWORD_RESET, user, timedelta(hours=1))
    assert OneTimeLink.peek(OneTimeLink.Purpose.PASSWORD_RESET, token) is not None
    body(scim.patch(f"/Users/{created['id']}", {"op": "replace", "path": "userName", "value": "ada@example.org"}))
    assert OneTimeLink.peek(OneTimeLink.Purpose.PASSWORD_RESET, token) is None
