"""SSO authorization (seed 002): mapping roles and the lock-out warning."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction

from vestibule.accounts.models import Account, Project, ProjectAccess, RoleGrant, Source
from vestibule.accounts.roles import effective_account_roles, get_catalog
from vestibule.connections.models import Connection, ExternalIdentity, MappingRole, MappingRoleGrant
from vestibule.domain.claims import ClaimMapping
from vestibule.domain.pipeline import AssertedIdentity, LoginFailure, MappingRoleGrants, decide_roles
from vestibule.domain.roles import RoleRuleError


class MappingRoleError(Exception):
    """A mapping-role rule is broken; ``conflict`` marks a name already taken (HTTP 409)."""

    def __init__(self, detail: str, field: str, *, conflict: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.conflict = conflict


def save_mapping_role(
    account: Account,
    mapping_role: MappingRole | None = None,
    *,
    name: str | None = None,
    grants: list[dict[str, Any]] | None = None,
) -> MappingRole:
    """Create (``mapping_role`` None) or change a mapping role: the one place for its rules (API and CLI).

    ``grants`` (the API shape) replaces all of the mapping role's grant rows.
    """
    if mapping_role is None:
        mapping_role = MappingRole(account=account)
        if grants is None:
            grants = []
    rows = _grant_rows(account, validate_grants(account, grants)) if grants is not None else None
    if name is not None:
        mapping_role.name = name
    try:
        with transaction.atomic():
            mapping_role.save()
            if rows is not None:
                MappingRoleGrant.objects.filter(mapping_role=mapping_role).delete()
                for row in rows:
                    row.mapping_role = mapping_role
                MappingRoleGrant.objects.bulk_create(rows)
    except IntegrityError:
        raise MappingRoleError(
            f"a mapping role named '{mapping_role.name}' exists in '{account.slug}'", "name", conflict=True
        ) from None
    # Drop a stale prefetch so ``mapping_role.grants`` reads what was just written.
    getattr(mapping_role, "_prefetched_objects_cache", {}).pop("role_grants", None)
    return mapping_role


def _grant_rows(account: Account, grants: list[dict[str, Any]]) -> list[MappingRoleGrant]:
    projects = {p.slug: p for p in Project.objects.filter(account=account)}
    rows: list[MappingRoleGrant] = []
    for grant in grants:
        project = None if grant["scope"] == "account" else projects[grant["scope"].removeprefix("project:")]
        rows.extend(MappingRoleGrant(project=project, role=role) for role in grant["roles"])
    return rows


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
            raise MappingRoleError(
                f"scope '{scope}' appears twice; each scope once per mapping role", f"grants[{index}].scope"
            )
        seen.add(scope)
        if scope != "account":
            slug = scope.removeprefix("project:")
            if not scope.startswith("project:") or not Project.objects.filter(account=account, slug=slug).exists():
                raise MappingRoleError(
                    f"scope must be 'account' or 'project:<slug>' of an existing project, not '{scope}'",
                    f"grants[{index}].scope",
                )
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


def mapping_roles_of(connection: Connection) -> list[MappingRoleGrants]:
    """The account's mapping roles as plain data, in one query (a LEFT JOIN over grants and projects).

    A mapping role whose grants all went with deleted projects is still
    listed, granting nothing: its name still matches the claim.
    """
    rows = (
        MappingRole.objects.filter(account=connection.account_id)
        .order_by("pk")
        .values_list("pk", "name", "role_grants__project__slug", "role_grants__role")
    )
    collected: dict[int, tuple[str, set[str], dict[str, set[str]]]] = {}
    for pk, name, project, role in rows:
        _, account_roles, projects = collected.setdefault(pk, (name, set(), {}))
        if role is None:
            continue
        if project is None:
            account_roles.add(role)
        else:
            projects.setdefault(project, set()).add(role)
    return [
        MappingRoleGrants(name, frozenset(account_roles), {slug: frozenset(r) for slug, r in projects.items()})
        for name, account_roles, projects in collected.values()
    ]


def lockout_warnings(connection: Connection) -> list[str]:
    """Who would be locked out by turning SSO authorization on (seed 002 "Requirement").

    Each sso-admin who signed in through this connection has their last
    login's authorization claims replayed against the rules the connection
    would now apply: a login that would be refused, or one that would no
    longer grant sso-admin, leaves the account without its SSO administrator.
    """
    mapping = ClaimMapping.from_dict(connection.claims)
    catalog = get_catalog()
    mapping_roles = mapping_roles_of(connection)
    claim = mapping.role_mapping if mapping.role_source == "mapping_roles" else mapping.roles
    advice = "Fix the identity provider or the mapping roles first, or keep a break-glass password admin."
    warnings = []
    identities = (
        ExternalIdentity.objects.filter(connection=connection).select_related("user").order_by("user__email_key")
    )
    for identity in identities:
        user = identity.user
        if "sso-admin" not in effective_account_roles(user, connection.account):
            continue
        last = identity.last_claims or {}
        asserted = AssertedIdentity(
            external_id=identity.external_id,
            email=user.email,
            email_key=user.email_key,
            domain="",
            name=user.name,
            role_mapping=tuple(last.get("role_mapping") or ()) or None,
            roles=tuple(last["roles"]) if last.get("roles") is not None else None,
        )
        try:
            decision = decide_roles(asserted, mapping, catalog, mapping_roles)
        except LoginFailure as failure:
            warnings.append(
                f"sso-admin {user.email} last signed in without a '{claim}' value matching "
                f"{'a mapping role' if mapping.role_source == 'mapping_roles' else 'the role rules'} "
                f"(received: {failure.received or 'nothing'}); with SSO authorization on, that login would fail "
                f"with {failure.code}. {advice}"
            )
            continue
        if "sso-admin" not in catalog.effective(decision.account_roles):
            warnings.append(
                f"sso-admin {user.email} would lose sso-admin at their next login: their last '{claim}' claim grants "
                f"{', '.join(sorted(decision.account_roles)) or 'no account roles'}. {advice}"
            )
    if mapping.role_source == "mapping_roles" and not mapping_roles:
        warnings.append("the account has no mapping roles yet: every SSO login through this connection will fail")
    return warnings


def release_managed_roles(connection: Connection) -> int:
    """SSO authorization turned off: the roles it granted stay, as manual roles (seed 002).

    Users keep exactly the roles they had, and administrators can edit them
    again: a PUT of a scope replaces manual roles, so the grants must become
    manual rather than linger as SSO grants nobody could remove. Projects the
    mapping roles opened stay open the same way. Returns how many grants moved.
    """
    grants = RoleGrant.objects.filter(connection=connection, source=Source.SSO)
    moved = 0
    for grant in grants.select_related("project"):
        duplicate = RoleGrant.objects.filter(
            user_id=grant.user_id,
            account_id=grant.account_id,
            project=grant.project,
            role=grant.role,
            source=Source.MANUAL,
        )
        if duplicate.exists():
            grant.delete()
            continue
        grant.source, grant.connection, grant.managed = Source.MANUAL, None, False
        grant.save(update_fields=["source", "connection", "managed"])
        moved += 1
        if grant.project is not None:
            ProjectAccess.objects.get_or_create(
                user_id=grant.user_id, project=grant.project, source=Source.MANUAL, connection=None
            )
    return moved


# The console's views of the same rules (seed 002 screens) --------------------------------------------


@dataclass(frozen=True)
class MappedPerson:
    """A person whose last SSO login sent a mapping role's name, and what deleting it does to them."""

    email: str
    connection: str
    # No other value of their last role_mapping claim matches a mapping role: their next login is refused.
    refused_next_login: bool


def people_under_mapping_role(account: Account, name: str, *, limit: int = 500) -> list[MappedPerson]:
    """Who signs in under ``name``, judged by their last login's ``role_mapping`` values (seed 002).

    Only connections with SSO authorization on apply mapping roles, so only
    their people lose roles (at their next login) when the mapping role goes.
    """
    others = set(MappingRole.objects.filter(account=account).exclude(name=name).values_list("name", flat=True))
    identities = (
        ExternalIdentity.objects.filter(connection__account=account, connection__sso_authorization=True)
        .select_related("user", "connection")
        .order_by("user__email_key")
    )
    found = []
    for identity in identities.iterator():
        values = (identity.last_claims or {}).get("role_mapping") or ()
        if not isinstance(values, list | tuple) or name not in values:
            continue
        remaining = {str(v) for v in values if v != name} & others
        found.append(MappedPerson(identity.user.email, identity.connection.name, not remaining))
        if len(found) >= limit:
            break
    return found


@dataclass(frozen=True)
class AuthorizationPreview:
    """What turning SSO authorization on for one connection would do, computed (seed 002 "Requirement")."""

    connection: Connection
    role_source: str
    role_mapping_claim: str
    roles_claim: str
    mapping_roles: int
    warnings: list[str] = field(default_factory=list)
    # People who sign in through the connection and hold manual roles in the account: the
    # provider replaces those roles at their next login, and they become SSO-managed.
    manual_people: list[str] = field(default_factory=list)

    @property
    def claim_configured(self) -> bool:
        if self.role_source == "mapping_roles":
            return bool(self.role_mapping_claim)
        return bool(self.roles_claim)


def authorization_preview(connection: Connection) -> AuthorizationPreview:
    mapping = ClaimMapping.from_dict(connection.claims)
    manual = (
        RoleGrant.objects.filter(
            account_id=connection.account_id,
            source=Source.MANUAL,
            user__external_identities__connection=connection,
        )
        .values_list("user__email", flat=True)
        .distinct()
        .order_by("user__email")
    )
    return AuthorizationPreview(
        connection=connection,
        role_source=mapping.role_source,
        role_mapping_claim=mapping.role_mapping,
        roles_claim=mapping.roles,
        mapping_roles=MappingRole.objects.filter(account_id=connection.account_id).count(),
        warnings=lockout_warnings(connection),
        manual_people=list(manual[:500]),
    )


def managed_people(connection: Connection) -> int:
    """How many people hold roles this connection's SSO authorization manages (released, and editable, when it goes off)."""
    return (
        RoleGrant.objects.filter(connection=connection, source=Source.SSO, managed=True)
        .values("user")
        .distinct()
        .count()
    )
