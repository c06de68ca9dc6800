"""SSO authorization (seed 002): mapping roles and the lock-out warning."""

from __future__ import annotations

from typing import Any

from vestibule.accounts.internal.rolekit import effective_account_roles, get_catalog
from vestibule.accounts.models import Account, Project
from vestibule.connections.models import Connection, ExternalIdentity, MappingRole
from vestibule.domain.claims import ClaimMapping
from vestibule.domain.roles import RoleRuleError


class MappingRoleError(Exception):
    def __init__(self, detail: str, field: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


def validate_grants(account: Account, grants: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each scope at most once; projects exist; roles obey the catalog within their scope."""
    catalog = get_catalog()
    if not grants:
        raise MappingRoleError("a mapping role grants roles in at least one scope", "grants")
    seen: set[str] = set()
    result = []
    account_roles: frozenset[str] = frozenset()
    for index, grant in enumerate(grants):
        scope = grant["scope"]
        if scope in seen:
            raise MappingRoleError(f"scope '{scope}' appears twice; each scope once per mapping role", f"grants[{index}].scope")
        seen.add(scope)
        if scope != "account":
            slug = scope.removeprefix("project:")
            if not scope.startswith("project:") or not Project.objects.filter(account=account, slug=slug).exists():
                raise MappingRoleError(f"scope must be 'account' or 'project:<slug>' of an existing project, not '{scope}'", f"grants[{index}].scope")
        try:
            roles = catalog.require_known(grant["roles"])
        except RoleRuleError as exc:
            raise MappingRoleError(exc.message, f"grants[{index}].roles") from None
        if not roles:
            raise MappingRoleError("grant at least one role in each scope", f"grants[{index}].roles")
        if scope == "account":
            account_roles = roles
        result.append({"scope": scope, "roles": sorted(roles)})
    for index, grant in enumerate(result):
        context = frozenset() if grant["scope"] == "account" else account_roles
        try:
            catalog.validate(frozenset(grant["roles"]) | context)
        except RoleRuleError as exc:
            raise MappingRoleError(exc.message, f"grants[{index}].roles") from None
    return result


def lockout_warnings(connection: Connection) -> list[str]:
    """Who would be locked out by turning SSO authorization on (seed 002 "Requirement")."""
    mapping = ClaimMapping.from_dict(connection.claims)
    if mapping.role_source != "mapping_roles":
        return []
    names = set(MappingRole.objects.filter(account=connection.account).values_list("name", flat=True))
    warnings = []
    for identity in ExternalIdentity.objects.filter(connection=connection).select_related("user"):
        if "sso-admin" not in effective_account_roles(identity.user, connection.account):
            continue
        sent = set(identity.last_claims.get("role_mapping") or [])
        if not sent & names:
            warnings.append(
                f"sso-admin {identity.user.email} last signed in without a '{mapping.role_mapping}' value matching a "
                "mapping role; with SSO authorization on, that login would fail. Fix the identity provider or the "
                "mapping roles first, or keep a break-glass password admin."
            )
    if not names:
        warnings.append("the account has no mapping roles yet: every SSO login through this connection will fail")
    return warnings
