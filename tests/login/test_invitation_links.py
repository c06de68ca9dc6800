"""Finding 4: a leftover invitation link could set a password, and sign in, around a confirmed TOTP.

Invitation links now set a first password only, and every credential change
voids the person's unused invitation and reset links
(``vestibule.login.credentials.credentials_changed``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from tests.login.support import (
    ATTACKER_PASSWORD,
    BACKEND,
    EMAIL,
    NEW_PASSWORD,
    PASSWORD,
    authenticator_code,
    codes,
    current_step,
    expire_password,
    factor_state,
    give_totp,
    password_login,
    signed_in,
)
from vestibule.accounts.models import Account, User
from vestibule.login import passwords
from vestibule.login.credentials import credentials_changed
from vestibule.login.models import OneTimeLink

pytestmark = pytest.mark.django_db


INVITE_LINK = re.compile(r"http://localhost(/invite/[A-Za-z0-9_-]+)")
RESET_LINK = re.compile(r"http://localhost(/password/reset/[A-Za-z0-9_-]+)")


def issue_invitation(user: User) -> str:
    """An invitation link as the invite email carries it (another account's, or an old one)."""
    _, token = OneTimeLink.issue(
        OneTimeLink.Purpose.INVITATION, user, timedelta(days=7), account=Account.objects.get(slug="acme")
    )
    return f"/invite/{token}"


def issue_reset(user: User) -> str:
    passwords.issue_reset_link(user)
    match = RESET_LINK.search(mail.outbox[-1].body)
    assert match
    return match.group(1)


def set_password_via(client: Client, path: str, password: str) -> Any:
    return client.post(path, {"password1": password, "password2": password})


def test_invitation_link_cannot_bypass_a_confirmed_totp(make_user: Any) -> None:
    """A leftover invitation for someone with a password and a confirmed TOTP: no new password, no session."""
    user = make_user(EMAIL)
    give_totp(user)
    path = issue_invitation(user)
    before = factor_state(user)

    attacker = Client()
    page = attacker.get(path)
    assert page.status_code == 410 and b"You can already sign in" in page.content and b'href="/login"' in page.content
    posted = set_password_via(attacker, path, ATTACKER_PASSWORD)
    assert posted.status_code == 410

    assert factor_state(user) == before
    assert user.has_totp and user.check_password(PASSWORD) and not user.check_password(ATTACKER_PASSWORD)
    assert not signed_in(attacker)
    assert "invitation.accepted" not in codes() and "invitation.refused" in codes(outcome="failure")


def test_invitation_link_cannot_replace_an_existing_password(make_user: Any) -> None:
    user = make_user(EMAIL)
    path = issue_invitation(user)
    before = factor_state(user)
    attacker = Client()
    assert set_password_via(attacker, path, ATTACKER_PASSWORD).status_code == 410
    assert factor_state(user) == before
    assert not signed_in(attacker)


def test_invitation_link_refuses_credentials_set_between_its_form_and_its_post(make_user: Any) -> None:
    """The form was shown to someone without credentials; by the POST, a password exists (set by a path that voids nothing)."""
    user = make_user(EMAIL, password=None)
    path = issue_invitation(user)
    browser = Client()
    assert browser.get(path).status_code == 200
    user.set_password(NEW_PASSWORD)
    user.save()
    before = factor_state(user)

    assert set_password_via(browser, path, ATTACKER_PASSWORD).status_code == 410
    assert factor_state(user) == before
    assert not signed_in(browser)


def test_invitation_sets_a_first_password_and_voids_the_other_links(make_user: Any) -> None:
    """Positive control: someone without credentials accepts; the other invitation and reset links die with it."""
    user = make_user(EMAIL, password=None)
    first, second = issue_invitation(user), issue_invitation(user)
    browser = Client()
    done = set_password_via(browser, first, NEW_PASSWORD)
    assert done.status_code == 302 and signed_in(browser)
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert Client().get(second).status_code == 410
    assert set_password_via(Client(), second, ATTACKER_PASSWORD).status_code == 410
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


ChangeCredentials = Callable[[Client, User], None]


def _reset_password(browser: Client, user: User) -> None:
    path = issue_reset(user)
    assert set_password_via(browser, path, NEW_PASSWORD).status_code == 200


def _change_expired_password(browser: Client, user: User) -> None:
    expire_password(user)
    assert password_login(browser, EMAIL, PASSWORD)["Location"] == "/password/expired"
    assert set_password_via(browser, "/password/expired", NEW_PASSWORD).status_code == 302


def _enable_totp(browser: Client, user: User) -> None:
    browser.force_login(user, backend=BACKEND)
    page = browser.get("/account/totp")
    secret = re.search(r'<code class="reason">([A-Z2-7]+)</code>', page.content.decode())
    assert secret, page.content
    done = browser.post("/account/totp", {"code": authenticator_code(secret.group(1), current_step())})
    assert done.status_code == 200, done.content


def _replace_totp(browser: Client, user: User) -> None:
    old = give_totp(user)
    browser.force_login(user, backend=BACKEND)
    step = current_step()
    started = browser.post("/account/totp", {"start": "1", "code": authenticator_code(old, step)})
    secret = re.search(r'<code class="reason">([A-Z2-7]+)</code>', started.content.decode())
    assert secret, started.content
    done = browser.post("/account/totp", {"code": authenticator_code(secret.group(1), step)})
    assert done.status_code == 200, done.content


@pytest.mark.parametrize(
    "change",
    [_reset_password, _change_expired_password, _enable_totp, _replace_totp],
    ids=["password-reset", "expired-password-changed", "totp-enabled", "totp-replaced"],
)
def test_credential_changes_void_leftover_invitation_and_reset_links(make_user: Any, change: ChangeCredentials) -> None:
    """After each change, links minted before it can neither set a password nor sign in."""
    user = make_user(EMAIL)
    invitation = issue_invitation(user)
    # A reset link the change does not use itself (the reset case issues its own, newer one, after this).
    old_reset = issue_reset(user)
    change(Client(), user)
    before = factor_state(user)

    attacker = Client()
    assert attacker.get(invitation).status_code == 410
    assert set_password_via(attacker, invitation, ATTACKER_PASSWORD).status_code == 410
    assert set_password_via(attacker, old_reset, ATTACKER_PASSWORD).status_code == 410
    assert factor_state(user) == before
    assert not signed_in(attacker)
    assert not OneTimeLink.objects.filter(
        user=user, purpose__in=["invitation", "password_reset"], used_at__isnull=True
    ).exists()


def test_credentials_changed_leaves_recovery_links_and_other_people_alone(make_user: Any) -> None:
    user = make_user(EMAIL)
    other = make_user("bob@example.com")
    issue_invitation(user)
    issue_invitation(other)
    OneTimeLink.issue(OneTimeLink.Purpose.RECOVERY, user, timedelta(minutes=15))
    assert credentials_changed(user) == 1
    live = OneTimeLink.objects.filter(used_at__isnull=True)
    assert sorted((link.user.email, link.purpose) for link in live) == [
        (EMAIL, "recovery"),
        ("bob@example.com", "invitation"),
    ]
    assert "user.credential_links_voided" in codes()


def test_invitation_link_of_someone_switched_to_sso_meanwhile_sets_no_password(
    make_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The form was shown to a password user without credentials; by the POST, they sign in through SSO only."""
    user = make_user(EMAIL, password=None)
    path = issue_invitation(user)
    browser = Client()
    assert browser.get(path).status_code == 200
    # The switch lands between the view's first look at the link and the password write.
    original = OneTimeLink.peek

    def peek_as_before(purpose: str, token: str) -> Any:
        link = original(purpose, token)
        if link is not None:
            User.objects.filter(pk=link.user_id).update(login_method="sso")
        return link

    monkeypatch.setattr(OneTimeLink, "peek", peek_as_before)
    response = set_password_via(browser, path, ATTACKER_PASSWORD)
    assert response.status_code == 409
    user.refresh_from_db()
    assert not user.has_usable_password() and user.login_method == "sso"
    assert not signed_in(browser)
