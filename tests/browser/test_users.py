"""The people screens in the browser (seeds 000, 002, 004): add a user with an external user ID, switch them to SSO
and back, send the password reset; approve from the queue; a locked SSO-managed role and the disabled invite button
with their reasons. axe on every page visited."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail

from vestibule.accounts.models import Account, Approval, Membership, RoleGrant, Source, User
from vestibule.connections.models import Connection, ConnectionDomain, DomainClaim, ExternalIdentity

pytestmark = [pytest.mark.browser]


@pytest.fixture
def acme(live: str, make_account: Callable[..., Any]) -> dict[str, Any]:
    account: Account = make_account("acme", "Acme")
    claim = DomainClaim.objects.create(domain="acme.test", account=account)
    # Disabled while the people sign in with their passwords; the tests that need SSO authorization turn it on after.
    okta = Connection.objects.create(account=account, protocol="saml", name="Acme Okta")
    ConnectionDomain.objects.create(connection=okta, domain="acme.test", claim=claim)
    return {"account": account, "okta": okta}


def confirm(page: Any, label: str) -> None:
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name=label).click()


def test_add_a_user_then_switch_authentication_and_reset_the_password(
    page: Any,
    url: Callable[[str], str],
    make_person: Callable[..., Any],
    sign_in: Callable[..., None],
    axe_clean: Callable[..., Any],
    shot: Callable[[Any, str], Any],
    acme: dict[str, Any],
) -> None:
    ann = make_person("ann@acme.test", roles=["administrator"])
    make_person("bob@acme.test", roles=["analyst"], name="Bob Builder")
    sign_in(page, ann.email)
    page.goto(url("/console/a/acme/users/"))
    axe_clean(page, "users list")
    shot(page, "users")
    page.get_by_role("link", name="Add user").click()
    page.wait_for_url(re.compile(r"/users/add/$"))
    axe_clean(page, "add user")
    # A negative path first: what was typed stays, the error sits at its field.
    page.get_by_role("textbox", name="Email (required)").fill("not an email")
    page.get_by_label("Name", exact=True).fill("Dana Scully")
    page.get_by_role("button", name="Add user").click()
    email = page.get_by_role("textbox", name="Email (required)")
    assert email.get_attribute("aria-invalid") == "true"
    assert page.get_by_label("Name", exact=True).input_value() == "Dana Scully"
    axe_clean(page, "add user with an error")
    email.fill("dana@acme.test")
    page.get_by_role("checkbox", name="analyst").check()
    page.get_by_label("External user ID at Acme Okta").fill("00u-dana")
    page.get_by_role("button", name="Add user").click()
    page.wait_for_url(re.compile(r"/users/\d+/$"))
    assert "dana@acme.test was added to Acme" in page.locator("#notices").inner_text()
    dana = User.objects.get(email_key="dana@acme.test")
    assert ExternalIdentity.objects.get(user=dana).external_id == "00u-dana"
    assert page.get_by_label("External user ID", exact=True).input_value() == "00u-dana"
    axe_clean(page, "user profile")
    shot(page, "user-profile")

    page.get_by_role("radio", name="Log in with SSO").check()
    page.get_by_role("button", name="Save authentication").click()
    assert "deletes their password at once" in page.get_by_role("dialog").inner_text()
    confirm(page, "Save authentication")
    page.wait_for_load_state()
    assert "Their password was deleted" in page.locator("#notices").inner_text()
    dana.refresh_from_db()
    assert dana.login_method == "sso" and not dana.has_usable_password()
    assert page.get_by_role("button", name="Reset password").count() == 0

    page.get_by_role("radio", name="Log in with Password").check()
    page.get_by_role("button", name="Save authentication").click()
    confirm(page, "Save authentication")
    page.wait_for_load_state()
    assert "now signs in with a password" in page.locator("#notices").inner_text()
    sent = len(mail.outbox)
    page.get_by_role("button", name="Reset password").click()
    confirm(page, "Send reset link")
    page.wait_for_load_state()
    assert "A password reset link was emailed to dana@acme.test" in page.locator("#notices").inner_text()
    assert len(mail.outbox) == sent + 1 and mail.outbox[-1].to == ["dana@acme.test"]
    axe_clean(page, "user profile after the reset")


def test_approve_from_the_pending_queue(
    page: Any,
    url: Callable[[str], str],
    make_person: Callable[..., Any],
    sign_in: Callable[..., None],
    axe_clean: Callable[..., Any],
    acme: dict[str, Any],
) -> None:
    ann = make_person("ann@acme.test", roles=["administrator"])
    pat = make_person("pat@acme.test", roles=[])
    Membership.objects.filter(user=pat).update(approval=Approval.PENDING)
    sign_in(page, ann.email)
    page.goto(url("/console/a/acme/users/pending/"))
    axe_clean(page, "pending approval")
    page.get_by_role("button", name="Approve pat@acme.test").click()
    confirm(page, "Approve pat@acme.test")
    page.wait_for_load_state()
    assert "pat@acme.test is approved" in page.locator("#notices").inner_text()
    assert Membership.objects.get(user=pat).approval == Approval.APPROVED
    assert "Nobody is waiting" in page.content()


def test_a_locked_sso_managed_role_and_the_disabled_invite_button(
    page: Any,
    url: Callable[[str], str],
    make_person: Callable[..., Any],
    sign_in: Callable[..., None],
    axe_clean: Callable[..., Any],
    shot: Callable[[Any, str], Any],
    acme: dict[str, Any],
) -> None:
    ann = make_person("ann@acme.test", roles=["administrator"])
    bob = make_person("bob@acme.test", roles=["analyst"], name="Bob Builder")
    sign_in(page, ann.email)
    okta = acme["okta"]
    # As a login with SSO authorization on leaves it: the provider's grant, marked managed.
    Connection.objects.filter(pk=okta.pk).update(enabled=True, sso_authorization=True)
    RoleGrant.objects.create(
        user=bob, account=acme["account"], role="report-viewer", source=Source.SSO, connection=okta, managed=True
    )
    page.goto(url("/console/a/acme/users/"))
    invite = page.get_by_role("button", name="Add user")
    assert invite.is_disabled()
    assert "Users arrive through Acme Okta" in page.locator("#invite-blocked").inner_text()
    axe_clean(page, "users list with invitations disabled")
    page.get_by_role("link", name="Bob Builder").click()
    page.wait_for_url(re.compile(r"/users/\d+/$"))
    box = page.locator("#role--report-viewer")
    assert box.is_disabled() and box.is_checked()
    assert page.locator("#role--analyst").is_disabled()
    locked = page.locator("#roles-locked")
    assert "Managed by Acme Okta" in locked.inner_text() and "identity provider" in locked.inner_text()
    assert (
        locked.get_by_role("link", name="Open Mapping roles").get_attribute("href") == "/console/a/acme/mapping-roles/"
    )
    assert page.get_by_role("button", name="Save roles in the account").is_disabled()
    axe_clean(page, "profile with SSO-managed roles")
    shot(page, "user-profile-sso-managed")
    assert set(RoleGrant.objects.filter(user=bob).values_list("role", flat=True)) == {"analyst", "report-viewer"}


def test_revoke_an_invitation_with_its_confirmation(
    page: Any,
    url: Callable[[str], str],
    make_person: Callable[..., Any],
    sign_in: Callable[..., None],
    axe_clean: Callable[..., Any],
    acme: dict[str, Any],
) -> None:
    from vestibule.accounts.models import Invitation

    ann = make_person("ann@acme.test", roles=["administrator"])
    sign_in(page, ann.email)
    page.goto(url("/console/a/acme/users/add/"))
    page.get_by_role("textbox", name="Email (required)").fill("ivy@elsewhere.test")
    page.get_by_role("button", name="Add user").click()
    page.wait_for_url(re.compile(r"/invitations/$"))
    assert "Invitation sent to ivy@elsewhere.test" in page.locator("#notices").inner_text()
    axe_clean(page, "invitations")
    page.get_by_role("button", name="Revoke invitation of ivy@elsewhere.test").click()
    confirm(page, "Revoke invitation")
    page.wait_for_load_state()
    assert "No open invitations" in page.content()
    assert Invitation.objects.get(email="ivy@elsewhere.test").revoked_at is not None


def test_projects_at_phone_width_with_a_refused_slug_and_the_delete_confirmation(
    phone_page: Any,
    url: Callable[[str], str],
    make_person: Callable[..., Any],
    sign_in: Callable[..., None],
    axe_clean: Callable[..., Any],
    shot: Callable[[Any, str], Any],
    acme: dict[str, Any],
) -> None:
    from vestibule.accounts.models import Project

    page = phone_page
    ann = make_person("ann@acme.test", roles=["administrator"])
    sign_in(page, ann.email)
    page.goto(url("/console/a/acme/projects/"))
    page.get_by_label("Slug (required)").fill("Not A Slug")
    page.get_by_label("Name (required)").fill("Sandbox")
    page.get_by_role("button", name="Create project").click()
    assert page.get_by_label("Slug (required)").get_attribute("aria-invalid") == "true"
    assert page.get_by_label("Name (required)").input_value() == "Sandbox"
    page.get_by_label("Slug (required)").fill("sandbox")
    page.get_by_role("button", name="Create project").click()
    page.wait_for_load_state()
    assert "Project Sandbox (sandbox) is created" in page.locator("#notices").inner_text()
    axe_clean(page, "projects at phone width")
    shot(page, "projects-phone")
    page.get_by_role("button", name="Delete Sandbox").click()
    assert "lose it" in page.get_by_role("dialog").inner_text()
    confirm(page, "Delete Sandbox")
    page.wait_for_load_state()
    assert not Project.objects.filter(slug="sandbox").exists()
