"""OIDC logins through Vestibule's views against the real oidc-provider (code flow, PKCE, keys, claims)."""

from __future__ import annotations

import base64
import hashlib
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.cache.backends import locmem
from django.test import Client

from tests.e2e.drivers.oidc_driver import make_oidc_driver
from tests.e2e.oidc_support import claims_of, last_event, oidc, oidc_connection, password_login, password_user, session
from vestibule.accounts.models import User
from vestibule.audit.models import LoginTrace
from vestibule.connections.models import ExternalIdentity, PendingLogin

__all__ = ["oidc", "oidc_connection"]

pytestmark = pytest.mark.django_db


def start(browser: Client, connection: dict) -> tuple[object, dict[str, str]]:
    response = browser.get(urlsplit(connection["sign_in_url"]).path)
    assert response.status_code == 302, response.content.decode()[:500]
    return response, {k: v[0] for k, v in parse_qs(urlsplit(response["Location"]).query).items()}


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post", "private_key_jwt"])
def test_login_with_each_client_auth_method(request, api, oidc_connection, auth_method):
    driver = make_oidc_driver(request, auth_method=auth_method)
    connection = oidc_connection(driver)
    assert connection["oidc"]["token_endpoint_auth_method"] == auth_method
    # Credentials are write-only: the API says whether one is set, never what it is.
    assert "client_secret" not in connection["oidc"] and "private_key" not in connection["oidc"]
    assert connection["oidc"]["private_key_set"] is (auth_method == "private_key_jwt")
    assert connection["oidc"]["client_secret_set"] is (auth_method != "private_key_jwt")
    browser = Client()
    response = driver.login(browser, connection, subject="00u-alice", claims=claims_of("alice@acme.com", "Alice"))
    assert response.status_code == 302, response.content.decode()
    me = session(browser)
    assert me["email"] == "alice@acme.com" and me["name"] == "Alice" and me["login_method"] == "sso"
    assert ExternalIdentity.objects.get(connection_id=connection["id"]).external_id == "00u-alice"
    assert last_event("sso.login_succeeded").connection_id is not None


def test_sso_driver_login_follows_next(sso_driver, make_account, make_connection):
    """The shared driver interface: a sign-in link with next= ends at that target."""
    make_account("acme")
    connection = make_connection("acme", auto_provision=True, provisioned_users_can_login=True)
    browser = Client()
    response = sso_driver.login(
        browser, connection, subject="bob@acme.com", claims=claims_of("bob@acme.com"), next="/account/totp"
    )
    assert response.status_code == 302 and response["Location"] == "/account/totp", response.content.decode()[:500]
    assert session(browser)["email"] == "bob@acme.com"


def test_authorization_request_uses_pkce_s256_state_and_nonce(oidc, oidc_connection):
    connection = oidc_connection(oidc)
    first, params = start(Client(), connection)
    assert params["response_type"] == "code" and params["client_id"] == oidc.client_id
    assert params["redirect_uri"] == connection["redirect_uri"]
    assert params["code_challenge_method"] == "S256"
    pending = PendingLogin.objects.get(key=params["state"])
    verifier = pending.data["code_verifier"]
    assert verifier not in first["Location"]
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert params["code_challenge"] == digest
    assert params["nonce"] == pending.data["nonce"]
    _, again = start(Client(), connection)
    assert {again["state"], again["nonce"], again["code_challenge"]}.isdisjoint(
        {params["state"], params["nonce"], params["code_challenge"]}
    )


def test_rejects_replayed_callback(oidc, oidc_connection):
    """Replaying the provider's redirect (code + state) in the same browser: the state is spent."""
    connection = oidc_connection(oidc)
    browser = Client()
    redirect, _ = start(browser, connection)
    callback = oidc.authorize(redirect, connection, subject="u-replay", claims=claims_of("carol@acme.com"))
    assert browser.get(callback).status_code == 302
    browser.logout()
    replay = browser.get(callback)
    assert replay.status_code == 400 and b"sso.state_invalid" in replay.content
    assert session(browser) is None
    assert last_event("sso.state_invalid").detail["detail_code"] == "oidc.state_invalid"


def test_state_replayed_from_a_foreign_browser_does_not_burn_the_victims_login(oidc, oidc_connection):
    """A callback URL lifted from the victim's browser is refused in the attacker's, and the victim's login survives.

    The binding cookie kept the attacker out, but the state used to be spent
    before the binding was compared, so the refused replay burned the victim's
    login in flight.
    """
    connection = oidc_connection(oidc)
    victim = Client()
    redirect, params = start(victim, connection)
    state = params["state"]
    callback = oidc.authorize(redirect, connection, subject="u-victim", claims=claims_of("victim@acme.com", "Victim"))

    attacker = Client()
    stolen = attacker.get(callback)
    assert stolen.status_code == 400 and b"sso.state_invalid" in stolen.content
    assert session(attacker) is None
    assert PendingLogin.objects.get(key=state).consumed_at is None, "the foreign replay spent the victim's state"
    assert not User.objects.filter(email="victim@acme.com").exists()

    # Positive control: the victim's own callback, same state and code, still completes.
    done = victim.get(callback)
    assert done.status_code == 302, done.content.decode()[:800]
    assert session(victim)["email"] == "victim@acme.com"
    assert PendingLogin.objects.get(key=state).consumed_at is not None
    # And only once.
    victim.logout()
    again = victim.get(callback)
    assert again.status_code == 400 and b"sso.state_invalid" in again.content
    assert session(victim) is None


def test_rejects_code_injected_into_another_login(oidc, oidc_connection):
    """PKCE: a code issued to the attacker's login, pasted under the victim's state, cannot be redeemed."""
    connection = oidc_connection(oidc)
    attacker = Client()
    redirect, _ = start(attacker, connection)
    attacker_callback = oidc.authorize(redirect, connection, subject="u-mallory", claims=claims_of("mallory@acme.com"))
    code = parse_qs(urlsplit(attacker_callback).query)["code"][0]
    victim = Client()
    _, params = start(victim, connection)
    response = victim.get(f"{urlsplit(connection['redirect_uri']).path}?code={code}&state={params['state']}")
    assert response.status_code == 400 and b"oidc.token_endpoint_error" in response.content
    assert session(victim) is None
    trace = last_event("sso.provider_error").trace
    assert trace is not None and any(step.get("received") == "invalid_grant" for step in trace.steps)


def test_key_rotation_unknown_kid_refetches_jwks_once(oidc, oidc_connection):
    connection = oidc_connection(oidc)
    provider = oidc.provider
    jwks_path = urlsplit(provider.metadata["jwks_uri"]).path
    before = provider.requests(jwks_path)
    assert oidc.login(Client(), connection, subject="u-rot", claims=claims_of("erin@acme.com")).status_code == 302
    assert provider.requests(jwks_path) == before + 1
    new_key = provider.rotate()
    response = oidc.login(Client(), connection, subject="u-rot", claims=claims_of("erin@acme.com"))
    assert response.status_code == 302, response.content.decode()
    # The new kid was unknown to the cached set: exactly one refetch, then cached again.
    assert provider.requests(jwks_path) == before + 2
    assert oidc.login(Client(), connection, subject="u-rot", claims=claims_of("erin@acme.com")).status_code == 302
    assert provider.requests(jwks_path) == before + 2
    assert new_key.kid.startswith("op-")


def test_discovery_is_cached_with_bounded_lifetime(oidc, oidc_connection, monkeypatch):
    connection = oidc_connection(oidc)
    provider = oidc.provider
    discovery = "/.well-known/openid-configuration"
    before = provider.requests(discovery)
    for _ in range(2):
        assert oidc.login(Client(), connection, subject="u-disc", claims=claims_of("frank@acme.com")).status_code == 302
    assert provider.requests(discovery) == before + 1  # the second login used the cached document
    # An hour later (the default lifetime) the cache entry has expired: the next start fetches again.
    real_time = locmem.time.time
    monkeypatch.setattr(locmem, "time", SimpleNamespace(time=lambda: real_time() + 3601))
    start(Client(), connection)
    assert provider.requests(discovery) == before + 2


@pytest.mark.parametrize("use_userinfo", [True, False])
def test_userinfo_merge(oidc, oidc_connection, use_userinfo):
    """Roles only the UserInfo endpoint returns reach the pipeline only with use_userinfo."""
    connection = oidc_connection(
        oidc, oidc={"use_userinfo": use_userinfo}, claims={"role_source": "roles_claim", "roles": "groups"}
    )
    browser = Client()
    response = oidc.login(
        browser, connection, subject="u-ui", claims=claims_of("gina@acme.com", "Gina"),
        userinfo_claims={"groups": ["customer-support", "pii-viewer"], "name": "Gina from UserInfo"},
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()
    me = session(browser)
    roles = set(me["accounts"][0]["roles"])
    if use_userinfo:
        assert {"customer-support", "pii-viewer"} <= roles
    else:
        assert roles == {"analyst"}  # catalog default: the roles claim was absent
    # ID token claims win over UserInfo ones (OIDC Core §5.3.2: UserInfo may not override).
    assert me["name"] == "Gina"


def test_nested_roles_claim(oidc, oidc_connection):
    connection = oidc_connection(
        oidc, claims={"role_source": "roles_claim", "roles": "realm_access.roles", "name": "profile.display_name"}
    )
    browser = Client()
    claims = {
        "email": "hal@acme.com",
        "profile": {"display_name": "Hal N."},
        "realm_access": {"roles": ["customer-support", "report-viewer"]},
    }
    response = oidc.login(browser, connection, subject="u-nested", claims=claims)
    assert response.status_code == 302, response.content.decode()
    me = session(browser)
    assert me["name"] == "Hal N."
    assert {"customer-support", "report-viewer"} <= set(me["accounts"][0]["roles"])


def test_nested_role_mapping_with_sso_authorization(api, oidc, oidc_connection, make_account):
    make_account("acme")
    api.post(
        "/accounts/acme/mapping-roles",
        {"name": "Finance", "grants": [{"scope": "account", "roles": ["analyst", "report-manager"]}]},
    )
    connection = oidc_connection(oidc, claims={"role_mapping": "org.department"}, sso_authorization=True)
    browser = Client()
    response = oidc.login(
        browser, connection, subject="u-fin", claims=claims_of("ivy@acme.com", org={"department": "Finance"})
    )
    assert response.status_code == 302, response.content.decode()
    assert {"analyst", "report-manager"} <= set(session(browser)["accounts"][0]["roles"])
    refused = oidc.login(
        Client(), connection, subject="u-ops", claims=claims_of("jay@acme.com", org={"department": "Ops"})
    )
    assert refused.status_code == 403 and b"sso.role_mapping_unmatched" in refused.content


# email_verified ------------------------------------------------------------
# The attack: the attacker sets the victim's address as their own, unverified,
# email at the provider (self-service profiles, or any member of the bound
# organization). Users are found by email, so without the check the
# attacker's subject would be linked to the victim's user, or provisioned
# under the victim's address.


def test_unverified_email_cannot_take_over_the_victims_user(api, oidc, oidc_connection, make_account):
    make_account("acme")
    victim = password_user(api, "acme", "victim@acme.com", ["analyst"])
    connection = oidc_connection(oidc)
    assert (
        connection["claims"]["email_verified"] == "email_verified"
        and connection["claims"]["trust_unverified_email"] is False
    )

    attacker = Client()
    refused = oidc.login(
        attacker, connection, subject="u-attacker", claims=claims_of("victim@acme.com", "Mallory", email_verified=False)
    )
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
    assert (
        step["step"] == "claims"
        and step["received"] == "email_verified=False"
        and "trust_unverified_email" in step["expected"]
    )


def test_unverified_email_cannot_provision_a_user_under_that_address(oidc, oidc_connection):
    connection = oidc_connection(oidc)
    browser = Client()
    # Some providers send the flag as a string.
    refused = oidc.login(
        browser, connection, subject="u-squatter", claims=claims_of("ceo@acme.com", email_verified="false")
    )
    assert refused.status_code == 403 and b"sso.email_unverified" in refused.content
    assert session(browser) is None
    assert not User.objects.filter(email="ceo@acme.com").exists()
    assert not ExternalIdentity.objects.filter(connection_id=connection["id"]).exists()


def test_verified_email_signs_in_positive_control(oidc, oidc_connection):
    connection = oidc_connection(oidc)
    browser = Client()
    response = oidc.login(
        browser, connection, subject="u-alice", claims=claims_of("alice@acme.com", email_verified=True)
    )
    assert response.status_code == 302, response.content.decode()[:800]
    assert session(browser)["email"] == "alice@acme.com"


def test_connection_trusting_unverified_emails_signs_in_positive_control(api, oidc, oidc_connection):
    connection = oidc_connection(oidc)
    updated = api.patch(
        f"/connections/{connection['id']}", {"claims": {**connection["claims"], "trust_unverified_email": True}}
    ).json()
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
    refused = oidc.login(
        browser, connection, subject="u-carol", claims=claims_of("carol@acme.com", mail_ok="0", email_verified=True)
    )
    assert refused.status_code == 403 and b"sso.email_unverified" in refused.content
    assert not User.objects.filter(email="carol@acme.com").exists()
