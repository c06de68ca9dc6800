"""Errors raised by the OpenID Connect relying party.

Every failure the relying party can detect is an :class:`OidcError` carrying a
stable, named reason ``code`` that the web layer writes to the audit log and
shows on the error page, a human ``description``, optional admin-facing
``expected``/``received`` detail, ``fix_in`` saying which side must fix
it (:class:`~vestibule.domain.reasons.FixIn`: the identity provider, or
Vestibule itself as the relying party), in the spirit of OpenID Connect Core
1.0 §3.1.2.6 / §3.1.3.4 error reporting, and ``reason``: the sign-in reason
code (``vestibule.domain.reasons``) it becomes, shown in the tree below.

None of these messages may contain a client secret, a private key or a full
token: callers pass only claim values, algorithm names, key ids and the
provider's own ``error`` codes, and :func:`clip` bounds every received value.

Nor may they carry what a server-side fetch returned (a discovery document's
values, a response body, a network exception's text): the destination of a
fetch is chosen by an account admin, and echoing it back would turn the login
trace into a reader for whatever that admin can point Vestibule at. A failed
fetch reports the HTTP client's reason code (``outbound.blocked_address``),
an HTTP status, or a fixed phrase of ours.

Exception tree (code, then reason)::

    OidcError                            oidc.error                   sso.id_token_invalid
    ├── OidcConfigError                  oidc.config_invalid          sso.connection_misconfigured
    ├── DiscoveryError                   oidc.discovery_failed        sso.provider_unavailable
    ├── JwksUnavailableError             oidc.jwks_unavailable        sso.provider_unavailable
    ├── TokenEndpointError               oidc.token_endpoint_error    sso.provider_error
    ├── UserinfoError                    oidc.userinfo_failed         sso.provider_unavailable
    │   └── UserinfoSubjectMismatch      oidc.userinfo_sub_mismatch   sso.provider_error
    ├── CallbackError                    oidc.callback_invalid        sso.state_invalid
    │   ├── ProviderErrorResponse        oidc.provider_error          sso.provider_error
    │   ├── StateInvalid                 oidc.state_invalid           sso.state_invalid
    │   └── CallbackInvalid              oidc.callback_invalid        sso.state_invalid
    ├── TenantMismatch                   oidc.tenant_mismatch         sso.tenant_mismatch
    └── IdTokenError                     (codes oidc.id_token.*)      sso.id_token_invalid
        ├── IdTokenMalformed             oidc.id_token.malformed
        ├── IdTokenTooLarge              oidc.id_token.too_large
        ├── AlgorithmNotAllowed          oidc.id_token.alg_not_allowed
        ├── UnknownKeyId                 oidc.id_token.unknown_kid
        ├── SignatureInvalid             oidc.id_token.signature_invalid
        ├── IssuerMismatch               oidc.id_token.issuer_mismatch
        ├── AudienceMismatch             oidc.id_token.audience_mismatch
        ├── AuthorizedPartyMismatch      oidc.id_token.azp_mismatch
        ├── TokenExpired                 oidc.id_token.expired
        ├── IssuedInFuture               oidc.id_token.issued_in_future
        ├── NotYetValid                  oidc.id_token.not_yet_valid
        ├── NonceMissing                 oidc.id_token.nonce_missing
        ├── NonceMismatch                oidc.id_token.nonce_mismatch
        └── AccessTokenHashMismatch      oidc.id_token.at_hash_mismatch
"""

from __future__ import annotations

from typing import Any, ClassVar

from vestibule.domain.reasons import FixIn
from vestibule.protocol_errors import ProtocolError
from vestibule.protocol_errors import clip as _clip

__all__ = [
    "FixIn",
    "clip",
    "OidcError",
    "OidcConfigError",
    "DiscoveryError",
    "JwksUnavailableError",
    "TokenEndpointError",
    "UserinfoError",
    "UserinfoSubjectMismatch",
    "CallbackError",
    "ProviderErrorResponse",
    "StateInvalid",
    "CallbackInvalid",
    "TenantMismatch",
    "IdTokenError",
    "IdTokenMalformed",
    "IdTokenTooLarge",
    "AlgorithmNotAllowed",
    "UnknownKeyId",
    "SignatureInvalid",
    "IssuerMismatch",
    "AudienceMismatch",
    "AuthorizedPartyMismatch",
    "TokenExpired",
    "IssuedInFuture",
    "NotYetValid",
    "NonceMissing",
    "NonceMismatch",
    "AccessTokenHashMismatch",
]

# Detail values are shorter here: provider error strings can be long.
_MAX_DETAIL = 200


def clip(value: Any, limit: int = _MAX_DETAIL) -> str:
    return _clip(value, limit)


class OidcError(ProtocolError):
    """Base of every relying-party failure; never carries a secret."""

    code: ClassVar[str] = "oidc.error"
    reason: ClassVar[str] = "sso.id_token_invalid"
    default_description: ClassVar[str] = "OpenID Connect login failed."
    max_detail: ClassVar[int] = _MAX_DETAIL
    #: Set when a request failed in the HTTP client: its reason code
    #: (``outbound.blocked_address``, ``outbound.timeout`` …), else ``None``.
    outbound_reason: str | None = None


class OidcConfigError(OidcError, ValueError):
    """The connection's OIDC settings are invalid; ``field`` names the culprit."""

    code = "oidc.config_invalid"
    reason = "sso.connection_misconfigured"
    default_description = "The OpenID Connect connection settings are invalid."
    default_fix_in = FixIn.VESTIBULE

    def __init__(self, field: str, description: str, **kwargs: Any) -> None:
        self.field = field
        super().__init__(f"{field}: {description}", **kwargs)


class DiscoveryError(OidcError):
    """OpenID Connect Discovery 1.0 §4: metadata could not be fetched or is invalid."""

    code = "oidc.discovery_failed"
    reason = "sso.provider_unavailable"
    default_description = "The provider's discovery document could not be used."


class JwksUnavailableError(OidcError):
    """The provider's JWK Set (``jwks_uri``) could not be fetched or parsed."""

    code = "oidc.jwks_unavailable"
    reason = "sso.provider_unavailable"
    default_description = "The provider's signing keys could not be fetched."


class TokenEndpointError(OidcError):
    """OIDC Core §3.1.3.4: the token request failed; ``received`` is the wire ``error``."""

    code = "oidc.token_endpoint_error"
    reason = "sso.provider_error"
    default_description = "The provider's token endpoint refused the code exchange."


class UserinfoError(OidcError):
    """OIDC Core §5.3: the UserInfo request failed."""

    code = "oidc.userinfo_failed"
    reason = "sso.provider_unavailable"
    default_description = "The provider's UserInfo endpoint could not be used."


class UserinfoSubjectMismatch(UserinfoError):
    """OIDC Core §5.3.2: UserInfo ``sub`` differs from the ID token's ``sub``."""

    code = "oidc.userinfo_sub_mismatch"
    reason = "sso.provider_error"
    default_description = "UserInfo returned a different subject than the ID token."


class CallbackError(OidcError):
    """The authorization response at the redirect URI is unusable."""

    code = "oidc.callback_invalid"
    reason = "sso.state_invalid"


class ProviderErrorResponse(CallbackError):
    """OIDC Core §3.1.2.6: the provider redirected back with ``error=``."""

    code = "oidc.provider_error"
    reason = "sso.provider_error"
    default_description = "The identity provider returned an error instead of a code."


class StateInvalid(CallbackError):
    """RFC 6749 §10.12: ``state`` does not match the pending authorization."""

    code = "oidc.state_invalid"
    default_description = "The login response does not belong to this login attempt."
    default_fix_in = FixIn.VESTIBULE


class CallbackInvalid(CallbackError):
    """The callback lacks a ``code`` or carries a foreign ``iss`` (RFC 9207)."""

    code = "oidc.callback_invalid"
    default_description = "The login response is incomplete or from another issuer."


class TenantMismatch(OidcError):
    """The ID token belongs to another tenant than the one bound to the connection."""

    code = "oidc.tenant_mismatch"
    reason = "sso.tenant_mismatch"
    default_description = "The user signed in with an organization not bound to this connection."


class IdTokenError(OidcError):
    """OIDC Core §3.1.3.7: ID token validation failed."""

    code = "oidc.id_token.invalid"
    default_description = "The ID token is invalid."


class IdTokenMalformed(IdTokenError):
    code = "oidc.id_token.malformed"
    default_description = "The ID token is not a well-formed signed JWT."


class IdTokenTooLarge(IdTokenError):
    code = "oidc.id_token.too_large"
    default_description = "The ID token exceeds the size limit."


class AlgorithmNotAllowed(IdTokenError):
    code = "oidc.id_token.alg_not_allowed"
    default_description = "The ID token is signed with an algorithm this connection does not allow."


class UnknownKeyId(IdTokenError):
    code = "oidc.id_token.unknown_kid"
    default_description = "No key in the provider's JWK Set can verify the ID token."


class SignatureInvalid(IdTokenError):
    code = "oidc.id_token.signature_invalid"
    default_description = "The ID token signature does not verify."


class IssuerMismatch(IdTokenError):
    code = "oidc.id_token.issuer_mismatch"
    default_description = "The ID token was issued by another issuer."


class AudienceMismatch(IdTokenError):
    code = "oidc.id_token.audience_mismatch"
    default_description = "The ID token is not addressed to this client."


class AuthorizedPartyMismatch(IdTokenError):
    code = "oidc.id_token.azp_mismatch"
    default_description = "The ID token has several audiences but azp is not this client."


class TokenExpired(IdTokenError):
    code = "oidc.id_token.expired"
    default_description = "The ID token has expired."


class IssuedInFuture(IdTokenError):
    code = "oidc.id_token.issued_in_future"
    default_description = "The ID token's iat is in the future; check the clocks."


class NotYetValid(IdTokenError):
    code = "oidc.id_token.not_yet_valid"
    default_description = "The ID token is not valid yet (nbf)."


class NonceMissing(IdTokenError):
    code = "oidc.id_token.nonce_missing"
    default_description = "The ID token carries no nonce."


class NonceMismatch(IdTokenError):
    code = "oidc.id_token.nonce_mismatch"
    default_description = "The ID token's nonce does not match this login attempt."


class AccessTokenHashMismatch(IdTokenError):
    code = "oidc.id_token.at_hash_mismatch"
    default_description = "The ID token's at_hash does not match the access token."
