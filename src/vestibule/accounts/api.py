"""REST endpoints: accounts, projects, users, role grants, API keys, the role catalog."""

from __future__ import annotations

from typing import Any, Literal

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from ninja import Router, Status
from pydantic import Field, field_validator

from vestibule.accounts.internal import userkit
from vestibule.accounts.internal.rolekit import SsoManagedRoles, get_catalog, replace_manual_roles
from vestibule.accounts.models import Account, Project, ProjectAccess, RoleGrant, User
from vestibule.api.errors import Conflict, NotFound, Unprocessable
from vestibule.api.models import ApiKey
from vestibule.api.schemas import StrictSchema, changes_without_nulls
from vestibule.api.security import account_for, api_key, require_operator
from vestibule.audit.internal.auditkit import record
from vestibule.domain.emails import InvalidEmail, normalize_email
from vestibule.domain.roles import RoleRuleError

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


class UserIn(StrictSchema):
    email: str = Field(max_length=254)
    name: str = Field(default="", max_length=200)
    roles: list[str] = Field(default_factory=list, max_length=50)
    projects: list[ProjectRoles] = Field(default_factory=list, max_length=200)
    login_method: Literal["password", "sso"] = "password"
    send_invitation: bool = True

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        try:
            return normalize_email(value)
        except InvalidEmail as exc:
            raise ValueError(f"invalid email: {exc.reason}") from None


class UserPatch(StrictSchema):
    name: str | None = Field(default=None, max_length=200)
    login_method: Literal["password", "sso"] | None = None
    approval: Literal["approved"] | None = None
    is_active: bool | None = None


class RolesIn(StrictSchema):
    roles: list[str] = Field(max_length=50)
    project: str | None = Field(default=None, pattern=SLUG)


class ApiKeyIn(StrictSchema):
    name: str = Field(default="", max_length=200)


def account_out(account: Account) -> dict[str, Any]:
    return {
        "slug": account.slug,
        "name": account.name,
        "password_ttl_days": account.password_ttl_days,
        "created_at": account.created_at.isoformat(),
    }


def project_out(project: Project) -> dict[str, Any]:
    return {"slug": project.slug, "name": project.name, "created_at": project.created_at.isoformat()}


def user_out(user: User, account: Account) -> dict[str, Any]:
    catalog = get_catalog()
    grants = list(RoleGrant.objects.filter(user=user, account=account).select_related("project"))
    account_roles = {g.role for g in grants if g.project is None}
    project_slugs = set(
        ProjectAccess.objects.filter(user=user, project__account=account).values_list("project__slug", flat=True)
    ) | {g.project.slug for g in grants if g.project is not None}
    projects = []
    for slug in sorted(project_slugs):
        scoped = {g.role for g in grants if g.project is not None and g.project.slug == slug}
        projects.append(
            {
                "slug": slug,
                "roles": sorted(catalog.effective(r for r in scoped | account_roles if r in catalog.roles)),
                "grants": sorted(
                    ({"role": g.role, "source": g.source} for g in grants if g.project and g.project.slug == slug),
                    key=lambda x: (x["role"], x["source"]),
                ),
            }
        )
    return {
        **user.profile(),
        "is_active": user.is_active,
        "roles": sorted(catalog.effective(r for r in account_roles if r in catalog.roles)),
        "grants": sorted(
            ({"role": g.role, "source": g.source} for g in grants if g.project is None),
            key=lambda x: (x["role"], x["source"]),
        ),
        "projects": projects,
        "external_ids": [
            {"connection": str(i.connection_id), "external_id": i.external_id}
            for i in user.external_identities.filter(connection__account=account)
        ],
    }


def member_or_404(account: Account, user_id: int) -> User:
    # IDOR check: the user must be a member of the account named in the URL.
    user = User.objects.filter(pk=user_id, memberships__account=account).first()
    if user is None:
        raise NotFound(f"user {user_id} is not a member of account '{account.slug}'", field="id")
    return user


def project_or_422(account: Account, slug: str, field: str) -> Project:
    project = Project.objects.filter(account=account, slug=slug).first()
    if project is None:
        raise Unprocessable(f"account '{account.slug}' has no project '{slug}'", field=field)
    return project


def _roles_or_422(fn: Any, field: str) -> Any:
    try:
        return fn()
    except RoleRuleError as exc:
        raise Unprocessable(exc.message, field=field) from None
    except SsoManagedRoles as exc:
        raise Conflict(str(exc), field=field) from None


# Accounts ------------------------------------------------------------------


@router.get("/accounts")
def list_accounts(request: HttpRequest) -> list[dict[str, Any]]:
    key = api_key(request)
    accounts = Account.objects.order_by("slug")
    if not key.is_operator:
        accounts = accounts.filter(pk=key.account_id)
    return [account_out(a) for a in accounts]


@router.post("/accounts", response={201: dict})
def create_account(request: HttpRequest, payload: AccountIn) -> Status[Any]:
    require_operator(request)
    try:
        with transaction.atomic():
            account = Account.objects.create(**payload.model_dump())
    except IntegrityError:
        raise Conflict(f"account slug '{payload.slug}' is taken", field="slug") from None
    record("account.created", account=account, actor_api_key=api_key(request))
    return Status(201, account_out(account))


@router.get("/accounts/{slug}")
def get_account(request: HttpRequest, slug: str) -> dict[str, Any]:
    return account_out(account_for(request, slug))


@router.patch("/accounts/{slug}")
def patch_account(request: HttpRequest, slug: str, payload: AccountPatch) -> dict[str, Any]:
    account = account_for(request, slug)
    changes = changes_without_nulls(payload, "name")
    for field, value in changes.items():
        setattr(account, field, value)
    account.save()
    record("account.updated", account=account, actor_api_key=api_key(request), fields=sorted(changes))
    return account_out(account)


@router.delete("/accounts/{slug}", response={204: None})
def delete_account(request: HttpRequest, slug: str) -> Status[Any]:
    require_operator(request)
    account = account_for(request, slug)
    record("account.deleted", actor_api_key=api_key(request), slug=account.slug)
    account.delete()
    return Status(204, None)


# Projects ------------------------------------------------------------------


@router.get("/accounts/{slug}/projects")
def list_projects(request: HttpRequest, slug: str) -> list[dict[str, Any]]:
    account = account_for(request, slug)
    return [project_out(p) for p in account.projects.order_by("slug")]


@router.post("/accounts/{slug}/projects", response={201: dict})
def create_project(request: HttpRequest, slug: str, payload: ProjectIn) -> Status[Any]:
    account = account_for(request, slug)
    try:
        with transaction.atomic():
            project = Project.objects.create(account=account, **payload.model_dump())
    except IntegrityError:
        raise Conflict(f"project '{payload.slug}' already exists in '{slug}'", field="slug") from None
    record("project.created", account=account, actor_api_key=api_key(request), project=project.slug)
    return Status(201, project_out(project))


@router.delete("/accounts/{slug}/projects/{project}", response={204: None})
def delete_project(request: HttpRequest, slug: str, project: str) -> Status[Any]:
    account = account_for(request, slug)
    found = Project.objects.filter(account=account, slug=project).first()
    if found is None:
        raise NotFound(f"project '{project}' not found", field="project")
    found.delete()
    record("project.deleted", account=account, actor_api_key=api_key(request), project=project)
    return Status(204, None)


# Users ---------------------------------------------------------------------


@router.get("/accounts/{slug}/users")
def list_users(request: HttpRequest, slug: str) -> list[dict[str, Any]]:
    account = account_for(request, slug)
    users = User.objects.filter(memberships__account=account).order_by("email_key")
    return [user_out(u, account) for u in users]


@router.post("/accounts/{slug}/users", response={201: dict})
def create_user(request: HttpRequest, slug: str, payload: UserIn) -> Status[Any]:
    account = account_for(request, slug)
    managed_by = userkit.sso_authorization_connection(account)
    if managed_by is not None:
        raise Conflict(
            f"users of '{slug}' arrive through their identity provider (connection '{managed_by}' "
            "manages authorization); invitations are disabled",
        )
    projects = [project_or_422(account, p.slug, f"projects[{i}].slug") for i, p in enumerate(payload.projects)]
    catalog = get_catalog()
    _roles_or_422(lambda: catalog.validate(payload.roles), "roles")
    for i, p in enumerate(payload.projects):
        _roles_or_422(lambda p=p: catalog.validate([*p.roles, *payload.roles]), f"projects[{i}].roles")
    try:
        with transaction.atomic():
            user, created = userkit.add_member(account, payload.email, payload.name, login_method=payload.login_method)
            replace_manual_roles(user, account, payload.roles)
            userkit.grant_projects(user, projects)
            for project, p in zip(projects, payload.projects, strict=True):
                if p.roles:
                    replace_manual_roles(user, account, p.roles, project)
    except userkit.UserConflict as exc:
        raise Conflict(str(exc), field="email") from None
    if payload.send_invitation and user.login_method == User.LoginMethod.PASSWORD and not user.has_usable_password():
        userkit.send_invitation(user, account, inviter=f"An administrator of {account.name}")
    record("user.invited", account=account, actor_api_key=api_key(request), subject_email=user.email, created=created)
    return Status(201, user_out(user, account))


@router.get("/accounts/{slug}/users/{user_id}")
def get_user(request: HttpRequest, slug: str, user_id: int) -> dict[str, Any]:
    account = account_for(request, slug)
    return user_out(member_or_404(account, user_id), account)


@router.patch("/accounts/{slug}/users/{user_id}")
def patch_user(request: HttpRequest, slug: str, user_id: int, payload: UserPatch) -> dict[str, Any]:
    account = account_for(request, slug)
    user = member_or_404(account, user_id)
    changes = payload.model_dump(exclude_unset=True)
    if changes.get("name") is not None and user.login_method == User.LoginMethod.SSO:
        if userkit.sso_authorization_connection(account) is not None:
            raise Conflict("the name of an SSO user comes from the identity provider", field="name")
    if "name" in changes and changes["name"] is not None:
        user.name = changes["name"]
        user.save(update_fields=["name"])
    if changes.get("is_active") is not None:
        user.is_active = changes["is_active"]
        user.save(update_fields=["is_active"])
    if changes.get("approval") == "approved":
        userkit.approve(user)
    method = changes.get("login_method")
    if method and method != user.login_method:
        (userkit.switch_to_sso if method == "sso" else userkit.switch_to_password)(user)
    record("user.updated", account=account, actor_api_key=api_key(request), subject_email=user.email, fields=sorted(changes))
    return user_out(user, account)


@router.delete("/accounts/{slug}/users/{user_id}", response={204: None})
def delete_user(request: HttpRequest, slug: str, user_id: int) -> Status[Any]:
    account = account_for(request, slug)
    user = member_or_404(account, user_id)
    email = user.email
    userkit.remove_member(user, account)
    record("user.removed", account=account, actor_api_key=api_key(request), subject_email=email)
    return Status(204, None)


@router.get("/accounts/{slug}/users/{user_id}/roles")
def get_roles(request: HttpRequest, slug: str, user_id: int) -> dict[str, Any]:
    account = account_for(request, slug)
    out = user_out(member_or_404(account, user_id), account)
    return {"roles": out["roles"], "grants": out["grants"], "projects": out["projects"]}


@router.put("/accounts/{slug}/users/{user_id}/roles")
def put_roles(request: HttpRequest, slug: str, user_id: int, payload: RolesIn) -> dict[str, Any]:
    account = account_for(request, slug)
    user = member_or_404(account, user_id)
    project = project_or_422(account, payload.project, "project") if payload.project else None
    granted = _roles_or_422(lambda: replace_manual_roles(user, account, payload.roles, project), "roles")
    if project is not None:
        userkit.grant_projects(user, [project])
    record(
        "user.roles_replaced",
        account=account,
        actor_api_key=api_key(request),
        subject_email=user.email,
        project=payload.project,
        roles=sorted(granted),
    )
    out = user_out(user, account)
    return {"roles": out["roles"], "grants": out["grants"], "projects": out["projects"]}


# API keys and catalog -------------------------------------------------------


def key_out(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.prefix,
        "name": key.name,
        "account": key.account.slug if key.account else None,
        "created_at": key.created_at.isoformat(),
        "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
    }


@router.get("/accounts/{slug}/api-keys")
def list_keys(request: HttpRequest, slug: str) -> list[dict[str, Any]]:
    account = account_for(request, slug)
    return [key_out(k) for k in ApiKey.objects.filter(account=account, revoked_at__isnull=True).order_by("created_at")]


@router.post("/accounts/{slug}/api-keys", response={201: dict})
def create_key(request: HttpRequest, slug: str, payload: ApiKeyIn) -> Status[Any]:
    account = account_for(request, slug)
    key, secret = ApiKey.issue(account=account, name=payload.name)
    record("api_key.created", account=account, actor_api_key=api_key(request), key=key.prefix)
    return Status(201, {**key_out(key), "key": secret})


@router.delete("/accounts/{slug}/api-keys/{prefix}", response={204: None})
def revoke_key(request: HttpRequest, slug: str, prefix: str) -> Status[Any]:
    from django.utils import timezone

    account = account_for(request, slug)
    if not ApiKey.objects.filter(account=account, prefix=prefix, revoked_at__isnull=True).update(revoked_at=timezone.now()):
        raise NotFound(f"API key '{prefix}' not found", field="prefix")
    record("api_key.revoked", account=account, actor_api_key=api_key(request), key=prefix)
    return Status(204, None)


@router.get("/roles")
def role_catalog(request: HttpRequest) -> dict[str, Any]:
    return get_catalog().to_dict()


__all__ = ["router"]
