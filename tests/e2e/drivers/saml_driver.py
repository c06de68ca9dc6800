"""The SAML end-to-end driver: pysaml2's IdP answering Vestibule's real AuthnRequest.

Interface in tests/e2e/conftest.py. The flow is the one a browser makes:

1. ``GET /sso/start/<id>`` → Vestibule redirects to the IdP with an
   HTTP-Redirect AuthnRequest and an opaque RelayState;
2. pysaml2's ``saml2.server.Server`` (a real IdP written by others, set up
   in process by :mod:`tests.pysaml2_support`) parses that request, checks the
   ACS URL against the SP metadata it loaded from ``/sso/saml/<id>/metadata``
   and issues a signed (optionally encrypted) Response;
3. the Response and RelayState are POSTed to Vestibule's ACS.

Claims become SAML attributes, one AttributeValue per list item (a list is a
multi-valued attribute). The IdP learns the SP only from Vestibule's
published metadata, so the encryption test also shows that the published
encryption certificate is usable.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.test import Client

pytest.importorskip("saml2")

from saml2 import BINDING_HTTP_REDIRECT
from saml2.server import Server

from tests import pysaml2_support as peer

if peer.XMLSEC1 is None:
    pytest.skip("pysaml2 needs the xmlsec1 program (apt-get install xmlsec1)", allow_module_level=True)


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


class SamlDriver:
    """SP-initiated (and IdP-initiated) SAML login against pysaml2's IdP.

    ``key`` picks the IdP signing key (``pysaml2_idp`` or ``pysaml2_idp_next``
    for rollover). Per-response options go to :meth:`login` as keywords:
    ``sign_assertion``, ``sign_response``, ``encrypt`` (AES-256-GCM to the
    certificate in Vestibule's SP metadata), or any ``create_authn_response``
    argument (``sp_entity_id`` overrides the audience, ``destination`` the
    Response destination).
    """

    protocol = "saml"

    def __init__(self, *, key: str = "pysaml2_idp") -> None:
        self.key = key
        self._servers: dict[tuple[str, str], Server] = {}
        self.last_response: str | None = None
        self.last_relay_state: str | None = None

    def connection_settings(self, *, certificates: list[str] | None = None, **saml: Any) -> dict[str, Any]:
        return {
            "saml": {
                "idp_entity_id": peer.IDP_ENTITY,
                "sso_url": peer.IDP_SSO,
                "certificates": certificates or [peer.certificate(self.key)],
                **saml,
            }
        }

    def server(self, connection: dict[str, Any]) -> Server:
        """The IdP, loaded with the SP metadata Vestibule publishes for this connection now."""
        metadata = Client().get(_path(connection["metadata_url"]))
        assert metadata.status_code == 200, metadata.status_code
        cache_key = (self.key, hashlib.sha256(metadata.content).hexdigest())
        if cache_key not in self._servers:
            self._servers[cache_key] = peer.make_server([metadata.content], self.key)
        return self._servers[cache_key]

    def issue(
        self,
        connection: dict[str, Any],
        *,
        subject: str,
        claims: dict[str, Any],
        in_response_to: str | None,
        encrypt: bool = False,
        **kw: Any,
    ) -> str:
        server = self.server(connection)
        identity = {k: (list(v) if isinstance(v, (list, tuple)) else [v]) for k, v in claims.items()}
        args: dict[str, Any] = {"destination": connection["acs_url"], "sp_entity_id": connection["sp_entity_id"], **kw}
        if encrypt:
            with peer.aes_encryption(server, peer.AES256_GCM):
                return peer.issue(
                    server,
                    in_response_to=in_response_to,
                    name_id=subject,
                    identity=identity,
                    encrypt_assertion=True,
                    **args,
                )
        return peer.issue(server, in_response_to=in_response_to, name_id=subject, identity=identity, **args)

    def post(self, browser: Client, connection: dict[str, Any], saml_response: str, relay_state: str | None) -> Any:
        """POST to the ACS as the HTTP-POST binding's auto-submitting form does."""
        fields = {"SAMLResponse": saml_response}
        if relay_state is not None:
            fields["RelayState"] = relay_state
        self.last_response, self.last_relay_state = saml_response, relay_state
        return browser.post(_path(connection["acs_url"]), fields)

    def login(
        self,
        browser: Client,
        connection: dict[str, Any],
        *,
        subject: str,
        claims: dict[str, Any],
        next: str | None = None,
        **kw: Any,
    ) -> Any:
        start = _path(connection["sign_in_url"]) + (f"?{urlencode({'next': next})}" if next else "")
        response = browser.get(start)
        if response.status_code != 302:
            return response
        location = response["Location"]
        assert location.startswith(peer.IDP_SSO + "?"), location
        query = parse_qs(urlsplit(location).query)
        server = self.server(connection)
        request = server.parse_authn_request(query["SAMLRequest"][0], BINDING_HTTP_REDIRECT)
        # pysaml2 resolves where to answer from its SP metadata: an ACS URL the
        # metadata does not list is refused here, by the IdP.
        response_args = server.response_args(
            request.message, [BINDING_HTTP_REDIRECT, "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"]
        )
        assert response_args["destination"] == connection["acs_url"], response_args
        saml_response = self.issue(
            connection, subject=subject, claims=claims, in_response_to=response_args["in_response_to"], **kw
        )
        return self.post(browser, connection, saml_response, query.get("RelayState", [None])[0])

    def idp_initiated(
        self, browser: Client, connection: dict[str, Any], *, subject: str, claims: dict[str, Any], **kw: Any
    ) -> Any:
        """An unsolicited Response (no AuthnRequest, no RelayState), as from an IdP dashboard."""
        saml_response = self.issue(connection, subject=subject, claims=claims, in_response_to=None, **kw)
        return self.post(browser, connection, saml_response, None)
