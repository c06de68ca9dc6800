"""Password sign-ins reach the audit log of every account the person belongs to."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_password_sign_in_and_failure_are_in_the_home_accounts_audit_log_only(
    make_user: Any, make_account: Any, api: Any
) -> None:
    """Sign-in times and IPs are the identity owner's business, not every account the person joined."""
    from vestibule.accounts.models import Membership

    make_account("acme")
    assert api.post("/api/v1/accounts/acme/domains", {"domain": "example.com"}).status_code == 201
    user = make_user("carol@example.com", account="acme")
    Membership.objects.create(user=user, account=make_account("globex"))
    browser = Client()
    assert browser.post("/login", {"email": "carol@example.com", "password": "wrong password 123"}).status_code == 401
    assert browser.post("/login", {"email": "carol@example.com", "password": PASSWORD}).status_code == 302
    home = [e["code"] for e in api.get("/api/v1/accounts/acme/audit-events").json()]
    assert "login.password.succeeded" in home and "login.password.failed" in home, home
    other = [e["code"] for e in api.get("/api/v1/accounts/globex/audit-events").json()]
    assert not [c for c in other if c.startswith("login.")], other


def test_failure_for_an_unknown_email_is_audited_without_an_account(make_account: Any) -> None:
    from vestibule.audit.models import AuditEvent

    make_account("acme")
    Client().post("/login", {"email": "nobody@example.com", "password": "whatever it is 1"})
    event = AuditEvent.objects.get(code="login.password.failed")
    assert event.account is None and event.subject_email == "nobody@example.com"
