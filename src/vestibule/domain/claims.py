"""Claim mapping: which asserted claim carries what (DESIGN "Connection").

Protocol layers hand over claims as a mapping: SAML attributes by Name (each
a tuple of strings), OIDC claims as decoded JSON. A claim path is looked up
first as an exact key (SAML names such as ``user.department`` or URIs contain
dots), then as a dotted path into nested objects (``realm_access.roles``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

__all__ = ["ClaimMapping", "ClaimMappingError", "claim_values", "claim_value", "says_no", "MAX_CLAIM_VALUES"]

MAX_CLAIM_VALUES = 200
_MISSING = object()


class ClaimMappingError(ValueError):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name
        self.message = message


RoleSource = Literal["mapping_roles", "roles_claim"]
RequirementPolicy = Literal["refuse", "drop"]


@dataclass(frozen=True)
class ClaimMapping:
    """Per-connection claim names and the roles policy.

    ``external_id``: claim holding the user's stable ID at the provider; empty
    means the protocol subject (SAML NameID, OIDC ``sub``), the safe default
    because a provider cannot be talked into asserting another user's subject
    as easily as an editable profile attribute.

    ``email_verified``: claim in which the provider says whether it verified
    the email (OIDC Core 5.1). A provider saying "no" is refused unless
    ``trust_unverified_email``: otherwise anyone who can type an unverified
    address into a self-service provider profile would be signed in, or
    linked, as that address's owner.
    """

    email: str = "email"
    name: str = "name"
    external_id: str = ""
    # Where SSO authorization takes roles from (seed 002 vs seed 004).
    role_source: RoleSource = "mapping_roles"
    role_mapping: str = "role_mapping"
    roles: str = ""
    # IdP group name -> catalog role; values absent here are used as role names.
    role_values: Mapping[str, str] = field(default_factory=dict)
    # A role whose required partner is missing: refuse the login, or drop the role.
    requirement_policy: RequirementPolicy = "refuse"
    email_verified: str = "email_verified"
    trust_unverified_email: bool = False

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ClaimMapping:
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise ClaimMappingError(
                    f"claims.{key}", f"unknown claim setting '{key}'; known: {', '.join(sorted(known))}"
                )
        for key in ("email", "name", "external_id", "role_mapping", "roles", "email_verified"):
            value = data.get(key, getattr(cls, key, ""))
            if not isinstance(value, str) or len(value) > 300:
                raise ClaimMappingError(
                    f"claims.{key}", f"claims.{key} must be a claim name (text, at most 300 characters)"
                )
        for key in ("email", "name"):
            if key in data and not data[key]:
                raise ClaimMappingError(f"claims.{key}", f"claims.{key} cannot be empty: Vestibule requires it")
        if "email_verified" in data and not data["email_verified"]:
            # An empty name would silently switch the check off; that choice has its own, explicit flag.
            raise ClaimMappingError(
                "claims.email_verified",
                "claims.email_verified cannot be empty; to accept emails the provider has not verified, set claims.trust_unverified_email to true",
            )
        if not isinstance(data.get("trust_unverified_email", False), bool):
            raise ClaimMappingError(
                "claims.trust_unverified_email", "claims.trust_unverified_email must be true or false"
            )
        if data.get("role_source", "mapping_roles") not in ("mapping_roles", "roles_claim"):
            raise ClaimMappingError("claims.role_source", "claims.role_source must be 'mapping_roles' or 'roles_claim'")
        if data.get("requirement_policy", "refuse") not in ("refuse", "drop"):
            raise ClaimMappingError("claims.requirement_policy", "claims.requirement_policy must be 'refuse' or 'drop'")
        values = data.get("role_values", {})
        if not isinstance(values, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in values.items()
        ):
            raise ClaimMappingError(
                "claims.role_values", "claims.role_values must map provider values (text) to role names"
            )
        if len(values) > 500:
            raise ClaimMappingError("claims.role_values", "claims.role_values has more than 500 entries")
        if data.get("role_source") == "roles_claim" and not data.get("roles"):
            raise ClaimMappingError(
                "claims.roles", "claims.roles must name the roles claim when role_source is roles_claim"
            )
        return cls(**{**data, "role_values": dict(values)})

    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: (dict(getattr(self, f.name)) if f.name == "role_values" else getattr(self, f.name))
            for f in fields(self)
        }


def _lookup(claims: Mapping[str, Any], path: str) -> Any:
    if path in claims:
        return claims[path]
    current: Any = claims
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return _MISSING
        current = current[part]
    return current


def claim_value(claims: Mapping[str, Any], path: str) -> Any:
    """The claim as asserted (any JSON shape), or None when absent."""
    value = _lookup(claims, path) if path else _MISSING
    return None if value is _MISSING else value


_NO = frozenset({"false", "0"})


def says_no(value: Any) -> bool:
    """Whether a flag claim says no: JSON false or 0, or the text "false"/"0" (any case).

    Providers send flags as JSON booleans, as strings (SAML attributes are
    always text, and some OIDC providers quote their booleans), or as a
    one-element list. Any value that says no in a list counts: doubt is
    resolved against the person being signed in.
    """
    items = value if isinstance(value, (list, tuple)) else [value]
    for item in items[:MAX_CLAIM_VALUES]:
        if item is False or (type(item) is int and item == 0):
            return True
        if isinstance(item, str) and item.strip().lower() in _NO:
            return True
    return False


def claim_values(claims: Mapping[str, Any], path: str) -> tuple[str, ...] | None:
    """The claim's values as strings, or None when the claim is absent.

    Scalars become one value, lists many. Objects and nested lists are not
    values: they are refused (None would hide a misconfiguration, so they
    surface as an empty tuple and fail the caller's check).
    """
    if not path:
        return None
    value = _lookup(claims, path)
    if value is _MISSING or value is None:
        return None
    items = value if isinstance(value, (list, tuple)) else [value]
    result = []
    for item in items[:MAX_CLAIM_VALUES]:
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            continue
        result.append(str(item))
    return tuple(result)
