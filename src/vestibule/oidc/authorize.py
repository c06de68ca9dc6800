"""Authorization request (OIDC Core 1.0 §3.1.2.1) with PKCE S256 (RFC 7636 §4).

:func:`begin_authorization` builds the redirect to the provider's
authorization endpoint for the authorization-code flow and returns the
per-attempt secrets (``state``, ``nonce``, ``code_verifier``), which the web
layer stores server-side and consumes exactly once at the callback.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .config import OidcClientConfig, require_secure_url
from .errors import OidcConfigError

if TYPE_CHECKING:
    from .discovery import ProviderMetadata

__all__ = ["AuthorizationRequest", "begin_authorization", "pkce_challenge"]

#: Parameters the relying party owns; callers cannot override them.
_RESERVED = frozenset(
    {"response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge", "code_challenge_method"}
)


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """The redirect URL plus the secrets to keep server-side until the callback."""

    url: str
    state: str
    nonce: str = field(repr=False)
    code_verifier: str = field(repr=False)


def pkce_challenge(code_verifier: str) -> str:
    """RFC 7636 §4.2: ``BASE64URL(SHA256(ASCII(code_verifier)))``."""
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def begin_authorization(
    config: OidcClientConfig,
    metadata: ProviderMetadata,
    redirect_uri: str,
    *,
    extra_params: Mapping[str, str] | None = None,
) -> AuthorizationRequest:
    """Build an authorization-code + PKCE request with fresh random state and nonce."""
    if not require_secure_url(redirect_uri):
        raise OidcConfigError("redirect_uri", "must be an https URL (http only on loopback)")
    extra = dict(extra_params or {})
    clash = _RESERVED.intersection(extra)
    if clash:
        raise OidcConfigError("extra_params", f"cannot override {', '.join(sorted(clash))}")
    # 256 bits each; RFC 7636 §4.1 wants 43..128 characters of verifier.
    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    code_verifier = secrets.token_urlsafe(48)
    params: dict[str, str] = {
        "response_type": "code",
        "client_id": config.client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(config.scopes),
        "state": state,
        "nonce": nonce,
        "code_challenge": pkce_challenge(code_verifier),
        "code_challenge_method": "S256",
    }
    binding = config.tenant_binding
    if binding is not None and binding.kind == "google_hd" and binding.tenant_id and "hd" not in extra:
        # A UI hint only; the hd claim is still enforced on the ID token.
        params["hd"] = binding.tenant_id
    params.update(extra)
    parts = urlsplit(metadata.authorization_endpoint)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query = [(k, v) for k, v in query if k not in params]
    url = urlunsplit(parts._replace(query=urlencode(query + list(params.items()))))
    return AuthorizationRequest(url=url, state=state, nonce=nonce, code_verifier=code_verifier)
