"""The console's people screens (seeds 000, 002, 004): users, add or invite, profile, roles, queue, invitations, projects.

``acme`` owns acme.test and has the SAML connection "Acme Okta" for it; Ann is
its administrator. Every action is checked against the database, not only the
page: the same rules as the admin API (``people.administration``).
"""

from __future__ import annotations

import functools
import re
from typing import Any

import pytest
from django.core import mail

from vestibule.accounts.models import Account, Approval, Invitation, Membership, Project, RoleGrant, Source, User
from vestibule.audit.models import AuditEvent
from vestibule.connections.models import Connection, ConnectionDomain, DomainClaim, ExternalIdentity

pytestmark = pytest.mark.django_db


def users_url(user_id: int | str = "", suffix: str = "", slug: str = "acme") -> str:
    return f"/console/a/{slug}/users/{f'{user_id}/' if user_id != '' else ''}{suffix}"


@pytest.fixture
def acme(make_account: Any) -> dict[str, Any]:
    account = make_account("acme", "Acme")
    claim = DomainClaim.objects.create(domain="acme.test", account=account)
    # Disabled: the people of acme.test sign in with their passwords here; tests that need it enable it afterwards.
    okta = Connection.objects.create(account=account, protocol="saml", name="Acme Okta")
    ConnectionDomain.objects.create(connection=okta, domain="acme.test", claim=claim)
    beta = make_account("beta", "Beta")
    DomainClaim.objects.create(domain="beta.test", account=beta)
    return {"account": account, "okta": okta, "beta": beta}


@pytest.fixture
def member(acme: dict[str, Any], person: Any) -> Any:
    """A signed-in person whose forms carry the CSRF token of their account's overview (every page has one)."""

    def make(email: str, *, account: str = "acme", roles: list[str]) -> Any:
        browser = person(email, account=account, roles=roles)
        browser.post = functools.partial(browser.post, page=f"/console/a/{account}/")
        return browser

    return make


@pytest.fixture
def ann(member: Any) -> Any:
    return member("ann@acme.test", roles=["administrator"])


def authorize(acme: dict[str, Any]) -> None:
    """SSO authorization on (after the test's people signed in with their passwords)."""
    Connection.objects.filter(pk=acme["okta"].pk).update(enabled=True, sso_authorization=True)


@pytest.fixture
def bob(acme: dict[str, Any], make_user: Any) -> User:
    user: User = make_user("bob@acme.test", name="Bob Builder", roles=["analyst"])
    return user


def events(code: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(code=code))


# Users list -------------------------------------------------------------------------


def test_the_list_shows_people_with_sign_in_status_and_roles_and_searches(ann: Any, bob: User, make_user: Any) -> None:
    make_user("carl@acme.test", name="Carl", roles=["report-viewer", "analyst"], login_method="sso")
    Membership.objects.filter(user=bob).update(is_active=False)
    page = ann.get(users_url()).content.decode()
    assert "bob@acme.test" in page and "Deactivated" in page and "SSO" in page and "report-viewer" in page
    assert f'href="/console/a/acme/users/{bob.pk}/"' in page
    found = ann.get(users_url(), data={"q": "builder"}).content.decode()
    assert "bob@acme.test" in found and "carl@acme.test" not in found
    assert "No user matches" in ann.get(users_url(), data={"q": "nobody-here"}).content.decode()


# Add or invite ----------------------------------------------------------------------


def test_adding_a_person_of_the_home_domain_with_an_external_user_id(ann: Any, acme: dict[str, Any]) -> None:
    okta = acme["okta"]
    response = ann.post(
        users_url(suffix="add/"),
        {
            "email": "dana@acme.test",
            "name": "Dana",
            "roles": ["analyst"],
            "login_method": "password",
            "send_invitation": "on",
            f"external_id_{okta.pk}": "00u-dana",
        },
    )
    dana = User.objects.get(email_key="dana@acme.test")
    assert response.status_code == 302 and response["Location"] == users_url(dana.pk)
    assert ExternalIdentity.objects.get(user=dana, connection=okta).external_id == "00u-dana"
    assert set(RoleGrant.objects.filter(user=dana).values_list("role", flat=True)) == {"analyst"}
    assert [m.to for m in mail.outbox] == [["dana@acme.test"]]
    assert events("user.invited") and events("user.external_id_changed")
    page = ann.get(response["Location"]).content.decode()
    assert "was added to Acme" in page and "choose a password" in page


def test_someone_outside_the_domain_gets_an_invitation_and_the_admin_is_told(ann: Any) -> None:
    response = ann.post(users_url(suffix="add/"), {"email": "eve@elsewhere.test", "roles": ["analyst"]})
    assert response.status_code == 302 and response["Location"] == "/console/a/acme/invitations/"
    assert not User.objects.filter(email_key="eve@elsewhere.test").exists()
    invitation = Invitation.objects.get(email="eve@elsewhere.test")
    assert invitation.grants["roles"] == ["analyst"]
    page = ann.get(response["Location"]).content.decode()
    assert "Invitation sent to eve@elsewhere.test" in page and "does not own their email domain" in page


def test_an_invitation_carries_no_external_id_and_keeps_what_was_typed(ann: Any, acme: dict[str, Any]) -> None:
    response = ann.post(
        users_url(suffix="add/"),
        {"email": "eve@elsewhere.test", "name": "Eve typed", f"external_id_{acme['okta'].pk}": "x"},
    )
    assert response.status_code == 403
    page = response.content.decode()
    assert "External user IDs belong to the person&#x27;s identity" in page and 'value="Eve typed"' in page
    assert not Invitation.objects.exists() and not User.objects.filter(email_key="eve@elsewhere.test").exists()


def test_a_bad_email_is_tied_to_its_field(ann: Any) -> None:
    response = ann.post(users_url(suffix="add/"), {"email": "not an email", "name": "Typed"})
    assert response.status_code == 400
    page = response.content.decode()
    assert 'aria-invalid="true"' in page and "This is not an email address" in page and 'value="Typed"' in page


def test_a_catalog_rule_is_tied_to_the_roles(ann: Any) -> None:
    response = ann.post(users_url(suffix="add/"), {"email": "fay@acme.test", "roles": ["pii-viewer"]})
    assert response.status_code == 422 and 'id="roles-error"' in response.content.decode()
    assert not User.objects.filter(email_key="fay@acme.test").exists()


def test_a_user_manager_cannot_add_an_administrator(member: Any) -> None:
    uma = member("uma@acme.test", roles=["user-manager"])
    response = uma.post(users_url(suffix="add/"), {"email": "gil@acme.test", "roles": ["administrator"]})
    assert response.status_code == 403 and b"needs the &#x27;administrator&#x27; role" in response.content
    assert not User.objects.filter(email_key="gil@acme.test").exists()


def test_with_sso_authorization_invite_is_disabled_with_the_reason(ann: Any, acme: dict[str, Any]) -> None:
    authorize(acme)
    page = ann.get(users_url()).content.decode()
    assert '<button type="button" disabled aria-describedby="invite-blocked">Add user</button>' in page
    assert "Users arrive through Acme Okta" in page
    response = ann.post(users_url(suffix="add/"), {"email": "hal@acme.test"})
    assert response.status_code == 409 and b"Users arrive through Acme Okta" in response.content
    assert not User.objects.filter(email_key="hal@acme.test").exists()


# Profile: authentication, reset, external IDs, deactivate, delete --------------------


def test_switching_authentication_to_sso_and_back_then_reset_password(ann: Any, bob: User) -> None:
    assert bob.has_usable_password()
    page = ann.get(users_url(bob.pk)).content.decode()
    assert "Log in with SSO" in page and "deletes the password at once" in page and "Reset password" in page
    response = ann.post(users_url(bob.pk, "authentication"), {"login_method": "sso"})
    bob.refresh_from_db()
    assert response.status_code == 302 and bob.login_method == "sso" and not bob.has_usable_password()
    assert "Reset password" not in ann.get(users_url(bob.pk)).content.decode()
    assert ann.post(users_url(bob.pk, "reset-password")).status_code == 409
    mail.outbox.clear()
    ann.post(users_url(bob.pk, "authentication"), {"login_method": "password"})
    bob.refresh_from_db()
    assert bob.login_method == "password" and bob.password_pinned and len(mail.outbox) == 1
    response = ann.post(users_url(bob.pk, "reset-password"))
    assert response.status_code == 302 and len(mail.outbox) == 2 and mail.outbox[1].to == ["bob@acme.test"]
    assert events("user.password_reset_sent")[0].subject_email == "bob@acme.test"
    assert len(events("user.updated")) == 2


def test_an_unknown_login_method_is_refused(ann: Any, bob: User) -> None:
    assert ann.post(users_url(bob.pk, "authentication"), {"login_method": "magic"}).status_code == 400
    bob.refresh_from_db()
    assert bob.login_method == "password"


def test_external_user_ids_are_edited_and_removed(ann: Any, bob: User, acme: dict[str, Any]) -> None:
    okta = acme["okta"]
    url = users_url(bob.pk, "external-id")
    assert ann.post(url, {"connection": str(okta.pk), "external_id": "00u-bob"}).status_code == 302
    assert ExternalIdentity.objects.get(user=bob, connection=okta).external_id == "00u-bob"
    bad = ann.post(url, {"connection": str(okta.pk), "external_id": " padded"})
    assert bad.status_code == 422 and b"no surrounding whitespace" in bad.content
    # The error sits at this connection's field, which keeps what was typed.
    field = re.search(rb'<input[^>]*id="c' + str(okta.pk).encode() + rb'-external_id"[^>]*>', bad.content)
    assert field is not None and b'aria-invalid="true"' in field.group(0)
    assert b'value=" padded"' in bad.content
    assert ExternalIdentity.objects.get(user=bob, connection=okta).external_id == "00u-bob"
    other = Connection.objects.create(account=acme["beta"], protocol="saml", name="Beta IdP")
    assert ann.post(url, {"connection": str(other.pk), "external_id": "x"}).status_code == 404
    assert ann.post(url, {"connection": str(okta.pk), "external_id": ""}).status_code == 302
    assert not ExternalIdentity.objects.filter(user=bob).exists()


def test_deactivate_and_reactivate_the_home_accounts_person(ann: Any, bob: User) -> None:
    assert ann.post(users_url(bob.pk, "active"), {"active": "off"}).status_code == 302
    bob.refresh_from_db()
    assert not bob.is_active and not Membership.objects.get(user=bob).is_active
    assert ann.post(users_url(bob.pk, "active"), {"active": "on"}).status_code == 302
    bob.refresh_from_db()
    assert bob.is_active and Membership.objects.get(user=bob).is_active
    assert ann.post(users_url(bob.pk, "active"), {"active": "maybe"}).status_code == 400


def test_delete_names_the_person_and_removes_them(ann: Any, bob: User) -> None:
    page = ann.get(users_url(bob.pk)).content.decode()
    assert 'data-confirm="Delete Bob Builder (bob@acme.test) from Acme?' in page and "data-confirm-danger" in page
    response = ann.post(users_url(bob.pk, "delete"))
    assert response.status_code == 302 and response["Location"] == users_url()
    assert not Membership.objects.filter(user__email_key="bob@acme.test").exists()
    assert events("user.removed")[0].subject_email == "bob@acme.test"


def test_a_user_manager_cannot_deactivate_an_administrator(member: Any, make_user: Any) -> None:
    uma = member("uma@acme.test", roles=["user-manager"])
    boss = make_user("boss@acme.test", roles=["administrator"])
    response = uma.post(users_url(boss.pk, "active"), {"active": "off"})
    assert response.status_code == 403 and b"only an administrator" in response.content
    assert Membership.objects.get(user=boss).is_active


def test_a_guests_identity_is_shown_disabled_and_refused(ann: Any, acme: dict[str, Any], make_user: Any) -> None:
    guest = make_user("gus@beta.test", name="Gus", account="beta")
    Membership.objects.create(user=guest, account=acme["account"])
    page = ann.get(users_url(guest.pk)).content.decode()
    assert 'disabled="disabled"' in page and "which the account that owns their email domain manages" in page
    assert "Save authentication" not in page
    assert 'id="auth-sso" disabled aria-describedby="auth-reason"' in page
    assert 'id="auth-password" disabled checked aria-describedby="auth-reason"' in page
    assert f'id="ext-{acme["okta"].pk}" value="" placeholder="Not linked yet" disabled' in page
    assert ann.post(users_url(guest.pk, "name"), {"name": "Renamed"}).status_code == 403
    assert ann.post(users_url(guest.pk, "authentication"), {"login_method": "sso"}).status_code == 403
    assert ann.post(users_url(guest.pk, "reset-password")).status_code == 403
    okta = acme["okta"]
    assert (
        ann.post(users_url(guest.pk, "external-id"), {"connection": str(okta.pk), "external_id": "g"}).status_code
        == 403
    )
    guest.refresh_from_db()
    assert guest.name == "Gus" and guest.login_method == "password" and guest.has_usable_password()
    assert not ExternalIdentity.objects.filter(user=guest).exists()
    # Membership is this account's: deactivating here leaves the identity active.
    assert ann.post(users_url(guest.pk, "active"), {"active": "off"}).status_code == 302
    guest.refresh_from_db()
    assert guest.is_active and not Membership.objects.get(user=guest, account=acme["account"]).is_active


def test_an_sso_users_name_comes_from_the_provider_when_it_manages_authorization(
    ann: Any, acme: dict[str, Any], make_user: Any
) -> None:
    authorize(acme)
    sso = make_user("sue@acme.test", name="Sue", login_method="sso")
    page = ann.get(users_url(sso.pk)).content.decode()
    assert "the name of an SSO user comes from the identity provider (Acme Okta)" in page
    assert ann.post(users_url(sso.pk, "name"), {"name": "Other"}).status_code == 409
    sso.refresh_from_db()
    assert sso.name == "Sue"


def test_the_name_of_a_home_person_is_saved(ann: Any, bob: User) -> None:
    assert ann.post(users_url(bob.pk, "name"), {"name": "Robert"}).status_code == 302
    bob.refresh_from_db()
    assert bob.name == "Robert"
    assert ann.post(users_url(bob.pk, "name"), {"name": "x" * 5000}).status_code == 400
    bob.refresh_from_db()
    assert bob.name == "Robert"


# Role editors ------------------------------------------------------------------------


def test_account_and_project_roles_are_replaced(ann: Any, bob: User, acme: dict[str, Any]) -> None:
    Project.objects.create(account=acme["account"], slug="production", name="Production")
    roles = users_url(bob.pk, "roles")
    assert ann.post(roles, {"roles": ["customer-support"]}).status_code == 302
    assert set(RoleGrant.objects.filter(user=bob, project=None).values_list("role", flat=True)) == {"customer-support"}
    assert ann.post(roles, {"project": "production", "roles": ["pii-viewer"]}).status_code == 302
    assert list(RoleGrant.objects.filter(user=bob, project__slug="production").values_list("role", flat=True)) == [
        "pii-viewer"
    ]
    assert sorted(str(e.detail["project"]) for e in events("user.roles_replaced")) == ["None", "production"]


def test_a_catalog_rule_error_is_shown_with_the_scope_and_nothing_changes(ann: Any, bob: User) -> None:
    response = ann.post(users_url(bob.pk, "roles"), {"roles": ["report-viewer"]})
    assert response.status_code == 422 and b"field-error" in response.content
    assert set(RoleGrant.objects.filter(user=bob).values_list("role", flat=True)) == {"analyst"}
    assert ann.post(users_url(bob.pk, "roles"), {"roles": ["no-such-role"]}).status_code == 400
    assert ann.post(users_url(bob.pk, "roles"), {"project": "nope", "roles": []}).status_code == 422


def test_an_sso_managed_role_is_locked_with_the_reason_and_the_way_back(
    ann: Any, bob: User, acme: dict[str, Any]
) -> None:
    okta = acme["okta"]
    authorize(acme)
    RoleGrant.objects.create(
        user=bob, account=acme["account"], role="report-viewer", source=Source.SSO, connection=okta, managed=True
    )
    page = ann.get(users_url(bob.pk)).content.decode()
    assert "Managed by Acme Okta" in page and "Change them in Mapping roles or in the identity provider" in page
    assert 'href="/console/a/acme/mapping-roles/"' in page
    assert 'id="role--report-viewer" disabled checked aria-describedby="roles-locked"' in page
    response = ann.post(users_url(bob.pk, "roles"), {"roles": ["customer-support"]})
    assert response.status_code == 409 and b"managed by the identity provider of connection" in response.content
    assert set(RoleGrant.objects.filter(user=bob).values_list("role", "source")) == {
        ("analyst", "manual"),
        ("report-viewer", "sso"),
    }


def test_with_sso_authorization_an_unmanaged_persons_roles_say_the_next_sign_in_replaces_them(
    ann: Any, bob: User, acme: dict[str, Any]
) -> None:
    authorize(acme)
    page = ann.get(users_url(bob.pk)).content.decode()
    assert "Acme Okta manages authorization in Acme" in page and "next sign-in through it" in page
    assert ann.post(users_url(bob.pk, "roles"), {"roles": ["customer-support"]}).status_code == 302
    assert list(RoleGrant.objects.filter(user=bob).values_list("role", flat=True)) == ["customer-support"]


def test_a_pending_persons_profile_offers_approval(ann: Any, bob: User) -> None:
    Membership.objects.filter(user=bob).update(approval=Approval.PENDING)
    page = ann.get(users_url(bob.pk)).content.decode()
    assert "Waiting for approval" in page and "Approve bob@acme.test" in page
    assert ann.post(users_url(bob.pk, "approve")).status_code == 302
    assert Membership.objects.get(user=bob).approval == Approval.APPROVED
    assert "Waiting for approval" not in ann.get(users_url(bob.pk)).content.decode()


def test_a_directory_grant_is_locked_naming_the_directory(ann: Any, bob: User, acme: dict[str, Any]) -> None:
    RoleGrant.objects.create(user=bob, account=acme["account"], role="report-viewer", source=Source.SCIM)
    page = ann.get(users_url(bob.pk)).content.decode()
    assert "Granted by the account&#x27;s directory (SCIM)" in page
    assert 'id="role--report-viewer" disabled checked' in page
    ann.post(users_url(bob.pk, "roles"), {"roles": ["analyst", "customer-support"]})
    assert set(RoleGrant.objects.filter(user=bob).values_list("role", "source")) == {
        ("analyst", "manual"),
        ("customer-support", "manual"),
        ("report-viewer", "scim"),
    }


# Pending approval -----------------------------------------------------------------------


def test_approve_and_reject_from_the_queue(ann: Any, acme: dict[str, Any], make_user: Any) -> None:
    pat = make_user("pat@acme.test", roles=[])
    quin = make_user("quin@acme.test", roles=[])
    Membership.objects.filter(user__in=[pat, quin]).update(approval=Approval.PENDING)
    page = ann.get("/console/a/acme/users/pending/").content.decode()
    assert "Approve pat@acme.test" in page and "Reject quin@acme.test" in page
    assert ann.post(users_url(pat.pk, "approve"), page="/console/a/acme/users/pending/").status_code == 302
    assert Membership.objects.get(user=pat).approval == Approval.APPROVED
    assert ann.post(users_url(pat.pk, "approve")).status_code == 404
    assert ann.post(users_url(quin.pk, "reject")).status_code == 302
    assert not Membership.objects.filter(user=quin).exists()
    assert events("user.removed")[0].subject_email == "quin@acme.test"
    assert "Nobody is waiting" in ann.get("/console/a/acme/users/pending/").content.decode()


def test_rejecting_someone_not_waiting_removes_nobody(ann: Any, bob: User) -> None:
    assert ann.post(users_url(bob.pk, "reject")).status_code == 404
    assert Membership.objects.filter(user=bob).exists()


# Invitations and projects ---------------------------------------------------------------


def test_revoke_an_open_invitation(ann: Any) -> None:
    ann.post(users_url(suffix="add/"), {"email": "ivy@elsewhere.test"})
    invitation = Invitation.objects.get()
    page = ann.get("/console/a/acme/invitations/").content.decode()
    assert "Revoke invitation of ivy@elsewhere.test" in page
    url = f"/console/a/acme/invitations/{invitation.pk}/revoke"
    assert ann.post(url, page="/console/a/acme/invitations/").status_code == 302
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None and events("user.invitation_revoked")
    assert ann.post(url, page="/console/a/acme/invitations/").status_code == 404


def test_projects_are_created_listed_and_deleted(ann: Any, bob: User, acme: dict[str, Any]) -> None:
    url = "/console/a/acme/projects/"
    assert ann.post(f"{url}new", {"slug": "sandbox", "name": "Sandbox"}, page=url).status_code == 302
    project = Project.objects.get(account=acme["account"], slug="sandbox")
    duplicate = ann.post(f"{url}new", {"slug": "sandbox", "name": "Again"}, page=url)
    assert duplicate.status_code == 409 and b"already exists" in duplicate.content
    assert ann.post(f"{url}new", {"slug": "Bad Slug!", "name": "x"}, page=url).status_code == 400
    ann.post(users_url(bob.pk, "roles"), {"project": "sandbox", "roles": ["analyst"]})
    assert "lose it" in ann.get(url).content.decode()
    assert ann.post(f"{url}sandbox/delete", page=url).status_code == 302
    assert not Project.objects.filter(pk=project.pk).exists()
    assert not RoleGrant.objects.filter(user=bob, project__isnull=False).exists()
    assert ann.post(f"{url}sandbox/delete", page=url).status_code == 404
    assert [e.detail["project"] for e in events("project.created") + events("project.deleted")] == ["sandbox"] * 2


def test_a_user_manager_sees_projects_but_only_an_administrator_changes_them(acme: dict[str, Any], member: Any) -> None:
    Project.objects.create(account=acme["account"], slug="production", name="Production")
    uma = member("uma@acme.test", roles=["user-manager"])
    url = "/console/a/acme/projects/"
    assert "Only an administrator" in uma.get(url).content.decode()
    created = uma.post(f"{url}new", {"slug": "x", "name": "X"}, page=url)
    deleted = uma.post(f"{url}production/delete", page=url)
    assert created.status_code == deleted.status_code == 403 and b"administrator" in created.content
    assert list(Project.objects.values_list("slug", flat=True)) == ["production"]


# Tenancy and hostile input ---------------------------------------------------------------


def _victim_state(user: User) -> tuple[Any, ...]:
    user.refresh_from_db()
    membership = Membership.objects.get(user=user)
    return (
        user.name,
        user.login_method,
        user.is_active,
        user.has_usable_password(),
        membership.is_active,
        membership.approval,
        sorted(RoleGrant.objects.filter(user=user).values_list("role", flat=True)),
        sorted(ExternalIdentity.objects.filter(user=user).values_list("external_id", flat=True)),
    )


ACTIONS: list[tuple[str, str, dict[str, Any]]] = [
    ("get", "", {}),
    ("get", "add/", {}),
    ("get", "pending/", {}),
    ("get", "{id}/", {}),
    ("post", "add/", {"email": "new@acme.test"}),
    ("post", "{id}/name", {"name": "Hacked"}),
    ("post", "{id}/authentication", {"login_method": "sso"}),
    ("post", "{id}/reset-password", {}),
    ("post", "{id}/external-id", {"connection": "{conn}", "external_id": "hijack"}),
    ("post", "{id}/active", {"active": "off"}),
    ("post", "{id}/roles", {"roles": ["administrator"]}),
    ("post", "{id}/approve", {}),
    ("post", "{id}/reject", {}),
    ("post", "{id}/delete", {}),
]
OTHER_ACTIONS: list[tuple[str, str, dict[str, Any]]] = [
    ("get", "/console/a/acme/invitations/", {}),
    ("post", "/console/a/acme/invitations/{inv}/revoke", {}),
    ("get", "/console/a/acme/projects/", {}),
    ("post", "/console/a/acme/projects/new", {"slug": "evil", "name": "Evil"}),
    ("post", "/console/a/acme/projects/production/delete", {}),
]


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("bea@beta.test:beta:administrator", 404),
        ("bum@beta.test:beta:user-manager", 404),
        ("sam@acme.test:acme:sso-admin", 403),
        ("ana@acme.test:acme:analyst", 403),
    ],
)
def test_outsiders_and_members_without_the_role_can_do_nothing_to_acmes_people(
    who: str, expected: int, acme: dict[str, Any], make_user: Any, person: Any
) -> None:
    email, slug, role = who.split(":")
    attacker = person(email, account=slug, roles=[role])
    victim = make_user("vic@acme.test", name="Victim", roles=["analyst"])
    Membership.objects.filter(user=victim).update(approval=Approval.PENDING)
    Project.objects.create(account=acme["account"], slug="production", name="Production")
    invitation = Invitation.objects.create(
        account=acme["account"], email="x@elsewhere.test", email_key="x@elsewhere.test", digest="d" * 64,
        expires_at="2999-01-01T00:00:00Z",
    )  # fmt: skip
    before = _victim_state(victim)
    token = attacker.csrf(f"/console/a/{slug}/")
    fill = {"id": str(victim.pk), "conn": str(acme["okta"].pk), "inv": str(invitation.pk)}
    cases = [(m, users_url() + p, d) for m, p, d in ACTIONS] + OTHER_ACTIONS
    for method, raw, data in cases:
        url = raw.format(**fill)
        body = {k: (v.format(**fill) if isinstance(v, str) else v) for k, v in data.items()}
        if method == "get":
            response = attacker.get(url)
        else:
            response = attacker.client.post(url, {**body, "csrfmiddlewaretoken": token})
        assert response.status_code == expected, (method, url, response.status_code)
        if expected == 404:
            assert b"Victim" not in response.content and b"vic@acme.test" not in response.content
        else:
            assert b"user-manager" in response.content or b"administrator" in response.content
    assert _victim_state(victim) == before
    assert not User.objects.filter(email_key="new@acme.test").exists()
    assert Invitation.objects.get(pk=invitation.pk).revoked_at is None
    assert list(Project.objects.values_list("slug", flat=True)) == ["production"]


def test_another_accounts_member_is_not_found_through_acmes_urls(
    ann: Any, acme: dict[str, Any], make_user: Any
) -> None:
    stranger = make_user("zed@beta.test", name="Zed", account="beta")
    for suffix in ("", "name", "active", "delete", "roles"):
        method = ann.get if suffix == "" else ann.post
        response = method(users_url(stranger.pk, suffix), **({} if suffix == "" else {"data": {"name": "x"}}))
        assert response.status_code == 404 and b"zed@beta.test" not in response.content
    assert Membership.objects.filter(user=stranger).count() == 1 and User.objects.get(pk=stranger.pk).name == "Zed"


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("99999999999999999999999/", None),
        ("99999999999999999999999/delete", {}),
        ("-1/", None),
        ("abc/", None),
        ("add/", {"email": "a@acme.test" * 1000, "name": "x" * 100000, "roles": ["x" * 5000]}),
        ("add/", {"email": ["a@acme.test", "b@acme.test"], "login_method": ["sso", "password"]}),
        ("{id}/external-id", {"connection": "x" * 10000, "external_id": "y" * 10000}),
        ("{id}/external-id", {"connection": "not-a-uuid", "external_id": "y"}),
        ("{id}/roles", {"project": "../../etc", "roles": ["administrator"] * 500}),
        ("{id}/active", {"active": ["on", "off"]}),
        ("?q=" + "%00" * 10 + "x" * 5000, None),
        ("add/", {"email": "a\x00@acme.test", "name": "n\x00", f"external_id_{'0' * 3}": "\x00"}),
        ("{id}/external-id", {"connection": "\x00", "external_id": "\x00"}),
        ("{id}/name", {"name": "\x00"}),
        ("?page=-99999999999999999999", None),
    ],
)
def test_hostile_input_never_answers_5xx(ann: Any, bob: User, path: str, data: Any) -> None:
    url = users_url() + path.format(id=bob.pk)
    response = ann.get(url) if data is None else ann.post(url, data)
    assert response.status_code < 500


def test_invitation_and_project_urls_with_bad_ids_never_answer_5xx(ann: Any) -> None:
    assert (
        ann.post(
            "/console/a/acme/invitations/99999999999999999999/revoke", page="/console/a/acme/invitations/"
        ).status_code
        == 404
    )
    for bad in ("x" * 300, "%00", "a%00b", "..%2F..%2Fetc"):
        response = ann.post(f"/console/a/acme/projects/{bad}/delete", page="/console/a/acme/projects/")
        assert response.status_code == 404, bad


def test_a_form_without_its_csrf_token_is_refused(ann: Any, bob: User) -> None:
    response = ann.client.post(users_url(bob.pk, "delete"))
    assert response.status_code == 403
    assert Membership.objects.filter(user=bob).exists()


def test_the_operator_may_open_any_accounts_users(acme: dict[str, Any], bob: User, person: Any) -> None:
    op = person("op@ops.test", account=None, roles=(), operator=True)
    assert op.get(users_url()).status_code == 200
    assert Account.objects.filter(slug="acme").exists()
