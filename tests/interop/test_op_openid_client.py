"""Interop: Vestibule's OpenID Provider with panva/openid-client v6, an OpenID Certified relying party.

openid-client runs in Node (``openid_client/rp.mjs``) and reaches a live
Vestibule on 127.0.0.1 (``op_server.live_vestibule``) over HTTP only:
discovery from the issuer, the code flow with PKCE (S256), nonce and state,
the token exchange with each client authentication Vestibule offers, its own
ID token validation (``iss``, ``aud``, ``nonce``, signature against the JWKS,
``exp``/``iat``), userinfo bound to the ID token's ``sub``, refresh, and
RP-initiated logout. The person's browser is an ``httpx`` client signing in
with a password. Everything openid-client checks, it checks itself: a test
here fails when Vestibule answers something a certified relying party refuses.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

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

__all__ = ["alice", "live_vestibule"]

pytestmark = pytest.mark.interop

HERE = Path(__file__).parent / "openid_client"
ANSWER_TIMEOUT = 30


class RelyingParty:
    """``node rp.mjs``: one JSON command per line in, one JSON answer per line out."""

    def __init__(self, node: str) -> None:
        self.process = subprocess.Popen(
            [node, str(HERE / "rp.mjs")],
            cwd=HERE,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "NODE_ENV": "test"},
        )
        self.answers: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._pump, args=(self.process.stdout, self.answers.put), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.process.stderr, self.stderr.append), daemon=True).start()
        ready = self._answer()
        assert ready.get("ready") and str(ready["version"]).startswith("6."), ready

    @staticmethod
    def _pump(stream: Any, sink: Callable[[str], None]) -> None:
        for line in stream:
            sink(line)

    def _answer(self) -> dict[str, Any]:
        try:
            line = self.answers.get(timeout=ANSWER_TIMEOUT)
        except queue.Empty:
            raise AssertionError(
                f"openid-client did not answer within {ANSWER_TIMEOUT}s:\n{''.join(self.stderr)}"
            ) from None
        answer: dict[str, Any] = json.loads(line)
        return answer

    def call(self, op: str, **args: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.process.stdin.flush()
        return self._answer()

    def ok(self, op: str, **args: Any) -> dict[str, Any]:
        answer = self.call(op, **args)
        assert answer["ok"], f"openid-client refused {op}: {answer['error']}"
        return answer

    def refused(self, op: str, **args: Any) -> dict[str, Any]:
        answer = self.call(op, **args)
        assert not answer["ok"], f"openid-client accepted {op}: {answer}"
        error: dict[str, Any] = answer["error"]
        return error

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def _ensure_node_modules() -> None:
    if (HERE / "node_modules" / "openid-client").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip(
            "npm is not installed (openid-client is an npm package: npm ci --prefix tests/interop/openid_client)"
        )
    subprocess.run([npm, "ci", "--prefix", str(HERE), "--no-audit", "--no-fund"], check=True, timeout=300)


@pytest.fixture
def rp() -> Iterator[RelyingParty]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (openid-client runs in Node)")
    _ensure_node_modules()
    party = RelyingParty(node)
    try:
        yield party
    finally:
        party.close()


def discover(rp: RelyingParty, live: LiveVestibule, app: RegisteredApp) -> dict[str, Any]:
    server: dict[str, Any] = rp.ok(
        "discover",
        issuer=live.issuer,
        client_id=app.client_id,
        client_secret=app.client_secret,
        auth=app.auth_method,
    )["server"]
    return server


def to_callback(rp: RelyingParty, browser: Browser, email: str | None, scope: str = SCOPE, **params: str) -> str:
    """The authorization request openid-client builds, walked by the browser up to the redirect URI."""
    url = rp.ok("authorize", redirect_uri=REDIRECT_URI, scope=scope, params=params)["url"]
    return browser.follow(url, until=REDIRECT_URI, email=email)


def sign_in(rp: RelyingParty, browser: Browser, email: str | None, scope: str = SCOPE) -> dict[str, Any]:
    return rp.ok("callback", url=to_callback(rp, browser, email, scope))


def underlying(error: dict[str, Any]) -> dict[str, Any]:
    """The error under openid-client's ClientError: oauth4webapi's, naming what it compared."""
    cause = error.get("cause")
    return underlying(cause) if isinstance(cause, dict) and "message" in cause else error


# --- the whole flow -------------------------------------------------------------------------


@pytest.mark.parametrize("auth_method", CLIENT_AUTH_METHODS)
def test_code_flow_refresh_and_logout_with_each_client_authentication(
    live_vestibule: LiveVestibule, rp: RelyingParty, alice: Any, auth_method: str
) -> None:
    app = live_vestibule.register(auth_method)
    server = discover(rp, live_vestibule, app)
    assert server["issuer"] == live_vestibule.issuer
    assert server["code_challenge_methods_supported"] == ["S256"]
    assert auth_method in server["token_endpoint_auth_methods_supported"]

    browser = live_vestibule.browser()
    authorize = rp.ok("authorize", redirect_uri=REDIRECT_URI, scope=SCOPE)
    query = parse_qs(urlsplit(authorize["url"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["nonce"] == [authorize["nonce"]]
    callback = browser.follow(authorize["url"], until=REDIRECT_URI, email=alice.email)
    # RFC 9207: the authorization response names its issuer; openid-client compares it with discovery's.
    assert parse_qs(urlsplit(callback).query)["iss"] == [live_vestibule.issuer]
    signed_in = rp.ok("callback", url=callback)

    claims = signed_in["claims"]
    assert claims["iss"] == live_vestibule.issuer
    assert claims["aud"] in (app.client_id, [app.client_id])
    assert claims["nonce"] == authorize["nonce"]
    assert claims["sub"] == str(alice.subject) and "@" not in claims["sub"]
    assert claims["email"] == "alice@example.com" and claims["email_verified"] is True
    assert claims["name"] == "Alice Example"
    assert claims["org"] == {"slug": "acme", "name": "Acme"}
    assert claims["roles"] == ["analyst"]
    assert claims["projects"] == [{"slug": "production", "roles": ["analyst", "report-viewer"]}]
    assert claims["amr"] == ["pwd"]
    assert isinstance(claims["auth_time"], int) and claims["sid"]
    tokens = signed_in["tokens"]
    assert tokens["token_type"].lower() == "bearer" and tokens["refresh_token"]

    info = rp.ok("userinfo", access_token=tokens["access_token"], expected_subject=claims["sub"])["userinfo"]
    assert info["sub"] == claims["sub"] and info["email"] == "alice@example.com"
    assert info["org"] == {"slug": "acme", "name": "Acme"} and info["roles"] == ["analyst"]

    refreshed = rp.ok("refresh", refresh_token=tokens["refresh_token"])
    new_tokens = refreshed["tokens"]
    assert new_tokens["refresh_token"] != tokens["refresh_token"], "refresh tokens rotate"
    assert new_tokens["access_token"] != tokens["access_token"]
    if refreshed["claims"] is not None:
        assert refreshed["claims"]["sub"] == claims["sub"] and refreshed["claims"]["auth_time"] == claims["auth_time"]
    assert rp.ok("userinfo", access_token=new_tokens["access_token"], expected_subject=claims["sub"])

    assert browser.session().status_code == 200
    state = "bye-" + secrets.token_hex(4)
    end = rp.ok(
        "end_session",
        id_token_hint=new_tokens.get("id_token") or tokens["id_token"],
        post_logout_redirect_uri=POST_LOGOUT_REDIRECT_URI,
        state=state,
    )["url"]
    landed = browser.follow(end, until=POST_LOGOUT_REDIRECT_URI)
    assert parse_qs(urlsplit(landed).query) == {"state": [state]}
    # RP-initiated logout ended the Vestibule session, and with it this application's sign-in.
    assert browser.session().status_code == 401
    after = rp.refused("refresh", refresh_token=new_tokens["refresh_token"])
    assert after["error"] == "invalid_grant", after


def test_a_second_application_signs_in_from_the_same_session_without_a_password(
    live_vestibule: LiveVestibule, rp: RelyingParty, alice: Any
) -> None:
    first, second = live_vestibule.register("client_secret_basic"), live_vestibule.register("none")
    browser = live_vestibule.browser()
    discover(rp, live_vestibule, first)
    one = sign_in(rp, browser, alice.email)
    discover(rp, live_vestibule, second)
    # No email: a redirect to the login page would fail the walk (the session is enough).
    two = sign_in(rp, browser, None)
    assert two["claims"]["sub"] == one["claims"]["sub"]
    assert two["claims"]["aud"] in (second.client_id, [second.client_id])
    assert two["claims"]["sid"] != one["claims"]["sid"], "each application's sign-in is its own"


# --- what openid-client checks, and Vestibule must pass ---------------------------------------


def test_openid_client_rejects_an_id_token_minted_for_another_nonce(
    live_vestibule: LiveVestibule, rp: RelyingParty, alice: Any
) -> None:
    """A login response replayed into another session: the ID token's nonce is not the one this session sent."""
    app = live_vestibule.register("client_secret_basic")
    discover(rp, live_vestibule, app)
    browser = live_vestibule.browser()
    callback = to_callback(rp, browser, alice.email)
    error = underlying(rp.refused("callback", url=callback, expected_nonce="nonce-of-another-session"))
    assert error["code"] == "OAUTH_JWT_CLAIM_COMPARISON_FAILED" and error["cause"]["claim"] == "nonce", error
    # Positive control: the same browser and application, the nonce this session sent.
    again = sign_in(rp, browser, None)
    assert again["claims"]["sub"] == str(alice.subject)


def test_openid_client_refuses_a_response_with_another_state_before_redeeming_the_code(
    live_vestibule: LiveVestibule, rp: RelyingParty, alice: Any
) -> None:
    """Login CSRF: a code delivered with a state this session did not send is never redeemed."""
    app = live_vestibule.register("client_secret_post")
    discover(rp, live_vestibule, app)
    callback = to_callback(rp, live_vestibule.browser(), alice.email)
    error = underlying(rp.refused("callback", url=callback, expected_state="state-of-another-session"))
    assert error["code"] == "OAUTH_INVALID_RESPONSE" and '"state"' in error["message"], error
    # The code was not spent by the refusal: the genuine callback still redeems it.
    assert rp.ok("callback", url=callback)["claims"]["sub"] == str(alice.subject)


def test_vestibule_refuses_a_code_redeemed_with_another_pkce_verifier(
    live_vestibule: LiveVestibule, rp: RelyingParty, alice: Any
) -> None:
    """A stolen code without its verifier (public client): the token endpoint refuses it."""
    from vestibule.provider.models import AccessToken

    app = live_vestibule.register("none")
    discover(rp, live_vestibule, app)
    browser = live_vestibule.browser()
    stolen = to_callback(rp, browser, alice.email)
    error = rp.refused("callback", url=stolen, code_verifier="x" * 43)
    assert error["error"] == "invalid_grant" and error["status"] == 400, error
    assert not AccessToken.objects.filter(user=alice).exists()
    # Positive control: a fresh authorization, redeemed with the verifier it was made with.
    assert sign_in(rp, browser, None)["claims"]["sub"] == str(alice.subject)


# --- the person as they are now ---------------------------------------------------------------


def test_refresh_carries_the_roles_the_person_has_now(
    live_vestibule: LiveVestibule, rp: RelyingParty, alice: Any
) -> None:
    app = live_vestibule.register("client_secret_basic")
    discover(rp, live_vestibule, app)
    signed_in = sign_in(rp, live_vestibule.browser(), alice.email)
    assert signed_in["claims"]["roles"] == ["analyst"]

    live_vestibule.set_roles("acme", alice.pk, ["analyst", "customer-support", "pii-viewer"])

    refreshed = rp.ok("refresh", refresh_token=signed_in["tokens"]["refresh_token"])
    assert refreshed["claims"] is not None, "a refresh of an openid sign-in returns a fresh ID token"
    assert refreshed["claims"]["roles"] == ["analyst", "customer-support", "pii-viewer"]
    assert refreshed["claims"]["projects"] == [
        {"slug": "production", "roles": ["analyst", "customer-support", "pii-viewer", "report-viewer"]}
    ]
    info = rp.ok("userinfo", access_token=refreshed["tokens"]["access_token"], expected_subject=str(alice.subject))
    assert info["userinfo"]["roles"] == ["analyst", "customer-support", "pii-viewer"]


def test_refresh_after_the_person_is_deactivated_fails_with_invalid_grant(
    live_vestibule: LiveVestibule, rp: RelyingParty, alice: Any
) -> None:
    from vestibule.provider.models import Authorization

    app = live_vestibule.register("none")
    discover(rp, live_vestibule, app)
    signed_in = sign_in(rp, live_vestibule.browser(), alice.email)
    # Positive control: the refresh works while the person is active.
    tokens = rp.ok("refresh", refresh_token=signed_in["tokens"]["refresh_token"])["tokens"]

    # Whichever door deactivates a person (API, SCIM, CLI), it is this save that ends their sign-ins.
    alice.is_active = False
    alice.save(update_fields=["is_active"])

    error = rp.refused("refresh", refresh_token=tokens["refresh_token"])
    assert error["error"] == "invalid_grant" and error["status"] == 400, error
    refused = rp.refused("userinfo", access_token=tokens["access_token"], expected_subject=str(alice.subject))
    assert refused["status"] == 401 or "401" in refused["message"], refused
    assert Authorization.objects.get(user=alice).ended_reason == "person_deactivated"
