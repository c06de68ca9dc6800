"""Per-connection secrets: SP key pairs and OIDC client credentials, sealed at rest.

SP key rotation (SAML connections) keeps up to three sets in the sealed
secrets, and moves between them one audited step at a time
(:func:`rotate_sp_keys`)::

    current                 sp_signing, sp_encryption          used now
    next      (stage)       sp_signing_next, sp_encryption_next  published in the SP metadata beside the
                                                                 current ones; the next encryption key
                                                                 already decrypts
    previous  (promote)     sp_encryption_previous              the replaced encryption key, kept for
                                                                 decryption during a grace period

- ``stage`` generates a next signing and encryption pair. IdPs that read our
  metadata pick the certificates up; an IdP may start encrypting to the next
  certificate at once, and that already works.
- ``promote`` makes the next pair current: AuthnRequests are signed with the
  new key from then on. The replaced signing key is dropped (nothing verifies
  our old signatures any more); the replaced encryption key becomes
  *previous*: assertions an IdP still encrypts to it keep decrypting until it
  is retired. ``vestibule.saml.ServiceProvider`` has one slot beside the
  current encryption key (its *next*), which both decrypts and is published
  in the metadata, so during the grace period the previous certificate stays
  listed after the current one, exactly as it was before the promotion.
- ``retire`` ends the grace period: the previous key is destroyed. Do it once
  every IdP encrypts to the new certificate (or at once, right after
  ``promote``, when the old key is compromised).
- ``discard`` throws a staged next pair away without using it.

One rotation at a time: staging again needs the previous key retired first.
Private keys never leave this module's callers except into the SP object;
:func:`sp_key_status` shows fingerprints and validity only.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from django.db import transaction
from django.utils import timezone

from vestibule.conf.secretbox import open_secret, seal_secret
from vestibule.connections.models import Connection
from vestibule.saml import KeyPair
from vestibule.saml.keys import fingerprint

_PURPOSE = "connection-secrets"


def generate_key_pair(common_name: str, *, years: int = 10) -> dict[str, str]:
    """An RSA-2048 key and a self-signed certificate for SAML signing or encryption.

    SAML metadata pins certificates by value, so a self-signed certificate is
    the norm; its validity period only documents intended rotation.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365 * years))
        .sign(key, hashes.SHA256())
    )
    return {
        "key": key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
        "cert": cert.public_bytes(serialization.Encoding.PEM).decode(),
    }


def read_secrets(connection: Connection) -> dict[str, Any]:
    if not connection.secrets_encrypted:
        return {}
    data = json.loads(open_secret(connection.secrets_encrypted, purpose=_PURPOSE))
    return data if isinstance(data, dict) else {}


def write_secrets(connection: Connection, secrets: dict[str, Any]) -> None:
    connection.secrets_encrypted = seal_secret(json.dumps(secrets, sort_keys=True), purpose=_PURPOSE)


def ensure_sp_keys(connection: Connection) -> dict[str, Any]:
    """Create the SP signing and encryption key pairs of a SAML connection once."""
    secrets = read_secrets(connection)
    changed = False
    for use in ("sp_signing", "sp_encryption"):
        if use not in secrets:
            secrets[use] = generate_key_pair(f"Vestibule SP {use.split('_')[1]} {connection.pk}")
            changed = True
    if changed:
        write_secrets(connection, secrets)
    return secrets


# ---- SP key rotation

SP_KEY_ACTIONS = ("stage", "promote", "retire", "discard")

_NEXT = ("sp_signing_next", "sp_encryption_next")
_PREVIOUS = "sp_encryption_previous"


class SpKeyError(Exception):
    """A rotation step that does not apply now (HTTP 409) or to this connection (422)."""

    def __init__(self, detail: str, *, field: str = "action", status: int = 409) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.status = status


def _certificate_info(pem: str) -> dict[str, str]:
    cert = x509.load_pem_x509_certificate(pem.encode())
    return {
        "sha256_fingerprint": fingerprint(cert.public_bytes(serialization.Encoding.DER)),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "subject": cert.subject.rfc4514_string(),
    }


def sp_key_status(secrets: dict[str, Any]) -> dict[str, Any]:
    """Public facts about the SP keys: certificate fingerprints and validity, never a private key."""
    current = None
    if "sp_signing" in secrets and "sp_encryption" in secrets:
        current = {
            "signing": _certificate_info(secrets["sp_signing"]["cert"]),
            "encryption": _certificate_info(secrets["sp_encryption"]["cert"]),
        }
    staged = None
    if all(name in secrets for name in _NEXT):
        staged = {
            "signing": _certificate_info(secrets["sp_signing_next"]["cert"]),
            "encryption": _certificate_info(secrets["sp_encryption_next"]["cert"]),
            "staged_at": secrets["sp_encryption_next"].get("staged_at"),
        }
    previous = None
    if _PREVIOUS in secrets:
        previous = {
            "encryption": _certificate_info(secrets[_PREVIOUS]["cert"]),
            "replaced_at": secrets[_PREVIOUS].get("replaced_at"),
        }
    return {"current": current, "next": staged, "previous": previous}


def _pair(entry: dict[str, str]) -> dict[str, str]:
    return {"key": entry["key"], "cert": entry["cert"]}


def _apply(connection: Connection, secrets: dict[str, Any], action: str) -> dict[str, Any]:
    now = timezone.now().isoformat()
    staged = all(name in secrets for name in _NEXT)
    if action == "stage":
        if staged:
            raise SpKeyError("a next key pair is already staged: promote it, or discard it to stage a new one")
        if _PREVIOUS in secrets:
            raise SpKeyError(
                "the encryption key replaced by the last promotion is still accepted (grace period): "
                "retire it before staging the next rotation"
            )
        for name, use in zip(_NEXT, ("signing", "encryption"), strict=True):
            # Named by the day it was made, not "next": the certificate outlives its staging.
            common_name = f"Vestibule SP {use} {connection.pk} {now[:10]}"
            secrets[name] = {**generate_key_pair(common_name), "staged_at": now}
    elif action == "promote":
        if not staged:
            raise SpKeyError(
                "no next key pair is staged: stage one first, and promote once IdPs have read the metadata"
            )
        secrets[_PREVIOUS] = {**_pair(secrets["sp_encryption"]), "replaced_at": now}
        secrets["sp_signing"] = _pair(secrets.pop("sp_signing_next"))
        secrets["sp_encryption"] = _pair(secrets.pop("sp_encryption_next"))
    elif action == "retire":
        if _PREVIOUS not in secrets:
            raise SpKeyError("there is no previous encryption key to retire (promote a staged key pair first)")
        del secrets[_PREVIOUS]
    elif action == "discard":
        if not staged:
            raise SpKeyError("no next key pair is staged; nothing to discard")
        for name in _NEXT:
            secrets.pop(name, None)
    else:
        raise SpKeyError(f"action must be one of {', '.join(SP_KEY_ACTIONS)}", status=422)
    return secrets


def rotate_sp_keys(connection: Connection, action: str) -> dict[str, Any]:
    """One rotation step on a SAML connection's SP keys; returns :func:`sp_key_status` after it.

    The connection row is locked for the step, so two concurrent steps
    cannot both act on the same starting keys. ``connection`` is updated in
    place (its ``secrets_encrypted``), and the SP object cache, keyed by the
    sealed secrets, sees the change at once.
    """
    if connection.protocol != Connection.Protocol.SAML:
        raise SpKeyError("SP keys belong to SAML connections; this is an OIDC connection", field="id", status=422)
    if action not in SP_KEY_ACTIONS:
        raise SpKeyError(f"action must be one of {', '.join(SP_KEY_ACTIONS)}", status=422)
    with transaction.atomic():
        locked = Connection.objects.select_for_update().get(pk=connection.pk)
        secrets = _apply(locked, ensure_sp_keys(locked), action)
        write_secrets(locked, secrets)
        locked.save(update_fields=["secrets_encrypted", "updated_at"])
    connection.secrets_encrypted = locked.secrets_encrypted
    return sp_key_status(secrets)


def sp_key_arguments(secrets: dict[str, Any]) -> dict[str, Any]:
    """The ``vestibule.saml.ServiceProvider`` key arguments for the stored keys (see the module docstring).

    ``next_encryption`` is the staged next key or, during a grace period
    after a promotion, the previous one: either way a key that decrypts
    and is listed after the current certificate in the metadata.
    """
    signing, encryption = secrets["sp_signing"], secrets["sp_encryption"]
    second = secrets.get("sp_encryption_next") or secrets.get(_PREVIOUS)
    return {
        "signing": KeyPair(signing["key"], signing["cert"]),
        "encryption": KeyPair(encryption["key"], encryption["cert"]),
        "next_signing_certificate": secrets["sp_signing_next"]["cert"] if "sp_signing_next" in secrets else None,
        "next_encryption": KeyPair(second["key"], second["cert"]) if second else None,
    }
