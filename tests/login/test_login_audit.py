"""Password sign-ins reach the audit log of every account the person belongs to."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_password_sign_in_and_failure_are_in_each_accounts_audit_log(make_user: Any, make_account: Any, api: Any) -> None:
    from vestibule.accounts.models import Membership

    user = make_user("carol@example.com", account="acme")
    Membership.objects.create(user=user, account=make_account("globex"))
    browser = Client()
    assert browser.post("/login", {"email": "carol@example.com", "password": "wrong password 123"}).status_code == 401
    assert browser.post("/login", {"email": "carol@example.com", "password": PASSWORD}).status_code == 302
    for slug in ("acme", "globex"):
        codes = [e["code"] for e in api.get(f"/api/v1/accounts/{slug}/audit-events").json()]
        assert "login.password.succeeded" in codes and "login.password.failed" in codes, (slug, codes)


def test_failure_for_an_unknown_email_is_audited_without_an_account(make_account: Any) -> None:
    from vestibule.audit.models import AuditEvent

    make_account("acme")
    Client().post("/login", {"email": "nobody@example.com", "password": "whatever it is 1"})
    event = AuditEvent.objects.get(code="login.password.failed")
    assert event.account is None and event.subject_email == "nobody@example.com"
