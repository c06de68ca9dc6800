"""The shape shared by every protocol error (``vestibule.saml``, ``vestibule.oidc``).

Plain Python, no Django. A protocol error carries a stable ``code`` (written to
the audit log, shown on the error page), a ``description`` for people, optional
admin-facing ``expected`` / ``received`` detail, and ``fix_in``: whose
configuration must change, in the one vocabulary of
:class:`vestibule.domain.reasons.FixIn`. Detail values come from hostile input,
so they are bounded and made printable; they never hold keys, secrets or whole
messages.

Each class also declares ``reason``: the sign-in reason code
(``vestibule.domain.reasons``) a failed sign-in reports when this error stops
it, e.g. ``sso.assertion_invalid`` for a bad SAML response or
``sso.provider_unavailable`` for an unreachable JWKS. The web layer reads it;
it never keeps its own table.
"""

from __future__ import annotations

from typing import Any, ClassVar

from vestibule.domain.reasons import FixIn

__all__ = ["MAX_DETAIL", "FixIn", "ProtocolError", "clip"]

MAX_DETAIL = 256


def clip(value: Any, limit: int = MAX_DETAIL) -> str:
    """Render an untrusted value for admin display: printable and bounded in length."""
    text = value if isinstance(value, str) else repr(value)
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ProtocolError(Exception):
    code: ClassVar[str] = "protocol.error"
    #: The sign-in reason this error becomes (a code of ``vestibule.domain.reasons``).
    reason: ClassVar[str] = "sso.assertion_invalid"
    default_description: ClassVar[str] = "The sign-in message could not be processed."
    default_fix_in: ClassVar[FixIn] = FixIn.IDENTITY_PROVIDER
    max_detail: ClassVar[int] = MAX_DETAIL

    def __init__(
        self,
        description: str | None = None,
        *,
        expected: Any = None,
        received: Any = None,
        fix_in: FixIn | None = None,
    ) -> None:
        self.description = description or self.default_description
        self.expected = None if expected is None else clip(expected, self.max_detail)
        self.received = None if received is None else clip(received, self.max_detail)
        self.fix_in: FixIn = FixIn(fix_in or self.default_fix_in)
        super().__init__(self.description)

    def __str__(self) -> str:
        parts = [f"[{self.code}] {self.description}"]
        if self.expected is not None:
            parts.append(f"expected: {self.expected!r}")
        if self.received is not None:
            parts.append(f"received: {self.received!r}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, str | None]:
        """Admin-facing detail for the login trace (no secrets, no message)."""
        return {
            "code": self.code,
            "description": self.description,
            "expected": self.expected,
            "received": self.received,
            "fix_in": self.fix_in.value,
        }
