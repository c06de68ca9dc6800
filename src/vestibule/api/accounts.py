"""REST endpoints: accounts, projects, users, role grants, API keys, the role catalog."""

from __future__ import annotations

from typing import Any, Literal

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from ninja import Router, Status
from pydantic import Field, field_validator

from vestibule.accounts.models import Account, Invitation, Membership, Project, ProjectAccess, RoleGrant, User
from vestibule.accounts.roles import (
    get_catalog,
    sso_managing_connection,
)
from vestibule.api.errors import ApiError, Conflict, Forbidden, NotFound
from vestibule.api.schemas import StrictSchema, changes_without_nulls
from vestibule.api.security import account_for, principal, require_operator, who
from vestibule.audit import api_keys
from vestibule.audit.events import record
from vestibule.authority.models import ApiKey
from vestibule.authority.ownership import is_home
from vestibule.authority.principal import ADMIN_ROLES, ADMINISTRATOR, USER_MANAGER
from vestibule.domain.emails import InvalidEmail, normalize_email
from vestibule.people import administration

router = Router(tags=["accounts"])

SLUG = r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$"


class AccountIn(StrictSchema):
    slug: str = Field(pattern=SLUG, description="Lowercase letters, digits and inner hyphens")
    name: str = Field(min_length=1, max_length=200)
    password_ttl_days: int | None = Field(default=None, ge=1, le=3650)


class AccountPatch(StrictSchema):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    password_ttl_days: int | None = Field(default=None, ge=1, le=3650)


class ProjectIn(StrictSchema):
    slug: str = Field(pattern=SLUG)
    name: str = Field(min_length=1, max_length=200)


class ProjectRoles(StrictSchema):
    slug: str = Field(pattern=SLUG)
    roles: list[str] = Field(default_factory=list, max_length=50)


class ExternalIdIn(StrictSchema):
    connection: str = Field(max_length=64, description="ID of a connection of this account")
    external_id: str | None = Field(
        max_length=512,
        description="The subject the provider sends (SAML NameID, OIDC sub); null removes the link",
    )


class UserIn(StrictSchema):
    email: str = Field(max_length=254)
    name: str = Field(default="", max_length=200)
    roles: list[str] = Field(default_factory=list, max_length=50)
    projects: list[ProjectRoles] = Field(default_factory=list, max_length=200)
    login_method: Literal["password", "sso"] = "password"
    send_invitation: bool = True
    external_ids: list[ExternalIdIn] = Field(
        default_factory=list,
        max_length=50,
        description="External user IDs per connection (seed 000); by default a provider's first login links by email",
    )

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        try:
            return normalize_email(value)
        except InvalidEmail as exc:
            raise ValueError(f"invalid email: {exc.reason}") from None


class UserPatch(StrictSchema):
    name: str | None = Field(default=None, max_length=200)
    login_method: Literal["password", "sso"] | None = Field(
        default=None,
        description="'password' also pins password sign-in: /login and SSO logins honour it until switched to 'sso'",
    )
    approval: Literal["approved"] | None = None
    is_active: bool | None = None
    external_ids: list[ExternalIdIn] | None = Field(
        default=None, max_length=50, description="Per connection; connections not listed keep their link"
    )


class RolesIn(StrictSchema):
    roles: list[str] = Field(max_length=50)
    project: str | None = Field(default=None, pattern=SLUG)


KeyRole = Literal["administrator", "user-manager", "sso-admin"]


def _administrator_only() -> list[KeyRole]:
    return ["administrator"]


class ApiKeyIn(StrictSchema):
    name: str = Field(default="", max_length=200)
    roles: list[KeyRole] = Field(
        default_factory=_administrator_only,
        min_length=1,
        max_length=3,
        description="The admin roles the key holds in its account (default: administrator)",
    )


ANY_ADMIN = tuple(sorted(ADMIN_ROLES))


def account_out(account: Account) -> dict[str, Any]:
    return {
        "slug": account.slug,
        "name": account.name,
        "password_ttl_days": account.password_ttl_days,
        "created_at": account.created_at.isoformat(),
    }


def project_out(project: Project) -> dict[str, Any]:
    return {"slug": project.slug, "name": project.name, "created_at": project.created_at.isoformat()}


def user_out(user: User, account: Account, membership: Membership | None = None) -> dict[str, Any]:
    """A member as this account sees them: its own membership state, and the identity read-only unless it owns it."""
    catalog = get_catalog()
    if membership is None:
        membership = Membership.objects.get(user=user, account=account)
    grants = list(RoleGrant.objects.filter(user=user, account=account).select_related("project"))
    account_roles = {g.role for g in grants if g.project is None}
    project_slugs = set(
        ProjectAccess.objects.filter(user=user, project__account=account).values_list("project__slug", flat=True)
    ) | {g.project.slug for g in grants if g.project is not None}
    projects: list[dict[str, Any]] = []
    for slug in sorted(project_slugs):
        scoped = {g.role for g in grants if g.project is not None and g.project.slug == slug}
        scoped_grants: list[dict[str, str]] = [
            {"role": g.role, "source": g.source} for g in grants if g.project and g.project.slug == slug
        ]
        projects.append(
            {
                "slug": slug,
                "roles": sorted(catalog.effective(r for r in scoped | account_roles if r in catalog.roles)),
                "grants": sorted(scoped_grants, key=lambda grant: (grant["role"], grant["source"])),
            }
        )
    return {
        **user.profile(),
        "status": "active",
        # Active here: this membership, and the identity behind it.
        "is_active": membership.is_active and user.is_active,
        "membership_active": membership.is_active,
        "approval": membership.approval,
        "identity_managed_here": is_home(account, user),
        "roles": sorted(catalog.effective(r for r in account_roles if r in catalog.roles)),
        "grants": sorted(
            ({"role": g.role, "source": g.source} for g in grants if g.project is None),
            key=lambda x: (x["role"], x["source"]),
        ),
        "projects": projects,
        "external_ids": [
            {"connection": str(i.connection_id), "external_id": i.external_id}
            for i in user.external_identities.filter(connection__account=account).order_by("created_at")
        ],
        # The connection whose identity provider decides this person's roles here (SSO authorization), if any.
        "roles_managed_by": str(managing.pk) if (managing := sso_managing_connection(user, account)) else None,
    }


def member_or_404(account: Account, user_id: int) -> User:
    # IDOR check: the user must be a member of the account named in the URL.
    user = User.objects.filter(pk=user_id, memberships__account=account).first()
    if user is None:
        raise NotFound(f"user {user_id} is not a member of account '{account.slug}'", field="id")
    return user


def invitation_out(invitation: Invitation) -> dict[str, Any]:
    """What the inviting side sees: only what it typed, whether or not the address exists anywhere."""
    return {
        "status": "invited",
        "email": invitation.email,
        "name": invitation.name,
        "roles": invitation.grants.get("roles", []),
        "projects": invitation.grants.get("projects", []),
        "invitation": {
            "id": invitation.pk,
            "expires_at": invitation.expires_at.isoformat(),
            "invited_by": invitation.invited_by,
        },
    }


def _refused(fn: Any) -> Any:
    """Run a people-administration action, a refusal answered as the API error it names."""
    try:
        return fn()
    except administration.Refused as exc:
        raise ApiError(exc.detail, field=exc.field, status=exc.status) from None


def _external_ids(entries: list[ExternalIdIn]) -> list[tuple[str, str | None]]:
    return [(e.connection, e.external_id) for e in entries]


# Accounts ------------------------------------------------------------------


@router.get("/accounts")
def list_accounts(request: HttpRequest) -> list[dict[str, Any]]:
    return [account_out(a) for a in principal(request).administered_accounts().order_by("slug")]


@router.post("/accounts", response={201: dict})
def create_account(request: HttpRequest, payload: AccountIn) -> Status[Any]:
    require_operator(request)
    try:
        with transaction.atomic():
            account = Account.objects.create(**payload.model_dump())
    except IntegrityError:
        raise Conflict(f"account slug '{payload.slug}' is taken", field="slug") from None
    record("account.created", account=account, **who(request))
    return Status(201, account_out(account))


@router.get("/accounts/{slug}")
def get_account(request: HttpRequest, slug: str) -> dict[str, Any]:
    return account_out(account_for(request, slug, *ANY_ADMIN))


@router.patch("/accounts/{slug}")
def patch_account(request: HttpRequest, slug: str, payload: AccountPatch) -> dict[str, Any]:
    account = account_for(request, slug, ADMINISTRATOR)
    changes = changes_without_nulls(payload, "name")
    for field, value in changes.items():
        setattr(account, field, value)
    account.save()
    record("account.updated", account=account, **who(request), fields=sorted(changes))
    return account_out(account)


@router.delete("/accounts/{slug}", response={204: None})
def delete_account(request: HttpRequest, slug: str) -> Status[Any]:
    require_operator(request)
    account = account_for(request, slug)
    record("account.deleted", **who(request), slug=account.slug)
    account.delete()
    return Status(204, None)


# Projects ------------------------------------------------------------------


@router.get("/accounts/{slug}/projects")
def list_projects(request: HttpRequest, slug: str) -> list[dict[str, Any]]:
    account = account_for(request, slug, *ANY_ADMIN)
    return [project_out(p) for p in account.projects.order_by("slug")]


@router.post("/accounts/{slug}/projects", response={201: dict})
def create_project(request: HttpRequest, slug: str, payload: ProjectIn) -> Status[Any]:
    account = account_for(request, slug, ADMINISTRATOR)
    project = _refused(lambda: administration.create_project(principal(request), account, payload.slug, payload.name))
    return Status(201, project_out(project))


@router.delete("/accounts/{slug}/projects/{project}", response={204: None})
def delete_project(request: HttpRequest, slug: str, project: str) -> Status[Any]:
    account = account_for(request, slug, ADMINISTRATOR)
    _refused(lambda: administration.delete_project(principal(request), account, project))
    return Status(204, None)


# Users ---------------------------------------------------------------------


@router.get("/accounts/{slug}/users")
def list_users(
    request: HttpRequest, slug: str, approval: Literal["pending", "approved"] | None = None
) -> list[dict[str, Any]]:
    """Members of the account; ``?approval=pending`` is the queue waiting for "Allow Login" (seed 001)."""
    account = account_for(request, slug, *ANY_ADMIN)
    memberships = Membership.objects.filter(account=account).select_related("user")
    if approval is not None:
        memberships = memberships.filter(approval=approval)
    # The queue oldest first (who waited longest); the full list by email.
    order = ("created_at", "pk") if approval == "pending" else ("user__email_key",)
    return [user_out(m.user, account, m) for m in memberships.order_by(*order)]


@router.post("/accounts/{slug}/users", response={201: dict, 202: dict})
def create_user(request: HttpRequest, slug: str, payload: UserIn) -> Status[Any]:
    """Add a person (201) when this account owns their identity, else invite them (202).

    The account that owns the email's domain (and the operator) adds people
    directly. Anyone else sends an invitation the person accepts while signed
    in as themselves; its answer is the same whether or not the address
    exists anywhere in the deployment.
    """
    account = account_for(request, slug, USER_MANAGER)
    new = administration.NewMember(
        email=payload.email,
        name=payload.name,
        roles=list(payload.roles),
        projects=[administration.ProjectRoles(p.slug, list(p.roles)) for p in payload.projects],
        login_method=payload.login_method if "login_method" in payload.model_fields_set else None,
        send_invitation=payload.send_invitation,
        external_ids=_external_ids(payload.external_ids),
    )
    added = _refused(lambda: administration.add_or_invite(principal(request), account, new))
    if added.invitation is not None:
        return Status(202, invitation_out(added.invitation))
    return Status(201, user_out(added.user, account))


@router.get("/accounts/{slug}/users/{user_id}")
def get_user(request: HttpRequest, slug: str, user_id: int) -> dict[str, Any]:
    account = account_for(request, slug, *ANY_ADMIN)
    return user_out(member_or_404(account, user_id), account)


@router.patch("/accounts/{slug}/users/{user_id}")
def patch_user(request: HttpRequest, slug: str, user_id: int, payload: UserPatch) -> dict[str, Any]:
    """Membership fields (``is_active``, ``approval``) are this account's; identity fields its owner's.

    ``name`` and ``login_method`` change only through the home account (the one
    owning the person's email domain) or the operator. ``is_active`` switches
    this membership; from the home account it also switches the identity,
    which then signs in nowhere.
    """
    account = account_for(request, slug, USER_MANAGER)
    user = member_or_404(account, user_id)
    membership = _refused(
        lambda: administration.update_member(
            principal(request),
            account,
            user,
            fields=payload.model_dump(exclude_unset=True),
            name=payload.name,
            login_method=payload.login_method,
            approval=payload.approval,
            is_active=payload.is_active,
            external_ids=_external_ids(payload.external_ids) if payload.external_ids is not None else None,
        )
    )
    return user_out(user, account, membership)


@router.delete("/accounts/{slug}/users/{user_id}", response={204: None})
def delete_user(request: HttpRequest, slug: str, user_id: int) -> Status[Any]:
    account = account_for(request, slug, USER_MANAGER)
    user = member_or_404(account, user_id)
    _refused(lambda: administration.remove(principal(request), account, user))
    return Status(204, None)


@router.get("/accounts/{slug}/users/{user_id}/roles")
def get_roles(request: HttpRequest, slug: str, user_id: int) -> dict[str, Any]:
    account = account_for(request, slug, *ANY_ADMIN)
    out = user_out(member_or_404(account, user_id), account)
    return {"roles": out["roles"], "grants": out["grants"], "projects": out["projects"]}


@router.put("/accounts/{slug}/users/{user_id}/roles")
def put_roles(request: HttpRequest, slug: str, user_id: int, payload: RolesIn) -> dict[str, Any]:
    account = account_for(request, slug, USER_MANAGER)
    user = member_or_404(account, user_id)
    _refused(lambda: administration.replace_roles(principal(request), account, user, payload.roles, payload.project))
    out = user_out(user, account)
    return {"roles": out["roles"], "grants": out["grants"], "projects": out["projects"]}


# Invitations ---------------------------------------------------------------


@router.get("/accounts/{slug}/invitations")
def list_invitations(request: HttpRequest, slug: str) -> list[dict[str, Any]]:
    """Open invitations of people this account does not own."""
    account = account_for(request, slug, *ANY_ADMIN)
    return [invitation_out(i) for i in administration.open_invitations(account)]


@router.delete("/accounts/{slug}/invitations/{invitation_id}", response={204: None})
def revoke_invitation(request: HttpRequest, slug: str, invitation_id: int) -> Status[Any]:
    account = account_for(request, slug, USER_MANAGER)
    _refused(lambda: administration.revoke_invitation(principal(request), account, invitation_id))
    return Status(204, None)


# API keys and catalog -------------------------------------------------------


def key_out(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.prefix,
        "name": key.name,
        "account": key.account.slug if key.account else None,
        "roles": sorted(key.roles or []),
        "created_by": key.created_by,
        "created_at": key.created_at.isoformat(),
        "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
    }


@router.get("/accounts/{slug}/api-keys")
def list_keys(request: HttpRequest, slug: str) -> list[dict[str, Any]]:
    account = account_for(request, slug, ADMINISTRATOR)
    return [key_out(k) for k in api_keys.active_keys(account)]


@router.post("/accounts/{slug}/api-keys", response={201: dict})
def create_key(request: HttpRequest, slug: str, payload: ApiKeyIn) -> Status[Any]:
    """A service credential for this account, holding the roles asked for and no more than its creator holds."""
    account = account_for(request, slug, ADMINISTRATOR)
    try:
        key, secret = api_keys.issue(principal(request), account, name=payload.name, roles=list(payload.roles))
    except api_keys.RolesBeyondCreator as exc:
        raise Forbidden(str(exc), field="roles") from None
    return Status(201, {**key_out(key), "key": secret})


@router.delete("/accounts/{slug}/api-keys/{prefix}", response={204: None})
def revoke_key(request: HttpRequest, slug: str, prefix: str) -> Status[Any]:
    account = account_for(request, slug, ADMINISTRATOR)
    if not api_keys.revoke(principal(request), account, prefix):
        raise NotFound(f"API key '{prefix}' not found", field="prefix")
    return Status(204, None)


@router.get("/roles")
def role_catalog(request: HttpRequest) -> dict[str, Any]:
    return get_catalog().to_dict()


__all__ = ["router"]
