"""Joining another account by invitation (/join/<token>): the invitee acts as themselves."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from tests.conftest import PASSWORD, csrf_token_from, password_login
from vestibule.accounts.models import Invitation, Membership, RoleGrant, User

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a brand new passphrase for joining 5"


def _invite(api: Any, email: str, roles: list[str] | None = None) -> str:
    response = api.as_key(api.account_key).post(
        "/api/v1/accounts/acme/users", {"email": email, "roles": roles or ["analyst"]}
    )
    assert response.status_code == 202, response.content
    match = re.search(r"/join/([A-Za-z0-9_-]+)", mail.outbox[-1].body)
    assert match, mail.outbox[-1].body
    return f"/join/{match.group(1)}"


@pytest.fixture
def acme_api(api: Any, make_account: Any, account_key: Any) -> Any:
    make_account("acme")
    api.account_key = account_key("acme")
    return api


def test_a_new_person_creates_their_sign_in_and_joins(acme_api: Any) -> None:
    path = _invite(acme_api, "consultant@freemail.example", ["analyst"])
    browser = Client()
    page = browser.get(path)
    assert page.status_code == 200 and b"Choose a password" in page.content
    done = browser.post(path, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert done.status_code == 302
    me = browser.get("/api/v1/session").json()
    assert me["email"] == "consultant@freemail.example" and [a["slug"] for a in me["accounts"]] == ["acme"]
    user = User.objects.get(email_key="consultant@freemail.example")
    assert set(RoleGrant.objects.filter(user=user).values_list("role", flat=True)) == {"analyst"}
    # The link worked once.
    assert Client().get(path).status_code == 410


def test_an_existing_person_must_sign_in_as_themselves_to_join(acme_api: Any, make_user: Any) -> None:
    make_user("kim@elsewhere.example", account=None)
    path = _invite(acme_api, "kim@elsewhere.example")
    anonymous = Client()
    page = anonymous.get(path)
    assert page.status_code == 200 and b"Sign in to accept" in page.content
    # The link in a stranger's browser cannot create a second sign-in for kim.
    assert anonymous.post(path, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}).status_code == 200
    assert not Membership.objects.filter(user__email_key="kim@elsewhere.example").exists()
    assert User.objects.get(email_key="kim@elsewhere.example").check_password(PASSWORD)

    browser = Client()
    assert password_login(browser, "kim@elsewhere.example", PASSWORD).status_code == 302
    confirm = browser.get(path)
    assert confirm.status_code == 200 and b"Join Acme" in confirm.content
    assert browser.post(path, {"csrfmiddlewaretoken": csrf_token_from(confirm.content.decode())}).status_code == 302
    assert Membership.objects.filter(user__email_key="kim@elsewhere.example", account__slug="acme").exists()


def test_someone_else_signed_in_cannot_accept_anothers_invitation(acme_api: Any, make_user: Any) -> None:
    make_user("kim@elsewhere.example", account=None)
    make_user("eve@elsewhere.example", account=None)
    path = _invite(acme_api, "kim@elsewhere.example")
    eve = Client()
    assert password_login(eve, "eve@elsewhere.example", PASSWORD).status_code == 302
    assert eve.get(path).status_code == 403
    assert eve.post(path, {}).status_code == 403
    assert not Membership.objects.filter(account__slug="acme").exists()
    assert Invitation.objects.get().accepted_at is None


def test_expired_or_withdrawn_invitations_are_gone(acme_api: Any) -> None:
    path = _invite(acme_api, "late@freemail.example")
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert Client().get(path).status_code == 410
    path = _invite(acme_api, "late@freemail.example")
    invitation = Invitation.objects.order_by("-pk").first()
    assert (
        acme_api.as_key(acme_api.account_key).delete(f"/api/v1/accounts/acme/invitations/{invitation.pk}").status_code
        == 204
    )
    assert Client().post(path, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}).status_code == 410
    assert not User.objects.filter(email_key="late@freemail.example").exists()
