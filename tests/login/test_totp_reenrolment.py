"""Finding 2: one ``POST start=1`` to ``/account/totp``, without a code, switched TOTP off.

Re-enrolment now asks for a current code of the factor in force, and that
factor stays in force until a code of the new secret confirms it.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from tests.login.support import (
    BACKEND,
    EMAIL,
    PASSWORD,
    authenticator_code,
    codes,
    current_step,
    factor_state,
    give_totp,
    password_login,
    signed_in,
)
from vestibule.login import totp

pytestmark = pytest.mark.django_db


def test_totp_cannot_be_switched_off_by_starting_a_reenrolment_without_a_code(make_user: Any) -> None:
    """A signed-in session alone (a borrowed laptop, a stolen cookie) posts start=1, with no or a wrong code."""
    user = make_user(EMAIL)
    secret = give_totp(user)
    session = Client()
    session.force_login(user, backend=BACKEND)
    before = factor_state(user)

    assert session.post("/account/totp", {"start": "1"}).status_code == 400
    step = current_step()
    wrong = session.post("/account/totp", {"start": "1", "code": authenticator_code(secret, step + 7)})
    assert wrong.status_code == 403
    assert b"nothing was changed" in wrong.content
    assert "user.totp_change_refused" in codes(outcome="failure")

    # The factor in force is untouched and nothing is pending.
    assert factor_state(user) == before
    assert user.has_totp and user.totp_pending_encrypted == ""
    # Sign-in still asks for a code of the same secret.
    other = Client()
    assert password_login(other, EMAIL, PASSWORD)["Location"] == "/login/totp"
    assert not signed_in(other)
    assert other.post("/login/totp", {"code": authenticator_code(secret, step)}).status_code == 302


def test_reenrolment_start_is_rate_limited_like_sign_in_codes(make_user: Any) -> None:
    user = make_user(EMAIL)
    secret = give_totp(user)
    session = Client()
    session.force_login(user, backend=BACKEND)
    before = factor_state(user)
    step = current_step()
    wrong = authenticator_code(secret, step + 9)
    statuses = [session.post("/account/totp", {"start": "1", "code": wrong}).status_code for _ in range(5)]
    assert statuses == [403] * 5
    right = session.post("/account/totp", {"start": "1", "code": authenticator_code(secret, step)})
    assert right.status_code == 429
    assert factor_state(user) == before


def test_reenrolment_keeps_the_confirmed_factor_until_the_new_one_is_confirmed(make_user: Any) -> None:
    """Positive control: a current code starts it, the old app keeps working meanwhile, the new code moves in."""
    user = make_user(EMAIL)
    old_secret = give_totp(user)
    old_sealed = user.totp_secret_encrypted
    session = Client()
    session.force_login(user, backend=BACKEND)

    assert b"Two-factor sign-in is on" in session.get("/account/totp").content
    step = current_step()
    started = session.post("/account/totp", {"start": "1", "code": authenticator_code(old_secret, step - 1)})
    assert started.status_code == 200, started.content
    found = re.search(r'<code class="reason">([A-Z2-7]+)</code>', started.content.decode())
    assert found, started.content
    new_secret = found.group(1)
    assert new_secret != old_secret

    user.refresh_from_db()
    assert user.totp_secret_encrypted == old_sealed and user.totp_confirmed and user.totp_pending_encrypted
    # Meanwhile sign-in verifies the confirmed secret only: the new app's code is refused, the old one works.
    pending_try = Client()
    password_login(pending_try, EMAIL, PASSWORD)
    assert pending_try.post("/login/totp", {"code": authenticator_code(new_secret, step)}).status_code == 401
    assert not signed_in(pending_try)
    old_app = Client()
    password_login(old_app, EMAIL, PASSWORD)
    assert old_app.post("/login/totp", {"code": authenticator_code(old_secret, step)}).status_code == 302

    # A code of the old app does not confirm the new one.
    assert session.post("/account/totp", {"code": authenticator_code(old_secret, step)}).status_code == 400
    confirmed = session.post("/account/totp", {"code": authenticator_code(new_secret, step - 1)})
    assert confirmed.status_code == 200 and b"New authenticator app set up" in confirmed.content
    user.refresh_from_db()
    assert user.has_totp and user.totp_pending_encrypted == "" and user.totp_secret_encrypted != old_sealed
    # The remembered step restarted from the new secret's code.
    assert user.totp_last_step == step - 1
    assert "user.totp_replaced" in codes()

    after = Client()
    password_login(after, EMAIL, PASSWORD)
    assert after.post("/login/totp", {"code": authenticator_code(old_secret, step)}).status_code == 401
    assert after.post("/login/totp", {"code": authenticator_code(new_secret, step)}).status_code == 302
    assert signed_in(after)


def test_confirming_without_a_pending_enrolment_changes_nothing(make_user: Any) -> None:
    user = make_user(EMAIL)
    secret = give_totp(user)
    session = Client()
    session.force_login(user, backend=BACKEND)
    before = factor_state(user)
    response = session.post("/account/totp", {"code": authenticator_code(secret, current_step())})
    assert response.status_code == 400 and b"Start again" in response.content
    assert factor_state(user) == before


@pytest.mark.parametrize("code", ["١٢٣٤٥٦", "¹²³⁴⁵⁶", "12345６"])
def test_a_code_of_non_ascii_digits_is_simply_wrong(code: str) -> None:
    """str.isdigit() accepts these; the comparison of codes needs ASCII, so they are refused as malformed."""
    assert totp._well_formed(code) is False
    assert totp._well_formed("123456") is True
