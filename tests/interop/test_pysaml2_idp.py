"""Interop against a real peer: pysaml2's IdP (``saml2.server.Server``), in process.

pysaml2 signs and encrypts by running the ``xmlsec1`` program (Debian package
``xmlsec1``); these tests are skipped only when that program is absent.
The flow is the real one: our AuthnRequest (HTTP-Redirect) → pysaml2 parses it
and issues a Response → :func:`validate_response` accepts it. The last test runs
the same peer through Vestibule's real views (``/sso/start`` → ACS → session)
with the e2e driver, for the default signing policy: a Response signed as a
whole, as Keycloak sends it by default, is enough.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

saml2 = pytest.importorskip("saml2")
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT  # noqa: E402
from saml2.config import IdPConfig  # noqa: E402
from saml2.metadata import create_metadata_string  # noqa: E402
from saml2.server import Server  # noqa: E402

from tests import pysaml2_support as peer  # noqa: E402
from tests.pysaml2_support import AES256_CBC, AES256_GCM, IDP_ENTITY, IDP_SSO, XMLSEC1  # noqa: E402
from tests.saml_support import SP, cert  # noqa: E402
from vestibule.saml import (  # noqa: E402  # noqa: E402
    InMemoryReplayCache,
    SamlSettings,
    build_authn_request,
    build_sp_metadata,
    errors,
    parse_idp_metadata,
    validate_response,
)
from vestibule.saml.settings import EMAIL_ADDRESS  # noqa: E402

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(XMLSEC1 is None, reason="pysaml2 needs the xmlsec1 program (apt-get install xmlsec1)"),
]

IDENTITY = {"mail": ["alice@example.com"], "displayName": ["Alice Example"], "groups": ["eng", "ops"]}


def idp_config(key: str = "pysaml2_idp") -> dict[str, Any]:
    return peer.idp_config([build_sp_metadata(SP)], key)


@pytest.fixture
def server() -> Iterator[Server]:
    yield peer.make_server([build_sp_metadata(SP)])


def our_settings(**overrides: Any) -> SamlSettings:
    base: dict[str, Any] = {"idp_entity_id": IDP_ENTITY, "sso_url": IDP_SSO, "certificates": [cert("pysaml2_idp")]}
    base.update(overrides)
    return SamlSettings.from_dict(base)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)  # pysaml2 stamps real time; the test follows it.


def sp_initiated(server: Server, settings: SamlSettings, **response_kw: Any) -> tuple[str, str]:
    url, request_id = build_authn_request(SP, settings, now(), "rs-1")
    query = parse_qs(urlsplit(url).query)
    request = server.parse_authn_request(query["SAMLRequest"][0], BINDING_HTTP_REDIRECT)
    assert request.message.id == request_id
    assert request.message.assertion_consumer_service_url == SP.acs_url
    response = issue(server, in_response_to=request_id, **response_kw)
    return response, request_id


def issue(server: Server, *, in_response_to: str | None, **kw: Any) -> str:
    return peer.issue(
        server, in_response_to=in_response_to, destination=SP.acs_url, sp_entity_id=SP.entity_id,
        name_id="alice@example.com", identity=IDENTITY, **kw,
    )  # fmt: skip


def validate(b64: str, settings: SamlSettings, request_id: str | None) -> Any:
    return validate_response(
        b64, sp=SP, settings=settings, now=now(), expected_request_id=request_id, replay=InMemoryReplayCache()
    )


def test_sp_initiated_assertion_signed(server: Server) -> None:
    settings = our_settings()
    response, request_id = sp_initiated(server, settings)
    result = validate(response, settings, request_id)
    assert result.name_id == "alice@example.com"
    assert result.signed_parts == ("assertion",)
    assert result.attributes["groups"] == ("eng", "ops")
    assert result.in_response_to == request_id


def test_sp_initiated_response_signed_only(server: Server) -> None:
    settings = our_settings(want_assertions_signed=False, want_response_signed=True)
    response, request_id = sp_initiated(server, settings, sign_response=True, sign_assertion=False)
    assert validate(response, settings, request_id).signed_parts == ("response",)


def test_sp_initiated_response_signed_only_accepted_by_default(server: Server) -> None:
    """pysaml2 signing the Response only (Keycloak's default shape) passes Vestibule's default settings."""
    settings = our_settings()
    assert not settings.want_assertions_signed and not settings.want_response_signed
    response, request_id = sp_initiated(server, settings, sign_response=True, sign_assertion=False)
    result = validate(response, settings, request_id)
    assert result.signed_parts == ("response",)
    assert result.name_id == "alice@example.com" and result.attributes["groups"] == ("eng", "ops")


def test_sp_initiated_response_signed_only_refused_when_want_assertions_signed(server: Server) -> None:
    """The opt-in refuses the same pysaml2 output; with the assertion signed too, it passes."""
    settings = our_settings(want_assertions_signed=True)
    response, request_id = sp_initiated(server, settings, sign_response=True, sign_assertion=False)
    with pytest.raises(errors.UnsignedError):
        validate(response, settings, request_id)
    response, request_id = sp_initiated(server, settings, sign_response=True, sign_assertion=True)
    assert validate(response, settings, request_id).signed_parts == ("response", "assertion")


def test_sp_initiated_nothing_signed_refused(server: Server) -> None:
    settings = our_settings()
    response, request_id = sp_initiated(server, settings, sign_response=False, sign_assertion=False)
    with pytest.raises(errors.UnsignedError):
        validate(response, settings, request_id)


def test_sp_initiated_response_and_assertion_signed(server: Server) -> None:
    settings = our_settings(want_response_signed=True)
    response, request_id = sp_initiated(server, settings, sign_response=True, sign_assertion=True)
    assert validate(response, settings, request_id).signed_parts == ("response", "assertion")


def test_idp_initiated(server: Server) -> None:
    settings = our_settings(allow_idp_initiated=True)
    result = validate(issue(server, in_response_to=None), settings, None)
    assert result.in_response_to is None


def test_idp_initiated_refused_by_default(server: Server) -> None:
    with pytest.raises(errors.UnsolicitedResponseError):
        validate(issue(server, in_response_to=None), our_settings(), None)


def test_certificate_rollover(server: Server) -> None:
    """The IdP has switched to its second key; both certificates are in the ring."""
    rolled = peer.make_server([build_sp_metadata(SP)], "pysaml2_idp_next")
    settings = our_settings(certificates=[cert("pysaml2_idp"), cert("pysaml2_idp_next")])
    response, request_id = sp_initiated(rolled, settings)
    assert validate(response, settings, request_id).name_id == "alice@example.com"
    old_ring_only = our_settings()
    response, request_id = sp_initiated(rolled, old_ring_only)
    with pytest.raises(errors.CertificateUntrustedError):
        validate(response, old_ring_only, request_id)


@pytest.mark.parametrize("algorithm", [AES256_GCM, AES256_CBC])
def test_encrypted_assertion(server: Server, algorithm: str) -> None:
    """pysaml2 encrypts to the SP encryption certificate published in our metadata."""
    settings = our_settings(want_assertions_encrypted=True, allow_aes_cbc=algorithm == AES256_CBC)
    with peer.aes_encryption(server, algorithm):
        response, request_id = sp_initiated(
            server,
            settings,
            encrypt_assertion=True,
            encrypt_cert_assertion=SP.encryption.certificate_pem,  # type: ignore[union-attr]
        )
    assert b"EncryptedAssertion" in base64.b64decode(response)
    assert validate(response, settings, request_id).name_id == "alice@example.com"


def test_default_triple_des_encryption_is_refused(server: Server) -> None:
    """Out of the box pysaml2 encrypts with 3DES-CBC, which Vestibule refuses with a clear code."""
    settings = our_settings()
    response, request_id = sp_initiated(
        server,
        settings,
        encrypt_assertion=True,
        encrypt_cert_assertion=SP.encryption.certificate_pem,  # type: ignore[union-attr]
    )
    with pytest.raises(errors.AlgorithmNotAllowedError) as exc:
        validate(response, settings, request_id)
    assert exc.value.received is not None and "tripledes" in exc.value.received


def test_import_pysaml2_idp_metadata() -> None:
    config = idp_config()
    config["service"]["idp"]["endpoints"]["single_sign_on_service"].append((IDP_SSO + "/post", BINDING_HTTP_POST))
    xml = create_metadata_string(None, config=IdPConfig().load(config), sign=False)
    settings = parse_idp_metadata(xml if isinstance(xml, bytes) else xml.encode())
    assert settings.idp_entity_id == IDP_ENTITY
    assert settings.sso_url == IDP_SSO and settings.sso_binding == "redirect"
    assert settings.certificates == our_settings().certificates
    assert settings.name_id_format == EMAIL_ADDRESS


# --- Through Vestibule's real ACS view ------------------------------------------


@pytest.mark.django_db
def test_acs_login_with_response_signed_only_by_default(api: Any, make_account: Any) -> None:
    """The whole path, default connection settings: /sso/start → pysaml2 signs the Response only → ACS → session.

    The IdP learns the SP from the metadata Vestibule publishes for the
    connection (which now says WantAssertionsSigned="false"); the login trace
    records that the Response signature is what covered the assertion.
    """
    from django.test import Client

    from tests.e2e.drivers.saml_driver import SamlDriver

    make_account("acme")
    driver = SamlDriver()
    payload = {
        "protocol": "saml", "name": "pysaml2", "domains": ["acme.com"],
        "auto_provision": True, "provisioned_users_can_login": True, **driver.connection_settings(),
    }  # fmt: skip
    created = api.post("/api/v1/accounts/acme/connections", payload)
    assert created.status_code == 201, created.content[:500]
    enabled = api.patch(f"/api/v1/connections/{created.json()['id']}", {"enabled": True})
    assert enabled.status_code == 200, enabled.content[:500]
    connection = enabled.json()
    assert connection["saml"]["want_assertions_signed"] is False

    metadata = Client().get(urlsplit(connection["metadata_url"]).path)
    assert b'WantAssertionsSigned="false"' in metadata.content

    browser = Client()
    claims = {"email": "alice@acme.com", "name": "Alice Example"}
    response = driver.login(
        browser, connection, subject="alice@acme.com", claims=claims, next="/api/v1/session",
        sign_response=True, sign_assertion=False,
    )  # fmt: skip
    assert response.status_code == 302 and response["Location"] == "/api/v1/session", response.content[:500]
    me = browser.get("/api/v1/session").json()
    assert me["email"] == "alice@acme.com" and me["login_method"] == "sso"
    trace = api.get("/api/v1/accounts/acme/login-traces").json()[0]
    assert trace["outcome"] == "success"
    assert next(step for step in trace["steps"] if step["step"] == "validate")["signed"] == "response"

    # Refusal beside it: the connection that opts in to signed assertions refuses the same IdP output.
    strict = {**connection["saml"], "want_assertions_signed": True}
    assert api.patch(f"/api/v1/connections/{connection['id']}", {"saml": strict}).status_code == 200
    refused = driver.login(
        Client(), connection, subject="alice@acme.com", claims=claims, sign_response=True, sign_assertion=False
    )
    assert 400 <= refused.status_code < 500 and b"saml.unsigned" in refused.content, refused.content[:500]
