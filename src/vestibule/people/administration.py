"""What an account's user-managers may do to its people, shared by the admin API and the console.

Each function applies the authority rules of identity ownership
(``authority.ownership``: identity fields are the home account's and the
operator's) and of admin roles (only an administrator touches another admin or
grants an admin role), and writes the audit event. A refusal is a
:class:`Refused` carrying the HTTP status, the message and the field it is
about, so the API answers it as-is and the console ties it to its form field.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from vestibule.accounts.models import Account, Approval, Invitation, Membership, Project, RoleGrant, Source, User
from vestibule.accounts.roles import (
    SsoManagedRoles,
    effective_account_roles,
    get_catalog,
    replace_manual_roles,
    sso_managing_connection,
)
from vestibule.audit.events import record
from vestibule.authority.ownership import home_account_of_email, is_home
from vestibule.authority.principal import ADMIN_ROLES, ADMINISTRATOR, Principal
from vestibule.connections import rules
from vestibule.domain.roles import RoleRuleError
from vestibule.login.passwords import issue_reset_link
from vestibule.people import members


class Refused(Exception):
    """An action the rules refuse: ``status`` as the API answers it, ``field`` what it is about."""

    def __init__(self, status: int, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field


@dataclass(frozen=True)
class ProjectRoles:
    slug: str
    roles: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class NewMember:
    """What the person adding someone typed (``login_method`` None: not chosen, password by default)."""

    email: str
    name: str = ""
    roles: list[str] = field(default_factory=list)
    projects: list[ProjectRoles] = field(default_factory=list)
    login_method: str | None = None
    send_invitation: bool = True
    external_ids: list[tuple[str, str | None]] = field(default_factory=list)


@dataclass(frozen=True)
class Added:
    """``user`` set when the account added them (201); ``invitation`` when it invited them (202)."""

    user: User | None = None
    invitation: Invitation | None = None
    created: bool = False
    invitation_sent: bool = False


def identity_owner_detail(account: Account, user: User) -> str:
    home = home_account_of_email(user.email)
    owner = "the account that owns their email domain" if home is not None else "the person themselves"
    return f"this is part of {user.email}'s identity, which {owner} manages, not account '{account.slug}'"


def manages_identity(acting: Principal, account: Account, user: User) -> bool:
    """The operator, or the home account — except for the operator's own identity, which is the operator's alone."""
    if acting.is_operator:
        return True
    return is_home(account, user) and not user.is_operator


def admin_holder_refusal(acting: Principal, account: Account, user: User) -> Refused | None:
    """Deactivating, removing or converting someone who holds an admin role here is an administrator's act."""
    held = effective_account_roles(user, account) & ADMIN_ROLES
    if held and ADMINISTRATOR not in acting.roles_in(account):
        return Refused(
            403,
            f"{user.email} holds {', '.join(sorted(held))} in account '{account.slug}'; only an administrator may "
            "deactivate, remove or convert them",
            "id",
        )
    return None


def admin_role_refusal(acting: Principal, account: Account, *role_sets: Iterable[str]) -> Refused | None:
    """Granting or removing an admin role is an administrator's act: a user-manager cannot promote anyone."""
    touched = set().union(*(set(r) for r in role_sets)) & ADMIN_ROLES
    if touched and ADMINISTRATOR not in acting.roles_in(account):
        return Refused(
            403,
            f"granting or removing {', '.join(sorted(touched))} needs the 'administrator' role in account '{account.slug}'",
            "roles",
        )
    return None


def _raise(refusal: Refused | None) -> None:
    if refusal is not None:
        raise refusal


def invite_refusal(account: Account) -> Refused | None:
    """With SSO authorization on, people arrive through the identity provider (seed 002, seed 004)."""
    managed_by = members.sso_authorization_connection(account)
    if managed_by is not None:
        return Refused(
            409,
            f"users of '{account.slug}' arrive through their identity provider (connection '{managed_by}' "
            "manages authorization); invitations are disabled",
        )
    return None


def project_or_refused(account: Account, slug: str, field: str) -> Project:
    project = Project.objects.filter(account=account, slug=slug).first()
    if project is None:
        raise Refused(422, f"account '{account.slug}' has no project '{slug}'", field)
    return project


def member_or_none(account: Account, user_id: int) -> User | None:
    # IDOR check: the user must be a member of the account named in the URL.
    return User.objects.filter(pk=user_id, memberships__account=account).first()


def _roles(fn: Any, field: str) -> Any:
    try:
        return fn()
    except RoleRuleError as exc:
        raise Refused(422, exc.message, field) from None
    except SsoManagedRoles as exc:
        raise Refused(409, str(exc), field) from None


def set_external_ids(
    acting: Principal, account: Account, user: User, entries: Sequence[tuple[str, str | None]]
) -> list[dict[str, Any]]:
    """Seed 000: "update the External user ID so that it matches the 3rd party system", per connection.

    External user IDs are identity: the caller has checked that this account
    manages the person's. Only this account's connections are resolved
    (another's is a 404, like one that does not exist). Runs in the caller's
    transaction, so one refused entry changes nothing.
    """
    changed = []
    seen: set[str] = set()
    for index, (connection_id, external_id) in enumerate(entries):
        prefix = f"external_ids[{index}]"
        try:
            connection = rules.account_connection(account, connection_id, f"{prefix}.connection")
            if str(connection.pk) in seen:
                raise Refused(422, f"connection {connection.pk} is listed twice", f"{prefix}.connection")
            seen.add(str(connection.pk))
            previous = rules.set_external_id(connection, user, external_id, f"{prefix}.external_id")
        except rules.ConnectionRuleError as exc:
            raise Refused(exc.status, exc.detail, exc.field) from None
        if previous != external_id:
            changed.append({"connection": connection, "external_id": external_id, "previous": previous})
    for change in changed:
        record(
            "user.external_id_changed",
            account=account,
            connection=change["connection"],
            **acting.actor(),
            subject_email=user.email,
            external_id=change["external_id"],
            previous=change["previous"],
        )
    return changed


def add_or_invite(acting: Principal, account: Account, new: NewMember) -> Added:
    """Add a person (201) when this account owns their identity, else invite them (202).

    The account that owns the email's domain (and the operator) adds people
    directly. Anyone else sends an invitation the person accepts while signed
    in as themselves; its answer is the same whether or not the address
    exists anywhere in the deployment. ``new.email`` is already normalized.
    """
    _raise(invite_refusal(account))
    projects = [project_or_refused(account, p.slug, f"projects[{i}].slug") for i, p in enumerate(new.projects)]
    catalog = get_catalog()
    _roles(lambda: catalog.validate(new.roles), "roles")
    for i, p in enumerate(new.projects):
        _roles(lambda p=p: catalog.validate([*p.roles, *new.roles]), f"projects[{i}].roles")
    _raise(admin_role_refusal(acting, account, new.roles, *(p.roles for p in new.projects)))
    home = home_account_of_email(new.email)
    if not acting.is_operator and (home is None or home.pk != account.pk):
        if new.login_method == User.LoginMethod.SSO.value:
            raise Refused(
                422,
                "login_method belongs to the person's identity, which only the account owning their email domain sets",
                "login_method",
            )
        if new.external_ids:
            raise Refused(
                403,
                "external user IDs belong to the person's identity, which only the account owning their email "
                "domain sets; the person's provider links them at their first sign-in",
                "external_ids",
            )
        try:
            invitation = members.invite(
                account,
                new.email,
                new.name,
                roles=list(new.roles),
                projects=[{"slug": p.slug, "roles": list(p.roles)} for p in new.projects],
                invited_by=acting.label,
            )
        except members.UserConflict as exc:
            raise Refused(409, str(exc), "email") from None
        record("user.invitation_sent", account=account, **acting.actor(), subject_email=invitation.email)
        return Added(invitation=invitation)
    try:
        with transaction.atomic():
            user, created = members.add_member(
                account,
                new.email,
                new.name,
                login_method=new.login_method or User.LoginMethod.PASSWORD,
                claim_identity=home is not None and home.pk == account.pk,
            )
            replace_manual_roles(user, account, new.roles)
            members.grant_projects(user, projects)
            for project, p in zip(projects, new.projects, strict=True):
                if p.roles:
                    replace_manual_roles(user, account, p.roles, project)
            if new.external_ids:
                # The operator adding someone to an account that is not their home manages their identity too.
                if not manages_identity(acting, account, user):
                    raise Refused(403, identity_owner_detail(account, user), "external_ids")
                set_external_ids(acting, account, user, new.external_ids)
    except members.UserConflict as exc:
        raise Refused(409, str(exc), "email") from None
    sent = False
    if new.send_invitation and user.login_method == User.LoginMethod.PASSWORD and not user.has_usable_password():
        members.send_invitation(user, account, inviter=f"An administrator of {account.name}")
        sent = True
    record("user.invited", account=account, **acting.actor(), subject_email=user.email, created=created)
    return Added(user=user, created=created, invitation_sent=sent)


UNSET: Any = object()


def update_member(
    acting: Principal,
    account: Account,
    user: User,
    *,
    fields: Iterable[str],
    name: str | None = None,
    login_method: str | None = None,
    approval: str | None = None,
    is_active: bool | None = None,
    external_ids: Sequence[tuple[str, str | None]] | None = None,
) -> Membership:
    """Membership fields (``is_active``, ``approval``) are this account's; identity fields its owner's.

    ``name``, ``login_method`` and external IDs change only through the home
    account (the one owning the person's email domain) or the operator.
    ``is_active`` switches this membership; from the home account it also
    switches the identity, which then signs in nowhere. ``fields`` names what
    the caller was asked to change (the audit event lists them).
    """
    membership = Membership.objects.get(user=user, account=account)
    given = {
        k
        for k, v in {
            "name": name,
            "login_method": login_method,
            "approval": approval,
            "is_active": is_active,
            "external_ids": external_ids,
        }.items()
        if v is not None
    }
    managed_here = manages_identity(acting, account, user)
    for identity_field in ("name", "login_method", "external_ids"):
        if identity_field in given and not managed_here:
            raise Refused(403, identity_owner_detail(account, user), identity_field)
    if {"name", "login_method", "is_active", "external_ids"} & given:
        _raise(admin_holder_refusal(acting, account, user))
    if (
        name is not None
        and user.login_method == User.LoginMethod.SSO
        and members.sso_authorization_connection(account) is not None
    ):
        raise Refused(409, "the name of an SSO user comes from the identity provider", "name")
    if external_ids is not None:
        # First, and all or nothing: a refused entry leaves every other field as it was.
        with transaction.atomic():
            set_external_ids(acting, account, user, external_ids)
    if name is not None:
        user.name = name
        user.save(update_fields=["name"])
    if is_active is not None:
        members.set_active(membership, is_active, owns_identity=managed_here and is_home(account, user))
    if approval == "approved":
        members.approve(membership)
    if login_method and login_method != user.login_method:
        (members.switch_to_sso if login_method == "sso" else members.switch_to_password)(user)
    elif login_method == User.LoginMethod.PASSWORD:
        # Already on password: the explicit choice is recorded so the automatic SSO upgrade leaves them there.
        members.pin_password(user)
    record("user.updated", account=account, **acting.actor(), subject_email=user.email, fields=sorted(fields))
    membership.refresh_from_db()
    return membership


def remove(acting: Principal, account: Account, user: User) -> None:
    """Remove the person from ``account`` (their identity too when this account may end it and it was the last)."""
    _raise(admin_holder_refusal(acting, account, user))
    email = user.email
    owns = manages_identity(acting, account, user) or (
        home_account_of_email(user.email) is None and not user.is_operator
    )
    members.remove_member(user, account, owns_identity=owns)
    record("user.removed", account=account, **acting.actor(), subject_email=email)


def replace_roles(
    acting: Principal, account: Account, user: User, roles: Sequence[str], project_slug: str | None = None
) -> frozenset[str]:
    """Replace the manual roles of one scope exactly (``PUT /users/<id>/roles``); SSO-managed ones: 409."""
    project = project_or_refused(account, project_slug, "project") if project_slug else None
    current = set(
        RoleGrant.objects.filter(user=user, account=account, project=project, source="manual").values_list(
            "role", flat=True
        )
    )
    _raise(admin_role_refusal(acting, account, set(roles) ^ current))
    granted: frozenset[str] = _roles(lambda: replace_manual_roles(user, account, roles, project), "roles")
    if project is not None:
        members.grant_projects(user, [project])
    record(
        "user.roles_replaced",
        account=account,
        **acting.actor(),
        subject_email=user.email,
        project=project_slug,
        roles=sorted(granted),
    )
    return granted


def open_invitations(account: Account) -> list[Invitation]:
    open_ = Invitation.objects.filter(account=account, accepted_at__isnull=True, revoked_at__isnull=True)
    return [i for i in open_.order_by("created_at") if i.is_open]


def revoke_invitation(acting: Principal, account: Account, invitation_id: int) -> None:
    if not Invitation.objects.filter(
        account=account, pk=invitation_id, accepted_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=timezone.now()):
        raise Refused(404, f"invitation {invitation_id} not found", "invitation_id")
    record("user.invitation_revoked", account=account, **acting.actor(), invitation=invitation_id)


def create_project(acting: Principal, account: Account, slug: str, name: str) -> Project:
    try:
        with transaction.atomic():
            project = Project.objects.create(account=account, slug=slug, name=name)
    except IntegrityError:
        raise Refused(409, f"project '{slug}' already exists in '{account.slug}'", "slug") from None
    record("project.created", account=account, **acting.actor(), project=project.slug)
    return project


def delete_project(acting: Principal, account: Account, slug: str) -> None:
    found = Project.objects.filter(account=account, slug=slug).first()
    if found is None:
        raise Refused(404, f"project '{slug}' not found", "project")
    found.delete()
    record("project.deleted", account=account, **acting.actor(), project=slug)


def send_password_reset(acting: Principal, account: Account, user: User) -> None:
    """Seed 000: after switching someone back to password, "click on Reset password" to email them a link.

    Credentials are identity, so only the account that manages it may; an
    SSO user has no password to reset (switch them to password first).
    """
    if not manages_identity(acting, account, user):
        raise Refused(403, identity_owner_detail(account, user), "login_method")
    _raise(admin_holder_refusal(acting, account, user))
    if user.login_method != User.LoginMethod.PASSWORD:
        raise Refused(
            409, f"{user.email} signs in with SSO: switch them to password first, which sends the link", "login_method"
        )
    issue_reset_link(user, reason="requested")
    record("user.password_reset_sent", account=account, **acting.actor(), subject_email=user.email)


def reject_pending(acting: Principal, account: Account, user: User) -> None:
    """Turn away someone waiting for approval ("Allow Login" off): their membership here goes."""
    if not Membership.objects.filter(user=user, account=account, approval=Approval.PENDING).exists():
        raise Refused(409, f"{user.email} is not waiting for approval in account '{account.slug}'", "id")
    remove(acting, account, user)


# What the console shows of a person's roles -----------------------------------------


@dataclass
class RoleRow:
    name: str
    description: str
    manual: bool
    # Why the checkbox cannot be changed here (a grant from a provider or the directory), else "".
    held_by: str = ""
    managed: bool = False


@dataclass
class RoleScope:
    project: Project | None
    rows: list[RoleRow]
    effective: list[str]
    # The console's form of this scope when it re-renders a refused save.
    form: Any = None

    @property
    def key(self) -> str:
        return self.project.slug if self.project is not None else ""


@dataclass
class RoleEditor:
    scopes: list[RoleScope]
    # The connection whose provider decides every role of this person here (SSO authorization), if any.
    managed_by: Any = None

    @property
    def locked_reason(self) -> str:
        if self.managed_by is None:
            return ""
        return (
            f"Managed by {self.managed_by.name}: its SSO authorization grants these roles at each sign-in, from the "
            "mapping role named by the provider's role_mapping claim or from its roles claim. Change them in Mapping "
            "roles or in the identity provider."
        )


def _held_by(grant: RoleGrant) -> str:
    name = grant.connection.name if grant.connection is not None else "a connection"
    if grant.source == Source.SCIM:
        return "granted by the account's directory (SCIM) through a group: change it in the directory"
    if grant.managed:
        return (
            f"managed by {name} through a mapping role or the roles claim (SSO authorization): change it in "
            "Mapping roles or in the identity provider"
        )
    return f"granted at sign-in through {name}: the next sign-in there sets it again"


def role_editor(user: User, account: Account) -> RoleEditor:
    """The account scope and each project: which roles are manual (editable) and which come from elsewhere."""
    catalog = get_catalog()
    grants = list(RoleGrant.objects.filter(user=user, account=account).select_related("connection", "project"))
    account_roles = {g.role for g in grants if g.project_id is None}
    scopes = []
    for project in [None, *Project.objects.filter(account=account).order_by("slug")[:200]]:
        here = [g for g in grants if g.project_id == (project.pk if project is not None else None)]
        manual = {g.role for g in here if g.source == Source.MANUAL}
        others = {g.role: g for g in here if g.source != Source.MANUAL}
        rows = [
            RoleRow(
                name=name,
                description=role.description,
                manual=name in manual,
                held_by=_held_by(others[name]) if name in others and name not in manual else "",
                managed=name in others and (others[name].managed or others[name].source == Source.SCIM),
            )
            for name, role in sorted(catalog.roles.items())
        ]
        held = {g.role for g in here} | (account_roles if project is not None else set())
        scopes.append(RoleScope(project, rows, sorted(catalog.effective(r for r in held if r in catalog.roles))))
    return RoleEditor(scopes, sso_managing_connection(user, account))
