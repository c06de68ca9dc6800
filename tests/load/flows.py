"""Complete sign-ins over HTTP, as a browser does them, for the locustfile and the fault test alike.

Each flow takes a ``requests.Session`` (locust's ``HttpSession`` is one) whose
requests go through :func:`call`, and either returns what proves the person is
signed in or raises :class:`LoginFailed` with a short *kind* (``http_503``,
``connection``, ``assert:...``) that the report counts. Nothing here imports
locust: the pytest process uses the same flows with a plain session.

- ``saml``: SP-initiated: ``/sso/start/<connection>`` → the built-in test
  identity provider (HTTP-Redirect AuthnRequest, then its form) → the signed
  Response POSTed to the ACS → ``/api/v1/session`` names the person.
- ``oidc``: an application's authorization-code flow with PKCE at Vestibule's
  OpenID Provider (``/oauth/authorize`` → SAML sign-in → code → ``/oauth/token``
  → ``/oauth/userinfo`` with the access token).
- ``password``: the email-first form, then the password step, then the session.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

TIMEOUT = 15

_INPUT = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')
_CODE = re.compile(r"\b(?:sso|saml|login|oidc|testidp|csrf)\.[a-z_.]*[a-z]")
_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class LoginFailed(Exception):
    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail[:300]}")
        self.kind = kind


@dataclass
class Done:
    email: str
    #: The SAMLResponse the ACS accepted (the fault test replays it).
    saml_response: dict[str, str] | None = None


Call = Callable[..., requests.Response]


def call(session: requests.Session, method: str, url: str, name: str, **kwargs: Any) -> requests.Response:
    """One request: a refused connection or a timeout becomes a :class:`LoginFailed` of its own kind."""
    kwargs.setdefault("allow_redirects", False)
    kwargs.setdefault("timeout", TIMEOUT)
    if hasattr(session, "request_event"):  # locust's HttpSession groups statistics by name
        kwargs["name"] = name
    try:
        return session.request(method, url, **kwargs)
    except requests.Timeout as exc:
        raise LoginFailed("timeout", f"{name}: {exc}") from exc
    except requests.ConnectionError as exc:
        raise LoginFailed("connection", f"{name}: {exc}") from exc


def expect(response: requests.Response, status: int, step: str) -> requests.Response:
    if response.status_code == status:
        return response
    if response.status_code == 0:  # locust's session reports a dropped connection as a status-0 response
        raise LoginFailed("connection", f"{step}: {getattr(response, 'error', '')}")
    kind = f"http_{response.status_code}"
    if response.status_code == 503:
        # Who said it: a node's clean "temporarily unavailable", or HAProxy with no ready node to send it to.
        kind += "_node" if "service.unavailable" in response.text else "_proxy"
    elif response.status_code == 400 and (
        "saml.replayed" in response.text or "saml.in_response_to_mismatch" in response.text
    ):
        # A SAML response posted a second time (its assertion ID already recorded, or the sign-in it
        # answers already completed): refused, as it must be.
        kind += "_consumed"
    elif 400 <= response.status_code < 500 and (codes := _CODE.findall(response.text)):
        kind += "_" + "+".join(dict.fromkeys(codes))  # the error page's codes say which check refused
    raise LoginFailed(kind, f"{step}: {response.text[:300]}")


def _path(location: str) -> str:
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _signed_in_as(session: requests.Session, email: str) -> None:
    me = expect(call(session, "GET", "/api/v1/session", "session"), 200, "session")
    if me.json().get("email") != email:
        raise LoginFailed("assert:wrong_person", me.text)


def saml(session: requests.Session, seed: dict[str, Any], email: str, *, next_url: str = "") -> Done:
    start = f"/sso/start/{seed['connection']}" + (f"?{urlencode({'next': next_url})}" if next_url else "")
    to_idp = expect(call(session, "GET", start, "saml: start"), 302, "start")
    page = expect(call(session, "GET", _path(to_idp.headers["Location"]), "saml: idp form"), 200, "idp form")
    fields = dict(_INPUT.findall(page.text))
    csrf = _CSRF.search(page.text)
    if "state" not in fields or csrf is None:
        raise LoginFailed("assert:idp_form", page.text)
    form = {"state": html.unescape(fields["state"]), "csrfmiddlewaretoken": csrf.group(1), "email": email, "name": ""}
    posted = expect(call(session, "POST", "/test-idp/sso", "saml: idp submit", data=form), 200, "idp submit")
    response = {name: html.unescape(value) for name, value in _INPUT.findall(posted.text)}
    action = re.search(r'<form method="post" action="([^"]+)"', posted.text)
    if "SAMLResponse" not in response or action is None:
        raise LoginFailed("assert:idp_response", posted.text)
    acs = call(session, "POST", _path(html.unescape(action.group(1))), "saml: acs", data=response)
    expect(acs, 302, "acs")
    if next_url and _path(acs.headers["Location"]) != next_url:
        raise LoginFailed("assert:acs_redirect", acs.headers["Location"])
    _signed_in_as(session, email)
    return Done(email, response)


def idp_initiated(session: requests.Session, seed: dict[str, Any], email: str) -> Done:
    """The test IdP's own sign-in page → a Response for no request: only the replay store stops a second use."""
    page = expect(call(session, "GET", "/test-idp/login", "saml: idp-initiated page"), 200, "idp-initiated page")
    csrf = _CSRF.search(page.text)
    if csrf is None:
        raise LoginFailed("assert:csrf", page.text)
    form = {"connection": seed["connection"], "email": email, "name": "", "csrfmiddlewaretoken": csrf.group(1)}
    posted = expect(call(session, "POST", "/test-idp/login", "saml: idp-initiated", data=form), 200, "idp-initiated")
    response = {name: html.unescape(value) for name, value in _INPUT.findall(posted.text)}
    if "SAMLResponse" not in response:
        raise LoginFailed("assert:idp_response", posted.text)
    expect(call(session, "POST", acs_path(seed), "saml: acs", data=response), 302, "acs")
    _signed_in_as(session, email)
    return Done(email, response)


def acs_path(seed: dict[str, Any]) -> str:
    return f"/sso/saml/{seed['connection']}/acs"


class Browser(requests.Session):
    """A plain session with a base URL, as locust's ``HttpSession`` has (for the pytest process)."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        url = url.decode() if isinstance(url, bytes) else url
        return super().request(method, url if url.startswith("http") else self.base_url + url, *args, **kwargs)


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def oidc(session: requests.Session, seed: dict[str, Any], email: str) -> Done:
    verifier, challenge = _pkce()
    state, nonce = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    params = {
        "response_type": "code", "client_id": seed["client_id"], "redirect_uri": seed["redirect_uri"],
        "scope": "openid email profile", "state": state, "nonce": nonce,
        "code_challenge": challenge, "code_challenge_method": "S256",
    }  # fmt: skip
    authorize = "/oauth/authorize?" + urlencode(params)
    saml(session, seed, email, next_url=authorize)
    redirected = expect(call(session, "GET", authorize, "oidc: authorize"), 302, "authorize")
    location = redirected.headers["Location"]
    query = parse_qs(urlsplit(location).query)
    if not location.startswith(seed["redirect_uri"]) or query.get("state") != [state] or "code" not in query:
        raise LoginFailed("assert:authorize_redirect", location)
    token = call(session, "POST", "/oauth/token", "oidc: token", data={
        "grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": seed["redirect_uri"],
        "client_id": seed["client_id"], "client_secret": seed["client_secret"], "code_verifier": verifier,
    })  # fmt: skip
    body = expect(token, 200, "token").json()
    if "id_token" not in body or "access_token" not in body:
        raise LoginFailed("assert:token_response", token.text)
    # The application's side of "signed in": the access token reads the person's claims.
    info = call(session, "GET", "/oauth/userinfo", "oidc: userinfo",
                headers={"Authorization": f"Bearer {body['access_token']}"})  # fmt: skip
    if expect(info, 200, "userinfo").json().get("email") != email:
        raise LoginFailed("assert:userinfo", info.text)
    return Done(email)


def password(session: requests.Session, seed: dict[str, Any], email: str) -> Done:
    page = expect(call(session, "GET", "/login", "password: page"), 200, "login page")
    csrf = _CSRF.search(page.text)
    if csrf is None:
        raise LoginFailed("assert:csrf", page.text)
    form = {"email": email, "next": "", "csrfmiddlewaretoken": csrf.group(1)}
    step = expect(call(session, "POST", "/login", "password: email", data=form), 200, "email step")
    if 'name="password"' not in step.text:
        raise LoginFailed("assert:password_step", step.text)
    done = call(session, "POST", "/login", "password: password", data={**form, "password": seed["password"]})
    expect(done, 302, "password step")
    _signed_in_as(session, email)
    return Done(email)


FLOWS: dict[str, Callable[[requests.Session, dict[str, Any], str], Done]] = {
    "saml": saml,
    "oidc": oidc,
    "password": password,
}


def email_for(flow: str, seed: dict[str, Any], number: int) -> str:
    """Who signs in: SSO people on the connection's domain (provisioned on first sign-in), or a password user."""
    if flow == "password":
        users: list[str] = seed["password_users"]
        return users[number % len(users)]
    return f"load-{number % 200}@{seed['sso_domain']}"
