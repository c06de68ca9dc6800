"""An OIDC provider saying ``email_verified: false`` cannot sign anyone in by that email (real oidc-provider).

The attack: the attacker is a member of the bound organization (or the
provider allows self-service profiles), sets the victim's address as their
own unverified email, and signs in. Vestibule finds users by email, so
without the check the attacker's subject would be linked to the victim's
user (account takeover) or provisioned under the victim's address.
"""

from __future__ import annotations

import pytest
from django.test import Client

from tests.e2e.oidc_support import claims_of, last_event, oidc, oidc_connection, password_login, password_user, session
from vestibule.accounts.models import User
from vestibule.audit.models import LoginTrace
from vestibule.connections.models import ExternalIdentity

__all__ = ["oidc", "oidc_connection"]

pytestmark = pytest.mark.django_db


def test_unverified_email_cannot_take_over_the_victims_user(api, oidc, oidc_connection, make_account):
    make_account("acme")
    victim = password_user(api, "acme", "victim@acme.com", ["analyst"])
    connection = oidc_connection(oidc)
    assert connection["claims"]["email_verified"] == "email_verified" and connection["claims"]["trust_unverified_email"] is False

    attacker = Client()
    refused = oidc.login(attacker, connection, subject="u-attacker", claims=claims_of("victim@acme.com", "Mallory", email_verified=False))
    assert refused.status_code == 403 and b"sso.email_unverified" in refused.content
    assert b"not verified" in refused.content
    assert session(attacker) is None
    # The victim's end state: not linked to the attacker's subject, still a password user who can sign in.
    assert not ExternalIdentity.objects.filter(connection_id=connection["id"]).exists()
    victim.refresh_from_db()
    assert victim.login_method == "password" and victim.has_usable_password() and victim.name == "Admin"
    password_login(Client(), "victim@acme.com")
    # The admin's trace says what was received and what would be accepted.
    event = last_event("sso.email_unverified")
    step = LoginTrace.objects.get(pk=event.trace_id).steps[-1]
    assert step["step"] == "claims" and step["received"] == "email_verified=False" and "trust_unverified_email" in step["expected"]


def test_unverified_email_cannot_provision_a_user_under_that_address(oidc, oidc_connection):
    connection = oidc_connection(oidc)
    browser = Client()
    # Some providers send the flag as a string.
    refused = oidc.login(browser, connection, subject="u-squatter", claims=claims_of("ceo@acme.com", email_verified="false"))
    assert refused.status_code == 403 and b"sso.email_unverified" in refused.content
    assert session(browser) is None
    assert not User.objects.filter(email="ceo@acme.com").exists()
    assert not ExternalIdentity.objects.filter(connection_id=connection["id"]).exists()


def test_verified_email_signs_in_positive_control(oidc, oidc_connection):
    connection = oidc_connection(oidc)
    browser = Client()
    response = oidc.login(browser, connection, subject="u-alice", claims=claims_of("alice@acme.com", email_verified=True))
    assert response.status_code == 302, response.content.decode()[:800]
    assert session(browser)["email"] == "alice@acme.com"


def test_connection_trusting_unverified_emails_signs_in_positive_control(api, oidc, oidc_connection):
    connection = oidc_connection(oidc)
    updated = api.patch(f"/connections/{connection['id']}", {"claims": {**connection["claims"], "trust_unverified_email": True}}).json()
    assert updated["claims"]["trust_unverified_email"] is True
    browser = Client()
    response = oidc.login(browser, connection, subject="u-bob", claims=claims_of("bob@acme.com", email_verified=False))
    assert response.status_code == 302, response.content.decode()[:800]
    assert session(browser)["email"] == "bob@acme.com"
    assert ExternalIdentity.objects.get(connection_id=connection["id"]).external_id == "u-bob"


def test_claim_settings_are_validated_by_the_api(api, oidc, oidc_connection):
    connection = oidc_connection(oidc)
    bad = api.patch(f"/connections/{connection['id']}", {"claims": {"trust_unverified_email": "yes"}}, expect=422)
    assert bad.json()["field"] == "claims.trust_unverified_email"
    renamed = api.patch(f"/connections/{connection['id']}", {"claims": {"email_verified": "mail_ok"}}).json()
    assert renamed["claims"]["email_verified"] == "mail_ok"
    browser = Client()
    refused = oidc.login(browser, connection, subject="u-carol", claims=claims_of("carol@acme.com", mail_ok="0", email_verified=True))
    assert refused.status_code == 403 and b"sso.email_unverified" in refused.content
    assert not User.objects.filter(email="carol@acme.com").exists()
