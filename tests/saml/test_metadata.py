"""IdP metadata import (vendor-shaped fixtures) and SP metadata generation."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from tests.saml_support import FIXTURES, IDP, NOW, SP, cert, key_pair, settings, signed_response, validate
from vestibule.saml import IdentityProvider, SamlSettings, build_sp_metadata, errors, parse_idp_metadata
from vestibule.saml.idp import build_idp_metadata
from vestibule.saml.settings import EMAIL_ADDRESS
from vestibule.saml.sp import ServiceProvider
from vestibule.saml.xml import MD

METADATA = FIXTURES / "metadata"


def load(name: str) -> bytes:
    return (METADATA / f"{name}.xml").read_bytes()


def test_okta() -> None:
    s = parse_idp_metadata(load("okta"))
    assert s.idp_entity_id == "http://www.okta.com/exk9vestib0le4417239"
    assert s.sso_binding == "redirect" and s.sso_url.endswith("/sso/saml")
    assert s.certificates == (cert("okta"),)
    assert s.name_id_format == EMAIL_ADDRESS  # Listed among others: preferred.


def test_entra_two_signing_keys_and_role_descriptor_noise() -> None:
    s = parse_idp_metadata(load("entra"))
    assert s.idp_entity_id.startswith("https://sts.windows.net/")
    assert s.certificates == (cert("entra"), cert("entra_next"))
    assert s.sso_url.endswith("/saml2") and s.sso_binding == "redirect"


def test_google() -> None:
    s = parse_idp_metadata(load("google"))
    assert s.idp_entity_id == "https://accounts.google.com/o/saml2?idpid=C03v8stb1"
    assert s.sso_url == "https://accounts.google.com/o/saml2/idp?idpid=C03v8stb1"
    assert s.certificates == (cert("google"),)


def test_adfs_ignores_encryption_key_and_sp_descriptor() -> None:
    s = parse_idp_metadata(load("adfs"))
    assert s.idp_entity_id == "http://adfs.contoso.example/adfs/services/trust"
    assert s.certificates == (cert("adfs_signing"), cert("adfs_signing_next"))
    assert cert("adfs_encryption") not in s.certificates
    assert s.sso_url == "https://adfs.contoso.example/adfs/ls/"


def test_entities_descriptor_requires_choice_when_ambiguous() -> None:
    with pytest.raises(errors.MetadataError) as exc:
        parse_idp_metadata(load("entities_descriptor"))
    assert exc.value.received is not None and "idp-a" in exc.value.received and "idp-b" in exc.value.received


def test_entities_descriptor_pick_by_entity_id_and_key_without_use() -> None:
    a = parse_idp_metadata(load("entities_descriptor"), "https://idp-a.federation.test/idp/shibboleth")
    assert a.sso_binding == "post" and a.certificates == (cert("idp"),)
    b = parse_idp_metadata(load("entities_descriptor"), "https://idp-b.federation.test/saml2/idp")
    assert b.certificates == (cert("idp_next"),)  # KeyDescriptor without use = signing.
    with pytest.raises(errors.MetadataError):
        parse_idp_metadata(load("entities_descriptor"), "https://sp.federation.test/shibboleth")


def test_rejects_metadata_without_signing_certificate() -> None:
    xml = load("adfs")
    root = etree.fromstring(xml)
    idp = root.find(f"{{{MD}}}IDPSSODescriptor")
    assert idp is not None
    for kd in idp.findall(f"{{{MD}}}KeyDescriptor"):
        if kd.get("use") == "signing":
            idp.remove(kd)
    with pytest.raises(errors.MetadataError) as exc:
        parse_idp_metadata(etree.tostring(root))
    assert "no usable signing certificate" in exc.value.description


@pytest.mark.parametrize(
    "xml",
    [
        b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
        b"<not-xml",
        b'<html xmlns="http://www.w3.org/1999/xhtml"/>',
    ],
)
def test_rejects_hostile_or_foreign_documents(xml: bytes) -> None:
    with pytest.raises(errors.MetadataError):
        parse_idp_metadata(xml)


def test_imported_settings_validate_a_response_signed_by_that_idp() -> None:
    """End to end: Google-shaped metadata in, a response signed with that key accepted."""
    s = parse_idp_metadata(load("google"))
    google = IdentityProvider(s.idp_entity_id, s.sso_url, key_pair("google"))

    def as_google(el: etree._Element) -> None:
        for issuer in el.iter("{urn:oasis:names:tc:SAML:2.0:assertion}Issuer"):
            issuer.text = google.entity_id

    response = signed_response(signer=google.signing, mutate_assertion=as_google, mutate_response=as_google)
    assert validate(response, settings_=s).issuer == google.entity_id
    assert NOW


def test_round_trip_own_idp_metadata() -> None:
    s = parse_idp_metadata(build_idp_metadata(IDP, next_certificate=cert("idp_next")))
    assert s.certificates == (cert("idp"), cert("idp_next"))


def test_sp_metadata_publishes_current_and_next_keys() -> None:
    sp = ServiceProvider(
        SP.entity_id, SP.acs_url, SP.metadata_url, signing=key_pair("sp_signing"),
        encryption=key_pair("sp_encryption"), next_signing_certificate=cert("idp_next"),
        next_encryption=key_pair("sp_encryption_next"),
    )  # fmt: skip
    root = etree.fromstring(build_sp_metadata(sp))
    assert root.get("entityID") == SP.entity_id
    descriptor = root.find(f"{{{MD}}}SPSSODescriptor")
    assert descriptor is not None and descriptor.get("WantAssertionsSigned") == "false"
    uses = [kd.get("use") for kd in descriptor.findall(f"{{{MD}}}KeyDescriptor")]
    assert uses == ["signing", "signing", "encryption", "encryption"]
    acs = descriptor.find(f"{{{MD}}}AssertionConsumerService")
    assert acs is not None and acs.get("Location") == SP.acs_url
    assert acs.get("Binding") == "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
    assert descriptor.findtext(f"{{{MD}}}NameIDFormat") == EMAIL_ADDRESS


def test_sp_metadata_says_assertions_must_be_signed_only_when_the_connection_requires_it() -> None:
    """WantAssertionsSigned states a requirement (metadata §2.4.4): it follows the opt-in, default off."""

    def wants(settings_: SamlSettings) -> str | None:
        root = etree.fromstring(build_sp_metadata(SP, settings=settings_))
        descriptor = root.find(f"{{{MD}}}SPSSODescriptor")
        assert descriptor is not None
        return descriptor.get("WantAssertionsSigned")

    assert wants(settings()) == "false"
    assert wants(settings(want_assertions_signed=True)) == "true"


def test_fixture_readme_lists_every_fixture() -> None:
    """Every fixture has provenance: in tests/fixtures/README.md, or for a set with its own README
    (tests/fixtures/saml/vendors/), there, naming the file's case folder."""
    readme = (FIXTURES.parent / "README.md").read_text()
    for path in sorted(Path(FIXTURES).rglob("*")):
        if not (path.is_file() and path.suffix in {".xml", ".crt", ".key", ".py", ".json"}):
            continue
        own = next((p / "README.md" for p in path.parents if (p / "README.md").is_file()), None)
        if own is not None and own.parent != FIXTURES.parent:
            case = path.parent.relative_to(own.parent).as_posix()
            assert f"`{case}`" in own.read_text(), f"{case} has no provenance in {own}"
        else:
            assert path.name in readme, f"{path.name} has no provenance in tests/fixtures/README.md"
