"""Structured logs: no secret reaches a log line, every line is one JSON object, request IDs round-trip.

Every test captures each record the process emits (the root logger at DEBUG,
through the real JSON formatter of ``vestibule.conf.logging`` on a handler of
its own) while it drives real flows through the Django test client: password
sign-in, SAML through the ACS, OIDC at a real provider, the OpenID Provider's
code flow, the admin API and SCIM with their bearer secrets, a setup link, the
demo's sign-in link, a TOTP code, a CSRF refusal. Then it checks that none of
the secrets used appears in any line, in whole or in part (20-character
pieces of the long ones: a truncated or re-encoded token is still caught), and
that every line parses as JSON and, when written during a request, names it.

What counts as secret: passwords, API keys, SCIM tokens, setup and demo link
tokens, authorization codes, PKCE verifiers, access, ID and refresh tokens,
client secrets, the TOTP secret and code, the SAMLResponse and the assertion's
XML (its signature and content). Not secret: an assertion's ID, account
slugs, connection ids and reason codes, which the lines are meant to carry.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import secrets
import sys
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.signals import request_finished, request_started
from django.test import Client

from tests.conftest import PASSWORD, password_login
from tests.console.conftest import person  # noqa: F401  (signed-in browsers of the console)
from tests.directory.conftest import ScimClient
from tests.login.support import authenticator_code, current_step, give_totp
from tests.provider.support import Pkce, authorize_url, code_from, exchange, refresh, register_app, sign_in, userinfo
from tests.saml_support import KEYS, answer_authn_request
from tests.setup.conftest import connection, it_admin, link_url  # noqa: F401  (setup-link fixtures)
from vestibule.conf.logging import REDACTED, UNAVAILABLE_MARK, formatter, redact
from vestibule.conf.request_log import request_id_from
from vestibule.saml import IdentityProvider, KeyPair

pytestmark = pytest.mark.django_db

GENERATED_ID = re.compile(r"[0-9a-f]{32}")
PIECE = 20


class Capture(logging.Handler):
    """Every record, rendered by the production JSON formatter; whether a request was running when it came."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(formatter("json"))
        self.lines: list[tuple[str, bool]] = []
        self.in_request = False

    def emit(self, record: logging.LogRecord) -> None:
        # Not wrapped in handleError: a record the formatter cannot render must fail the test, not vanish.
        self.lines.append((self.format(record), self.in_request))

    def started(self, **_: Any) -> None:
        self.in_request = True

    def finished(self, **_: Any) -> None:
        self.in_request = False

    def text(self) -> str:
        return "\n".join(line for line, _ in self.lines)

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line, _ in self.lines]

    def events(self, event: str) -> list[dict[str, Any]]:
        return [r for r in self.records() if r["event"] == event]


@pytest.fixture
def logs() -> Iterator[Capture]:
    capture = Capture()
    root = logging.getLogger()
    level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    request_started.connect(capture.started)
    request_finished.connect(capture.finished)
    try:
        yield capture
    finally:
        request_started.disconnect(capture.started)
        request_finished.disconnect(capture.finished)
        root.removeHandler(capture)
        root.setLevel(level)


def pieces(secret: str) -> list[str]:
    """The whole secret when short; else every 20-character piece of it (a partial leak is a leak)."""
    if len(secret) <= PIECE:
        return [secret]
    return [secret[i : i + PIECE] for i in range(0, len(secret) - PIECE + 1, PIECE // 2)]


def leaks(capture: Capture, found: dict[str, str]) -> list[str]:
    """Which of the named secrets appear in a captured line, with the first such line (empty: none)."""
    out = []
    for name, secret in found.items():
        for piece in pieces(secret):
            line = next((line for line, _ in capture.lines if piece in line), None)
            if line is not None:
                out.append(f"{name} in: {line}")
                break
    return out


def assert_clean(capture: Capture, found: dict[str, str]) -> None:
    assert all(len(secret) >= 8 for secret in found.values()), "a short value would match by chance"
    assert not leaks(capture, found), leaks(capture, found)


def assert_well_formed(capture: Capture) -> None:
    assert capture.lines, "nothing was logged at all: the capture is broken"
    for line, in_request in capture.lines:
        assert "\n" not in line, line
        record = json.loads(line)
        assert {"timestamp", "level", "logger", "event"} <= record.keys(), line
        assert record["timestamp"].endswith("Z"), line  # ISO 8601, UTC
        if in_request:
            assert re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", record.get("request_id", "")), line


def request_lines(capture: Capture) -> list[dict[str, Any]]:
    lines = capture.events("request")
    for line in lines:
        assert {"method", "route", "status", "duration_ms", "request_id"} <= line.keys(), line
    return lines


# --- the checker itself can fail ---------------------------------------------------------------------------


def test_the_checker_finds_a_secret_that_reaches_the_log(logs: Capture) -> None:
    """Control: a secret written plainly, or only a middle part of it, is found; the well-formed check runs."""
    secret = "hunter2-" + secrets.token_hex(4)
    long_secret = secrets.token_hex(40)
    logging.getLogger("vestibule.test").warning("careless line with %s and ...%s...", secret, long_secret[30:60])
    assert [leak.split(" in: ")[0] for leak in leaks(logs, {"short": secret, "long": long_secret})] == [
        "short",
        "long",
    ]
    assert_well_formed(logs)


def test_a_line_written_during_a_request_without_its_id_fails_the_check(logs: Capture) -> None:
    logs.in_request = True
    logging.getLogger("vestibule.test").warning("no request id bound")
    with pytest.raises(AssertionError):
        assert_well_formed(logs)


# --- request IDs ---------------------------------------------------------------------------------------------


def test_a_valid_request_id_is_returned_and_names_the_request_line(logs: Capture, client: Client) -> None:
    response = client.get("/login", headers={"X-Request-ID": "lb-7f3a.42:edge"})
    assert response.status_code == 200 and response["X-Request-ID"] == "lb-7f3a.42:edge"
    [line] = request_lines(logs)
    assert line["request_id"] == "lb-7f3a.42:edge" and line["route"] == "login" and line["status"] == 200
    assert line["method"] == "GET" and line["logger"] == "vestibule.request" and line["level"] == "info"
    assert_well_formed(logs)


@pytest.mark.parametrize(
    "hostile",
    [
        'ok\n{"level": "critical", "event": "forged"}',
        "x" * 500,
        '{"event": "forged"}',
        "ok\r\nSet-Cookie: a=b",
        "has space",
        "",
        "ünïcode",
    ],
    ids=["newline-json", "500-chars", "json", "crlf", "space", "empty", "non-ascii"],
)
def test_a_hostile_request_id_is_replaced_by_a_new_one(logs: Capture, client: Client, hostile: str) -> None:
    response = client.get("/login", headers={"X-Request-ID": hostile})
    given = response["X-Request-ID"]
    assert given != hostile and GENERATED_ID.fullmatch(given)
    [line] = request_lines(logs)
    assert line["request_id"] == given
    assert "forged" not in logs.text() and "Set-Cookie" not in logs.text()
    assert_well_formed(logs)


def test_request_id_pattern_boundaries() -> None:
    assert request_id_from("a" * 128) == "a" * 128
    assert request_id_from("a" * 129) != "a" * 129
    assert request_id_from(None) != request_id_from(None)


def test_not_found_and_csrf_refusals_carry_the_request_id_and_no_path(logs: Capture) -> None:
    """Django logs 404s and CSRF refusals with the request path: here the route name replaces it."""
    browser = Client(enforce_csrf_checks=True)
    token = "vsu_" + secrets.token_urlsafe(24)
    missing = browser.get(f"/setup/{token}?code=QUERYSECRET-{token}")
    assert missing.status_code == 404 and GENERATED_ID.fullmatch(missing["X-Request-ID"])
    csrf_value = secrets.token_urlsafe(32)
    refused = browser.post("/login", {"email": "a@example.com", "csrfmiddlewaretoken": csrf_value})
    assert refused.status_code == 403 and GENERATED_ID.fullmatch(refused["X-Request-ID"])
    unmatched = browser.get(f"/no/such/{token}/path")
    assert unmatched.status_code == 404 and unmatched["X-Request-ID"]

    lines = request_lines(logs)
    assert [(r["route"], r["status"]) for r in lines] == [("setup:open", 404), ("login", 403), ("unmatched", 404)]
    assert [r["request_id"] for r in lines] == [r["X-Request-ID"] for r in (missing, refused, unmatched)]
    django_lines = [r for r in logs.records() if r["logger"].startswith(("django.request", "django.security"))]
    assert {r["request_id"] for r in django_lines} == {r["request_id"] for r in lines}
    assert any(r["event"].startswith("Forbidden (CSRF") and r["route"] == "login" for r in django_lines)
    assert "/setup/" not in logs.text() and "/no/such" not in logs.text()
    assert_clean(logs, {"setup token": token, "query string": "QUERYSECRET", "csrf token": csrf_value})
    assert_well_formed(logs)


def test_a_500_still_returns_its_request_id_and_logs_it_without_the_path(
    logs: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception below the request middleware: the 500 answer and both lines carry the same ID."""
    from vestibule.conf import metrics

    def broken(request: Any) -> str:
        raise RuntimeError("a bug")

    monkeypatch.setattr(metrics, "route_name", broken)
    token = "vsu_" + secrets.token_urlsafe(24)
    failed = Client(raise_request_exception=False).get(f"/setup/{token}", headers={"X-Request-ID": "five-hundred"})
    assert failed.status_code == 500 and failed["X-Request-ID"] == "five-hundred"
    [line] = request_lines(logs)
    assert line["status"] == 500 and line["request_id"] == "five-hundred" and line["route"] == "setup:open"
    [error] = [r for r in logs.records() if r["logger"] == "django.request"]
    assert error["request_id"] == "five-hundred" and error["event"] == "Internal Server Error: [path]"
    assert "RuntimeError: a bug" in error["exception"] and error["level"] == "error"
    assert_clean(logs, {"setup token": token})
    assert_well_formed(logs)


# --- password and TOTP --------------------------------------------------------------------------------------


def test_password_sign_in_logs_its_outcome_and_a_pseudonym_never_the_password(
    logs: Capture, make_user: Callable[..., Any]
) -> None:
    user = make_user("alice@example.com")
    wrong = "wrong password " + secrets.token_hex(6)
    refused = password_login(Client(), user.email, wrong)
    assert refused.status_code != 302
    accepted = password_login(Client(), user.email, PASSWORD)
    assert accepted.status_code == 302

    outcomes = logs.events("login.password")
    assert [r["outcome"] for r in outcomes] == ["invalid", "success"]
    # The same address, the same pseudonym; never the address itself.
    assert outcomes[0]["subject"] == outcomes[1]["subject"] and re.fullmatch(r"[0-9a-f]{16}", outcomes[0]["subject"])
    assert all(user.email not in json.dumps(r) for r in outcomes)
    assert all(r["request_id"] for r in outcomes)
    assert_clean(logs, {"password": PASSWORD, "wrong password": wrong})
    assert_well_formed(logs)


def test_a_totp_sign_in_logs_neither_the_secret_nor_the_code(logs: Capture, make_user: Callable[..., Any]) -> None:
    user = make_user("tom@example.com")
    secret = give_totp(user)
    browser = Client()
    assert password_login(browser, user.email, PASSWORD)["Location"] == "/login/totp"
    step = current_step()
    wrong = authenticator_code(secret, step + 9)
    assert browser.post("/login/totp", {"code": wrong}).status_code == 401
    code = authenticator_code(secret, step)
    assert browser.post("/login/totp", {"code": code}).status_code == 302

    assert_clean(logs, {"password": PASSWORD, "totp secret": secret})
    for value in (code, wrong):
        # Six digits: matched as a number of its own, not inside a timestamp's microseconds or an id.
        assert not re.search(rf"(?<![0-9A-Za-z.:]){value}(?![0-9A-Za-z])", logs.text()), value
    assert [(r["route"], r["status"]) for r in request_lines(logs)][-2:] == [("login-totp", 401), ("login-totp", 302)]
    assert_well_formed(logs)


# --- SAML through the ACS -----------------------------------------------------------------------------------

IDP = IdentityProvider(
    "https://idp.example.test/metadata",
    "https://idp.example.test/sso",
    KeyPair((KEYS / "idp.key").read_text(), (KEYS / "idp.crt").read_text()),
)
ATTACKER = IdentityProvider(
    IDP.entity_id, IDP.sso_url, KeyPair((KEYS / "attacker.key").read_text(), (KEYS / "attacker.crt").read_text())
)


def _saml_connection(api: Client) -> dict[str, Any]:
    assert api.post("/api/v1/accounts", {"slug": "acme", "name": "Acme"}, content_type="application/json").status_code
    r = api.post(
        "/api/v1/accounts/acme/connections",
        {
            "protocol": "saml", "name": "Okta", "domains": ["acme.com"],
            "auto_provision": True, "provisioned_users_can_login": True,
            "saml": {"idp_entity_id": IDP.entity_id, "sso_url": IDP.sso_url, "certificates": [IDP.signing.certificate_pem]},
        },
        content_type="application/json",
    )  # fmt: skip
    assert r.status_code == 201, r.content
    conn: dict[str, Any] = r.json()
    r = api.patch(f"/api/v1/connections/{conn['id']}", {"enabled": True}, content_type="application/json")
    assert r.status_code == 200, r.content
    return conn


def _saml_login(conn: dict[str, Any], idp: IdentityProvider, found: dict[str, str]) -> Any:
    browser = Client()
    start = browser.get(f"/sso/start/{conn['id']}")
    assert start.status_code == 302, start.content
    form = answer_authn_request(idp, start["Location"], conn)
    tag = "forged" if idp is ATTACKER else "genuine"
    found[f"{tag} SAMLResponse"] = form["SAMLResponse"]
    found[f"{tag} RelayState"] = form["RelayState"]
    decoded = base64.b64decode(form["SAMLResponse"]).decode()
    assertion = decoded[decoded.index("<saml:Assertion") : decoded.index("</saml:Assertion>")]
    # Its content is secret; the connection's id in its Recipient and Audience URLs is not (lines name it).
    found[f"{tag} assertion body"] = assertion.replace(conn["id"], "\0")
    signature = re.search(r"<ds:SignatureValue>([^<]+)<", decoded)
    assert signature
    found[f"{tag} signature"] = signature.group(1).replace("\n", "")
    return browser.post(urlsplit(conn["acs_url"]).path, form)


def test_a_saml_login_logs_account_connection_and_reason_never_the_response(logs: Capture, operator_key: str) -> None:
    api = Client(headers={"Authorization": f"Bearer {operator_key}"})
    conn = _saml_connection(api)
    found = {"API key": operator_key}
    assert _saml_login(conn, IDP, found).status_code == 302
    forged = _saml_login(conn, ATTACKER, found)
    assert forged.status_code in (400, 403)

    ends = logs.events("login.sso")
    assert [(r["outcome"], r["protocol"]) for r in ends] == [("success", "saml"), ("failure", "saml")]
    failure = ends[1]
    assert failure["account"] == "acme" and failure["connection"] == conn["id"]
    assert failure["reason"].startswith("sso.") and failure["request_id"]
    # The request line of the refused ACS post carries the same context.
    acs = [r for r in request_lines(logs) if r["route"] == "saml-acs"]
    assert len(acs) == 2 and acs[1]["reason"] == failure["reason"] and acs[1]["account"] == "acme"
    assert acs[1]["connection"] == conn["id"] and acs[1]["request_id"] == failure["request_id"]
    assert_clean(logs, found)
    assert_well_formed(logs)


# --- OIDC at a real provider (panva/oidc-provider, the e2e peer) --------------------------------------------


def test_an_oidc_login_logs_neither_client_secret_nor_code_nor_state(
    logs: Capture, request: pytest.FixtureRequest, operator_key: str
) -> None:
    from tests.e2e.drivers.oidc_driver import make_oidc_driver

    driver = make_oidc_driver(request)
    api = Client(headers={"Authorization": f"Bearer {operator_key}"})
    assert api.post("/api/v1/accounts", {"slug": "acme", "name": "Acme"}, content_type="application/json")
    payload = {
        "protocol": "oidc", "name": "OP", "domains": ["acme.com"], "auto_provision": True,
        "provisioned_users_can_login": True, **driver.connection_settings(),
    }  # fmt: skip
    made = api.post("/api/v1/accounts/acme/connections", payload, content_type="application/json")
    assert made.status_code == 201, made.content
    conn = api.patch(
        f"/api/v1/connections/{made.json()['id']}", {"enabled": True}, content_type="application/json"
    ).json()
    browser = Client()
    start = browser.get(urlsplit(conn["sign_in_url"]).path)
    callback = driver.authorize(start, conn, subject="oidc-ann", claims={"email": "ann@acme.com", "name": "Ann"})
    query = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
    done = browser.get(callback)
    assert done.status_code == 302, done.content[:1000]

    [end] = logs.events("login.sso")
    assert end["protocol"] == "oidc" and end["outcome"] == "success" and end["connection"] == conn["id"]
    assert driver.client_secret
    assert_clean(
        logs,
        {
            "client secret": driver.client_secret,
            "code": query["code"],
            "state": query["state"],
            "API key": operator_key,
        },
    )
    assert_well_formed(logs)


# --- the OpenID Provider -------------------------------------------------------------------------------------


def test_the_providers_code_flow_logs_no_code_verifier_secret_or_token(
    logs: Capture, make_user: Callable[..., Any], client: Client
) -> None:
    user = make_user("alice@example.com")
    app, secret = register_app()
    assert secret
    sign_in(client, user.email)
    pkce = Pkce.make()
    code = code_from(client.get(authorize_url(app.client_id, pkce)))
    issued = exchange(client, app, secret, code, pkce.verifier)
    assert issued.status_code == 200, issued.content
    tokens = issued.json()
    # The code again: refused (and the family revoked), an error path that must not echo it either.
    assert exchange(client, app, secret, code, pkce.verifier).status_code == 400
    assert exchange(client, app, "wrong-" + secret, code, pkce.verifier).status_code == 401
    rotated = refresh(client, app, secret, tokens["refresh_token"])
    assert rotated.status_code in (200, 400)
    assert userinfo(client, tokens["access_token"]).status_code in (200, 401)

    found = {
        "client secret": secret,
        "code": code,
        "code verifier": pkce.verifier,
        "access token": tokens["access_token"],
        "ID token": tokens["id_token"],
        "refresh token": tokens["refresh_token"],
        "password": PASSWORD,
    }
    if rotated.status_code == 200:
        found.update({f"rotated {k}": v for k, v in rotated.json().items() if k.endswith("_token")})
    routes = {r["route"] for r in request_lines(logs)}
    assert {"oauth2_provider:authorize", "oauth2_provider:token"} <= routes, routes
    assert_clean(logs, found)
    assert_well_formed(logs)


# --- bearer secrets: the admin API and SCIM -----------------------------------------------------------------


def test_api_keys_and_scim_tokens_never_reach_the_log(logs: Capture, account_key: Callable[[str], str]) -> None:
    key = account_key("acme")
    api = Client(headers={"Authorization": f"Bearer {key}"})
    made = api.post("/api/v1/accounts/acme/scim-tokens", {"name": "Okta"}, content_type="application/json")
    assert made.status_code == 201, made.content
    token = made.json()["token"]
    assert ScimClient(token).get("/Users").status_code == 200
    wrong_token = token[:-6] + "AAAAAA"
    assert ScimClient(wrong_token).get("/Users").status_code == 401
    wrong_key = key[:-6] + "AAAAAA"
    assert Client(headers={"Authorization": f"Bearer {wrong_key}"}).get("/api/v1/accounts/acme").status_code == 401

    assert {"status": 401} in [{"status": r["status"]} for r in request_lines(logs)]
    # The key's own account names the line once it may act there; a refused key names none.
    made_line = next(r for r in request_lines(logs) if r["status"] == 201)
    assert made_line["account"] == "acme"
    assert all("account" not in r for r in request_lines(logs) if r["status"] == 401)
    assert_clean(logs, {"API key": key, "SCIM token": token, "wrong SCIM token": wrong_token, "wrong key": wrong_key})
    assert_well_formed(logs)


# --- one-time links: setup and the demo ---------------------------------------------------------------------


def test_a_setup_links_token_never_reaches_the_log(
    logs: Capture,
    person: Callable[..., Any],  # noqa: F811
    connection: Callable[..., Any],  # noqa: F811
    it_admin: Callable[..., Any],  # noqa: F811
) -> None:
    conn = connection()
    admin = person("sam@acme.com", roles=["sso-admin"])
    path = "/console/a/acme/setup-links/"
    page = admin.post(path, {"connection": str(conn.pk), "provider": "okta", "hours": 24}, page=path)
    assert page.status_code == 200
    url = link_url(page.content.decode())
    token = url.rsplit("/", 1)[1]
    it = it_admin()
    assert it.get(urlsplit(url).path).status_code == 200
    assert it.open(url).status_code == 302
    assert it.get(it.step("values")).status_code == 200
    # The leaked URL in another browser: a 403, which Django logs with the path.
    assert it_admin().get(urlsplit(url).path).status_code == 403

    assert {"setup:open", "setup:values"} <= {r["route"] for r in request_lines(logs)}
    assert_clean(logs, {"setup token": token, "wizard id": it.link_id, "password": PASSWORD})
    assert_well_formed(logs)


def test_the_demo_sign_in_link_never_reaches_the_log(logs: Capture, settings: Any, tmp_path: Any) -> None:
    import dataclasses

    from vestibule.demo import seed_demo

    settings.VESTIBULE_TEST_IDP = True
    settings.CONFIG = dataclasses.replace(settings.CONFIG, data_dir=tmp_path)
    printed = "\n".join(seed_demo())
    link = re.search(r"(http://\S+/demo/sign-in/(\S+))$", printed, re.M)
    assert link
    landed = Client().get(urlsplit(link.group(1)).path)
    assert landed.status_code == 302
    assert Client().get(urlsplit(link.group(1)).path).status_code == 410  # spent

    # What the demo prints for the person running it (credentials, keys, secrets) stays out of the log.
    found = {"demo link token": link.group(2)}
    for label, pattern in {
        "admin password": r"admin@acme\.test / (\S+)",
        "operator key": r"Operator API key: (\S+)",
        "client secret": r"client_secret (\S+)",
    }.items():
        match = re.search(pattern, printed)
        assert match, (label, printed)
        found[label] = match.group(1)
    assert {"demo-sign-in"} <= {r["route"] for r in request_lines(logs)}
    assert_clean(logs, found)
    assert_well_formed(logs)


# --- the safety net and the formats --------------------------------------------------------------------------


def test_the_redaction_net_masks_secret_keys_jwts_and_random_runs() -> None:
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSIsImF1ZCI6IngifQ.c2lnbmF0dXJlLWJ5dGVz"
    blob = secrets.token_urlsafe(48)
    event = {
        "event": f"got {jwt} and {blob}",
        "password": "p",
        "client_secret": "s",
        "SAMLResponse": "PHNhbWw+",
        "Authorization": "Bearer x",
        "nested": {"refresh_token": "r", "ok": "fine"},
        "path": "site-packages/django/core/handlers/exception.py",
        "request_id": "a" * 64,
        "connection": "8053e8f2-842e-433a-a4a2-bfd567ebc701",
    }
    out = redact(None, "info", dict(event))
    assert out["event"] == f"got {REDACTED} and {REDACTED}"
    for key in ("password", "client_secret", "SAMLResponse", "Authorization"):
        assert out[key] == REDACTED, key
    assert out["nested"] == {"refresh_token": REDACTED, "ok": "fine"}
    # Controls: a file path, a request ID, a connection id are not mistaken for secrets.
    assert out["path"] == event["path"] and out["request_id"] == event["request_id"]
    assert out["connection"] == event["connection"]


def test_a_plain_logging_call_comes_out_as_json_and_text() -> None:
    record = logging.LogRecord("vestibule.x", logging.WARNING, __file__, 1, "hello %s", ("world",), None)
    line = json.loads(formatter("json").format(record))
    assert line["event"] == "hello world" and line["level"] == "warning" and line["logger"] == "vestibule.x"
    assert "positional_args" not in line
    text = formatter("text").format(record)
    assert "hello world" in text and "\n" not in text.strip()


def test_an_outage_is_logged_as_the_503_it_answered_not_as_a_500() -> None:
    """A request marked unavailable (vestibule.conf.unavailable) logs one warning, no traceback, no path."""
    from django.db import OperationalError
    from django.test import RequestFactory

    request = RequestFactory().get("/setup/vsu_secretTOKEN0123456789abcdefABCDEF")
    setattr(request, UNAVAILABLE_MARK, "database")
    try:
        raise OperationalError("connection to server at 10.0.0.5 failed: password authentication failed")
    except OperationalError:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "django.request", logging.ERROR, __file__, 1, "Internal Server Error: %s", (request.path,), exc_info
    )
    record.status_code = 500
    record.request = request
    line = json.loads(formatter("json").format(record))
    assert line["level"] == "warning" and line["status"] == 503 and line["event"] == "Service unavailable: database"
    assert line["error"] == "OperationalError" and "exception" not in line
    assert "10.0.0.5" not in json.dumps(line) and "/setup/" not in json.dumps(line)
    # Control: the same failure without the mark stays a 500 with its traceback, the path still hidden.
    delattr(request, UNAVAILABLE_MARK)
    record.exc_info = exc_info
    line = json.loads(formatter("json").format(record))
    assert line["level"] == "error" and line["status"] == 500 and line["event"] == "Internal Server Error: [path]"
    assert "OperationalError" in line["exception"]


def test_a_request_record_with_unhashable_arguments_still_renders() -> None:
    from django.test import RequestFactory

    request = RequestFactory().get("/setup/vsu_x")
    record = logging.LogRecord(
        "django.request", logging.WARNING, __file__, 1, "%s %s %s", ([1], {"a": 1}, "/setup/vsu_x"), None
    )
    record.request = request
    line = json.loads(formatter("json").format(record))
    assert line["event"] == "[1] {'a': 1} [path]" and line["route"] == "unmatched"


def test_console_emails_go_to_stdout_not_the_log(logs: Capture, capsys: pytest.CaptureFixture[str]) -> None:
    from django.core.mail import EmailMessage

    from vestibule.login.mail import ConsoleEmailBackend

    link = "http://localhost/password/reset/" + secrets.token_urlsafe(32)
    ConsoleEmailBackend().send_messages([EmailMessage("Reset", f"Open {link}", to=["a@example.com"])])
    out = capsys.readouterr().out
    assert link in out and "----- email to a@example.com" in out
    assert link not in logs.text()


def test_the_capture_sees_the_real_configuration() -> None:
    """The handler under test is the one settings install: LOGGING's formatter is this module's."""
    from django.conf import settings

    assert settings.LOGGING_CONFIG == "vestibule.conf.logging.configure"
    assert settings.LOGGING["formatters"]["structured"]["()"] is formatter
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter("json"))
    logging.getLogger("vestibule.x").addHandler(handler)
    try:
        import structlog

        structlog.get_logger("vestibule.x").warning("structured", account="acme", token="t0ps3cret")
    finally:
        logging.getLogger("vestibule.x").removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert line["event"] == "structured" and line["account"] == "acme" and line["token"] == REDACTED
