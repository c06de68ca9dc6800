"""node-saml / passport-saml options translated into Vestibule's SAML settings (seed 001's import format).

Every translated document is also fed to ``SamlSettings.from_dict``: the
translation is only useful if what comes out is a valid settings document
with the meaning the old system gave it.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.saml_support import IDP, cert
from vestibule.saml import SamlSettings, default_settings, errors
from vestibule.saml.node_saml import is_node_saml, key_names, translate
from vestibule.saml.settings import EMAIL_ADDRESS, PERSISTENT, UNSPECIFIED

NATIVE = frozenset(default_settings())


def bare(name: str) -> str:
    """A certificate as node-saml configurations often hold it: base64 without PEM armour."""
    return "".join(cert(name).strip().splitlines()[1:-1])


def node(**overrides: Any) -> dict[str, Any]:
    """The shape seed 001's system keeps in its "SAML settings" text area."""
    base: dict[str, Any] = {
        "entryPoint": IDP.sso_url,
        "idpIssuer": IDP.entity_id,
        "issuer": "https://rbqm.example.com/saml/metadata",
        "callbackUrl": "https://rbqm.example.com/saml/callback",
        "cert": bare("idp"),
        "identifierFormat": EMAIL_ADDRESS,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


def settings_of(doc: dict[str, Any]) -> SamlSettings:
    return SamlSettings.from_dict({**default_settings(), **translate(doc, vestibule_keys=NATIVE).settings})


def error_of(doc: Any) -> errors.SamlSettingsError:
    with pytest.raises(errors.SamlSettingsError) as caught:
        translate(doc, vestibule_keys=NATIVE)
    return caught.value


def test_a_typical_node_saml_document_becomes_valid_settings() -> None:
    settings = settings_of(node(acceptedClockSkewMs=5000, wantAuthnResponseSigned=False, wantAssertionsSigned=True))
    assert settings.idp_entity_id == IDP.entity_id
    assert settings.sso_url == IDP.sso_url
    assert settings.certificates == (cert("idp"),)  # bare base64 in, PEM out
    assert settings.name_id_format == EMAIL_ADDRESS
    assert settings.clock_skew_seconds == 5
    assert settings.want_assertions_signed is True and settings.want_response_signed is False


def test_only_the_keys_given_are_translated() -> None:
    """A partial document changes only what it names: the caller merges it over the stored settings."""
    assert translate({"entryPoint": IDP.sso_url}).settings == {"sso_url": IDP.sso_url}
    assert translate({"idpCert": [bare("idp"), bare("idp_next")]}).settings == {
        "certificates": [bare("idp"), bare("idp_next")]
    }


def test_issuer_is_the_service_providers_own_id_not_the_idps() -> None:
    """node-saml's issuer names the old SP; taking it as the IdP's entity ID would pin the wrong Issuer."""
    translation = translate(node(idpIssuer=...), vestibule_keys=NATIVE)
    assert "idp_entity_id" not in translation.settings
    assert any("issuer is the old service provider's own entity ID" in n for n in translation.notes)
    with pytest.raises(errors.SamlSettingsError) as caught:
        SamlSettings.from_dict({**default_settings(), **translation.settings})
    assert caught.value.field == "idp_entity_id"
    assert key_names(node(idpIssuer=...))["idp_entity_id"] == "idpIssuer"


def test_cert_and_idp_cert_are_the_same_setting() -> None:
    assert settings_of(node(cert=..., idpCert=cert("idp"))).certificates == settings_of(node()).certificates
    assert error_of(node(idpCert=cert("idp"))).field == "cert"  # both given
    assert key_names({"cert": "x"})["certificates"] == "cert"
    assert key_names({"idpCert": "x"})["certificates"] == "idpCert"


def test_one_string_with_several_pem_blocks_is_a_ring() -> None:
    ring = cert("idp").strip() + "\n" + cert("idp_next").strip()
    assert settings_of(node(cert=ring)).certificates == (cert("idp"), cert("idp_next"))


def test_post_and_redirect_bindings() -> None:
    assert settings_of(node(authnRequestBinding="HTTP-POST")).sso_binding == "post"
    assert settings_of(node(authnRequestBinding="HTTP-Redirect")).sso_binding == "redirect"
    assert error_of(node(authnRequestBinding="HTTP-Artifact")).field == "authnRequestBinding"


def test_identifier_format_null_means_the_idp_chooses() -> None:
    assert settings_of(node(identifierFormat=None)).name_id_format == UNSPECIFIED
    assert settings_of(node(identifierFormat=PERSISTENT)).name_id_format == PERSISTENT


def test_clock_skew_is_rounded_up_to_whole_seconds() -> None:
    assert settings_of(node(acceptedClockSkewMs=0)).clock_skew_seconds == 0
    assert settings_of(node(acceptedClockSkewMs=1500)).clock_skew_seconds == 2
    assert settings_of(node(acceptedClockSkewMs=600_000)).clock_skew_seconds == 600


@pytest.mark.parametrize(
    ("doc", "field", "words"),
    [
        (node(acceptedClockSkewMs=-1), "acceptedClockSkewMs", "cannot turn time checks off"),
        (node(acceptedClockSkewMs=600_001), "acceptedClockSkewMs", "at most 600000 ms"),
        (node(acceptedClockSkewMs="5000"), "acceptedClockSkewMs", "whole number"),
        (node(wantAssertionsSigned=False, wantAuthnResponseSigned=False), "wantAssertionsSigned", "Response or the Assertion signed"),
        (node(wantAssertionsSigned="yes"), "wantAssertionsSigned", "true or false"),
        (node(entryPoint=""), "entryPoint", "non-empty string"),
        (node(cert=[]), "cert", "certificate"),
        (node(cert=42), "cert", "certificate"),
        (node(entryPont=IDP.sso_url), "entryPont", "neither a node-saml option"),
        (node(sso_url=IDP.sso_url), "sso_url", "send one format"),
    ],
    ids=["time-checks-off", "skew-too-long", "skew-not-a-number", "no-signature", "bool-as-string", "empty-entry-point",
         "no-cert", "cert-not-text", "typo", "mixed-formats"],
)  # fmt: skip
def test_refusals_name_the_node_saml_key(doc: dict[str, Any], field: str, words: str) -> None:
    error = error_of(doc)
    assert error.field == field and words in error.description, (error.field, error.description)
    assert error.code == "saml.settings_invalid"


def test_the_old_service_providers_keys_are_never_imported() -> None:
    """Private keys of the old SP stay out; signing requests is kept as a wish, with Vestibule's own key."""
    translation = translate(
        node(privateKey="-----BEGIN PRIVATE KEY-----\nMIIE...\n-----END PRIVATE KEY-----", decryptionPvk="pvk")
    )
    assert translation.settings["sign_authn_requests"] is True
    assert not any("PRIVATE" in str(v) or v == "pvk" for v in translation.settings.values())
    note = next(n for n in translation.notes if "privateKey" in n)
    assert "decryptionPvk" in note and "own keys" in note and "sign_authn_requests was turned on" in note


def test_looser_validation_options_are_reported_not_applied() -> None:
    translation = translate(
        node(validateInResponseTo="never", audience=False, forceAuthn=True, signatureAlgorithm="sha1")
    )
    assert set(translation.settings) == {"sso_url", "idp_entity_id", "certificates", "name_id_format"}
    assert not settings_of(node(validateInResponseTo="never")).allow_idp_initiated
    notes = " ".join(translation.notes)
    assert "validateInResponseTo not applied" in notes
    assert "audience: false not applied" in notes
    assert "forceAuthn, signatureAlgorithm not used by Vestibule" in notes
    assert "callbackUrl" in notes and "acs_url" in notes


def test_null_options_count_as_not_set() -> None:
    assert translate({"entryPoint": IDP.sso_url, "logoutUrl": None, "idpCert": None}).settings == {
        "sso_url": IDP.sso_url
    }


def test_detection_by_keys() -> None:
    assert is_node_saml(node())
    assert is_node_saml({"cert": "x"}) and is_node_saml({"issuer": "x"})
    assert not is_node_saml({"idp_entity_id": "x", "sso_url": IDP.sso_url})
    # identifierFormat alone is Vestibule's alias too (seed 001's spelling): not node-saml by itself.
    assert not is_node_saml({"identifierFormat": EMAIL_ADDRESS, "idp_entity_id": "x"})


def test_not_an_object_is_refused() -> None:
    assert error_of(["entryPoint"]).field == "$"
