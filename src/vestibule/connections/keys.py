"""Per-connection secrets: SP key pairs and OIDC client credentials, sealed at rest."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from vestibule.conf.secretbox import open_secret, seal_secret
from vestibule.connections.models import Connection

_PURPOSE = "connection-secrets"


def generate_key_pair(common_name: str, *, years: int = 10) -> dict[str, str]:
    """An RSA-2048 key and a self-signed certificate for SAML signing or encryption.

    SAML metadata pins certificates by value, so a self-signed certificate is
    the norm; its validity period only documents intended rotation.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    now = dt.datetime.now(dt.timezone.utc)
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
