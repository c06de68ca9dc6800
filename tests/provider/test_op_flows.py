"""The OpenID Provider's flows as an application and a browser see them (issue 13, "Deliver" 1-3 and 5).

Re-authentication (``prompt``, ``max_age``), routing before any screen
(``login_hint``, ``organization``), the organization chooser, claims per
scope, ``amr``/``acr`` per way of signing in, refresh with current roles,
RP-initiated logout, discovery, and signing-key rotation. Through the Django
test client; the SSO sign-ins go through pysaml2's IdP.
"""

from __future__ import annotations

import html
import re
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from tests.conftest import PASSWORD, ApiClient, password_login
from tests.login.support import authenticator_code, current_step, give_totp
from tests.provider.support import (
    LOGOUT_URI,
    REDIRECT_URI,
    Pkce,
    authorize_url,
    code_from,
    exchange,
    id_claims,
    id_header,
    issued,
    query_of,
    refresh,
    register_app,
    saml_connection,
    sso_login,
    tokens,
    userinfo,
)
from vestibule.accounts.models import Account, Membership, User
from vestibule.accounts.roles import replace_manual_roles
from vestibule.provider import authorizations, keys
from vestibule.provider.models import Authorization, SigningKey

pytestmark = pytest.mark.django_db


def _backdate_sign_in(browser: Client, seconds: int) -> None:
    """The browser's sign-in happened ``seconds`` ago (the session records when; nothing else is touched)."""
    session = browser.session
    session["login_at"] = (timezone.now() - timedelta(seconds=seconds)).isoformat()
    session.save()


def _to_login(response: Any) -> str:
    """The ``next`` of a redirect to the login page (asserting it is one)."""
    assert response.status_code == 302, (response.status_code, response.content[:500])
    parts = urlsplit(response["Location"])
    assert parts.path == "/login", response["Location"]
    return parse_qs(parts.query)["next"][0]


# --- prompt and max_age ---------------------------------------------------------------------------


def test_prompt_login_forces_a_new_sign_in(browser, alice, app):
    application, secret = app
    _backdate_sign_in(browser, 120)
    before = id_claims(browser, tokens(browser, application, secret)["id_token"])["auth_time"]
    pkce = Pkce.make()
    url = authorize_url(application.client_id, pkce, prompt="login")
    grants = issued()[0]
    next_url = _to_login(browser.get(url))
    assert "prompt" not in next_url
    # Coming back without signing in again gives no code: the session remembers a fresh sign-in is owed.
    assert _to_login(browser.get(next_url)) == next_url
    assert issued()[0] == grants
    done = password_login(browser, alice.email, PASSWORD, next_url=next_url)
    assert done.status_code == 302 and done["Location"] == next_url
    code = code_from(browser.get(next_url))
    claims = id_claims(browser, exchange(browser, application, secret, code, pkce.verifier).json()["id_token"])
    assert claims["auth_time"] >= before + 120
    assert abs(claims["auth_time"] - timezone.now().timestamp()) < 10


@pytest.mark.parametrize("max_age", ["0", "60"])
def test_max_age_older_than_the_sign_in_forces_a_new_one(browser, alice, app, max_age):
    application, secret = app
    _backdate_sign_in(browser, 120)
    pkce = Pkce.make()
    next_url = _to_login(browser.get(authorize_url(application.client_id, pkce, max_age=max_age)))
    assert "max_age" not in next_url
    assert _to_login(browser.get(next_url)) == next_url
    password_login(browser, alice.email, PASSWORD, next_url=next_url)
    code = code_from(browser.get(next_url))
    claims = id_claims(browser, exchange(browser, application, secret, code, pkce.verifier).json()["id_token"])
    assert timezone.now().timestamp() - claims["auth_time"] < 10


def test_max_age_younger_than_the_sign_in_needs_none(browser, app):
    application, secret = app
    _backdate_sign_in(browser, 120)
    got = tokens(browser, application, secret, max_age="10000")
    claims = id_claims(browser, got["id_token"])
    # OpenID Connect Core 3.1.2.1: with max_age, auth_time is required; it is the earlier sign-in's.
    assert 110 <= timezone.now().timestamp() - claims["auth_time"] < 130


def test_prompt_none_without_a_session_is_login_required_at_the_registered_uri(client, app):
    application, _ = app
    before = issued()
    response = client.get(authorize_url(application.client_id, Pkce.make(), prompt="none", state="s-1"))
    assert response["Location"].startswith(REDIRECT_URI + "?")
    assert query_of(response) == {"error": "login_required", "state": "s-1", "iss": "http://localhost"}
    assert issued() == before
    # Never to an unregistered URI: that is an error page.
    refused = client.get(
        authorize_url(application.client_id, Pkce.make(), prompt="none", redirect_uri="https://evil.example/cb")
    )
    assert refused.status_code == 400 and not refused.has_header("Location")


def test_prompt_none_with_a_session_gives_a_code_without_any_page(browser, app):
    application, _ = app
    assert code_from(browser.get(authorize_url(application.client_id, Pkce.make(), prompt="none")))


def test_prompt_none_with_max_age_exceeded_is_login_required(browser, app):
    application, _ = app
    _backdate_sign_in(browser, 120)
    response = browser.get(authorize_url(application.client_id, Pkce.make(), prompt="none", max_age="60"))
    assert query_of(response)["error"] == "login_required"


# --- routing before any screen --------------------------------------------------------------------


def test_login_hint_of_a_connection_domain_goes_straight_to_its_provider(client, app, make_account, operator_key):
    application, _ = app
    make_account("acme")
    connection = saml_connection(operator_key, "acme", ("acme.com",))
    url = authorize_url(application.client_id, Pkce.make(), login_hint="Bob@acme.com")
    response = client.get(url)
    assert response.status_code == 302
    parts = urlsplit(response["Location"])
    assert parts.path == f"/sso/start/{connection['id']}"
    query = parse_qs(parts.query)
    assert query["next"] == [url] and query["login_hint"] == ["Bob@acme.com"]


def test_login_hint_elsewhere_goes_to_the_login_page_with_the_email_filled_in(client, app):
    application, _ = app
    url = authorize_url(application.client_id, Pkce.make(), login_hint="bob@elsewhere.example")
    response = client.get(url)
    assert response.status_code == 302
    parts = urlsplit(response["Location"])
    assert parts.path == "/login"
    assert parse_qs(parts.query) == {"next": [url], "email": ["bob@elsewhere.example"]}
    page = client.get(response["Location"]).content.decode()
    assert 'value="bob@elsewhere.example"' in page


def test_login_hint_of_a_domain_with_several_providers_shows_the_chooser(client, app, make_account, operator_key):
    application, _ = app
    make_account("acme")
    one = saml_connection(operator_key, "acme", ("acme.com",), name="Okta")
    two = saml_connection(operator_key, "acme", ("acme.com",), name="Entra")
    response = client.get(authorize_url(application.client_id, Pkce.make(), login_hint="bob@acme.com"))
    assert response.status_code == 200
    page = response.content.decode()
    assert f"/sso/start/{one['id']}" in page and f"/sso/start/{two['id']}" in page


def test_organization_routes_to_that_accounts_connection(client, app, make_account, operator_key):
    application, _ = app
    make_account("globex")
    connection = saml_connection(operator_key, "globex", ("globex.example",))
    for extra in ({"organization": "globex"}, {"scope": "openid organization:globex"}):
        response = client.get(authorize_url(application.client_id, Pkce.make(), **extra))
        assert response.status_code == 302
        assert urlsplit(response["Location"]).path == f"/sso/start/{connection['id']}", extra


def test_organization_without_an_enabled_connection_goes_to_the_login_page(client, app, make_account, operator_key):
    application, _ = app
    make_account("globex")
    connection = saml_connection(operator_key, "globex", ("globex.example",))
    Client(headers={"Authorization": f"Bearer {operator_key}"}).patch(
        f"/api/v1/connections/{connection['id']}", '{"enabled": false}', content_type="application/json"
    )
    response = client.get(authorize_url(application.client_id, Pkce.make(), organization="globex"))
    assert response.status_code == 302 and urlsplit(response["Location"]).path == "/login"


def test_sso_sign_in_routed_by_organization_completes_with_a_code(client, app, make_account, operator_key):
    """The whole way: organization=<slug> → the IdP → back to the authorization endpoint → code → sso claims."""
    application, secret = app
    make_account("globex")
    connection = saml_connection(
        operator_key, "globex", ("globex.example",), auto_provision=True, provisioned_users_can_login=True
    )
    pkce = Pkce.make()
    url = authorize_url(application.client_id, pkce, scope="openid email organization", organization="globex")
    start = client.get(url)
    assert urlsplit(start["Location"]).path == f"/sso/start/{connection['id']}"
    done = sso_login(client, connection, "dana@globex.example", next_url=url)
    assert done.status_code == 302 and done["Location"] == url, done.content[:500]
    code = code_from(client.get(url))
    claims = id_claims(client, exchange(client, application, secret, code, pkce.verifier).json()["id_token"])
    assert claims["email"] == "dana@globex.example"
    assert claims["org"] == {"slug": "globex", "name": "Globex"}
    assert claims["amr"] == ["sso"] and claims["acr"] == authorizations.ACR_SSO


# --- the organization scope ---------------------------------------------------------------------------


def test_several_memberships_choose_the_organization_on_a_page(browser, alice, app, make_account):
    application, secret = app
    globex = make_account("globex", name="Globex Corp")
    Membership.objects.create(user=alice, account=globex)
    replace_manual_roles(alice, globex, ["customer-support"])
    pkce = Pkce.make()
    grants = issued()[0]
    page = browser.get(authorize_url(application.client_id, pkce, scope="openid organization"))
    assert page.status_code == 200
    assert issued()[0] == grants
    links = {
        slug: html.unescape(href)
        for href, slug in re.findall(
            r'<a href="([^"]+)">.*?<span class="muted">([^<]+)</span>', page.content.decode(), re.S
        )
    }
    assert set(links) == {"acme", "globex"}
    code = code_from(browser.get(links["globex"]))
    got = exchange(browser, application, secret, code, pkce.verifier).json()
    claims = id_claims(browser, got["id_token"])
    assert claims["org"] == {"slug": "globex", "name": "Globex Corp"}
    assert claims["roles"] == ["customer-support"]
    assert userinfo(browser, got["access_token"]).json()["org"]["slug"] == "globex"


def test_prompt_none_with_several_organizations_is_account_selection_required(browser, alice, app, make_account):
    application, _ = app
    Membership.objects.create(user=alice, account=make_account("globex"))
    response = browser.get(
        authorize_url(application.client_id, Pkce.make(), scope="openid organization", prompt="none")
    )
    assert query_of(response)["error"] == "account_selection_required"


def test_refreshed_tokens_carry_current_roles(browser, alice, app):
    application, secret = app
    got = tokens(browser, application, secret, scope="openid organization")
    assert id_claims(browser, got["id_token"])["roles"] == ["analyst"]
    replace_manual_roles(alice, Account.objects.get(slug="acme"), ["customer-support", "report-viewer"])
    again = refresh(browser, application, secret, got["refresh_token"])
    assert again.status_code == 200, again.content
    body = again.json()
    assert sorted(id_claims(browser, body["id_token"])["roles"]) == ["customer-support", "report-viewer"]
    assert sorted(userinfo(browser, body["access_token"]).json()["roles"]) == ["customer-support", "report-viewer"]


# --- amr and acr -------------------------------------------------------------------------------------


def test_amr_and_acr_of_a_password_sign_in(browser, app):
    application, secret = app
    claims = id_claims(browser, tokens(browser, application, secret)["id_token"])
    assert claims["amr"] == ["pwd"] and claims["acr"] == authorizations.ACR_PASSWORD


def test_amr_and_acr_of_a_password_and_totp_sign_in(client, alice, app):
    application, secret = app
    secret_b32 = give_totp(alice)
    step = current_step()
    assert password_login(client, alice.email, PASSWORD)["Location"] == "/login/totp"
    assert client.post("/login/totp", {"code": authenticator_code(secret_b32, step)}).status_code == 302
    claims = id_claims(client, tokens(client, application, secret)["id_token"])
    assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["acr"] == authorizations.ACR_MFA


def test_amr_and_acr_of_an_sso_sign_in(client, app, make_account, operator_key):
    application, secret = app
    make_account("acme")
    connection = saml_connection(
        operator_key, "acme", ("acme.com",), auto_provision=True, provisioned_users_can_login=True
    )
    assert sso_login(client, connection, "erin@acme.com").status_code == 302
    claims = id_claims(client, tokens(client, application, secret)["id_token"])
    assert claims["amr"] == ["sso"] and claims["acr"] == authorizations.ACR_SSO


# --- claims per scope, userinfo -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "present", "absent"),
    [
        ("openid", {"sub"}, {"email", "email_verified", "name", "org", "roles", "projects"}),
        ("openid email", {"sub", "email", "email_verified"}, {"name", "org", "roles"}),
        ("openid profile", {"sub", "name"}, {"email", "org", "roles"}),
        ("openid organization", {"sub", "org", "roles", "projects"}, {"email", "name"}),
        ("openid email profile organization", {"sub", "email", "email_verified", "name", "org", "roles"}, set()),
    ],
)
def test_claims_follow_the_scopes(browser, alice, app, scope, present, absent):
    application, secret = app
    got = tokens(browser, application, secret, scope=scope)
    for claims in (id_claims(browser, got["id_token"]), userinfo(browser, got["access_token"]).json()):
        assert present <= set(claims), (scope, claims)
        assert not absent & set(claims), (scope, claims)
        assert claims["sub"] == str(alice.subject)


def test_sub_is_opaque_and_stable(browser, alice, app, make_user):
    application, secret = app
    other, other_secret = register_app(name="Other")
    first = id_claims(browser, tokens(browser, application, secret)["id_token"])["sub"]
    again = id_claims(browser, tokens(browser, application, secret)["id_token"])["sub"]
    elsewhere = id_claims(browser, tokens(browser, other, other_secret)["id_token"])["sub"]
    assert first == again == elsewhere == str(alice.subject)
    assert alice.email not in first and first not in (str(alice.pk), alice.email)
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", first)
    # A changed email keeps the subject.
    User.objects.filter(pk=alice.pk).update(email="alice.new@example.com")
    assert id_claims(browser, tokens(browser, application, secret)["id_token"])["sub"] == first


def test_userinfo_answers_get_and_post_and_refuses_without_a_valid_token(browser, alice, app):
    application, secret = app
    token = tokens(browser, application, secret, scope="openid email")["access_token"]
    expected = {"sub": str(alice.subject), "email": alice.email, "email_verified": True}
    assert userinfo(browser, token).json() == expected
    posted = browser.post("/oauth/userinfo", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert posted.status_code == 200 and posted.json() == expected
    assert browser.get("/oauth/userinfo").status_code == 401
    assert userinfo(browser, token + "x").status_code == 401
    # The access token in the query string is refused (RFC 9700: it leaks into logs).
    assert browser.get("/oauth/userinfo?" + urlencode({"access_token": token})).status_code == 401


# --- RP-initiated logout -------------------------------------------------------------------------------


def test_rp_initiated_logout_ends_the_vestibule_session(browser, app):
    application, secret = app
    got = tokens(browser, application, secret)
    response = browser.get(
        "/oauth/logout?"
        + urlencode({"id_token_hint": got["id_token"], "post_logout_redirect_uri": LOGOUT_URI, "state": "bye"})
    )
    assert response.status_code == 302 and response["Location"] == LOGOUT_URI + "?state=bye"
    home = browser.get("/")
    assert home.status_code == 302 and urlsplit(home["Location"]).path == "/login"
    assert browser.get("/api/v1/session").status_code == 401
    assert userinfo(browser, got["access_token"]).status_code == 401
    assert refresh(browser, application, secret, got["refresh_token"]).status_code == 400
    assert Authorization.objects.get().ended_at is not None


def test_logout_ends_every_applications_sign_in_from_that_session(browser, app):
    application, secret = app
    other, other_secret = register_app(name="Other")
    mine = tokens(browser, application, secret)
    theirs = tokens(browser, other, other_secret)
    browser.get("/oauth/logout?" + urlencode({"id_token_hint": mine["id_token"]}))
    assert userinfo(browser, theirs["access_token"]).status_code == 401
    assert not authorizations.open_authorizations().exists()


def test_logout_without_id_token_hint_asks_before_ending_the_session(browser, app):
    """RP-Initiated Logout 1.0 section 2: without a hint the OP must ask; a GET alone ends nothing."""
    response = browser.get("/oauth/logout")
    assert response.status_code == 200
    assert browser.get("/api/v1/session").status_code == 200


# --- discovery and keys --------------------------------------------------------------------------------


def test_discovery_names_what_the_provider_does(client):
    response = client.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    doc = response.json()
    base = settings.VESTIBULE_BASE_URL
    assert doc["issuer"] == base
    assert doc["authorization_endpoint"] == f"{base}/oauth/authorize"
    assert doc["token_endpoint"] == f"{base}/oauth/token"
    assert doc["userinfo_endpoint"] == f"{base}/oauth/userinfo"
    assert doc["jwks_uri"] == f"{base}/oauth/jwks"
    assert doc["end_session_endpoint"] == f"{base}/oauth/logout"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert set(doc["id_token_signing_alg_values_supported"]) == {"RS256", "ES256"}
    assert doc["response_types_supported"] == ["code"]
    assert set(doc["grant_types_supported"]) == {"authorization_code", "refresh_token"}
    assert doc["subject_types_supported"] == ["public"]
    assert {"openid", "email", "profile", "organization"} <= set(doc["scopes_supported"])
    assert {"sub", "email", "org", "roles", "amr"} <= set(doc["claims_supported"])
    assert set(doc["prompt_values_supported"]) == {"none", "login"}
    assert doc["request_parameter_supported"] is False and doc["claims_parameter_supported"] is False
    assert doc["backchannel_logout_supported"] is True
    # Every endpoint it names answers here.
    for name in ("jwks_uri", "authorization_endpoint", "userinfo_endpoint"):
        assert client.get(urlsplit(doc[name]).path).status_code != 404, name


def _api(operator_key: str) -> ApiClient:
    return ApiClient(Client(), operator_key)


def _rotate(operator_key: str, action: str, **extra: str) -> list[dict[str, Any]]:
    response = _api(operator_key).post("/api/v1/signing-keys/rotate", {"action": action, **extra})
    assert response.status_code == 200, response.content
    rows: list[dict[str, Any]] = response.json()
    return rows


def _jwks_kids(client: Client) -> list[str]:
    return [k["kid"] for k in client.get("/oauth/jwks").json()["keys"]]


def test_key_rotation_publishes_before_signing_and_keeps_the_retired_key_until_its_tokens_expire(
    browser, app, operator_key
):
    application, secret = app
    old_token = tokens(browser, application, secret)
    old_kid = id_header(old_token["id_token"])["kid"]
    assert _jwks_kids(browser) == [old_kid]

    _rotate(operator_key, "stage")
    staged = SigningKey.objects.get(state=SigningKey.State.NEXT).kid
    assert _jwks_kids(browser) == [old_kid, staged]
    # Published, but not signing yet.
    assert id_header(tokens(browser, application, secret)["id_token"])["kid"] == old_kid

    _rotate(operator_key, "promote")
    new_token = tokens(browser, application, secret)
    assert id_header(new_token["id_token"])["kid"] == staged
    assert set(_jwks_kids(browser)) == {old_kid, staged}
    # A relying party still verifies the tokens the retired key signed, and so does the provider (logout).
    assert id_claims(browser, old_token["id_token"])["sub"]
    assert keys.verify(old_token["id_token"])["sub"]

    # Once every token it signed has expired, the retired key is dropped (time moved by its retired_at).
    SigningKey.objects.filter(kid=old_kid).update(
        retired_at=timezone.now() - keys.token_lifetime() - timedelta(seconds=keys.ACTIVE_KEY_TTL + 1)
    )
    assert _jwks_kids(browser) == [staged]
    with pytest.raises(keys.TokenRejected):
        keys.verify(old_token["id_token"])
    assert id_claims(browser, new_token["id_token"])["sub"]


def test_retired_key_outlives_tokens_signed_by_a_process_that_had_not_yet_seen_the_promotion(browser, app):
    """Each process reads the active key at most every ACTIVE_KEY_TTL seconds, so a key may sign a
    little after another process retired it: it must stay published until those tokens expire too."""
    application, secret = app
    kid = id_header(tokens(browser, application, secret)["id_token"])["kid"]
    keys.rotate("stage")
    # This process reads the active key (still the old one) and keeps it for ACTIVE_KEY_TTL.
    assert id_header(tokens(browser, application, secret)["id_token"])["kid"] == kid
    # Another process promoted the staged key 20 seconds ago.
    promoted = timezone.now() - timedelta(seconds=20)
    SigningKey.objects.filter(kid=kid).update(state=SigningKey.State.RETIRED, retired_at=promoted)
    SigningKey.objects.filter(state=SigningKey.State.NEXT).update(state=SigningKey.State.ACTIVE, activated_at=promoted)
    late = tokens(browser, application, secret)
    assert id_header(late["id_token"])["kid"] == kid
    # Seen from 5 seconds before that token expires (the retirement moved back by as much):
    # the token is still valid, so its key must still be published.
    shift = timedelta(seconds=id_claims(browser, late["id_token"])["exp"] - timezone.now().timestamp() - 5)
    SigningKey.objects.filter(kid=kid).update(retired_at=promoted - shift)
    assert kid in _jwks_kids(browser)


def test_es256_keys_work_end_to_end(browser, app, operator_key):
    application, secret = app
    _rotate(operator_key, "stage", algorithm="ES256")
    _rotate(operator_key, "promote")
    got = tokens(browser, application, secret, scope="openid email")
    header = id_header(got["id_token"])
    assert header["alg"] == "ES256"
    published = {k["kid"]: k for k in browser.get("/oauth/jwks").json()["keys"]}
    assert published[header["kid"]]["kty"] == "EC" and published[header["kid"]]["crv"] == "P-256"
    assert published[header["kid"]]["alg"] == "ES256"
    assert not {"d", "p", "q"} & set(published[header["kid"]])
    assert id_claims(browser, got["id_token"])["email"] == "alice@example.com"
    # Refresh and logout (the provider verifying its own ES256 token) work too.
    assert refresh(browser, application, secret, got["refresh_token"]).status_code == 200
    response = browser.get(
        "/oauth/logout?" + urlencode({"id_token_hint": got["id_token"], "post_logout_redirect_uri": LOGOUT_URI})
    )
    assert response.status_code == 302 and response["Location"] == LOGOUT_URI


def test_jwks_publishes_public_keys_only(client, browser, app):
    application, secret = app
    tokens(browser, application, secret)
    for key in client.get("/oauth/jwks").json()["keys"]:
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)
        assert key["use"] == "sig" and key["alg"] in ("RS256", "ES256")


@pytest.mark.parametrize("max_age", ["²", "١٠", "-5", "1e3", "9" * 40])
def test_a_max_age_that_is_not_ascii_digits_is_ignored_not_a_500(browser, app, max_age):
    """str.isdigit() accepts "²" and Arabic-Indic digits, which int() refuses: only ASCII digits count."""
    application, _ = app
    _backdate_sign_in(browser, 120)
    response = browser.get(authorize_url(application.client_id, Pkce.make(), max_age=max_age))
    assert response.status_code < 500
