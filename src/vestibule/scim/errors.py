"""SCIM error responses (RFC 7644 §3.12): an HTTP status, an optional ``scimType`` and a detail.

Every refusal of the protocol layer is a :class:`ScimError`; the service turns it
into the Error message :meth:`ScimError.body` returns, with the same status.
The detail names the problem (the attribute, the position in a filter) and may
quote hostile input, so it is bounded and made printable with
:func:`vestibule.protocol_errors.clip`.
"""

from __future__ import annotations

from typing import Final

from vestibule.protocol_errors import clip

__all__ = ["ERROR_URN", "SCIM_TYPES", "ScimError"]

ERROR_URN: Final = "urn:ietf:params:scim:api:messages:2.0:Error"

# The scimType values RFC 7644 §3.12 defines; anything else is a programming error.
SCIM_TYPES: Final = frozenset(
    {
        "invalidFilter",
        "tooMany",
        "uniqueness",
        "mutability",
        "invalidSyntax",
        "invalidPath",
        "noTarget",
        "invalidValue",
        "invalidVers",
        "sensitive",
    }
)

MAX_DETAIL: Final = 512


class ScimError(Exception):
    """A refusal the client can act on: status, scimType (§3.12) and one sentence of detail."""

    def __init__(self, detail: str, *, status: int = 400, scim_type: str | None = None) -> None:
        if scim_type is not None and scim_type not in SCIM_TYPES:
            raise ValueError(f"{scim_type!r} is not a scimType of RFC 7644 §3.12")
        if not 400 <= status <= 599:
            raise ValueError(f"{status} is not an error status")
        self.status = status
        self.scim_type = scim_type
        self.detail = clip(detail, MAX_DETAIL)
        super().__init__(self.detail)

    def body(self) -> dict[str, object]:
        """The Error message of RFC 7644 §3.12 (``status`` is a JSON string there)."""
        body: dict[str, object] = {"schemas": [ERROR_URN], "status": str(self.status)}
        if self.scim_type is not None:
            body["scimType"] = self.scim_type
        body["detail"] = self.detail
        return body

    def __repr__(self) -> str:
        return f"ScimError({self.detail!r}, status={self.status}, scim_type={self.scim_type!r})"
