"""SamlSettings: strict parsing of the per-connection SAML settings JSON, secure defaults."""

from __future__ import annotations

from typing import Any

import pytest

from tests.saml_support import IDP, cert
from vestibule.saml import SamlSettings, default_settings, errors
from vestibule.saml.settings import EMAIL_ADDRESS


def doc(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"idp_entity_id": IDP.entity_id, "sso_url": IDP.sso_url, "certificates": [cert("idp")]}
    base.update(overrides)
    return base


def field_error(data: dict[str, Any]) -> str:
    with pytest.raises(errors.SamlSettingsError) as exc:
        SamlSettings.from_dict(data)
    assert exc.value.code == "saml.settings_invalid"
    return exc.value.field


def test_secure_defaults() -> None:
    s = SamlSettings.from_dict(doc())
    assert s.name_id_format == EMAIL_ADDRESS
    # Either signature is enough by default (at least one is always required,
    # tests/security/test_saml_attacks.py); requiring a particular one is an opt-in.
    assert not s.want_assertions_signed and not s.want_response_signed
    assert not (s.allow_sha1 or s.allow_idp_initiated or s.allow_aes_cbc or s.want_assertions_encrypted)
    assert s.clock_skew_seconds == 120


def test_round_trip() -> None:
    s = SamlSettings.from_dict(doc(allow_idp_initiated=True, certificates=[cert("idp"), cert("idp_next")]))
    assert SamlSettings.from_dict(s.to_dict()) == s
    assert s.to_dict()["certificates"] == [cert("idp"), cert("idp_next")]


def test_seed_identifier_format_alias() -> None:
    s = SamlSettings.from_dict(doc(identifierFormat="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"))
    assert s.name_id_format.endswith("persistent")
    assert field_error(doc(identifierFormat=EMAIL_ADDRESS, name_id_format=EMAIL_ADDRESS)) == "name_id_format"


def test_bare_base64_certificate_is_normalized() -> None:
    bare = "".join(cert("idp").strip().splitlines()[1:-1])
    assert SamlSettings.from_dict(doc(certificates=[bare])).certificates == (cert("idp"),)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (doc(unknown=1), "unknown"),
        ({"sso_url": IDP.sso_url, "certificates": [cert("idp")]}, "idp_entity_id"),
        (doc(idp_entity_id=""), "idp_entity_id"),
        (doc(sso_url="http://idp.example.test/sso"), "sso_url"),
        (doc(sso_url="javascript:alert(1)"), "sso_url"),
        (doc(sso_binding="artifact"), "sso_binding"),
        (doc(certificates=[]), "certificates"),
        (doc(certificates=["not a cert"]), "certificates[0]"),
        (doc(certificates=[cert("idp"), cert("idp")]), "certificates[1]"),
        (doc(certificates=[1]), "certificates"),
        (doc(want_assertions_signed="yes"), "want_assertions_signed"),
        (doc(allow_sha1=1), "allow_sha1"),
        (doc(clock_skew_seconds=601), "clock_skew_seconds"),
        (doc(clock_skew_seconds=-1), "clock_skew_seconds"),
        (doc(clock_skew_seconds=True), "clock_skew_seconds"),
        (doc(name_id_format="email"), "name_id_format"),
    ],
)
def test_rejects_invalid_field(data: dict[str, Any], field: str) -> None:
    assert field_error(data) == field


def test_default_settings_document_is_incomplete_until_configured() -> None:
    d = default_settings()
    assert d["name_id_format"] == EMAIL_ADDRESS and d["want_assertions_signed"] is False
    assert field_error(d) == "idp_entity_id"
    assert SamlSettings.from_dict({**d, **doc()}).allow_idp_initiated is False


def test_settings_are_hashable_and_frozen() -> None:
    s = SamlSettings.from_dict(doc())
    with pytest.raises(AttributeError):
        s.allow_sha1 = True  # type: ignore[misc]
    assert s.trusted_certificates[0].subject
