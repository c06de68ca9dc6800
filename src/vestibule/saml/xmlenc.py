"""XML Encryption glue for ``EncryptedAssertion`` (SAML core §2.3.4, §6; xmlenc-core1).

Only the XML plumbing is written here; every cipher is a ``cryptography``
primitive. Why not python-xmlsec: it must share libxml2 with lxml (see
NOTES "install traps"), which pins both wheels together for little gain.

Key transport: RSA-OAEP (``xmlenc#rsa-oaep-mgf1p``, ``xmlenc11#rsa-oaep``).
RSA PKCS#1 v1.5 key transport is refused (Bleichenbacher oracle).
Data: AES-128/192/256-GCM always; AES-CBC only with ``allow_aes_cbc``, because
CBC in XML Encryption has a practical padding/format oracle (Jager &
Somorovsky, "How to break XML encryption", CCS 2011). Triple-DES is refused.
Every decryption failure yields the same :class:`DecryptionError` text so the
error page is no oracle either.
"""

from __future__ import annotations

import base64
import binascii
import os
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from lxml import etree

from vestibule.domain.reasons import FixIn

from .errors import AlgorithmNotAllowedError, DecryptionError, MalformedError
from .keys import certificate_b64, load_certificate, load_private_key
from .sp import KeyPair
from .xml import DS, SAML, XENC, XENC11, parse_xml, q

RSA_OAEP_MGF1P = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"
RSA_OAEP = "http://www.w3.org/2009/xmlenc11#rsa-oaep"
RSA_1_5 = "http://www.w3.org/2001/04/xmlenc#rsa-1_5"
AES_GCM = {
    "http://www.w3.org/2009/xmlenc11#aes128-gcm": 16,
    "http://www.w3.org/2009/xmlenc11#aes192-gcm": 24,
    "http://www.w3.org/2009/xmlenc11#aes256-gcm": 32,
}
AES_CBC = {
    "http://www.w3.org/2001/04/xmlenc#aes128-cbc": 16,
    "http://www.w3.org/2001/04/xmlenc#aes192-cbc": 24,
    "http://www.w3.org/2001/04/xmlenc#aes256-cbc": 32,
}
AES256_GCM = "http://www.w3.org/2009/xmlenc11#aes256-gcm"
_DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    "http://www.w3.org/2000/09/xmldsig#sha1": hashes.SHA1,
    "http://www.w3.org/2001/04/xmlenc#sha256": hashes.SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#sha384": hashes.SHA384,
    "http://www.w3.org/2001/04/xmlenc#sha512": hashes.SHA512,
}
_MGFS: dict[str, type[hashes.HashAlgorithm]] = {
    "http://www.w3.org/2009/xmlenc11#mgf1sha1": hashes.SHA1,
    "http://www.w3.org/2009/xmlenc11#mgf1sha256": hashes.SHA256,
    "http://www.w3.org/2009/xmlenc11#mgf1sha384": hashes.SHA384,
    "http://www.w3.org/2009/xmlenc11#mgf1sha512": hashes.SHA512,
}
_XML_DECL = re.compile(rb"^\s*<\?xml[^>]*\?>")
_FAILED = "The encrypted assertion could not be decrypted with this connection's SP key."


def _cipher_value(el: etree._Element) -> bytes:
    node = el.find(f"{q(XENC, 'CipherData')}/{q(XENC, 'CipherValue')}")
    if node is None or not node.text:
        raise MalformedError("EncryptedData/EncryptedKey has no CipherValue.")
    try:
        return base64.b64decode("".join(node.text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise MalformedError("CipherValue is not base64.") from None


def _oaep(method: etree._Element) -> padding.OAEP:
    algorithm = method.get("Algorithm")
    digest_el = method.find(q(DS, "DigestMethod"))
    digest_uri = digest_el.get("Algorithm", "") if digest_el is not None else "http://www.w3.org/2000/09/xmldsig#sha1"
    if digest_uri not in _DIGESTS:
        raise AlgorithmNotAllowedError("Unsupported OAEP digest.", received=digest_uri)
    digest = _DIGESTS[digest_uri]
    mgf: type[hashes.HashAlgorithm] = hashes.SHA1  # rsa-oaep-mgf1p fixes MGF1 with SHA-1.
    if algorithm == RSA_OAEP:
        mgf_el = method.find(q(XENC11, "MGF"))
        mgf_uri = mgf_el.get("Algorithm", "") if mgf_el is not None else "http://www.w3.org/2009/xmlenc11#mgf1sha1"
        if mgf_uri not in _MGFS:
            raise AlgorithmNotAllowedError("Unsupported OAEP mask generation function.", received=mgf_uri)
        mgf = _MGFS[mgf_uri]
    elif algorithm != RSA_OAEP_MGF1P:
        raise AlgorithmNotAllowedError(
            "The assertion key transport algorithm is not allowed.",
            expected="RSA-OAEP",
            received=algorithm,
        )
    if method.find(q(XENC, "OAEPparams")) is not None:
        raise AlgorithmNotAllowedError("OAEPparams (an OAEP label) is not supported.")
    return padding.OAEP(mgf=padding.MGF1(algorithm=mgf()), algorithm=digest(), label=None)


def _encrypted_keys(encrypted_assertion: etree._Element, data: etree._Element) -> list[etree._Element]:
    inside: list[etree._Element] = data.findall(f"{q(DS, 'KeyInfo')}/{q(XENC, 'EncryptedKey')}")
    # Some IdPs (e.g. Shibboleth) place EncryptedKey beside EncryptedData (core §6.2).
    beside: list[etree._Element] = encrypted_assertion.findall(q(XENC, "EncryptedKey"))
    return inside + beside


def _unwrap_key(keys: list[etree._Element], key_pairs: tuple[KeyPair, ...]) -> bytes:
    if not keys:
        raise MalformedError("EncryptedAssertion carries no EncryptedKey.")
    for encrypted_key in keys:
        method = encrypted_key.find(q(XENC, "EncryptionMethod"))
        if method is None:
            raise MalformedError("EncryptedKey has no EncryptionMethod.")
        oaep = _oaep(method)
        wrapped = _cipher_value(encrypted_key)
        for pair in key_pairs:
            private_key = load_private_key(pair.private_key_pem)
            if not isinstance(private_key, rsa.RSAPrivateKey):
                continue
            try:
                return private_key.decrypt(wrapped, oaep)
            except ValueError:
                continue
    raise DecryptionError(_FAILED, fix_in=FixIn.IDENTITY_PROVIDER)


def _decrypt_data(algorithm: str | None, key: bytes, blob: bytes, *, allow_aes_cbc: bool) -> bytes:
    if algorithm in AES_GCM:
        if len(key) != AES_GCM[algorithm] or len(blob) < 12 + 16:
            raise DecryptionError(_FAILED)
        try:
            return AESGCM(key).decrypt(blob[:12], blob[12:], None)
        except (InvalidTag, ValueError):  # tampered or wrong key
            raise DecryptionError(_FAILED) from None
    if algorithm in AES_CBC:
        if not allow_aes_cbc:
            raise AlgorithmNotAllowedError(
                "The assertion is encrypted with AES-CBC, which this connection does not allow.",
                expected="AES-GCM",
                received=algorithm,
            )
        if len(key) != AES_CBC[algorithm] or len(blob) < 32 or len(blob) % 16:
            raise DecryptionError(_FAILED)
        decryptor = Cipher(algorithms.AES(key), modes.CBC(blob[:16])).decryptor()
        plain = decryptor.update(blob[16:]) + decryptor.finalize()
        # xmlenc-core1 §5.2: the last octet is the padding length; the other
        # padding octets are arbitrary, so only the length is checked.
        pad = plain[-1]
        if not 1 <= pad <= 16:
            raise DecryptionError(_FAILED)
        return plain[:-pad]
    raise AlgorithmNotAllowedError(
        "The assertion encryption algorithm is not allowed.",
        expected="AES-GCM (or AES-CBC when allowed)",
        received=algorithm,
    )


def decrypt_assertion(
    encrypted_assertion: etree._Element, key_pairs: tuple[KeyPair, ...], *, allow_aes_cbc: bool
) -> etree._Element:
    """Decrypt ``saml:EncryptedAssertion`` and return the parsed ``saml:Assertion``.

    The plaintext goes through the hardened parser, inside a wrapper carrying
    the namespaces in scope at the EncryptedAssertion (an encrypted fragment
    may rely on prefixes declared by its ancestors).
    """
    if not key_pairs:
        raise DecryptionError(
            "The assertion is encrypted but this connection has no SP encryption key.",
            fix_in=FixIn.VESTIBULE,
        )
    datas = encrypted_assertion.findall(q(XENC, "EncryptedData"))
    if len(datas) != 1:
        raise MalformedError("EncryptedAssertion must contain exactly one EncryptedData.")
    data = datas[0]
    method = data.find(q(XENC, "EncryptionMethod"))
    algorithm = method.get("Algorithm") if method is not None else None
    if algorithm not in AES_GCM and not (allow_aes_cbc and algorithm in AES_CBC):
        _decrypt_data(algorithm, b"", b"", allow_aes_cbc=allow_aes_cbc)  # Raises the right error.
    key = _unwrap_key(_encrypted_keys(encrypted_assertion, data), key_pairs)
    plain = _XML_DECL.sub(b"", _decrypt_data(algorithm, key, _cipher_value(data), allow_aes_cbc=allow_aes_cbc))
    declarations = b"".join(
        b' xmlns:%s="%s"' % (prefix.encode(), uri.encode()) if prefix else b' xmlns="%s"' % uri.encode()
        for prefix, uri in encrypted_assertion.nsmap.items()
    )
    wrapper = parse_xml(b"<w%s>%s</w>" % (declarations, plain), what="decrypted assertion")
    if len(wrapper) != 1 or (wrapper.text or "").strip() or (wrapper[0].tail or "").strip():
        raise MalformedError("The decrypted content is not a single element.")
    assertion = wrapper[0]
    if assertion.tag != q(SAML, "Assertion"):
        raise MalformedError("The decrypted content is not a saml:Assertion.")
    return assertion


def encrypt_element(element: etree._Element, certificate_pem: str, *, algorithm: str = AES256_GCM) -> etree._Element:
    """Encrypt ``element`` to ``certificate_pem`` (RSA-OAEP-MGF1P + AES-GCM/CBC).

    Returns an ``xenc:EncryptedData``; used by the built-in test IdP.
    """
    public_key = load_certificate(certificate_pem).public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise ValueError("encryption certificate must hold an RSA key")
    plain = etree.tostring(element)
    if algorithm in AES_GCM:
        key = AESGCM.generate_key(bit_length=AES_GCM[algorithm] * 8)
        nonce = os.urandom(12)
        blob = nonce + AESGCM(key).encrypt(nonce, plain, None)
    elif algorithm in AES_CBC:
        key, iv = os.urandom(AES_CBC[algorithm]), os.urandom(16)
        pad = 16 - len(plain) % 16
        encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
        blob = iv + encryptor.update(plain + bytes([pad]) * pad) + encryptor.finalize()
    else:
        raise ValueError(f"unsupported algorithm {algorithm}")
    wrapped = public_key.encrypt(
        key, padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    )
    nsmap = {"xenc": XENC, "ds": DS}
    data = etree.Element(q(XENC, "EncryptedData"), nsmap=nsmap, Type="http://www.w3.org/2001/04/xmlenc#Element")
    etree.SubElement(data, q(XENC, "EncryptionMethod"), Algorithm=algorithm)
    key_info = etree.SubElement(data, q(DS, "KeyInfo"))
    encrypted_key = etree.SubElement(key_info, q(XENC, "EncryptedKey"))
    key_method = etree.SubElement(encrypted_key, q(XENC, "EncryptionMethod"), Algorithm=RSA_OAEP_MGF1P)
    etree.SubElement(key_method, q(DS, "DigestMethod"), Algorithm="http://www.w3.org/2000/09/xmldsig#sha1")
    cert_info = etree.SubElement(encrypted_key, q(DS, "KeyInfo"))
    x509_data = etree.SubElement(cert_info, q(DS, "X509Data"))
    etree.SubElement(x509_data, q(DS, "X509Certificate")).text = certificate_b64(certificate_pem)
    for parent, value in ((encrypted_key, wrapped), (data, blob)):
        cipher_data = etree.SubElement(parent, q(XENC, "CipherData"))
        etree.SubElement(cipher_data, q(XENC, "CipherValue")).text = base64.b64encode(value).decode("ascii")
    return data
