"""The SAML end-to-end driver (see tests/e2e/conftest.py for the interface)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.test import Client

from tests.saml_support import KEYS
from vestibule.saml import IdentityProvider, KeyPair, build_response, parse_authn_request
from vestibule.saml.idp import response_form


class SamlDriver:
    """SP-initiated SAML login; the IdP side is vestibule.saml.idp until the pysaml2 driver lands."""

    protocol = "saml"

    def __init__(self) -> None:
        self.idp = IdentityProvider(
            "https://idp.example.test/metadata",
            "https://idp.example.test/sso",
            KeyPair((KEYS / "idp.key").read_text(), (KEYS / "idp.crt").read_text()),
        )

    def connection_settings(self) -> dict[str, Any]:
        return {"saml": {"idp_entity_id": self.idp.entity_id, "sso_url": self.idp.sso_url, "certificates": [self.idp.signing.certificate_pem]}}

    def login(self, browser: Client, connection: dict[str, Any], *, subject: str, claims: dict[str, Any], next: str | None = None) -> Any:
        # Encoded, so hostile targets (//evil.example, /\\evil) reach Vestibule intact.
        start = urlsplit(connection["sign_in_url"]).path + (f"?{urlencode({'next': next})}" if next else "")
        response = browser.get(start)
        if response.status_code != 302:
            return response
        request = parse_authn_request(self.idp, urlsplit(response["Location"]).query)
        attributes = {k: (v if isinstance(v, list) else [v]) for k, v in claims.items()}
        xml = build_response(
            self.idp, sp_entity_id=connection["sp_entity_id"], acs_url=connection["acs_url"], name_id=subject,
            attributes=attributes, now=dt.datetime.now(dt.timezone.utc), in_response_to=request.request_id,
        )  # fmt: skip
        form = response_form(xml, connection["acs_url"], request.relay_state)
        return browser.post(urlsplit(connection["acs_url"]).path, dict(form.fields))
