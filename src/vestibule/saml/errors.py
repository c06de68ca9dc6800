"""Errors raised by the SAML 2.0 service-provider package.

Every failure a hostile or misconfigured peer can cause is one subclass of
:class:`SamlError`, with a stable ``code`` (written to the audit log and shown
on the error page), a human ``description``, optional admin-facing
``expected`` / ``received`` strings and ``fix_in``, which says whose
configuration must change (:class:`~vestibule.domain.reasons.FixIn`:
the identity provider's, or Vestibule's own as the service provider), and
``reason``, the sign-in reason code it becomes: ``sso.assertion_invalid`` for
everything wrong with a response, ``sso.connection_misconfigured`` for our own
settings and request.

Errors never carry key material or the raw message: ``received`` holds a single
short value (an audience, a destination URL, a status code), truncated to
:data:`vestibule.protocol_errors.MAX_DETAIL`.

The codes follow the processing rules they enforce: SAML core §3.2.2 (status),
§2.5 (conditions), §2.4 (subject confirmation); profiles §4.1.4.3 (SSO response
rules); bindings §3.5.5.2 (Destination).

Tree::

    SamlError (saml.error)
    ├── SamlSettingsError (saml.settings_invalid)            — has .field
    ├── MetadataError (saml.metadata_invalid)
    ├── RequestError (saml.request_invalid)                  — our own AuthnRequest / IdP side
    └── ResponseError (saml.response_invalid)
        ├── MalformedError (saml.malformed)
        │   ├── TooLargeError (saml.too_large)
        │   ├── DtdForbiddenError (saml.dtd_forbidden)
        │   └── AuthnStatementMissingError (saml.authn_statement_missing)
        ├── SignatureError (saml.signature_invalid)
        │   ├── UnsignedError (saml.unsigned)
        │   ├── CertificateUntrustedError (saml.certificate_untrusted)
        │   ├── CertificateExpiredError (saml.certificate_expired)
        │   ├── AlgorithmNotAllowedError (saml.algorithm_not_allowed)
        │   └── TransformNotAllowedError (saml.transform_not_allowed)
        ├── DecryptionError (saml.decryption_failed)
        ├── StatusNotSuccessError (saml.status_not_success)
        ├── AssertionCountError (saml.assertion_count)
        ├── UnencryptedError (saml.unencrypted)
        ├── DestinationMismatchError (saml.destination_mismatch)
        ├── RecipientMismatchError (saml.recipient_mismatch)
        ├── AudienceMismatchError (saml.audience_mismatch)
        ├── IssuerMismatchError (saml.issuer_mismatch)
        ├── InResponseToMismatchError (saml.in_response_to_mismatch)
        ├── UnsolicitedResponseError (saml.unsolicited_response)
        ├── SubjectError (saml.subject_invalid)
        ├── ExpiredError (saml.expired)
        ├── NotYetValidError (saml.not_yet_valid)
        └── ReplayedError (saml.replayed)
"""

from __future__ import annotations

from typing import ClassVar

from vestibule.domain.reasons import FixIn
from vestibule.protocol_errors import ProtocolError


class SamlError(ProtocolError):
    """Base of every error raised by :mod:`vestibule.saml`."""

    code: ClassVar[str] = "saml.error"
    reason: ClassVar[str] = "sso.assertion_invalid"
    default_description: ClassVar[str] = "The SAML message could not be processed."


class SamlSettingsError(SamlError):
    """The per-connection SAML settings document is invalid; ``field`` names the key."""

    code = "saml.settings_invalid"
    reason = "sso.connection_misconfigured"
    default_description = "The SAML settings are invalid."
    default_fix_in = FixIn.VESTIBULE

    def __init__(
        self,
        field: str,
        description: str,
        *,
        expected: str | None = None,
        received: str | None = None,
    ) -> None:
        self.field = field
        super().__init__(f"{field}: {description}", expected=expected, received=received)


class MetadataError(SamlError):
    code = "saml.metadata_invalid"
    reason = "sso.connection_misconfigured"
    default_description = "The identity provider metadata could not be used."


class RequestError(SamlError):
    code = "saml.request_invalid"
    reason = "sso.connection_misconfigured"
    default_description = "The authentication request is invalid."
    default_fix_in = FixIn.VESTIBULE


class ResponseError(SamlError):
    code = "saml.response_invalid"
    default_description = "The SAML response is invalid."


class MalformedError(ResponseError):
    code = "saml.malformed"
    default_description = "The SAML message is not well-formed SAML 2.0."


class TooLargeError(MalformedError):
    code = "saml.too_large"
    default_description = "The SAML message exceeds the size limit."


class DtdForbiddenError(MalformedError):
    code = "saml.dtd_forbidden"
    default_description = "The SAML message contains a DOCTYPE, which SAML forbids."


class AuthnStatementMissingError(MalformedError):
    """An unsolicited assertion without AuthnStatement (profiles §4.1.4.2).

    In answer to our own AuthnRequest the statement may be absent (Keycloak's
    "Include AuthnStatement" switch off); an unsolicited response has no request
    to answer, and the statement is then its only claim to be a sign-in.
    """

    code = "saml.authn_statement_missing"
    default_description = "The assertion has no AuthnStatement."


class SignatureError(ResponseError):
    code = "saml.signature_invalid"
    default_description = "The XML signature is invalid."


class UnsignedError(SignatureError):
    code = "saml.unsigned"
    default_description = "A required XML signature is missing."


class CertificateUntrustedError(SignatureError):
    code = "saml.certificate_untrusted"
    default_description = "The message is not signed by any configured certificate."


class CertificateExpiredError(SignatureError):
    code = "saml.certificate_expired"
    default_description = "The configured signing certificate is outside its validity period."


class AlgorithmNotAllowedError(SignatureError):
    code = "saml.algorithm_not_allowed"
    default_description = "The message uses an algorithm this connection does not allow."


class TransformNotAllowedError(SignatureError):
    code = "saml.transform_not_allowed"
    default_description = "The signature uses a reference transform that is not allowed."


class DecryptionError(ResponseError):
    code = "saml.decryption_failed"
    default_description = "The encrypted assertion could not be decrypted."


class StatusNotSuccessError(ResponseError):
    code = "saml.status_not_success"
    default_description = "The identity provider reported a failure status."


class AssertionCountError(ResponseError):
    code = "saml.assertion_count"
    default_description = "The response must contain exactly one assertion."


class UnencryptedError(ResponseError):
    code = "saml.unencrypted"
    default_description = "This connection requires encrypted assertions, but the assertion is in clear text."


class DestinationMismatchError(ResponseError):
    code = "saml.destination_mismatch"
    default_description = "The response Destination is not this connection's ACS URL."


class RecipientMismatchError(ResponseError):
    code = "saml.recipient_mismatch"
    default_description = "The SubjectConfirmationData Recipient is not this connection's ACS URL."


class AudienceMismatchError(ResponseError):
    code = "saml.audience_mismatch"
    default_description = "The assertion is not addressed to this service provider."


class IssuerMismatchError(ResponseError):
    code = "saml.issuer_mismatch"
    default_description = "The issuer is not this connection's identity provider."


class InResponseToMismatchError(ResponseError):
    code = "saml.in_response_to_mismatch"
    default_description = "The response does not answer the request this browser started."


class UnsolicitedResponseError(ResponseError):
    code = "saml.unsolicited_response"
    default_description = "IdP-initiated sign-in is disabled for this connection."
    default_fix_in = FixIn.VESTIBULE


class SubjectError(ResponseError):
    code = "saml.subject_invalid"
    default_description = "The assertion subject is missing or unusable."


class ExpiredError(ResponseError):
    code = "saml.expired"
    default_description = "The assertion has expired."


class NotYetValidError(ResponseError):
    code = "saml.not_yet_valid"
    default_description = "The assertion is not yet valid (check clocks)."


class ReplayedError(ResponseError):
    code = "saml.replayed"
    default_description = "This assertion was already used."


ALL_ERRORS: tuple[type[SamlError], ...] = (
    SamlError, SamlSettingsError, MetadataError, RequestError, ResponseError,
    MalformedError, TooLargeError, DtdForbiddenError, AuthnStatementMissingError, SignatureError, UnsignedError,
    CertificateUntrustedError, CertificateExpiredError, AlgorithmNotAllowedError,
    TransformNotAllowedError, DecryptionError, StatusNotSuccessError,
    AssertionCountError, UnencryptedError, DestinationMismatchError, RecipientMismatchError,
    AudienceMismatchError, IssuerMismatchError, InResponseToMismatchError,
    UnsolicitedResponseError, SubjectError, ExpiredError, NotYetValidError,
    ReplayedError,
)  # fmt: skip
