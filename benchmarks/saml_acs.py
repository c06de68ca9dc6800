"""ACS validation throughput on one core, against the raw-signature-check floor.

    .venv/bin/python benchmarks/saml_acs.py [--rounds 5] [--seconds 1.0]

Input: a ~6-7 KB Response with a signed assertion (RSA-SHA256, exclusive
C14N) and Entra-style attributes, made by vestibule.saml.idp with the test
keys. "floor" is the minimum any validator must do: base64 → parse →
exclusive C14N of the assertion (signature removed) and of SignedInfo →
SHA-256 → RSA verify, with cryptography directly and no SAML checks.

Rows: the complete ``validate_response`` (every SAML check); then the
signature check alone, base64 → parse → verify the assertion's signature,
once with Vestibule's verifier (``vestibule.saml.dsig.verify_enveloped``:
policy, profile, schema, unique ID, pinned ring, digest, signature, the
verified element handed back) and once with signxml 5.2 behind the same
policy layer, as Vestibule verified before (kept in the tests as the
differential oracle).
Rounds are interleaved; medians are reported. The replay port is a no-op so
the same response can be validated repeatedly. Time is the process's CPU time
(``time.process_time``): the figure is validations per CPU-second on one core,
and stays comparable on a machine busy with other work. ``--wall`` uses the
wall clock instead. The "response+assertion signed" row verifies two
signatures, so its floor is half the single-signature floor.
"""

from __future__ import annotations

import argparse
import base64
import copy
import datetime as dt
import hashlib
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from lxml import etree
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.verifier import SignatureConfiguration, XMLVerifier

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from vestibule.saml import IdentityProvider, KeyPair, SamlSettings, ServiceProvider, validate_response  # noqa: E402
from vestibule.saml.dsig import check_signature_policy, verify_enveloped  # noqa: E402
from vestibule.saml.idp import build_response  # noqa: E402
from vestibule.saml.keys import load_certificate  # noqa: E402
from vestibule.saml.xml import hardened_parser, parse_xml  # noqa: E402

KEYS = ROOT / "tests" / "fixtures" / "saml" / "keys"
NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
DS = "http://www.w3.org/2000/09/xmldsig#"
CLAIMS = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"


class NoReplay:
    def add_once(self, *, key: str, expires_at: dt.datetime) -> bool:
        return True


def fixture(sign_response: bool = False) -> tuple[str, ServiceProvider, SamlSettings]:
    pair = KeyPair((KEYS / "idp.key").read_text(), (KEYS / "idp.crt").read_text())
    idp = IdentityProvider(
        "https://sts.windows.net/6f1c2a0e-3b7d-4c55-9a1e-0d4c2b9e7f10/",
        "https://login.microsoftonline.com/x/saml2",
        pair,
    )
    sp = ServiceProvider(
        "https://sso.vestibule.test/saml/acme",
        "https://sso.vestibule.test/sso/saml/acme/acs",
        "https://sso.vestibule.test/sso/saml/acme/metadata",
    )
    attributes = {
        "http://schemas.microsoft.com/identity/claims/tenantid": ["6f1c2a0e-3b7d-4c55-9a1e-0d4c2b9e7f10"],
        "http://schemas.microsoft.com/identity/claims/objectidentifier": ["0b7e2c4a-91d3-4f6e-a5b8-2c7d9e0f1a3b"],
        "http://schemas.microsoft.com/identity/claims/displayname": ["Alice Example"],
        "http://schemas.microsoft.com/identity/claims/identityprovider": [idp.entity_id],
        "http://schemas.microsoft.com/claims/authnmethodsreferences": [
            "http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/password",
            "http://schemas.microsoft.com/claims/multipleauthn",
        ],
        CLAIMS + "givenname": ["Alice"],
        CLAIMS + "surname": ["Example"],
        CLAIMS + "emailaddress": ["alice@example.com"],
        CLAIMS + "name": ["alice@example.com"],
        "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups": [
            f"{i:08x}-1111-2222-3333-444455556666" for i in range(5)
        ],
        "http://schemas.microsoft.com/ws/2008/06/identity/claims/role": ["analyst", "report-viewer"],
    }
    xml = build_response(
        idp,
        sp_entity_id=sp.entity_id,
        acs_url=sp.acs_url,
        name_id="alice@example.com",
        attributes=attributes,
        now=NOW,
        in_response_to="_req1",
        sign_response=sign_response,
    )
    settings = SamlSettings.from_dict(
        {"idp_entity_id": idp.entity_id, "sso_url": idp.sso_url, "certificates": [pair.certificate_pem]}
    )
    return base64.b64encode(xml).decode(), sp, settings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--wall", action="store_true", help="measure wall-clock time instead of CPU time")
    args = parser.parse_args()
    clock = time.perf_counter if args.wall else time.process_time
    b64, sp, settings = fixture()
    both_b64, _, _ = fixture(sign_response=True)
    public_key = load_certificate(settings.certificates[0]).public_key()

    def vestibule() -> None:
        validate_response(b64, sp=sp, settings=settings, now=NOW, expected_request_id="_req1", replay=NoReplay())

    def floor() -> None:
        root = etree.fromstring(base64.b64decode(b64))
        assertion = root.find("{urn:oasis:names:tc:SAML:2.0:assertion}Assertion")
        signature = assertion.find(f"{{{DS}}}Signature")
        signed_info = signature.find(f"{{{DS}}}SignedInfo")
        detached = copy.deepcopy(assertion)
        detached.remove(detached.find(f"{{{DS}}}Signature"))
        digest = hashlib.sha256(etree.tostring(detached, method="c14n", exclusive=True)).digest()
        expected = base64.b64decode(signed_info.findtext(f".//{{{DS}}}DigestValue"))
        assert digest == expected
        public_key.verify(  # type: ignore[union-attr]
            base64.b64decode(signature.findtext(f"{{{DS}}}SignatureValue")),
            etree.tostring(signed_info, method="c14n", exclusive=True),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )

    assertion_tag = "{urn:oasis:names:tc:SAML:2.0:assertion}Assertion"
    certificate = load_certificate(settings.certificates[0])
    signxml_config = SignatureConfiguration(
        require_x509=True,
        location="./",
        expect_references=1,
        signature_methods=frozenset({SignatureMethod.RSA_SHA256, SignatureMethod.ECDSA_SHA256}),
        digest_algorithms=frozenset({DigestAlgorithm.SHA256}),
        default_reference_c14n_method=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
        verification_time=NOW,
    )

    def dsig_alone() -> None:
        assertion = parse_xml(base64.b64decode(b64)).find(assertion_tag)
        verify_enveloped(assertion, certificates=settings.certificates, allow_sha1=False, now=NOW, what="Assertion")

    def signxml_alone() -> None:
        assertion = parse_xml(base64.b64decode(b64)).find(assertion_tag)
        check_signature_policy(assertion.find(f"{{{DS}}}Signature"), allow_sha1=False, what="Assertion")
        XMLVerifier().verify(
            etree.tostring(assertion, with_tail=False),
            x509_cert=certificate,
            expect_config=signxml_config,
            id_attribute="ID",
            parser=hardened_parser(),
        )

    def vestibule_both() -> None:
        validate_response(both_b64, sp=sp, settings=settings, now=NOW, expected_request_id="_req1", replay=NoReplay())

    cases: dict[str, Callable[[], None]] = {
        "floor (raw signature check)": floor,
        "vestibule.saml validate_response": vestibule,
        "  response+assertion signed": vestibule_both,
        "signature check alone: vestibule.saml.dsig": dsig_alone,
        "signature check alone: signxml 5.2": signxml_alone,
    }
    for fn in cases.values():
        fn()  # Warm caches and fail fast.
    rates: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, fn in cases.items():
            count, start = 0, clock()
            while (elapsed := clock() - start) < args.seconds:
                fn()
                count += 1
            rates[name].append(count / elapsed)
    size = len(base64.b64decode(b64))
    kind = "wall clock" if args.wall else "CPU time"
    print(
        f"Response: {size} bytes ({len(b64)} base64), RSA-2048/SHA-256, 1 core, {args.rounds} interleaved rounds, {kind}"
    )
    print(f"{'what':44} {'validations/s':>14} {'µs each':>9} {'vs floor':>9}")
    floor_rate = statistics.median(rates["floor (raw signature check)"])
    for name, values in rates.items():
        rate = statistics.median(values)
        print(f"{name:44} {rate:14,.0f} {1e6 / rate:9.0f} {rate / floor_rate:9.2f}")


if __name__ == "__main__":
    main()
