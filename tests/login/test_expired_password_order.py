"""Finding 1: an expired password was replaced with the old password alone, before the second factor.

The expired-password page now comes after every factor: password, then TOTP
(when the person has it), then the new password, then the session.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.login.support import (
    ATTACKER_PASSWORD,
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
from vestibule.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_expired_password_cannot_be_changed_before_the_second_factor(make_user: Any) -> None:
    """An attacker with the old password only reaches the TOTP page, never the expired-password form."""
    user = make_user(EMAIL)
    give_totp(user)
    expire_password(user)
    before = factor_state(user)

    attacker = Client()
    response = password_login(attacker, EMAIL, PASSWORD, next_url="/ok")
    assert response.status_code == 302 and response["Location"] == "/login/totp"
    # The expired-password form is not reachable, by GET or by POST.
    assert attacker.get("/password/expired")["Location"] == "/login"
    posted = attacker.post("/password/expired", {"password1": ATTACKER_PASSWORD, "password2": ATTACKER_PASSWORD})
    assert posted.status_code == 302 and posted["Location"] == "/login"

    assert factor_state(user) == before
    assert user.check_password(PASSWORD) and not user.check_password(ATTACKER_PASSWORD)
    assert not signed_in(attacker)
    assert "password.changed" not in codes()
    assert "login.password.expired" not in codes()


def test_expired_password_is_changed_after_the_second_factor(make_user: Any) -> None:
    """Positive control: password, then TOTP, then the new password, then the session."""
    user = make_user(EMAIL)
    secret = give_totp(user)
    expire_password(user)

    browser = Client()
    assert password_login(browser, EMAIL, PASSWORD, next_url="/ok")["Location"] == "/login/totp"
    step = current_step()
    after_code = browser.post("/login/totp", {"code": authenticator_code(secret, step)})
    assert after_code.status_code == 302 and after_code["Location"] == "/password/expired"
    assert not signed_in(browser)
    assert browser.get("/password/expired").status_code == 200
    done = browser.post("/password/expired", {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert done.status_code == 302 and done["Location"] == "/ok"
    assert signed_in(browser)
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD) and user.has_totp
    event = AuditEvent.objects.filter(code="login.password.succeeded").latest("created_at")
    assert event.detail.get("second_factor") == "totp"
    assert codes(code__in=["login.password.expired", "password.changed", "login.password.succeeded"]) == [
        "login.password.expired",
        "password.changed",
        "login.password.succeeded",
    ]


def test_expired_password_without_totp_is_changed_right_after_the_password(make_user: Any) -> None:
    """Positive control for people without a second factor: the page follows the password step."""
    user = make_user(EMAIL)
    expire_password(user)
    browser = Client()
    assert password_login(browser, EMAIL, PASSWORD, next_url="/ok")["Location"] == "/password/expired"
    done = browser.post("/password/expired", {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert done.status_code == 302 and done["Location"] == "/ok"
    assert signed_in(browser)


def test_totp_turned_on_during_an_expired_password_change_is_still_required(make_user: Any) -> None:
    """The sign-in passed with password only; a factor confirmed since then cannot be skipped."""
    user = make_user(EMAIL)
    expire_password(user)
    browser = Client()
    assert password_login(browser, EMAIL, PASSWORD)["Location"] == "/password/expired"
    give_totp(user)
    before = factor_state(user)

    response = browser.post("/password/expired", {"password1": ATTACKER_PASSWORD, "password2": ATTACKER_PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/login"
    assert factor_state(user) == before
    assert not signed_in(browser)
    assert browser.get("/password/expired")["Location"] == "/login"
