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

__all__ = ["ClaimMapping", "ClaimMappingError", "claim_values", "MAX_CLAIM_VALUES"]

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

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ClaimMapping:
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise ClaimMappingError(f"claims.{key}", f"unknown claim setting '{key}'; known: {', '.join(sorted(known))}")
        for key in ("email", "name", "external_id", "role_mapping", "roles"):
            value = data.get(key, getattr(cls, key, ""))
            if not isinstance(value, str) or len(value) > 300:
                raise ClaimMappingError(f"claims.{key}", f"claims.{key} must be a claim name (text, at most 300 characters)")
        for key in ("email", "name"):
            if key in data and not data[key]:
                raise ClaimMappingError(f"claims.{key}", f"claims.{key} cannot be empty: Vestibule requires it")
        if data.get("role_source", "mapping_roles") not in ("mapping_roles", "roles_claim"):
            raise ClaimMappingError("claims.role_source", "claims.role_source must be 'mapping_roles' or 'roles_claim'")
        if data.get("requirement_policy", "refuse") not in ("refuse", "drop"):
            raise ClaimMappingError("claims.requirement_policy", "claims.requirement_policy must be 'refuse' or 'drop'")
        values = data.get("role_values", {})
        if not isinstance(values, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in values.items()):
            raise ClaimMappingError("claims.role_values", "claims.role_values must map provider values (text) to role names")
        if len(values) > 500:
            raise ClaimMappingError("claims.role_values", "claims.role_values has more than 500 entries")
        if data.get("role_source") == "roles_claim" and not data.get("roles"):
            raise ClaimMappingError("claims.roles", "claims.roles must name the roles claim when role_source is roles_claim")
        return cls(**{**data, "role_values": dict(values)})

    def to_dict(self) -> dict[str, Any]:
        return {f.name: (dict(getattr(self, f.name)) if f.name == "role_values" else getattr(self, f.name)) for f in fields(self)}


def _lookup(claims: Mapping[str, Any], path: str) -> Any:
    if path in claims:
        return claims[path]
    current: Any = claims
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return _MISSING
        current = current[part]
    return current


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
