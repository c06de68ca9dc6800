"""SAML metadata (saml-metadata-2.0-os): our SP metadata out, IdP metadata in.

:func:`build_sp_metadata` renders an ``EntityDescriptor`` with an
``SPSSODescriptor`` (metadata §2.4.4): HTTP-POST AssertionConsumerService,
signing and encryption KeyDescriptors including the *next* certificates
(published before use, for rollover), NameIDFormat, AuthnRequestsSigned and
WantAssertionsSigned.

:func:`parse_idp_metadata` turns pasted IdP metadata (Okta, Entra ID, Google
Workspace, ADFS, or an ``EntitiesDescriptor`` aggregate) into
:class:`~vestibule.saml.settings.SamlSettings`. It reads only the
``IDPSSODescriptor`` (metadata §2.4.3) of the chosen entity, so ADFS/Entra
``RoleDescriptor`` and ``SPSSODescriptor`` noise is ignored. A KeyDescriptor
without ``use`` serves both signing and encryption (§2.4.1.1), so it counts as
signing. The metadata's own signature is not checked: an administrator pastes
it over an authenticated channel, and the certificates it yields are shown
for confirmation.
"""

from __future__ import annotations

from lxml import etree

from .bindings import HTTP_POST, HTTP_REDIRECT
from .errors import MalformedError, MetadataError, SamlSettingsError
from .keys import certificate_b64, certificate_der, normalize_certificate
from .settings import EMAIL_ADDRESS, MAX_CERTIFICATES, SamlSettings
from .sp import ServiceProvider
from .xml import DS, MAX_METADATA_BYTES, MD, SAMLP, parse_xml, q

_KEY_CERTS = f"{q(DS, 'KeyInfo')}/{q(DS, 'X509Data')}/{q(DS, 'X509Certificate')}"


def _key_descriptor(parent: etree._Element, use: str, certificate_pem: str) -> None:
    key = etree.SubElement(parent, q(MD, "KeyDescriptor"), use=use)
    data = etree.SubElement(etree.SubElement(key, q(DS, "KeyInfo")), q(DS, "X509Data"))
    etree.SubElement(data, q(DS, "X509Certificate")).text = certificate_b64(certificate_pem)


def build_sp_metadata(
    sp: ServiceProvider,
    *,
    settings: SamlSettings | None = None,
    name_id_format: str = EMAIL_ADDRESS,
) -> bytes:
    """Our SP metadata for one connection (served at ``sp.metadata_url``)."""
    authn_requests_signed = bool(settings and settings.sign_authn_requests)
    # Says what the connection requires: assertion signatures are an opt-in,
    # a signed Response is enough by default (see SamlSettings).
    want_assertions_signed = bool(settings and settings.want_assertions_signed)
    entity = etree.Element(q(MD, "EntityDescriptor"), nsmap={"md": MD, "ds": DS}, entityID=sp.entity_id)
    descriptor = etree.SubElement(
        entity,
        q(MD, "SPSSODescriptor"),
        protocolSupportEnumeration=SAMLP,
        AuthnRequestsSigned="true" if authn_requests_signed else "false",
        WantAssertionsSigned="true" if want_assertions_signed else "false",
    )
    if sp.signing is not None:
        _key_descriptor(descriptor, "signing", sp.signing.certificate_pem)
    if sp.next_signing_certificate is not None:
        _key_descriptor(descriptor, "signing", sp.next_signing_certificate)
    for pair in sp.decryption_keys:
        _key_descriptor(descriptor, "encryption", pair.certificate_pem)
    if sp.decryption_keys:
        for key in descriptor.findall(q(MD, "KeyDescriptor")):
            if key.get("use") == "encryption":
                etree.SubElement(key, q(MD, "EncryptionMethod"), Algorithm="http://www.w3.org/2009/xmlenc11#aes256-gcm")
                etree.SubElement(key, q(MD, "EncryptionMethod"), Algorithm="http://www.w3.org/2009/xmlenc11#rsa-oaep")
                etree.SubElement(
                    key, q(MD, "EncryptionMethod"), Algorithm="http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"
                )
    etree.SubElement(descriptor, q(MD, "NameIDFormat")).text = settings.name_id_format if settings else name_id_format
    etree.SubElement(
        descriptor, q(MD, "AssertionConsumerService"), Binding=HTTP_POST, Location=sp.acs_url, index="0",
        isDefault="true",
    )  # fmt: skip
    return bytes(etree.tostring(entity, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def _idp_entities(root: etree._Element) -> list[etree._Element]:
    if root.tag == q(MD, "EntityDescriptor"):
        candidates = [root]
    elif root.tag == q(MD, "EntitiesDescriptor"):
        candidates = list(root.iter(q(MD, "EntityDescriptor")))
    else:
        raise MetadataError(
            "This is not SAML metadata.",
            expected="md:EntityDescriptor or md:EntitiesDescriptor",
            received=etree.QName(root).localname,
        )
    return [e for e in candidates if _idp_descriptor(e) is not None]


def _idp_descriptor(entity: etree._Element) -> etree._Element | None:
    for descriptor in entity.findall(q(MD, "IDPSSODescriptor")):
        if SAMLP in (descriptor.get("protocolSupportEnumeration") or "").split():
            return descriptor
    return None


def _pick_entity(root: etree._Element, entity_id: str | None) -> etree._Element:
    entities = _idp_entities(root)
    if entity_id is not None:
        chosen = [e for e in entities if e.get("entityID") == entity_id]
        if not chosen:
            raise MetadataError(
                "The metadata has no SAML 2.0 identity provider with this entityID.",
                expected=entity_id,
                received=", ".join(e.get("entityID") or "?" for e in entities) or "(none)",
            )
        return chosen[0]
    if not entities:
        raise MetadataError("The metadata describes no SAML 2.0 identity provider (no IDPSSODescriptor).")
    if len(entities) > 1:
        raise MetadataError(
            "The metadata describes several identity providers; choose one by entityID.",
            received=", ".join(e.get("entityID") or "?" for e in entities),
        )
    return entities[0]


def _signing_certificates(descriptor: etree._Element) -> tuple[str, ...]:
    certificates: list[str] = []
    seen: set[bytes] = set()
    for key in descriptor.findall(q(MD, "KeyDescriptor")):
        if key.get("use", "signing") != "signing":
            continue
        for node in key.findall(_KEY_CERTS):
            text = "".join((node.text or "").split())
            try:
                der = certificate_der(text)
                pem = normalize_certificate(text)
            except ValueError:
                raise MetadataError("A signing certificate in the metadata is not a valid X.509 certificate.") from None
            if der not in seen:
                seen.add(der)
                certificates.append(pem)
    if not certificates:
        raise MetadataError(
            'The metadata has no usable signing certificate (KeyDescriptor use="signing" with '
            "ds:X509Certificate); Vestibule cannot trust responses from this IdP without one.",
            expected="an IDPSSODescriptor KeyDescriptor with an X509Certificate",
            received="none",
        )
    if len(certificates) > MAX_CERTIFICATES:
        raise MetadataError(
            f"The metadata lists more than {MAX_CERTIFICATES} signing certificates.", received=str(len(certificates))
        )
    return tuple(certificates)


def _sso_service(descriptor: etree._Element) -> tuple[str, str]:
    services = {s.get("Binding"): s.get("Location") for s in descriptor.findall(q(MD, "SingleSignOnService"))}
    for binding, name in ((HTTP_REDIRECT, "redirect"), (HTTP_POST, "post")):
        location = services.get(binding)
        if location:
            return location, name
    raise MetadataError(
        "The metadata has no SingleSignOnService with the HTTP-Redirect or HTTP-POST binding.",
        received=", ".join(b or "?" for b in services) or "(none)",
    )


def parse_idp_metadata(xml: bytes, entity_id: str | None = None) -> SamlSettings:
    """Generate SAML settings from IdP metadata; raise :class:`MetadataError` when unusable."""
    try:
        root = parse_xml(xml, max_bytes=MAX_METADATA_BYTES, what="metadata")
    except MalformedError as exc:
        raise MetadataError(exc.description) from None
    entity = _pick_entity(root, entity_id)
    descriptor = _idp_descriptor(entity)
    assert descriptor is not None
    location, binding = _sso_service(descriptor)
    formats = [(n.text or "").strip() for n in descriptor.findall(q(MD, "NameIDFormat"))]
    name_id_format = EMAIL_ADDRESS if (not formats or EMAIL_ADDRESS in formats) else formats[0]
    try:
        return SamlSettings(
            idp_entity_id=entity.get("entityID") or "",
            sso_url=location,
            sso_binding="redirect" if binding == "redirect" else "post",
            certificates=_signing_certificates(descriptor),
            name_id_format=name_id_format,
            sign_authn_requests=descriptor.get("WantAuthnRequestsSigned") in ("true", "1"),
        )
    except SamlSettingsError as exc:
        raise MetadataError(f"The metadata yields invalid settings: {exc.description}") from None
