"""The relying party's own private key (private_key_jwt client authentication), as configured."""

from __future__ import annotations

import json

from joserfc.jwk import Key, import_key

__all__ = ["load_private_key"]


def load_private_key(text: str) -> Key:
    """Import a private key given as a JWK (JSON text) or PEM text."""
    stripped = text.strip()
    key: Key | None = None
    if stripped.startswith("{"):
        key = import_key(json.loads(stripped))
    else:
        for kty in ("RSA", "EC", "OKP"):
            try:
                key = import_key(stripped, kty)
                break
            except Exception:  # noqa: BLE001 - try the next key type
                continue
    if key is None or not key.is_private:
        raise ValueError("not a private key")
    return key
