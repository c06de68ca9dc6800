"""``pending_logins.consume``: the browser binding is checked before a pending login is spent.

Unit level, both shapes the views use (OIDC ``state``, SAML ``RelayState``
on an HTTPS deployment), so the order of "compare binding, then spend" is
pinned independently of a protocol peer.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory

from vestibule.connections.models import Connection, PendingLogin
from vestibule.signin import pending as pending_logins

pytestmark = pytest.mark.django_db


@pytest.fixture
def connection(db: None) -> Connection:
    from vestibule.accounts.models import Account
    from vestibule.connections.rules import create_connection

    account = Account.objects.create(slug="acme", name="Acme")
    return create_connection(account, {
        "protocol": "oidc", "name": "OIDC", "domains": ["acme.com"],
        "oidc": {"issuer": "http://127.0.0.1:9/unreachable", "client_id": "app", "client_secret": "s"},
    }, may_claim=True)  # fmt: skip


def browser(cookie: str | None = None) -> Any:
    request = RequestFactory().get("/sso/oidc/x/callback")
    request.user = AnonymousUser()
    if cookie is not None:
        request.COOKIES[pending_logins.BINDING_COOKIE] = cookie
    return request


@pytest.mark.parametrize("purpose", [PendingLogin.Purpose.LOGIN, PendingLogin.Purpose.CONNECT_ORGANIZATION])
def test_foreign_browser_replay_refused_without_spending_the_victims_state(
    connection: Connection, purpose: str
) -> None:
    pending, token = pending_logins.create(browser(), connection, purpose=purpose)
    assert token
    for foreign in (browser(), browser("attacker-own-binding-token"), browser("")):
        assert pending_logins.consume(foreign, connection, pending.key) is None
    pending.refresh_from_db()
    assert pending.consumed_at is None
    # Positive control: the victim's browser still completes, exactly once.
    used = pending_logins.consume(browser(token), connection, pending.key)
    assert used is not None and used.pk == pending.pk and used.consumed_at is not None
    assert pending_logins.consume(browser(token), connection, pending.key) is None


def test_relay_state_replay_refused_without_spending_it_on_https(connection: Connection, settings: Any) -> None:
    settings.VESTIBULE_BASE_URL = "https://sso.example.test"
    assert pending_logins.binds_saml_post()
    pending, token = pending_logins.create(browser(), connection, bind_browser=pending_logins.binds_saml_post())
    assert pending_logins.consume(browser("stolen-elsewhere"), connection, pending.key) is None
    assert pending_logins.consume(browser(token), connection, pending.key) is not None


def test_state_of_another_connection_is_refused_and_not_spent(connection: Connection) -> None:
    from vestibule.connections.rules import create_connection

    other = create_connection(connection.account, {
        "protocol": "oidc", "name": "Other", "domains": ["acme.com"],
        "oidc": {"issuer": "http://127.0.0.1:9/other", "client_id": "app", "client_secret": "s"},
    }, may_claim=True)  # fmt: skip
    pending, token = pending_logins.create(browser(), connection)
    assert pending_logins.consume(browser(token), other, pending.key) is None
    assert pending_logins.consume(browser(token), connection, pending.key) is not None


def test_a_concurrent_spend_between_lookup_and_update_loses(
    connection: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process spends the state after our binding check: the conditional UPDATE refuses us."""
    pending, token = pending_logins.create(browser(), connection)
    real = pending_logins.hmac.compare_digest

    def compare_then_race(a: str, b: str) -> bool:
        PendingLogin.objects.filter(pk=pending.pk).update(consumed_at=pending.created_at)
        return real(a, b)

    monkeypatch.setattr(pending_logins.hmac, "compare_digest", compare_then_race)
    assert pending_logins.consume(browser(token), connection, pending.key) is None
