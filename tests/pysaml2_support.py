"""pysaml2's IdP (``saml2.server.Server``) as a real third-party peer, configured in process.

Shared by the protocol interop tests (tests/interop/test_pysaml2_idp.py) and the
end-to-end SAML driver (tests/e2e/drivers/saml_driver.py), so both talk to the
same IdP set up the same way: the committed keys tests/fixtures/saml/keys/pysaml2_idp*,
the SP known only through its SP metadata (as a real IdP learns it), RSA-SHA256.

pysaml2 signs and encrypts by running the ``xmlsec1`` program; callers skip when
:data:`XMLSEC1` is ``None``. Importing this module needs pysaml2 installed.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import shutil
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from saml2 import BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.saml import NAME_FORMAT_URI, NameID
from saml2.server import Server
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from tests.saml_support import KEYS
from vestibule.saml.settings import EMAIL_ADDRESS

XMLSEC1 = shutil.which("xmlsec1")
IDP_ENTITY = "https://pysaml2-idp.interop.test/metadata"
IDP_SSO = "https://pysaml2-idp.interop.test/sso/redirect"
AES256_CBC = "http://www.w3.org/2001/04/xmlenc#aes256-cbc"
AES256_GCM = "http://www.w3.org/2009/xmlenc11#aes256-gcm"
PASSWORD_PROTECTED = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"


def certificate(key: str = "pysaml2_idp") -> str:
    return (KEYS / f"{key}.crt").read_text()


def idp_config(sp_metadata: Sequence[bytes | str], key: str = "pysaml2_idp") -> dict[str, Any]:
    """The pysaml2 IdP configuration dict; ``sp_metadata`` is what it knows about its SPs."""
    return {
        "entityid": IDP_ENTITY,
        "xmlsec_binary": XMLSEC1,
        "key_file": str(KEYS / f"{key}.key"),
        "cert_file": str(KEYS / f"{key}.crt"),
        "metadata": {"inline": [m.decode() if isinstance(m, bytes) else m for m in sp_metadata]},
        "service": {
            "idp": {
                "endpoints": {"single_sign_on_service": [(IDP_SSO, BINDING_HTTP_REDIRECT)]},
                "name_id_format": [EMAIL_ADDRESS],
                "policy": {"default": {"lifetime": {"minutes": 5}, "name_form": NAME_FORMAT_URI}},
            }
        },
        "delete_tmpfiles": True,
    }


def make_server(sp_metadata: Sequence[bytes | str], key: str = "pysaml2_idp") -> Server:
    return Server(config=IdPConfig().load(idp_config(sp_metadata, key)))


def issue(
    server: Server,
    *,
    in_response_to: str | None,
    destination: str,
    sp_entity_id: str,
    name_id: str,
    identity: Mapping[str, Sequence[str]],
    **kw: Any,
) -> str:
    """A Response made by pysaml2, base64 as the HTTP-POST binding carries it.

    Defaults: assertion signed, response unsigned, RSA-SHA256 / SHA-256. Pass
    ``sign_response``, ``sign_assertion``, ``encrypt_assertion`` (to the SP's
    encryption certificate from its metadata unless ``encrypt_cert_assertion``)
    to vary it.
    """
    params: dict[str, Any] = dict(
        sign_response=False, sign_assertion=True, sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256
    )
    params.update(kw)
    xml = server.create_authn_response(
        identity={k: list(v) for k, v in identity.items()},
        in_response_to=in_response_to,
        destination=destination,
        sp_entity_id=sp_entity_id,
        name_id=NameID(format=EMAIL_ADDRESS, text=name_id),
        authn={"class_ref": PASSWORD_PROTECTED},
        **params,
    )
    return base64.b64encode(str(xml).encode()).decode()


@contextlib.contextmanager
def aes_encryption(server: Server, algorithm: str = AES256_GCM) -> Iterator[None]:
    """pysaml2 hard-codes Triple-DES for assertion encryption; make this IdP use AES instead.

    Only pysaml2's choice of algorithm changes (its own functions, with other
    arguments); the encryption itself is still xmlsec1's.
    """
    import saml2.entity
    import saml2.sigver

    original_part = saml2.entity.pre_encryption_part
    saml2.entity.pre_encryption_part = functools.partial(saml2.sigver.pre_encryption_part, msg_enc=algorithm)
    server.sec.encrypt_assertion = functools.partial(type(server.sec).encrypt_assertion, server.sec, key_type="aes-256")
    try:
        yield
    finally:
        saml2.entity.pre_encryption_part = original_part
        del server.sec.encrypt_assertion


__all__ = [
    "AES256_CBC",
    "AES256_GCM",
    "IDP_ENTITY",
    "IDP_SSO",
    "XMLSEC1",
    "aes_encryption",
    "certificate",
    "idp_config",
    "issue",
    "make_server",
]
