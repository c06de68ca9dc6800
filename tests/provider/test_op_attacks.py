"""Attacks on the OpenID Provider (issue 13, "Must show"), each refused, beside a positive control.

Every test is named after the attack. It asserts the refusal as the attacker
sees it (status, no redirect, the OAuth error code) and the victim's state
afterwards: what was issued, whether their tokens still work, whether their
browser is still signed in. Everything goes through the Django test client
and the real database; the IdP of the SSO cases is pysaml2.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from django.test import Client
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from tests.conftest import PASSWORD, password_login
from tests.provider.support import (
    LOGOUT_URI,
    REDIRECT_URI,
    Pkce,
    authorize_url,
    code_from,
    exchange,
    id_claims,
    issued,
    query_of,
    refresh,
    register_app,
    saml_connection,
    share_domain,
    sign_in,
    sso_login,
    tokens,
    userinfo,
)
from vestibule.accounts.models import Membership, User
from vestibule.provider import applications, keys
from vestibule.provider.models import AccessToken, Authorization, Grant, RefreshToken

pytestmark = pytest.mark.django_db

ISSUER = "http://localhost"


def _error(response: Any) -> str:
    assert response.status_code in (400, 401), (response.status_code, response.content)
    return str(response.json()["error"])


def _refused_page(response: Any, status: int = 400) -> None:
    """An error page at Vestibule, never a redirect anywhere."""
    assert response.status_code == status, (response.status_code, response.content[:600])
    assert not response.has_header("Location")


def _signed_in(browser: Client) -> bool:
    return browser.get("/api/v1/session").status_code == 200


# --- redirect URI mismatch ---------------------------------------------------------------------

MISMATCHED_REDIRECTS = {
    "unregistered": "https://evil.example/callback",
    "prefix": "https://app.example/call",
    "suffix_path": "https://app.example/callback/evil",
    "suffix_chars": "https://app.example/callbackevil",
    "host_suffix": "https://app.example.evil.example/callback",
    "userinfo": "https://app.example@evil.example/callback",
    "host_case": "https://APP.example/callback",
    "path_case": "https://app.example/Callback",
    "trailing_slash": "https://app.example/callback/",
    "different_port": "https://app.example:8443/callback",
    "explicit_default_port": "https://app.example:443/callback",
    "scheme_downgrade": "http://app.example/callback",
    "added_query": "https://app.example/callback?next=https://evil.example",
    "empty_query": "https://app.example/callback?",
    "fragment": "https://app.example/callback#x",
    "dot_segment": "https://app.example/x/../callback",
    "percent_encoded": "https://app.example/%63allback",
    "relative": "/callback",
    "javascript": "javascript:alert(1)",
}


@pytest.mark.parametrize("redirect_uri", MISMATCHED_REDIRECTS.values(), ids=MISMATCHED_REDIRECTS.keys())
def test_redirect_uri_mismatch_is_an_error_page_never_a_redirect(browser, app, redirect_uri):
    application, _ = app
    before = issued()
    response = browser.get(authorize_url(application.client_id, Pkce.make(), redirect_uri=redirect_uri))
    _refused_page(response)
    assert b"invalid_request" in response.content or b"mismatch" in response.content.lower()
    assert issued() == before
    # Positive control: the registered URI, character for character, gets a code.
    assert code_from(browser.get(authorize_url(application.client_id, Pkce.make())))


def test_loopback_redirect_uri_on_another_port_is_refused(browser):
    """The loopback exception of RFC 8252 (any port, for native apps) is not taken: another local process could listen there."""
    application, _ = register_app(name="Local", redirect_uris=["http://127.0.0.1:5000/callback"])
    before = issued()
    _refused_page(
        browser.get(authorize_url(application.client_id, Pkce.make(), redirect_uri="http://127.0.0.1:5001/callback"))
    )
    _refused_page(
        browser.get(authorize_url(application.client_id, Pkce.make(), redirect_uri="http://localhost:5000/callback"))
    )
    assert issued() == before
    own = browser.get(authorize_url(application.client_id, Pkce.make(), redirect_uri="http://127.0.0.1:5000/callback"))
    assert own.status_code == 302 and own["Location"].startswith("http://127.0.0.1:5000/callback?code=")


def test_redirect_uri_mismatch_is_refused_before_sign_in(client, app):
    """Without a session the error page comes first too: the login page would end in a redirect to it."""
    application, _ = app
    response = client.get(authorize_url(application.client_id, Pkce.make(), redirect_uri="https://evil.example/cb"))
    _refused_page(response)


def test_redirect_uri_of_another_application_is_refused(browser, app):
    application, _ = app
    other, _ = register_app(name="Other", redirect_uris=["https://other.example/callback"])
    before = issued()
    response = browser.get(
        authorize_url(application.client_id, Pkce.make(), redirect_uri="https://other.example/callback")
    )
    _refused_page(response)
    assert issued() == before
    # Positive control: that URI with its own client gets a code.
    own = browser.get(authorize_url(other.client_id, Pkce.make(), redirect_uri="https://other.example/callback"))
    assert own.status_code == 302 and own["Location"].startswith("https://other.example/callback?code=")


def test_redirect_uri_mismatch_sent_by_post_is_an_error_page_too(browser, app):
    """The form POST the endpoint accepts (Core 3.1.2.1) is judged as the same GET: no way around the checks."""
    application, _ = app
    before = issued()
    params = {
        "response_type": "code",
        "client_id": application.client_id,
        "redirect_uri": "https://evil.example/callback",
        "scope": "openid",
        "code_challenge": Pkce.make().challenge,
        "code_challenge_method": "S256",
    }
    response = browser.post("/oauth/authorize", params)
    assert response.status_code == 303 and response["Location"].startswith("/oauth/authorize?")
    _refused_page(browser.get(response["Location"]))
    assert issued() == before


def test_unknown_client_id_is_an_error_page(browser):
    before = issued()
    _refused_page(browser.get(authorize_url("no-such-client", Pkce.make())))
    assert issued() == before


def test_redirect_uri_missing_is_refused(browser, app):
    """OpenID Connect requires ``redirect_uri`` (Core 3.1.2.1) even when only one is registered."""
    application, _ = app
    url = authorize_url(application.client_id, Pkce.make())
    without = url.replace("redirect_uri=" + _quoted(REDIRECT_URI) + "&", "")
    assert "redirect_uri" not in without
    before = issued()
    response = browser.get(without)
    assert issued() == before
    if response.status_code == 302:
        # The other answer the standard allows: an error at the one registered URI, no code.
        location = query_of(response)
        assert response["Location"].startswith(REDIRECT_URI + "?")
        assert location["error"] == "invalid_request" and "code" not in location
    else:
        _refused_page(response)


def _quoted(value: str) -> str:
    return urlencode({"x": value})[2:]


def test_token_request_with_another_redirect_uri_than_the_authorization_is_refused(browser, app):
    """RFC 6749 4.1.3: the redirect_uri at the token endpoint must be identical to the authorization request's."""
    application, secret = app
    pkce = Pkce.make()
    code = code_from(browser.get(authorize_url(application.client_id, pkce)))
    response = browser.post(
        "/oauth/token",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI + "/",
            "client_id": application.client_id,
            "client_secret": secret,
            "code_verifier": pkce.verifier,
        },
    )
    # RFC 6749 5.2 names invalid_grant; oauthlib answers invalid_request ("Mismatching redirect URI").
    assert _error(response) in ("invalid_grant", "invalid_request")
    assert AccessToken.objects.count() == 0


# --- authorization code replay -----------------------------------------------------------------


def test_code_replay_fails_and_revokes_what_the_first_redemption_got(browser, app):
    application, secret = app
    pkce = Pkce.make()
    code = code_from(browser.get(authorize_url(application.client_id, pkce)))
    first = exchange(browser, application, secret, code, pkce.verifier)
    assert first.status_code == 200, first.content
    got = first.json()
    assert userinfo(browser, got["access_token"]).status_code == 200

    replay = exchange(Client(), application, secret, code, pkce.verifier)
    assert _error(replay) == "invalid_grant"
    assert "access_token" not in replay.json()
    # The first redemption's tokens are dead too: the code leaked, so whoever redeemed first may be the thief.
    assert userinfo(browser, got["access_token"]).status_code == 401
    assert _error(refresh(browser, application, secret, got["refresh_token"])) == "invalid_grant"
    authorization = Authorization.objects.get()
    assert authorization.ended_reason == "code_replay"
    assert not AccessToken.objects.exists()
    assert not RefreshToken.objects.filter(revoked__isnull=True).exists()


def test_code_replay_after_the_first_tokens_were_refreshed_revokes_the_refreshed_ones(browser, app):
    application, secret = app
    pkce = Pkce.make()
    code = code_from(browser.get(authorize_url(application.client_id, pkce)))
    got = exchange(browser, application, secret, code, pkce.verifier).json()
    rotated = refresh(browser, application, secret, got["refresh_token"]).json()
    assert _error(exchange(Client(), application, secret, code, pkce.verifier)) == "invalid_grant"
    assert userinfo(browser, rotated["access_token"]).status_code == 401
    assert _error(refresh(browser, application, secret, rotated["refresh_token"])) == "invalid_grant"


def test_expired_code_is_refused(browser, app):
    application, secret = app
    pkce = Pkce.make()
    code = code_from(browser.get(authorize_url(application.client_id, pkce)))
    Grant.objects.filter(code=code).update(expires=Grant.objects.get(code=code).expires.replace(year=2000))
    assert _error(exchange(browser, application, secret, code, pkce.verifier)) == "invalid_grant"
    assert not AccessToken.objects.exists()


# --- PKCE -------------------------------------------------------------------------------------


@pytest.fixture
def public_app() -> Any:
    application, secret = register_app(name="SPA", client_type="public")
    assert secret is None
    return application


def test_pkce_missing_for_a_public_client_is_refused(browser, public_app):
    before = issued()
    response = browser.get(authorize_url(public_app.client_id, None))
    location = query_of(response)
    assert response["Location"].startswith(REDIRECT_URI + "?")
    assert location["error"] == "invalid_request" and "code" not in location
    assert issued() == before
    # Positive control: with an S256 challenge the same client gets a code and redeems it with no secret.
    pkce = Pkce.make()
    code = code_from(browser.get(authorize_url(public_app.client_id, pkce)))
    assert exchange(browser, public_app, None, code, pkce.verifier).status_code == 200


def test_pkce_verifier_missing_at_the_token_endpoint_is_refused(browser, public_app, app):
    """A challenge was sent at authorization: the code is worthless without its verifier, for any client type."""
    for application, secret in ((public_app, None), app):
        pkce = Pkce.make()
        code = code_from(browser.get(authorize_url(application.client_id, pkce)))
        response = exchange(browser, application, secret, code, None)
        assert _error(response) in ("invalid_request", "invalid_grant")
    assert not AccessToken.objects.exists()


@pytest.mark.parametrize("client_type", ["public", "confidential"])
def test_pkce_plain_method_is_refused(browser, client_type):
    application, _ = register_app(name="Plain", client_type=client_type)
    verifier = Pkce.make().verifier
    before = issued()
    url = authorize_url(application.client_id, None, code_challenge=verifier, code_challenge_method="plain")
    location = query_of(browser.get(url))
    assert location["error"] == "invalid_request" and "code" not in location
    assert issued() == before
    # A challenge with no method at all means "plain" (RFC 7636 4.3): refused the same way.
    location = query_of(browser.get(authorize_url(application.client_id, None, code_challenge=verifier)))
    assert location["error"] == "invalid_request" and "code" not in location
    assert issued() == before


def test_pkce_wrong_verifier_is_refused_and_burns_the_code(browser, public_app):
    """Decided: the code is claimed before its verifier is checked, so a wrong verifier burns it.

    A code is redeemable once, whoever tries: an attacker holding a stolen code
    gets one guess and no token, and the legitimate client's later redemption
    is then a replay (invalid_grant) that ends the sign-in, so no token of that
    code is ever issued to anyone.
    """
    pkce = Pkce.make()
    code = code_from(browser.get(authorize_url(public_app.client_id, pkce)))
    wrong = exchange(Client(), public_app, None, code, Pkce.make().verifier)
    assert _error(wrong) == "invalid_grant"
    assert not AccessToken.objects.exists()
    assert _error(exchange(browser, public_app, None, code, pkce.verifier)) == "invalid_grant"
    assert not AccessToken.objects.exists()
    assert Authorization.objects.get().ended_at is not None


def test_pkce_verifier_of_another_code_is_refused(browser, public_app):
    first, second = Pkce.make(), Pkce.make()
    code_one = code_from(browser.get(authorize_url(public_app.client_id, first)))
    code_two = code_from(browser.get(authorize_url(public_app.client_id, second)))
    assert _error(exchange(Client(), public_app, None, code_one, second.verifier)) == "invalid_grant"
    assert not AccessToken.objects.exists()
    # Positive control: the other code with its own verifier is untouched by the attempt.
    assert exchange(browser, public_app, None, code_two, second.verifier).status_code == 200


# --- a code issued to client A, redeemed by client B ---------------------------------------------


def test_code_of_client_a_redeemed_by_client_b_is_refused_and_stays_usable_by_a(browser, app):
    """Decided: B's attempt does not burn A's code.

    The code is checked against the authenticated client before it is claimed,
    so another registered client (or anyone with B's credentials) cannot
    destroy A's codes: A's redemption still succeeds afterwards. B learns
    nothing but ``invalid_grant``, the same answer as for a code that does not exist.
    """
    application, secret = app
    other, other_secret = register_app(name="Client B")
    pkce = Pkce.make()
    code = code_from(browser.get(authorize_url(application.client_id, pkce)))
    stolen = exchange(Client(), other, other_secret, code, pkce.verifier)
    assert _error(stolen) == "invalid_grant"
    assert _error(exchange(Client(), other, other_secret, "no-such-code", pkce.verifier)) == "invalid_grant"
    assert not AccessToken.objects.exists()
    assert Grant.objects.get(code=code).redeemed_at is None
    good = exchange(browser, application, secret, code, pkce.verifier)
    assert good.status_code == 200, good.content
    assert AccessToken.objects.get().application == application


def test_code_of_client_a_redeemed_with_a_client_id_but_no_secret_is_refused(browser, app, public_app):
    """A confidential client's code needs its secret; naming its client_id (or a public client's) is not enough."""
    application, secret = app
    pkce = Pkce.make()
    code = code_from(browser.get(authorize_url(application.client_id, pkce)))
    assert _error(exchange(Client(), application, None, code, pkce.verifier)) == "invalid_client"
    assert _error(exchange(Client(), application, "wrong-secret", code, pkce.verifier)) == "invalid_client"
    assert _error(exchange(Client(), public_app, None, code, pkce.verifier)) == "invalid_grant"
    assert not AccessToken.objects.exists()
    assert exchange(browser, application, secret, code, pkce.verifier).status_code == 200


# --- refresh token reuse -------------------------------------------------------------------------


def test_refresh_token_reuse_revokes_the_family(browser, app):
    application, secret = app
    first = tokens(browser, application, secret)
    second = refresh(browser, application, secret, first["refresh_token"])
    assert second.status_code == 200, second.content
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    assert userinfo(browser, rotated["access_token"]).status_code == 200

    reuse = refresh(Client(), application, secret, first["refresh_token"])
    assert _error(reuse) == "invalid_grant"
    # The whole family is dead: the new refresh token, the new access token, the old access token.
    assert _error(refresh(browser, application, secret, rotated["refresh_token"])) == "invalid_grant"
    assert userinfo(browser, rotated["access_token"]).status_code == 401
    assert userinfo(browser, first["access_token"]).status_code == 401
    assert Authorization.objects.get().ended_reason == "refresh_token_reuse"


def test_refresh_token_reuse_leaves_the_persons_other_sign_ins_alone(browser, app):
    """Only the sign-in whose token leaked ends; another application's sign-in of the same person holds."""
    application, secret = app
    other, other_secret = register_app(name="Other")
    leaked = tokens(browser, application, secret)
    kept = tokens(browser, other, other_secret)
    refresh(browser, application, secret, leaked["refresh_token"])
    assert _error(refresh(Client(), application, secret, leaked["refresh_token"])) == "invalid_grant"
    assert userinfo(browser, kept["access_token"]).status_code == 200
    assert refresh(browser, other, other_secret, kept["refresh_token"]).status_code == 200


def test_refresh_token_of_another_client_is_refused(browser, app):
    application, secret = app
    other, other_secret = register_app(name="Other")
    got = tokens(browser, application, secret)
    assert _error(refresh(Client(), other, other_secret, got["refresh_token"])) == "invalid_grant"
    # Positive control: its own client still refreshes it (the attempt did not burn it).
    assert refresh(browser, application, secret, got["refresh_token"]).status_code == 200


# --- the person, the membership, the application changed after sign-in ----------------------------


def test_tokens_of_a_deactivated_person_stop_working(browser, app, make_user):
    application, secret = app
    got = tokens(browser, application, secret)
    bob = make_user("bob@example.com")
    bob_browser = Client()
    sign_in(bob_browser, bob.email)
    bobs = tokens(bob_browser, application, secret)

    alice = User.objects.get(email="alice@example.com")
    alice.is_active = False
    alice.save()

    assert _error(refresh(browser, application, secret, got["refresh_token"])) == "invalid_grant"
    assert userinfo(browser, got["access_token"]).status_code == 401
    assert Authorization.objects.get(user=alice).ended_reason == "person_deactivated"
    # Positive control: another person's tokens from the same application are untouched.
    assert userinfo(bob_browser, bobs["access_token"]).status_code == 200
    assert refresh(bob_browser, application, secret, bobs["refresh_token"]).status_code == 200


def test_deactivated_person_without_the_signal_is_still_refused_at_refresh(browser, app):
    """A bulk UPDATE sends no signal: the refresh judges the person as they are now anyway."""
    application, secret = app
    got = tokens(browser, application, secret)
    User.objects.filter(email="alice@example.com").update(is_active=False)
    assert _error(refresh(browser, application, secret, got["refresh_token"])) == "invalid_grant"
    assert userinfo(browser, got["access_token"]).status_code == 401


def test_tokens_of_a_removed_membership_stop_working(browser, app):
    application, secret = app
    with_org = tokens(browser, application, secret, scope="openid email organization")
    without_org = tokens(browser, application, secret, scope="openid email")
    assert id_claims(browser, with_org["id_token"])["org"]["slug"] == "acme"

    Membership.objects.get(user__email="alice@example.com", account__slug="acme").delete()

    assert _error(refresh(browser, application, secret, with_org["refresh_token"])) == "invalid_grant"
    assert userinfo(browser, with_org["access_token"]).status_code == 401
    # Positive control: a sign-in that did not speak for the organization is still the person's.
    assert userinfo(browser, without_org["access_token"]).status_code == 200
    assert refresh(browser, application, secret, without_org["refresh_token"]).status_code == 200


def test_tokens_of_a_membership_removed_without_the_signal_are_refused_at_refresh(browser, app):
    application, secret = app
    got = tokens(browser, application, secret, scope="openid organization")
    Membership.objects.filter(user__email="alice@example.com").update(is_active=False)
    assert _error(refresh(browser, application, secret, got["refresh_token"])) == "invalid_grant"
    # Userinfo may not speak for the organization any more either.
    info = userinfo(browser, got["access_token"])
    assert info.status_code == 401 or "org" not in info.json()


def test_revoked_application_cannot_authorize_exchange_or_refresh(browser, app):
    application, secret = app
    got = tokens(browser, application, secret)
    pkce = Pkce.make()
    pending = code_from(browser.get(authorize_url(application.client_id, pkce)))

    applications.revoke(application)

    before = issued()
    _refused_page(browser.get(authorize_url(application.client_id, Pkce.make())))
    assert issued() == before
    assert _error(exchange(browser, application, secret, pending, pkce.verifier)) == "invalid_client"
    assert _error(refresh(browser, application, secret, got["refresh_token"])) == "invalid_client"
    assert userinfo(browser, got["access_token"]).status_code == 401
    # Positive control: the person's Vestibule session and other applications are unaffected.
    other, other_secret = register_app(name="Other")
    assert _signed_in(browser)
    assert tokens(browser, other, other_secret)["access_token"]


# --- alg confusion on the tokens Vestibule accepts back (id_token_hint) -------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _forgeries(genuine: str, claims: dict[str, Any]) -> dict[str, str]:
    """Tokens carrying a genuine ID token's claims, each signed in a way only a confused verifier accepts."""
    row = keys.published_keys()[0]
    kid = row.kid
    public = RSAKey.import_key(row.public_jwk)
    pem = public.as_pem(private=False)
    foreign_rsa = RSAKey.generate_key(2048)
    foreign_ec = ECKey.generate_key("P-256")
    body = _b64(json.dumps(claims).encode())
    return {
        "alg_none": f"{_b64(json.dumps({'alg': 'none', 'kid': kid}).encode())}.{body}.",
        "alg_none_uppercase": f"{_b64(json.dumps({'alg': 'NONE', 'kid': kid}).encode())}.{body}.",
        "hs256_public_pem_as_secret": _hs256({"alg": "HS256", "kid": kid, "typ": "JWT"}, claims, pem),
        "hs256_public_jwk_as_secret": _hs256(
            {"alg": "HS256", "kid": kid, "typ": "JWT"}, claims, json.dumps(row.public_jwk).encode()
        ),
        "hs256_modulus_as_secret": _hs256({"alg": "HS256", "kid": kid}, claims, row.public_jwk["n"].encode()),
        "rs256_foreign_key_our_kid": jwt.encode({"alg": "RS256", "kid": kid}, claims, foreign_rsa),
        "rs256_foreign_key_embedded_jwk": jwt.encode(
            {"alg": "RS256", "kid": kid, "jwk": foreign_rsa.as_dict(private=False)}, claims, foreign_rsa
        ),
        "es256_header_on_rs256_kid": jwt.encode({"alg": "ES256", "kid": kid}, claims, foreign_ec),
        "rs256_no_kid": jwt.encode({"alg": "RS256"}, claims, foreign_rsa),
        "signature_stripped": ".".join(genuine.split(".")[:2]) + ".",
        "signature_of_another_token": ".".join([genuine.split(".")[0], body, genuine.split(".")[2]]),
    }


FORGERY_NAMES = [
    "alg_none",
    "alg_none_uppercase",
    "hs256_public_pem_as_secret",
    "hs256_public_jwk_as_secret",
    "hs256_modulus_as_secret",
    "rs256_foreign_key_our_kid",
    "rs256_foreign_key_embedded_jwk",
    "es256_header_on_rs256_kid",
    "rs256_no_kid",
    "signature_stripped",
    "signature_of_another_token",
]


def _genuine(browser: Client, app: tuple[Any, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    application, secret = app
    got = tokens(browser, application, secret)
    return got, id_claims(browser, got["id_token"])


@pytest.mark.parametrize("forgery", FORGERY_NAMES)
def test_alg_confusion_on_id_token_hint_at_logout_is_refused(client, alice, app, forgery):
    """A forged hint must neither end the person's sign-ins (no session needed) nor redirect anywhere."""
    application, _ = app
    victim = Client()
    sign_in(victim, alice.email)
    got, claims = _genuine(victim, app)
    forged = _forgeries(got["id_token"], claims)[forgery]

    attacker = client
    response = attacker.get(
        "/oauth/logout?"
        + urlencode(
            {"id_token_hint": forged, "client_id": application.client_id, "post_logout_redirect_uri": LOGOUT_URI}
        )
    )
    _refused_page(response)
    assert Authorization.objects.get().ended_at is None
    assert userinfo(victim, got["access_token"]).status_code == 200
    assert _signed_in(victim)

    # The victim's own browser, presenting the forged hint: no silent logout, no redirect.
    response = victim.get(
        "/oauth/logout?" + urlencode({"id_token_hint": forged, "post_logout_redirect_uri": LOGOUT_URI})
    )
    _refused_page(response)
    assert _signed_in(victim)

    # Positive control: the genuine hint is accepted and ends the sign-in.
    response = attacker.get(
        "/oauth/logout?"
        + urlencode({"id_token_hint": got["id_token"], "post_logout_redirect_uri": LOGOUT_URI, "state": "s1"})
    )
    assert response.status_code == 302 and response["Location"] == LOGOUT_URI + "?state=s1"
    assert Authorization.objects.get().ended_at is not None
    assert userinfo(victim, got["access_token"]).status_code == 401


@pytest.mark.parametrize("forgery", FORGERY_NAMES)
def test_alg_confusion_on_id_token_hint_at_authorize_is_refused(browser, app, forgery):
    """prompt=none with a forged hint: login_required at the registered URI, no code."""
    application, _ = app
    got, claims = _genuine(browser, app)
    forged = _forgeries(got["id_token"], claims)[forgery]
    before = issued()
    response = browser.get(authorize_url(application.client_id, Pkce.make(), prompt="none", id_token_hint=forged))
    location = query_of(response)
    assert response["Location"].startswith(REDIRECT_URI + "?")
    assert location["error"] == "login_required" and "code" not in location
    assert issued() == before
    # Positive control: the genuine hint of the signed-in person passes silently.
    genuine = browser.get(
        authorize_url(application.client_id, Pkce.make(), prompt="none", id_token_hint=got["id_token"])
    )
    assert code_from(genuine)


def test_id_token_hint_of_another_person_at_authorize_is_refused(browser, app, make_user):
    application, secret = app
    bob = make_user("bob@example.com")
    bob_browser = Client()
    sign_in(bob_browser, bob.email)
    bobs = tokens(bob_browser, application, secret)
    before = issued()
    response = browser.get(
        authorize_url(application.client_id, Pkce.make(), prompt="none", id_token_hint=bobs["id_token"])
    )
    assert query_of(response)["error"] == "login_required"
    assert issued() == before


@pytest.mark.parametrize("hint", ["garbage", "a.b.c", "", "e30.e30.", "....", "x" * 5000])
def test_malformed_id_token_hint_is_a_clear_refusal(browser, app, hint):
    application, _ = app
    logout = browser.get("/oauth/logout?" + urlencode({"id_token_hint": hint, "post_logout_redirect_uri": LOGOUT_URI}))
    _refused_page(logout)
    assert _signed_in(browser)
    if hint:
        response = browser.get(authorize_url(application.client_id, Pkce.make(), prompt="none", id_token_hint=hint))
        assert query_of(response)["error"] == "login_required"


# --- open redirect through post_logout_redirect_uri -----------------------------------------------

LOGOUT_REDIRECTS = {
    "unregistered": "https://evil.example/",
    "prefix": "https://app.example/signed",
    "suffix": "https://app.example/signed-out/evil",
    "added_query": LOGOUT_URI + "?to=https://evil.example",
    "host_case": "https://APP.example/signed-out",
    "different_port": "https://app.example:8443/signed-out",
    "userinfo": "https://app.example@evil.example/signed-out",
    "scheme_relative": "//evil.example/",
    "javascript": "javascript:alert(1)",
    "redirect_uri_not_logout_uri": REDIRECT_URI,
}


@pytest.mark.parametrize("target", LOGOUT_REDIRECTS.values(), ids=LOGOUT_REDIRECTS.keys())
def test_open_redirect_through_post_logout_redirect_uri_is_refused(browser, app, target):
    application, secret = app
    got = tokens(browser, application, secret)
    response = browser.get(
        "/oauth/logout?" + urlencode({"id_token_hint": got["id_token"], "post_logout_redirect_uri": target})
    )
    _refused_page(response)
    # Nothing happened: the session and the sign-in hold.
    assert _signed_in(browser)
    assert userinfo(browser, got["access_token"]).status_code == 200


def test_open_redirect_through_another_applications_logout_uri_is_refused(browser, app):
    """B's registered post-logout URI with A's ID token (with or without B's client_id): no redirect."""
    application, secret = app
    register_app(name="B", redirect_uris=["https://b.example/cb"], post_logout_redirect_uris=["https://b.example/bye"])
    other = applications.Application.objects.get(name="B")
    got = tokens(browser, application, secret)
    for params in (
        {"id_token_hint": got["id_token"], "post_logout_redirect_uri": "https://b.example/bye"},
        {
            "id_token_hint": got["id_token"],
            "client_id": other.client_id,
            "post_logout_redirect_uri": "https://b.example/bye",
        },
    ):
        response = browser.get("/oauth/logout?" + urlencode(params))
        _refused_page(response)
        assert _signed_in(browser)
    # Positive control: A's own registered URI.
    response = browser.get(
        "/oauth/logout?" + urlencode({"id_token_hint": got["id_token"], "post_logout_redirect_uri": LOGOUT_URI})
    )
    assert response.status_code == 302 and response["Location"] == LOGOUT_URI
    assert not _signed_in(browser)


def test_open_redirect_through_a_revoked_applications_logout_uri_is_refused(client, app):
    application, _ = app
    applications.revoke(application)
    response = client.get(
        "/oauth/logout?" + urlencode({"client_id": application.client_id, "post_logout_redirect_uri": LOGOUT_URI})
    )
    _refused_page(response)


def test_post_logout_redirect_uri_without_a_client_is_refused(client):
    response = client.get("/oauth/logout?" + urlencode({"post_logout_redirect_uri": LOGOUT_URI}))
    _refused_page(response)


# --- organizations ------------------------------------------------------------------------------------


def test_organization_the_person_is_not_a_member_of_is_refused(browser, app, make_account):
    application, _ = app
    make_account("globex")
    before = issued()
    pages = {}
    for slug in ("globex", "no-such-org"):
        response = browser.get(
            authorize_url(application.client_id, Pkce.make(), scope="openid organization", organization=slug)
        )
        _refused_page(response, 403)
        pages[slug] = re.sub(r'value="[^"]+"', "", response.content.decode().replace(slug, "SLUG"))
    # The same page for an organization that does not exist: no oracle of account slugs.
    assert pages["globex"] == pages["no-such-org"]
    response = browser.get(authorize_url(application.client_id, Pkce.make(), scope="openid organization:globex"))
    _refused_page(response, 403)
    assert issued() == before
    # Positive control: her own organization.
    code = code_from(
        browser.get(authorize_url(application.client_id, Pkce.make(), scope="openid organization", organization="acme"))
    )
    assert code


def test_organization_parameter_contradicting_the_scope_is_refused(client, app, make_user, make_account):
    """scope=organization:acme with organization=globex: the granted scope would name acme for a non-member of it.

    An application that trusts the token response's ``scope`` (as OAuth lets it) would take a
    member of globex for a member of acme; the contradiction is refused instead.
    """
    application, secret = app
    make_account("acme")
    bob = make_user("bob@globex.example", account="globex")
    sign_in(client, bob.email)
    before = issued()
    response = client.get(
        authorize_url(application.client_id, Pkce.make(), scope="openid organization:acme", organization="globex")
    )
    assert response.status_code in (302, 400, 403)
    if response.status_code == 302:
        params = query_of(response)
        assert params["error"] == "invalid_request" and "code" not in params
    assert issued() == before
    # Positive control: the two agreeing.
    pkce = Pkce.make()
    url = authorize_url(application.client_id, pkce, scope="openid organization:globex", organization="globex")
    got = exchange(client, application, secret, code_from(client.get(url)), pkce.verifier).json()
    assert got["scope"].split() == ["openid", "organization:globex"]
    assert id_claims(client, got["id_token"])["org"]["slug"] == "globex"


def test_pending_code_dies_with_the_membership_it_speaks_for(browser, app):
    application, secret = app
    pkce = Pkce.make()
    code = code_from(browser.get(authorize_url(application.client_id, pkce, scope="openid organization")))
    Membership.objects.get(user__email="alice@example.com", account__slug="acme").delete()
    assert _error(exchange(browser, application, secret, code, pkce.verifier)) == "invalid_grant"
    assert not AccessToken.objects.exists()


def test_pending_code_of_a_deactivated_person_cannot_be_redeemed(browser, app):
    application, secret = app
    pkce = Pkce.make()
    code = code_from(browser.get(authorize_url(application.client_id, pkce)))
    User.objects.filter(email="alice@example.com").update(is_active=False)
    assert _error(exchange(browser, application, secret, code, pkce.verifier)) == "invalid_grant"
    assert not AccessToken.objects.exists()


def test_cross_tenant_person_gets_organization_claims_only_for_their_own_account(client, app, make_user, make_account):
    application, secret = app
    make_account("acme")
    bob = make_user("bob@globex.example", account="globex", roles=("analyst",))
    sign_in(client, bob.email)
    got = tokens(client, application, secret, scope="openid organization")
    claims = id_claims(client, got["id_token"])
    assert claims["org"] == {"slug": "globex", "name": "Globex"}
    info = userinfo(client, got["access_token"]).json()
    assert info["org"]["slug"] == "globex"
    _refused_page(client.get(authorize_url(application.client_id, Pkce.make(), scope="openid organization:acme")), 403)


def test_sso_session_limited_to_one_account_cannot_obtain_tokens_for_another(
    client, app, make_user, make_account, operator_key
):
    """A sign-in through a provider serving a shared domain speaks only for that provider's account."""
    application, secret = app
    alice = make_user("alice@acme.com", account="acme", roles=("analyst",))
    Membership.objects.create(user=alice, account=make_account("acme-sandbox"))
    saml_connection(operator_key, "acme", ("acme.com",), name="Production IdP")
    share_domain(operator_key, "acme", "acme.com", "acme-sandbox")
    sandbox = saml_connection(operator_key, "acme-sandbox", ("acme.com",), name="Sandbox IdP")
    done = sso_login(client, sandbox, alice.email)
    assert done.status_code == 302, done.content[:800]
    assert [a["slug"] for a in client.get("/api/v1/session").json()["accounts"]] == ["acme-sandbox"]

    before = issued()
    for url in (
        authorize_url(application.client_id, Pkce.make(), scope="openid organization", organization="acme"),
        authorize_url(application.client_id, Pkce.make(), scope="openid organization:acme"),
    ):
        _refused_page(client.get(url), 403)
    assert issued() == before
    # The organization scope without a name: the session's one account, no chooser, its claims only.
    got = tokens(client, application, secret, scope="openid organization")
    assert id_claims(client, got["id_token"])["org"]["slug"] == "acme-sandbox"
    assert Authorization.objects.get().only_account.slug == "acme-sandbox"
    # Removing the sandbox membership ends it, even though alice is still a member of acme.
    Membership.objects.get(user=alice, account__slug="acme-sandbox").delete()
    assert _error(refresh(client, application, secret, got["refresh_token"])) == "invalid_grant"


# --- what the application gets back: state, nonce, iss ------------------------------------------------

HOSTILE_STATE = "a b&c=d/é+%25?#<script>\"'"


def test_state_and_nonce_are_echoed_exactly(browser, app):
    application, secret = app
    pkce = Pkce.make()
    nonce = "n ü&=+/" + "x" * 100
    response = browser.get(authorize_url(application.client_id, pkce, state=HOSTILE_STATE, nonce=nonce))
    params = query_of(response)
    assert params["state"] == HOSTILE_STATE
    got = exchange(browser, application, secret, params["code"], pkce.verifier).json()
    assert id_claims(browser, got["id_token"])["nonce"] == nonce
    # A refreshed ID token keeps the sign-in's nonce out (OIDC Core 12.2: it may be absent, never another).
    again = refresh(browser, application, secret, got["refresh_token"]).json()
    if "id_token" in again:
        assert id_claims(browser, again["id_token"]).get("nonce") in (None, nonce)


def test_state_is_echoed_in_error_redirects(client, app):
    application, _ = app
    response = client.get(authorize_url(application.client_id, Pkce.make(), prompt="none", state=HOSTILE_STATE))
    params = query_of(response)
    assert params["error"] == "login_required" and params["state"] == HOSTILE_STATE


def test_iss_parameter_is_in_every_authorization_response(browser, client, app, public_app):
    """RFC 9207: the issuer in success and error responses alike, so a client can detect a mix-up."""
    application, _ = app
    success = query_of(browser.get(authorize_url(application.client_id, Pkce.make())))
    assert success["iss"] == ISSUER and "code" in success
    missing_pkce = query_of(browser.get(authorize_url(public_app.client_id, None)))
    assert missing_pkce["error"] == "invalid_request" and missing_pkce["iss"] == ISSUER
    bad_scope = query_of(browser.get(authorize_url(application.client_id, Pkce.make(), scope="admin")))
    assert bad_scope["error"] == "invalid_scope" and bad_scope["iss"] == ISSUER
    login_required = query_of(Client().get(authorize_url(application.client_id, Pkce.make(), prompt="none")))
    assert login_required["error"] == "login_required" and login_required["iss"] == ISSUER
    discovery = client.get("/.well-known/openid-configuration").json()
    assert discovery["authorization_response_iss_parameter_supported"] is True


def test_code_response_goes_only_to_the_registered_uri_with_nothing_added(browser, app):
    application, _ = app
    response = browser.get(authorize_url(application.client_id, Pkce.make(), state="s"))
    parts = urlsplit(response["Location"])
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == REDIRECT_URI
    assert set(query_of(response)) == {"code", "state", "iss"}


def test_password_login_next_cannot_leave_for_an_application_uri(client, alice, app):
    """The login's ``next`` stays on Vestibule: the authorize endpoint, not a raw redirect URI, sends people back."""
    response = password_login(client, alice.email, PASSWORD, next_url=REDIRECT_URI)
    assert response.status_code == 302
    assert not response["Location"].startswith("https://")


# --- the token endpoint's other doors -----------------------------------------------------------------


def test_refresh_cannot_widen_the_scope(browser, app):
    application, secret = app
    got = tokens(browser, application, secret, scope="openid")
    wider = browser.post(
        "/oauth/token",
        {
            "grant_type": "refresh_token",
            "refresh_token": got["refresh_token"],
            "scope": "openid email organization",
            "client_id": application.client_id,
            "client_secret": secret,
        },
    )
    assert _error(wider) == "invalid_scope"
    # Positive control: the same scope (or less) refreshes, and claims stay within it.
    same = refresh(browser, application, secret, got["refresh_token"])
    assert same.status_code == 200, same.content
    assert set(userinfo(browser, same.json()["access_token"]).json()) == {"sub"}


@pytest.mark.parametrize(
    "grant",
    [
        {"grant_type": "client_credentials"},
        {"grant_type": "password", "username": "alice@example.com", "password": PASSWORD},
        {"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": "x"},
        {"grant_type": "implicit"},
        {"grant_type": ""},
    ],
    ids=["client_credentials", "password", "device_code", "implicit", "empty"],
)
def test_grant_types_other_than_code_and_refresh_are_refused(client, alice, app, grant):
    application, secret = app
    response = client.post("/oauth/token", {**grant, "client_id": application.client_id, "client_secret": secret})
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "unsupported_grant_type"
    assert not AccessToken.objects.exists()


def test_implicit_and_hybrid_response_types_are_refused(browser, app):
    application, _ = app
    before = issued()
    for response_type in ("token", "id_token", "id_token token", "code id_token", "code token"):
        response = browser.get(authorize_url(application.client_id, Pkce.make(), response_type=response_type))
        params = query_of(response)
        assert "error" in params and not {"code", "access_token", "id_token"} & set(params), response_type
        assert "#" not in response["Location"], response_type
    assert issued() == before


def test_token_revocation_by_another_client_is_refused(browser, app):
    """RFC 7009 2.1: the server verifies the token was issued to the client asking for its revocation."""
    application, secret = app
    other, other_secret = register_app(name="Other")
    got = tokens(browser, application, secret)
    for token in (got["access_token"], got["refresh_token"]):
        Client().post("/oauth/revoke", {"token": token, "client_id": other.client_id, "client_secret": other_secret})
    assert userinfo(browser, got["access_token"]).status_code == 200
    assert refresh(browser, application, secret, got["refresh_token"]).status_code == 200


def test_an_id_token_is_not_an_access_token(browser, app):
    application, secret = app
    got = tokens(browser, application, secret)
    assert userinfo(browser, got["id_token"]).status_code == 401
    assert userinfo(browser, got["refresh_token"]).status_code == 401
    assert userinfo(browser, got["access_token"]).status_code == 200


def test_logout_confirmation_forged_cross_site_is_refused(browser, app):
    """The confirmation form (shown without an id_token_hint) needs Vestibule's CSRF token: another site
    cannot post allow=on and sign the person out."""
    application, secret = app
    got = tokens(browser, application, secret)
    forged = Client(enforce_csrf_checks=True)
    forged.cookies = browser.cookies
    response = forged.post("/oauth/logout", {"allow": "on", "client_id": application.client_id})
    assert response.status_code == 403
    assert _signed_in(browser)
    assert userinfo(browser, got["access_token"]).status_code == 200
    # Positive control: the confirmation page's own form, with its token, signs out.
    page = forged.get("/oauth/logout")
    assert page.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    assert token, page.content[:800]
    done = forged.post("/oauth/logout", {"allow": "on", "csrfmiddlewaretoken": token.group(1)})
    assert done.status_code in (200, 302)
    assert not _signed_in(browser)
