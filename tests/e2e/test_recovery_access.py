"""Recovery access (DESIGN "Login" step 4, seed 002): an sso-admin signs in by emailed link, without SSO.

No protocol is involved (that is the point of the page), so these tests do
not use the SSO driver.
"""

from __future__ import annotations

import re
import statistics
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from tests.e2e.policy_support import audit, fresh_counters, invite, reuse_sp_key_pairs  # noqa: F401 (autouse fixtures)
from vestibule.accounts.models import User
from vestibule.login import ratelimit, totp
from vestibule.login.mail import wait_for_background_mail
from vestibule.login.models import OneTimeLink

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(api, make_account):
    make_account("acme")
    admin = invite(api, "acme", "root@acme.com", roles=["sso-admin"], login_method="sso", password=None)
    invite(api, "acme", "worker@acme.com", roles=["analyst"], login_method="sso", password=None)
    mail.outbox.clear()
    return admin


def _request(email: str) -> tuple[int, str]:
    response = Client().post("/recovery-access", {"email": email})
    wait_for_background_mail()
    return response.status_code, re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())


def _link(body: str) -> str:
    match = re.search(r"https?://[^/\s]+(/recovery-access/\S+)", body)
    assert match, body
    return match.group(1)


def test_sso_admin_gets_a_link_that_signs_in_once(api, acme):
    status, _ = _request("root@acme.com")
    assert status == 200 and len(mail.outbox) == 1 and mail.outbox[0].to == ["root@acme.com"]
    link = _link(mail.outbox[0].body)
    browser = Client()
    browser.get("/login")  # an anonymous session exists before: it must not survive the sign-in
    before = browser.cookies.get("vestibule_session")
    confirm = browser.get(link)
    assert confirm.status_code == 200 and b"root@acme.com" in confirm.content  # GET shows a button, spends nothing
    response = browser.post(link)
    assert response.status_code == 302
    me = browser.get("/api/v1/session").json()
    assert me["email"] == "root@acme.com" and me["login_method"] == "sso" and me["session_method"] == "recovery"
    assert before is None or browser.cookies["vestibule_session"].value != before.value
    assert audit(api, "acme", "login.recovery.succeeded")[0]["subject_email"] == "root@acme.com"
    # Single use.
    assert Client().post(link).status_code == 410
    assert Client().get(link).status_code == 410


def test_link_is_short_lived(api, acme):
    _request("root@acme.com")
    row = OneTimeLink.objects.get(purpose=OneTimeLink.Purpose.RECOVERY)
    assert abs((row.expires_at - row.created_at) - timedelta(minutes=15)) < timedelta(seconds=1)
    OneTimeLink.objects.filter(pk=row.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert Client().post(_link(mail.outbox[0].body)).status_code == 410


def test_a_new_request_voids_the_previous_link(api, acme):
    _request("root@acme.com")
    _request("root@acme.com")
    first, second = (_link(m.body) for m in mail.outbox)
    assert Client().post(first).status_code == 410
    assert Client().post(second).status_code == 302


def test_link_dies_when_the_holder_loses_sso_admin(api, acme):
    _request("root@acme.com")
    api.put(f"/accounts/acme/users/{acme['id']}/roles", {"roles": ["analyst"]})
    assert Client().post(_link(mail.outbox[0].body)).status_code == 410


@pytest.mark.parametrize("email", ["worker@acme.com", "nobody@acme.com", "nobody@unknown.example", "not-an-email"])
def test_other_addresses_get_the_same_answer_and_no_email(api, acme, email):
    reference_status, reference_page = _request("root@acme.com")
    mail.outbox.clear()
    status, page = _request(email)
    assert mail.outbox == []
    if email == "not-an-email":
        assert status == 400  # a typing error is shown, as for every address form
        return
    assert (status, page) == (reference_status, reference_page)
    assert not OneTimeLink.objects.filter(purpose=OneTimeLink.Purpose.RECOVERY, user__email=email).exists()


def test_deactivated_admin_gets_nothing(api, acme):
    User.objects.filter(pk=acme["id"]).update(is_active=False)
    _request("root@acme.com")
    assert mail.outbox == []


def test_answers_take_about_the_same_time(api, acme):
    """An eligible address costs a few more queries, never an SMTP round trip (the sender is in the background)."""

    def timed(email: str) -> float:
        ratelimit.reset(ratelimit.EMAILS_PER_ADDRESS, email)
        start = time.perf_counter()
        Client().post("/recovery-access", {"email": email})
        return time.perf_counter() - start

    for email in ("root@acme.com", "nobody@acme.com"):
        timed(email)  # warm up
    eligible = statistics.median(timed("root@acme.com") for _ in range(7))
    other = statistics.median(timed("nobody@acme.com") for _ in range(7))
    wait_for_background_mail()
    assert abs(eligible - other) < 0.025 + 0.5 * min(eligible, other), (eligible, other)


def test_requests_are_rate_limited_per_address(api, acme):
    for _ in range(ratelimit.EMAILS_PER_ADDRESS.attempts + 2):
        status, _ = _request("root@acme.com")
        assert status == 200
    assert len(mail.outbox) == ratelimit.EMAILS_PER_ADDRESS.attempts
    assert audit(api, "acme", "login.recovery.rate_limited")


def test_break_glass_admin_with_totp_still_needs_the_code(api, make_account):
    make_account("acme")
    admin = invite(api, "acme", "root@acme.com", roles=["sso-admin"])
    user = User.objects.get(pk=admin["id"])
    secret = totp.begin_enrollment(user)
    User.objects.filter(pk=user.pk).update(totp_confirmed=True)
    _request("root@acme.com")
    browser = Client()
    response = browser.post(_link(mail.outbox[-1].body))
    assert response.status_code == 302 and response["Location"] == "/login/totp"
    assert browser.get("/api/v1/session").status_code == 401
    code = totp._totp(secret).generate(int(time.time())).decode()
    assert browser.post("/login/totp", {"code": code}).status_code == 302
    assert browser.get("/api/v1/session").json()["session_method"] == "recovery"
    assert audit(api, "acme", "login.recovery.succeeded")[0]["detail"]["second_factor"] == "totp"
