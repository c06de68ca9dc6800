"""Password sign-in in the browser: email first, password, optional TOTP, and the recovery paths.

Everything goes through Django's test client against the real views, the real
argon2 hasher and the real TOTP implementation; TOTP codes are computed here
with ``cryptography``'s own RFC 6238 implementation, as an authenticator app would.
"""

from __future__ import annotations

import base64
import functools
import re
import time
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor.totp import TOTP
from django.contrib.sessions.backends.cached_db import SessionStore
from django.core import mail
from django.test import Client
from django.utils import timezone

from vestibule.accounts.models import Account, Project, ProjectAccess, User
from vestibule.accounts.roles import replace_manual_roles
from vestibule.audit.models import AuditEvent
from vestibule.login.models import OneTimeLink

pytestmark = pytest.mark.django_db

EMAIL = "alice@example.com"
PASSWORD = "the login tests passphrase 31"
NEW_PASSWORD = "an entirely new passphrase 77"
GENERIC_ERROR = "The email or password is not correct."
SESSION_COOKIE = "vestibule_session"


@pytest.fixture
def make_user(make_user: Any) -> Any:
    """The shared factory, with this module's password."""
    return functools.partial(make_user, password=PASSWORD)


def csrf_token_from(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1)


def password_login(client: Client, email: str, password: str, next_url: str = "") -> Any:
    """The email step, then the password step; returns the password step's response."""
    first = client.post("/login", {"email": email, "next": next_url})
    assert first.status_code == 200 and b'name="password"' in first.content, first.content
    return client.post("/login", {"email": email, "password": password, "next": next_url})


def session_json(client: Client) -> Any:
    return client.get("/api/v1/session")


def codes(**filters: Any) -> list[str]:
    return list(AuditEvent.objects.filter(**filters).order_by("created_at", "id").values_list("code", flat=True))


# Email first, then password ------------------------------------------------------


def test_login_page_asks_for_the_email_only(client: Client) -> None:
    response = client.get("/login")
    assert response.status_code == 200
    assert b'name="email"' in response.content
    assert b'name="password"' not in response.content


@pytest.mark.parametrize("email", [EMAIL, "nobody@example.com"])
def test_email_step_leads_to_password_step_for_known_and_unknown_emails(
    client: Client, make_user: Any, email: str
) -> None:
    make_user(EMAIL)
    response = client.post("/login", {"email": email})
    assert response.status_code == 200
    assert b'name="password"' in response.content
    assert email.encode() in response.content


def test_invalid_email_stays_on_the_email_step_with_400(client: Client) -> None:
    response = client.post("/login", {"email": "not an email"})
    assert response.status_code == 400
    assert b"does not look like an email address" in response.content
    assert b'name="password"' not in response.content


def test_successful_login_sets_session_cookie_and_redirects(client: Client, make_user: Any) -> None:
    make_user(EMAIL)
    response = password_login(client, EMAIL, PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == "/"
    cookie = response.cookies[SESSION_COOKIE]
    assert cookie.value and cookie["httponly"] and cookie["samesite"] == "Lax"
    assert client.get("/").status_code == 200


def test_login_with_a_differently_typed_email(client: Client, make_user: Any) -> None:
    make_user(EMAIL)
    assert password_login(client, "  ALICE@Example.COM ", PASSWORD).status_code == 302


def test_session_api_is_401_when_signed_out(client: Client) -> None:
    response = session_json(client)
    assert response.status_code == 401
    assert response.json() == {"detail": "not signed in"}


def test_session_api_returns_the_designed_shape(client: Client, make_user: Any, make_account: Any) -> None:
    user = make_user(EMAIL, name="Alice", roles=["customer-support", "pii-viewer"])
    acme = Account.objects.get(slug="acme")
    production = Project.objects.create(account=acme, slug="production", name="Production")
    sandbox = Project.objects.create(account=acme, slug="sandbox", name="Sandbox")
    ProjectAccess.objects.create(user=user, project=sandbox)
    replace_manual_roles(user, acme, ["report-viewer"], production)
    globex = make_account("globex")
    user.memberships.create(account=globex)
    replace_manual_roles(user, globex, ["administrator"])

    assert password_login(client, EMAIL, PASSWORD).status_code == 302
    response = session_json(client)
    assert response.status_code == 200
    me = response.json()
    assert me["email"] == EMAIL and me["name"] == "Alice" and me["login_method"] == "password"
    assert [a["slug"] for a in me["accounts"]] == ["acme", "globex"]
    acme_out, globex_out = me["accounts"]
    assert acme_out["roles"] == ["customer-support", "pii-viewer"]
    assert acme_out["projects"] == [
        {"slug": "production", "roles": ["customer-support", "pii-viewer", "report-viewer"]},
        {"slug": "sandbox", "roles": ["customer-support", "pii-viewer"]},
    ]
    # Effective roles: administrator brings everything it implies.
    assert set(globex_out["roles"]) >= {"administrator", "sso-admin", "user-manager", "analyst"}
    assert globex_out["projects"] == []


def test_session_key_rotates_at_login(client: Client, make_user: Any) -> None:
    make_user(EMAIL)
    # A session planted before sign-in (session fixation) must not become the signed-in one.
    planted = SessionStore()
    planted["planted"] = True
    planted.create()
    client.cookies[SESSION_COOKIE] = planted.session_key
    response = password_login(client, EMAIL, PASSWORD)
    assert response.status_code == 302
    after = client.cookies[SESSION_COOKIE].value
    assert after and after != planted.session_key
    assert not SessionStore().exists(planted.session_key)
    # The planted cookie alone is not signed in.
    other = Client()
    other.cookies[SESSION_COOKIE] = planted.session_key
    assert session_json(other).status_code == 401


def test_logout_ends_the_session(client: Client, make_user: Any) -> None:
    make_user(EMAIL)
    password_login(client, EMAIL, PASSWORD)
    key = client.cookies[SESSION_COOKIE].value
    assert client.get("/logout").status_code == 405
    response = client.post("/logout")
    assert response.status_code == 302 and response["Location"] == "/login"
    assert session_json(client).status_code == 401
    assert not SessionStore().exists(key)
    assert "logout" in codes()


def test_home_redirects_to_login_when_signed_out(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/login"


# CSRF -------------------------------------------------------------------------


def test_post_without_csrf_token_is_rejected_with_a_reason_code(make_user: Any) -> None:
    make_user(EMAIL)
    client = Client(enforce_csrf_checks=True)
    response = client.post("/login", {"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 403
    assert b"security.csrf_failed" in response.content
    assert session_json(client).status_code == 401
    assert "security.csrf_rejected" in codes(outcome="failure")


def test_post_with_a_forged_csrf_token_is_rejected(make_user: Any) -> None:
    make_user(EMAIL)
    client = Client(enforce_csrf_checks=True)
    client.get("/login")
    response = client.post("/login", {"email": EMAIL, "csrfmiddlewaretoken": "x" * 64})
    assert response.status_code == 403 and b"security.csrf_failed" in response.content


def test_post_with_csrf_token_works(make_user: Any) -> None:
    make_user(EMAIL)
    client = Client(enforce_csrf_checks=True)
    first = client.get("/login")
    step = client.post("/login", {"email": EMAIL, "csrfmiddlewaretoken": csrf_token_from(first.content.decode())})
    assert step.status_code == 200 and b'name="password"' in step.content
    token = csrf_token_from(step.content.decode())
    done = client.post("/login", {"email": EMAIL, "password": PASSWORD, "csrfmiddlewaretoken": token})
    assert done.status_code == 302
    assert session_json(client).status_code == 200


def test_logout_needs_csrf_token(make_user: Any) -> None:
    make_user(EMAIL)
    client = Client(enforce_csrf_checks=True)
    first = client.get("/login")
    step = client.post("/login", {"email": EMAIL, "csrfmiddlewaretoken": csrf_token_from(first.content.decode())})
    client.post(
        "/login", {"email": EMAIL, "password": PASSWORD, "csrfmiddlewaretoken": csrf_token_from(step.content.decode())}
    )
    assert client.post("/logout").status_code == 403
    assert session_json(client).status_code == 200
    home = client.get("/")
    assert client.post("/logout", {"csrfmiddlewaretoken": csrf_token_from(home.content.decode())}).status_code == 302
    assert session_json(client).status_code == 401


# Open redirects ---------------------------------------------------------------------

HOSTILE_NEXT = [
    "//evil.com",
    "///evil.com",
    "https://evil.com",
    "http://evil.com/",
    "HTTPS://evil.com",
    "https:evil.com",
    "/\\evil.com",
    "\\\\evil.com",
    "\\/evil.com",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "%2F%2Fevil.com",
    "/\t/evil.com",
    "/\n/evil.com",
    "/\r\n/evil.com",
    "\t//evil.com",
    " //evil.com",
    "/ /evil.com",
    "evil.com",
    "@evil.com",
    "\u2215\u2215evil.com",
    "\uff0f\uff0fevil.com",
]


@pytest.mark.parametrize("next_url", HOSTILE_NEXT)
def test_hostile_next_lands_on_root(client: Client, make_user: Any, next_url: str) -> None:
    make_user(EMAIL)
    response = password_login(client, EMAIL, PASSWORD, next_url=next_url)
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_overlong_next_never_redirects(client: Client, make_user: Any) -> None:
    make_user(EMAIL)
    assert b"aaaa" not in client.get("/login", {"next": "/" + "a" * 2100}).content
    response = client.post("/login", {"email": EMAIL, "password": PASSWORD, "next": "/" + "a" * 2100})
    assert response.status_code == 400
    assert session_json(client).status_code == 401


@pytest.mark.parametrize("next_url", ["/ok", "/ok?tab=1#frag", "/account/totp"])
def test_same_origin_next_is_honoured(client: Client, make_user: Any, next_url: str) -> None:
    make_user(EMAIL)
    response = password_login(client, EMAIL, PASSWORD, next_url=next_url)
    assert response.status_code == 302
    assert response["Location"] == next_url


@pytest.mark.parametrize("next_url", ["//evil.com", "https://evil.com", "/\\evil.com"])
def test_hostile_next_is_not_carried_into_the_form(client: Client, next_url: str) -> None:
    page = client.get("/login", {"next": next_url}).content.decode()
    assert "evil.com" not in page


# Wrong passwords and lockout ---------------------------------------------------------


def test_wrong_password_is_a_generic_401(client: Client, make_user: Any) -> None:
    make_user(EMAIL)
    wrong = password_login(client, EMAIL, "not the password at all")
    unknown = password_login(client, "nobody@example.com", "not the password at all")
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert GENERIC_ERROR.encode() in response.content
        assert SESSION_COOKIE not in response.cookies or not response.cookies[SESSION_COOKIE].value
    assert session_json(client).status_code == 401
    failed = AuditEvent.objects.filter(code="login.password.failed")
    assert {e.subject_email for e in failed} == {EMAIL, "nobody@example.com"}
    assert all(e.outcome == "failure" and e.ip == "127.0.0.1" for e in failed)
    assert all("password" not in e.detail or e.detail["password"] == "[redacted]" for e in failed)


def test_lockout_after_five_failures_refuses_even_the_right_password(client: Client, make_user: Any) -> None:
    make_user(EMAIL)
    statuses = [password_login(client, EMAIL, f"wrong password {i}").status_code for i in range(5)]
    assert statuses == [401, 401, 401, 401, 429]
    sixth = password_login(client, EMAIL, "wrong password 6")
    assert sixth.status_code == 429
    right = password_login(client, EMAIL, PASSWORD)
    assert right.status_code == 429
    assert b"Too many failed attempts" in right.content
    assert session_json(client).status_code == 401
    # The lock is on the identity, whatever the spelling.
    assert password_login(Client(), "ALICE@EXAMPLE.COM", PASSWORD).status_code == 429
    assert codes(subject_email=EMAIL) == ["login.password.failed"] * 5 + ["login.password.locked"] * 3
    assert list(
        AuditEvent.objects.filter(code="login.password.failed")
        .values_list("detail__failures", flat=True)
        .order_by("id")
    ) == [1, 2, 3, 4, 5]


def test_lockout_is_per_email(client: Client, make_user: Any) -> None:
    make_user(EMAIL)
    make_user("bob@example.com", account=None)
    for i in range(5):
        password_login(client, EMAIL, f"wrong {i}")
    assert password_login(client, "bob@example.com", PASSWORD).status_code == 302


def test_success_resets_the_failure_count(client: Client, make_user: Any) -> None:
    make_user(EMAIL)
    for i in range(4):
        assert password_login(client, EMAIL, f"wrong {i}").status_code == 401
    assert password_login(client, EMAIL, PASSWORD).status_code == 302
    client.post("/logout")
    for i in range(4):
        assert password_login(client, EMAIL, f"wrong again {i}").status_code == 401
    assert password_login(client, EMAIL, PASSWORD).status_code == 302


def test_successful_login_is_audited(client: Client, make_user: Any) -> None:
    user = make_user(EMAIL)
    password_login(client, EMAIL, PASSWORD)
    event = AuditEvent.objects.get(code="login.password.succeeded")
    assert event.actor_user == user and event.subject_email == EMAIL and event.outcome == "success"


# Who may not sign in with a password ------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"login_method": "sso"},
        {"is_active": False},
    ],
    ids=["sso", "disabled"],
)
def test_sso_and_disabled_users_cannot_password_login(client: Client, make_user: Any, fields: Any) -> None:
    # Each still has a valid password hash: the backend must refuse anyway.
    user = make_user(EMAIL, **fields)
    assert user.has_usable_password()
    response = password_login(client, EMAIL, PASSWORD)
    assert response.status_code == 401
    assert GENERIC_ERROR.encode() in response.content
    assert session_json(client).status_code == 401


def test_pending_membership_signs_in_without_that_account(client: Client, make_user: Any, make_account: Any) -> None:
    # Approval is per membership: waiting in one account keeps the person out of it, not out of Vestibule.
    user = make_user(EMAIL)
    user.memberships.create(account=make_account("globex"), approval="pending")
    assert password_login(client, EMAIL, PASSWORD).status_code == 302
    assert [a["slug"] for a in session_json(client).json()["accounts"]] == ["acme"]


def test_user_without_password_cannot_log_in_with_an_empty_one(client: Client, make_user: Any) -> None:
    make_user(EMAIL, password=None)
    response = password_login(client, EMAIL, "")
    assert response.status_code == 400
    assert session_json(client).status_code == 401


def test_disabled_user_loses_an_existing_session(client: Client, make_user: Any) -> None:
    user = make_user(EMAIL)
    password_login(client, EMAIL, PASSWORD)
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert session_json(client).status_code == 401


# TOTP -------------------------------------------------------------------------------------


def authenticator_code(secret_b32: str, step: int) -> str:
    padded = secret_b32 + "=" * (-len(secret_b32) % 8)
    totp = TOTP(base64.b32decode(padded), 6, SHA1(), 30, enforce_key_length=False)
    return totp.generate(step * 30).decode()


def current_step() -> int:
    # Leave room so a whole exchange happens inside one 30-second step.
    if time.time() % 30 > 26:
        time.sleep(30 - time.time() % 30 + 0.1)
    return int(time.time() // 30)


def enable_totp(client: Client) -> str:
    page = client.get("/account/totp")
    assert page.status_code == 200
    secret = re.search(r'<code class="reason">([A-Z2-7]+)</code>', page.content.decode())
    assert secret, page.content
    step = current_step()
    # Enroll with the previous step's code, which stays valid for one more step,
    # so the current code is still unused for the login that follows.
    done = client.post("/account/totp", {"code": authenticator_code(secret.group(1), step - 1)})
    assert done.status_code == 200, done.content
    assert b"Two-factor sign-in is on" in done.content
    return secret.group(1)


def test_totp_enrollment_rejects_a_wrong_code(client: Client, make_user: Any) -> None:
    user = make_user(EMAIL)
    password_login(client, EMAIL, PASSWORD)
    page = client.get("/account/totp")
    secret = re.search(r'<code class="reason">([A-Z2-7]+)</code>', page.content.decode())
    assert secret, page.content
    step = current_step()
    # Wrong for sure: none of the codes of the steps around now.
    accepted = {authenticator_code(secret.group(1), step + drift) for drift in range(-2, 3)}
    wrong = next(code for code in (str(digit) * 6 for digit in range(10)) if code not in accepted)
    response = client.post("/account/totp", {"code": wrong})
    user.refresh_from_db()
    assert response.status_code == 400
    assert not user.has_totp


def test_totp_setup_needs_a_session(client: Client) -> None:
    response = client.get("/account/totp")
    assert response.status_code == 302 and response["Location"].startswith("/login?next=")


def test_login_requires_totp_once_enabled_and_refuses_replay(client: Client, make_user: Any) -> None:
    user = make_user(EMAIL)
    password_login(client, EMAIL, PASSWORD)
    secret = enable_totp(client)
    user.refresh_from_db()
    assert user.has_totp
    assert "user.totp_enabled" in codes()
    client.post("/logout")

    response = password_login(client, EMAIL, PASSWORD, next_url="/ok")
    assert response.status_code == 302 and response["Location"] == "/login/totp"
    # Password alone is not a session.
    assert session_json(client).status_code == 401
    wrong = client.post("/login/totp", {"code": "12345"})
    assert wrong.status_code == 400
    step = current_step()
    code = authenticator_code(secret, step)
    bad = authenticator_code(secret, step + 5)
    assert client.post("/login/totp", {"code": bad}).status_code == 401
    done = client.post("/login/totp", {"code": code})
    assert done.status_code == 302 and done["Location"] == "/ok"
    me = session_json(client).json()
    assert me["totp_enabled"] is True
    client.post("/logout")

    # The same code again, within its validity window: refused.
    password_login(client, EMAIL, PASSWORD)
    replay = client.post("/login/totp", {"code": code})
    assert replay.status_code == 401
    assert session_json(client).status_code == 401
    assert "login.totp.failed" in codes()


def test_totp_page_without_password_step_goes_to_login(client: Client) -> None:
    response = client.get("/login/totp")
    assert response.status_code == 302 and response["Location"] == "/login"


def test_totp_wrong_codes_are_rate_limited(client: Client, make_user: Any) -> None:
    make_user(EMAIL)
    password_login(client, EMAIL, PASSWORD)
    secret = enable_totp(client)
    client.post("/logout")
    password_login(client, EMAIL, PASSWORD)
    step = current_step()
    wrong = authenticator_code(secret, step + 10)
    assert [client.post("/login/totp", {"code": wrong}).status_code for _ in range(5)] == [401] * 5
    right = client.post("/login/totp", {"code": authenticator_code(secret, step)})
    assert right.status_code == 429
    assert session_json(client).status_code == 401


def test_visiting_the_setup_page_does_not_turn_totp_off(client: Client, make_user: Any) -> None:
    user = make_user(EMAIL)
    password_login(client, EMAIL, PASSWORD)
    enable_totp(client)
    # A plain GET (a link anywhere, a prefetch) must not replace a confirmed secret.
    client.get("/account/totp")
    user.refresh_from_db()
    assert user.has_totp


# Password reset ---------------------------------------------------------------------------------

RESET_LINK = re.compile(r"http://localhost(/password/reset/[A-Za-z0-9_-]+)")


def request_reset(client: Client, email: str) -> Any:
    return client.post("/password/reset", {"email": email})


def reset_path() -> str:
    assert mail.outbox, "no email was sent"
    match = RESET_LINK.search(mail.outbox[-1].body)
    assert match, mail.outbox[-1].body
    return match.group(1)


def set_password(client: Client, path: str, password: str = NEW_PASSWORD) -> Any:
    return client.post(path, {"password1": password, "password2": password})


def test_reset_link_works_once(client: Client, make_user: Any) -> None:
    make_user(EMAIL)
    response = request_reset(client, EMAIL)
    assert response.status_code == 200 and b"Check your email" in response.content
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [EMAIL]
    path = reset_path()
    assert client.get(path).status_code == 200
    done = set_password(client, path)
    assert done.status_code == 200 and b"Password changed" in done.content

    assert password_login(Client(), EMAIL, PASSWORD).status_code == 401
    assert password_login(Client(), EMAIL, NEW_PASSWORD).status_code == 302
    assert client.get(path).status_code == 410
    assert set_password(client, path, "yet another passphrase 99").status_code == 410
    assert password_login(Client(), EMAIL, NEW_PASSWORD).status_code == 302
    assert "password.reset" in codes()


def test_expired_reset_link_is_410(client: Client, make_user: Any) -> None:
    make_user(EMAIL)
    request_reset(client, EMAIL)
    path = reset_path()
    OneTimeLink.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get(path).status_code == 410
    assert set_password(client, path).status_code == 410
    assert password_login(Client(), EMAIL, PASSWORD).status_code == 302


def test_a_new_reset_link_voids_the_previous_one(client: Client, make_user: Any) -> None:
    make_user(EMAIL)
    request_reset(client, EMAIL)
    first = reset_path()
    request_reset(client, EMAIL)
    second = reset_path()
    assert first != second
    assert client.get(first).status_code == 410
    assert set_password(client, second).status_code == 200


def test_unknown_token_is_410(client: Client) -> None:
    assert client.get("/password/reset/not-a-real-token").status_code == 410


def test_reset_token_is_stored_only_as_digest(client: Client, make_user: Any) -> None:
    make_user(EMAIL)
    request_reset(client, EMAIL)
    token = reset_path().rsplit("/", 1)[1]
    assert not OneTimeLink.objects.filter(digest=token).exists()
    assert OneTimeLink.objects.count() == 1


@pytest.mark.parametrize(
    "fields",
    [{"login_method": "sso", "password": None}, {"is_active": False}],
    ids=["sso", "disabled"],
)
def test_unknown_sso_and_disabled_emails_get_the_same_answer_and_no_email(
    client: Client, make_user: Any, fields: Any
) -> None:
    make_user(EMAIL)
    make_user("other@example.com", account=None, **fields)
    known = request_reset(client, EMAIL)
    mail.outbox.clear()
    for email in ("nobody@example.com", "other@example.com"):
        response = request_reset(client, email)
        assert response.status_code == known.status_code
        assert response.content == known.content
    assert mail.outbox == []


def test_reset_link_of_a_user_switched_to_sso_since_changes_nothing(client: Client, make_user: Any) -> None:
    user = make_user(EMAIL)
    request_reset(client, EMAIL)
    path = reset_path()
    user.login_method = "sso"
    user.purge_credentials()
    user.save()
    response = set_password(client, path)
    assert response.status_code in (409, 410)
    user.refresh_from_db()
    assert not user.has_usable_password()


def test_weak_or_mismatched_new_passwords_are_refused(client: Client, make_user: Any) -> None:
    make_user(EMAIL)
    request_reset(client, EMAIL)
    path = reset_path()
    assert set_password(client, path, "short").status_code == 400
    assert client.post(path, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD + "x"}).status_code == 400
    # The link survives refused attempts.
    assert set_password(client, path).status_code == 200


def test_reset_emails_are_rate_limited_per_address(client: Client, make_user: Any) -> None:
    make_user(EMAIL)
    for _ in range(7):
        assert request_reset(client, EMAIL).status_code == 200
    assert len(mail.outbox) == 5


# Password TTL -------------------------------------------------------------------------------------


def test_expired_password_must_be_changed_before_the_session_starts(client: Client, make_user: Any) -> None:
    user = make_user(EMAIL)
    Account.objects.filter(slug="acme").update(password_ttl_days=30)
    User.objects.filter(pk=user.pk).update(password_changed_at=timezone.now() - timedelta(days=31))

    response = password_login(client, EMAIL, PASSWORD, next_url="/ok")
    assert response.status_code == 302 and response["Location"] == "/password/expired"
    assert session_json(client).status_code == 401
    page = client.get("/password/expired")
    assert page.status_code == 200 and b"expired" in page.content
    assert client.post("/password/expired", {"password1": "short", "password2": "short"}).status_code == 400
    assert session_json(client).status_code == 401

    done = client.post("/password/expired", {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert done.status_code == 302 and done["Location"] == "/ok"
    assert session_json(client).status_code == 200
    user.refresh_from_db()
    assert timezone.now() - user.password_changed_at < timedelta(minutes=1)
    client.post("/logout")
    assert password_login(client, EMAIL, NEW_PASSWORD).status_code == 302


def test_password_within_ttl_logs_in_directly(client: Client, make_user: Any) -> None:
    user = make_user(EMAIL)
    Account.objects.filter(slug="acme").update(password_ttl_days=30)
    User.objects.filter(pk=user.pk).update(password_changed_at=timezone.now() - timedelta(days=29))
    response = password_login(client, EMAIL, PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/"


def test_shortest_ttl_of_the_users_accounts_applies(client: Client, make_user: Any, make_account: Any) -> None:
    user = make_user(EMAIL)
    Account.objects.filter(slug="acme").update(password_ttl_days=365)
    user.memberships.create(account=make_account("strict", password_ttl_days=7))
    User.objects.filter(pk=user.pk).update(password_changed_at=timezone.now() - timedelta(days=8))
    assert password_login(client, EMAIL, PASSWORD)["Location"] == "/password/expired"


def test_expired_password_page_without_the_password_step_goes_to_login(client: Client) -> None:
    response = client.get("/password/expired")
    assert response.status_code == 302 and response["Location"] == "/login"


# Invitations ---------------------------------------------------------------------------------------


def test_invitation_sets_a_password_once(client: Client, api: Any, make_account: Any) -> None:
    make_account("acme")
    created = api.post(
        "/api/v1/accounts/acme/users", {"email": "invitee@example.com", "name": "Ivy", "roles": ["analyst"]}
    )
    assert created.status_code == 201
    path = re.search(r"http://localhost(/invite/[A-Za-z0-9_-]+)", mail.outbox[0].body).group(1)  # type: ignore[union-attr]
    browser = Client()
    assert browser.get(path).status_code == 200
    done = browser.post(path, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert done.status_code == 302
    me = session_json(browser).json()
    assert me["email"] == "invitee@example.com" and me["accounts"][0]["roles"] == ["analyst"]
    assert Client().get(path).status_code == 410
    assert password_login(Client(), "invitee@example.com", NEW_PASSWORD).status_code == 302


def test_expired_invitation_is_410(client: Client, api: Any, make_account: Any) -> None:
    make_account("acme")
    api.post("/api/v1/accounts/acme/users", {"email": "invitee@example.com"})
    path = re.search(r"http://localhost(/invite/[A-Za-z0-9_-]+)", mail.outbox[0].body).group(1)  # type: ignore[union-attr]
    OneTimeLink.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get(path).status_code == 410
    assert client.post(path, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}).status_code == 410
