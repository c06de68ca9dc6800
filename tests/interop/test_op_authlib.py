"""Interop: Vestibule's OpenID Provider with Authlib's OAuth 2.0 / OpenID Connect client.

The relying party is built from the framework-neutral parts Authlib's Flask
and Django clients are made of (``OAuth2Mixin``, ``OpenIDMixin``,
``FrameworkIntegration``) over their HTTP client,
``authlib.integrations.requests_client.OAuth2Session`` (Authlib's httpx client
is deprecated in favour of httpx2 and would warn on import):
discovery metadata, the authorization URL with PKCE (S256) and nonce, state
kept in the application's session, the code exchange with each client
authentication, ``parse_id_token`` (signature against the JWKS with the
discovered algorithms, ``iss``, ``aud``/``azp``, ``nonce``, ``at_hash``, ``exp``,
through ``CodeIDToken``), userinfo, refresh and the end-session URL. Only the
callback step is written here, copied from Authlib's Django client
(``DjangoOAuth2App.authorize_access_token``) with a URL in place of a request.
It talks to a live Vestibule on 127.0.0.1 (``op_server.live_vestibule``).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import pytest
from authlib.integrations.base_client import (
    BaseApp,
    FrameworkIntegration,
    MismatchingStateError,
    OAuth2Mixin,
    OAuthError,
    OpenIDMixin,
)
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import IDToken
from joserfc.errors import InvalidClaimError

from tests.interop.op_server import (
    CLIENT_AUTH_METHODS,
    POST_LOGOUT_REDIRECT_URI,
    REDIRECT_URI,
    SCOPE,
    Browser,
    LiveVestibule,
    RegisteredApp,
    alice,
    live_vestibule,
)
from vestibule.provider.models import AccessToken, Authorization

__all__ = ["alice", "live_vestibule"]

pytestmark = pytest.mark.interop


class AppSession(FrameworkIntegration):
    """Where a web framework would keep state and tokens; a refreshed token is remembered here."""

    def __init__(self) -> None:
        super().__init__("vestibule")
        self.updated: list[dict[str, Any]] = []

    def update_token(
        self, token: dict[str, Any], refresh_token: str | None = None, access_token: str | None = None
    ) -> None:
        self.updated.append(dict(token))


class AuthlibRp(OAuth2Mixin, OpenIDMixin, BaseApp):
    """An application signing people in with Authlib; ``session`` is its own session (state, nonce, verifier)."""

    client_cls = OAuth2Session

    def __init__(self, issuer: str, app: RegisteredApp) -> None:
        super().__init__(
            AppSession(),
            name="vestibule",
            client_id=app.client_id,
            client_secret=app.client_secret,
            server_metadata_url=f"{issuer}/.well-known/openid-configuration",
            client_kwargs={
                "scope": SCOPE,
                "code_challenge_method": "S256",
                "token_endpoint_auth_method": app.auth_method,
                "default_timeout": 15,
            },
        )
        self.session: dict[str, Any] = {}

    def authorize_redirect(self, **params: Any) -> str:
        """Where the application sends the browser; what it must remember is kept under the state."""
        found = self.create_authorization_url(REDIRECT_URI, **params)
        self.framework.set_state_data(self.session, found.pop("state"), {"redirect_uri": REDIRECT_URI, **found})
        return str(found["url"])

    def authorize_access_token(self, callback_url: str) -> dict[str, Any]:
        params = dict(parse_qsl(urlsplit(callback_url).query))
        if "error" in params:
            raise OAuthError(error=params["error"], description=params.get("error_description"))
        state_data = self.framework.get_state_data(self.session, params.get("state"))
        self.framework.clear_state_data(self.session, params.get("state"))
        token_params = self._format_state_params(state_data, {"code": params.get("code"), "state": params.get("state")})
        token: dict[str, Any] = self.fetch_access_token(**token_params)
        token["userinfo"] = self.parse_id_token(token, nonce=state_data["nonce"])
        return token

    def token_client(self) -> OAuth2Session:
        """The bare OAuth 2.0 client, for what the app does with tokens later (refresh)."""
        client: OAuth2Session = self._get_oauth_client(**self.load_server_metadata())
        return client

    def refresh(self, refresh_token: str) -> dict[str, Any]:
        """A refresh, its new ID token validated like the first (no nonce on a refresh: OIDC Core 12.2)."""
        with self.token_client() as client:
            token: dict[str, Any] = dict(client.refresh_token(refresh_token=refresh_token))
        if "id_token" in token:
            token["userinfo"] = self.parse_id_token(token, nonce=None, claims_cls=IDToken)
        return token


@pytest.fixture
def make_rp(live_vestibule: LiveVestibule) -> Callable[[str], AuthlibRp]:
    """An application registered through the API for this client authentication, and its Authlib client."""

    def make(auth_method: str) -> AuthlibRp:
        return AuthlibRp(live_vestibule.issuer, live_vestibule.register(auth_method))

    return make


def sign_in(rp: AuthlibRp, browser: Browser, email: str | None, **params: Any) -> dict[str, Any]:
    return rp.authorize_access_token(browser.follow(rp.authorize_redirect(**params), until=REDIRECT_URI, email=email))


# --- the whole flow -------------------------------------------------------------------------


@pytest.mark.parametrize("auth_method", CLIENT_AUTH_METHODS)
def test_code_flow_refresh_and_logout_with_each_client_authentication(
    live_vestibule: LiveVestibule, make_rp: Any, alice: Any, auth_method: str
) -> None:
    rp = make_rp(auth_method)
    metadata = rp.load_server_metadata()
    # Authlib takes discovery's issuer as the one to expect in ID tokens: it must be the one asked for.
    assert metadata["issuer"] == live_vestibule.issuer
    assert metadata["code_challenge_methods_supported"] == ["S256"]

    browser = live_vestibule.browser()
    url = rp.authorize_redirect()
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and query["nonce"]
    token = rp.authorize_access_token(browser.follow(url, until=REDIRECT_URI, email=alice.email))

    claims = token["userinfo"]
    assert claims["iss"] == live_vestibule.issuer and claims["aud"] in (rp.client_id, [rp.client_id])
    assert claims["nonce"] == query["nonce"][0]
    assert claims["sub"] == str(alice.subject) and "@" not in claims["sub"]
    assert claims["email"] == "alice@example.com" and claims["email_verified"] is True
    assert claims["name"] == "Alice Example"
    assert claims["org"] == {"slug": "acme", "name": "Acme"} and claims["roles"] == ["analyst"]
    assert claims["projects"] == [{"slug": "production", "roles": ["analyst", "report-viewer"]}]
    assert claims["amr"] == ["pwd"] and isinstance(claims["auth_time"], int)
    assert token["token_type"].lower() == "bearer" and token["refresh_token"]

    info = rp.userinfo(token=token)
    assert info["sub"] == claims["sub"] and info["email"] == "alice@example.com"
    assert info["org"] == {"slug": "acme", "name": "Acme"} and info["roles"] == ["analyst"]

    refreshed = rp.refresh(token["refresh_token"])
    assert refreshed["refresh_token"] != token["refresh_token"], "refresh tokens rotate"
    assert refreshed["userinfo"]["sub"] == claims["sub"]
    assert refreshed["userinfo"]["auth_time"] == claims["auth_time"]
    assert rp.userinfo(token=refreshed)["sub"] == claims["sub"]

    assert browser.session().status_code == 200
    logout = rp.create_logout_url(
        post_logout_redirect_uri=POST_LOGOUT_REDIRECT_URI, id_token_hint=refreshed["id_token"]
    )
    landed = browser.follow(logout["url"], until=POST_LOGOUT_REDIRECT_URI)
    assert parse_qs(urlsplit(landed).query) == {"state": [logout["state"]]}
    # The Vestibule session ended, and with it this application's sign-in.
    assert browser.session().status_code == 401
    with pytest.raises(OAuthError) as refused:
        rp.refresh(refreshed["refresh_token"])
    assert refused.value.error == "invalid_grant"


# --- what Authlib checks, and Vestibule must pass ---------------------------------------------


def test_authlib_rejects_an_id_token_minted_for_another_nonce(
    live_vestibule: LiveVestibule, make_rp: Any, alice: Any
) -> None:
    """A login response replayed into another session: the ID token's nonce is not the one this session sent."""
    rp = make_rp("client_secret_basic")
    browser = live_vestibule.browser()
    callback = browser.follow(rp.authorize_redirect(), until=REDIRECT_URI, email=alice.email)
    (remembered,) = rp.session.values()
    remembered["data"]["nonce"] = "nonce-of-another-session"
    with pytest.raises(InvalidClaimError) as rejected:
        rp.authorize_access_token(callback)
    assert rejected.value.claim == "nonce"
    # Positive control: the same browser and application, the nonce this session sent.
    assert sign_in(rp, browser, None)["userinfo"]["sub"] == str(alice.subject)


def test_authlib_refuses_a_response_with_another_state_before_redeeming_the_code(
    live_vestibule: LiveVestibule, make_rp: Any, alice: Any
) -> None:
    """Login CSRF: a code delivered with a state this session did not send is never redeemed."""
    rp = make_rp("client_secret_post")
    callback = live_vestibule.browser().follow(rp.authorize_redirect(), until=REDIRECT_URI, email=alice.email)
    params = dict(parse_qsl(urlsplit(callback).query))
    forged = f"{REDIRECT_URI}?{urlencode({**params, 'state': 'state-of-another-session'})}"
    with pytest.raises(MismatchingStateError):
        rp.authorize_access_token(forged)
    assert not AccessToken.objects.filter(user=alice).exists()
    # The code was not spent by the refusal: the genuine callback still redeems it.
    assert rp.authorize_access_token(callback)["userinfo"]["sub"] == str(alice.subject)


def test_vestibule_refuses_a_public_client_code_redeemed_without_its_pkce_verifier(
    live_vestibule: LiveVestibule, make_rp: Any, alice: Any
) -> None:
    """A stolen code without its verifier: the token endpoint refuses it."""
    rp = make_rp("none")
    browser = live_vestibule.browser()
    callback = browser.follow(rp.authorize_redirect(), until=REDIRECT_URI, email=alice.email)
    (remembered,) = rp.session.values()
    remembered["data"]["code_verifier"] = secrets.token_urlsafe(48)
    with pytest.raises(OAuthError) as refused:
        rp.authorize_access_token(callback)
    assert refused.value.error == "invalid_grant"
    assert not AccessToken.objects.filter(user=alice).exists()
    # Positive control: a fresh authorization, redeemed with the verifier it was made with.
    assert sign_in(rp, browser, None)["userinfo"]["sub"] == str(alice.subject)


# --- the person as they are now ---------------------------------------------------------------


def test_refresh_carries_the_roles_the_person_has_now(live_vestibule: LiveVestibule, make_rp: Any, alice: Any) -> None:
    rp = make_rp("client_secret_post")
    token = sign_in(rp, live_vestibule.browser(), alice.email)
    assert token["userinfo"]["roles"] == ["analyst"]

    live_vestibule.set_roles("acme", alice.pk, ["analyst", "customer-support", "pii-viewer"])

    refreshed = rp.refresh(token["refresh_token"])
    assert refreshed["userinfo"]["roles"] == ["analyst", "customer-support", "pii-viewer"]
    assert refreshed["userinfo"]["projects"] == [
        {"slug": "production", "roles": ["analyst", "customer-support", "pii-viewer", "report-viewer"]}
    ]
    assert rp.userinfo(token=refreshed)["roles"] == ["analyst", "customer-support", "pii-viewer"]


def test_refresh_after_the_person_is_deactivated_fails_with_invalid_grant(
    live_vestibule: LiveVestibule, make_rp: Any, alice: Any
) -> None:
    rp = make_rp("client_secret_basic")
    token = sign_in(rp, live_vestibule.browser(), alice.email)
    # Positive control: the refresh works while the person is active.
    refreshed = rp.refresh(token["refresh_token"])

    # Whichever door deactivates a person (API, SCIM, CLI), it is this save that ends their sign-ins.
    alice.is_active = False
    alice.save(update_fields=["is_active"])

    with pytest.raises(OAuthError) as refused:
        rp.refresh(refreshed["refresh_token"])
    assert refused.value.error == "invalid_grant"
    with pytest.raises(Exception, match="401"):
        rp.userinfo(token=refreshed)
    assert Authorization.objects.get(user=alice).ended_reason == "person_deactivated"
