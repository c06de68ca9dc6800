"""The login pipeline as one pure decision: facts in, a plan out (DESIGN "Login", step 3).

``signin.pipeline`` loads :class:`LoginFacts` from the database in a few
queries (the connection's settings, the link and its person, their
membership, role grants and SSO project access here), calls :func:`plan`,
and applies the :class:`LoginPlan` it gets back, writing only what the plan
says changed. Every rule of a login lives here, in the order the steps run:

    claims -> domain -> roles -> user (link / enrol / refuse) -> email and name
    -> membership (invitation / provisioning) -> role grants -> SSO-only upgrade
    -> linked projects

A refusal is a plan whose ``failure`` is set: it writes nothing, and its
``notes`` are the trace steps that passed before it. Refusals that depend
on the state the login leaves (a deactivated person, one waiting for
approval) are ``refusal``: raised only after the plan was applied.

Identity ownership decides what a login may change. A connection of the
person's *home account* (the owner of their email domain) may make them
SSO-only, purge their credentials, follow an address change within that
owner's domains and refresh their name; a connection that serves a domain
*shared* with its account only lets the person into that account.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vestibule.domain.claims import ClaimMapping
from vestibule.domain.emails import InvalidEmail, email_domain
from vestibule.domain.pipeline import (
    Action,
    AssertedIdentity,
    LoginFailure,
    MappingRoleGrants,
    RoleDecision,
    decide_action,
    decide_roles,
    require_domain,
    require_served,
)
from vestibule.domain.roles import RoleCatalog

__all__ = [
    "MANUAL",
    "SSO",
    "APPROVED",
    "PENDING",
    "PASSWORD_LOGIN",
    "SSO_LOGIN",
    "BREAK_GLASS_ROLE",
    "ConnectionFacts",
    "UserFacts",
    "MembershipFacts",
    "InvitationFacts",
    "Grant",
    "LoginFacts",
    "RoleChanges",
    "AccessChanges",
    "AuditOutcome",
    "TraceNote",
    "LoginPlan",
    "plan",
    "decide_login_roles",
    "connection_disabled",
]

# The stored values of the models' choices (accounts.models); the domain names them without Django.
MANUAL, SSO, SCIM = "manual", "sso", "scim"
APPROVED, PENDING = "approved", "pending"
PASSWORD_LOGIN, SSO_LOGIN = "password", "sso"
# Seed 003: the home account's sso-admins (administrator implies it) keep a password as break-glass.
BREAK_GLASS_ROLE = "sso-admin"


# ---- Facts ------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionFacts:
    """What matters of the connection: its account, switches, served domains and linked projects."""

    connection_id: str
    account_id: int
    enabled: bool
    auto_provision: bool
    provisioned_users_can_login: bool
    sso_authorization: bool
    mapping: ClaimMapping
    # Each served domain (owned or shared) -> the account that owns it.
    owners: Mapping[str, int] = field(default_factory=dict)
    linked_project_ids: frozenset[int] = frozenset()
    mapping_roles: tuple[MappingRoleGrants, ...] = ()
    # The account's projects by slug, for the ones a mapping role or an invitation names.
    project_ids: Mapping[str, int] = field(default_factory=dict)

    @property
    def served(self) -> frozenset[str]:
        return frozenset(self.owners)

    def owner_of(self, email: str) -> int | None:
        try:
            return self.owners.get(email_domain(email))
        except InvalidEmail:
            return None


@dataclass(frozen=True)
class UserFacts:
    """The person found by link or by email (or about to be enrolled: ``id`` None)."""

    id: int | None
    email: str
    email_key: str
    name: str
    login_method: str = SSO_LOGIN
    is_active: bool = True
    is_operator: bool = False
    password_pinned: bool = False


@dataclass(frozen=True)
class MembershipFacts:
    is_active: bool = True
    approval: str = APPROVED


@dataclass(frozen=True)
class InvitationFacts:
    """The newest open invitation of the account for the asserted address, and what it grants."""

    id: int
    email_key: str
    account_roles: frozenset[str] = frozenset()
    # Project id -> roles, for the invited projects that still exist.
    project_roles: Mapping[int, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Grant:
    """A role grant of the person in this account (``id`` None: not written yet)."""

    role: str
    project_id: int | None = None
    source: str = MANUAL
    connection_id: str | None = None
    managed: bool = False
    id: int | None = field(default=None, compare=False)

    @property
    def shape(self) -> tuple[str, int | None, str, str | None, bool]:
        return (self.role, self.project_id, self.source, self.connection_id, self.managed)


@dataclass(frozen=True)
class LoginFacts:
    connection: ConnectionFacts
    identity: AssertedIdentity
    catalog: RoleCatalog
    # A user is linked to this subject at this connection (``user`` is that user).
    linked: bool = False
    user: UserFacts | None = None
    # Unlinked: the email's user is already linked to another subject at this connection.
    linked_elsewhere: bool = False
    membership: MembershipFacts | None = None
    invitation: InvitationFacts | None = None
    grants: tuple[Grant, ...] = ()
    # Projects the person reaches through this connection (SSO project access) today.
    sso_access: frozenset[int] = frozenset()
    # Another user holds the asserted address (only asked when it differs from the person's).
    new_email_taken: bool = False


# ---- Plan -------------------------------------------------------------------


@dataclass(frozen=True)
class RoleChanges:
    """Grants to delete (by id) and to create; ``sweep`` also deletes grants this login's invitation made."""

    delete: tuple[int, ...] = ()
    create: tuple[Grant, ...] = ()
    # SSO authorization replacing every grant right after an invitation was accepted:
    # delete every grant of the person in the account except ``keep``.
    sweep: bool = False
    keep: tuple[int, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.delete or self.create or self.sweep)


@dataclass(frozen=True)
class AccessChanges:
    """SSO project access through this connection: project ids to add and to remove."""

    add: tuple[int, ...] = ()
    remove: tuple[int, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.add or self.remove)


@dataclass(frozen=True)
class AuditOutcome:
    """One audit event the login writes; ``by_user`` makes the person its actor."""

    code: str
    subject_email: str
    detail: tuple[tuple[str, Any], ...] = ()
    by_user: bool = False


@dataclass(frozen=True)
class TraceNote:
    """A passed step of the login trace."""

    step: str
    info: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class LoginPlan:
    notes: tuple[TraceNote, ...] = ()
    # Refused before anything is written.
    failure: LoginFailure | None = None
    action: Action | None = None
    create_user: bool = False
    create_link: bool = False
    # Whether this connection belongs to the person's home account (the operator has none).
    home: bool = False
    new_email: str | None = None
    new_name: str | None = None
    # Password sign-in ends: SSO-only, password, TOTP and password age purged.
    upgrade: bool = False
    # Kept password sign-in, and why (trace text); None when the person is SSO-only.
    kept_password: str | None = None
    # A membership to create with this approval, or an invitation (id) to accept.
    new_membership: str | None = None
    accept_invitation: int | None = None
    newly_pending: bool = False
    roles: RoleChanges = RoleChanges()
    access: AccessChanges = AccessChanges()
    audit: tuple[AuditOutcome, ...] = ()
    # Refused once the plan is applied (deactivated, waiting for approval).
    refusal: LoginFailure | None = None
    # The person's grants in the account once the plan is applied (read by a rehearsal, see domain.rehearsal).
    grants_after: tuple[Grant, ...] = ()

    @property
    def refused(self) -> bool:
        return self.failure is not None


# ---- Rules ------------------------------------------------------------------


def connection_disabled() -> LoginFailure:
    return LoginFailure(
        "sso.connection_disabled", "start",
        "Single sign-on through this provider is turned off. Ask your administrator, or sign in with a password if you have one.",
        expected="an enabled connection", received="disabled", fix_in="vestibule",
    )  # fmt: skip


def decide_login_roles(
    identity: AssertedIdentity,
    mapping: ClaimMapping,
    catalog: RoleCatalog,
    *,
    sso_authorization: bool,
    mapping_roles: tuple[MappingRoleGrants, ...] = (),
) -> RoleDecision | None:
    """Roles from the claims, or None to leave the person's roles alone.

    With SSO authorization on, the claims decide and a bad value refuses the
    login. With it off, a configured roles claim is still applied at login,
    but leniently: unusable values fall back to the catalog default and an
    unmet requirement drops the role instead of locking the person out.
    """
    if sso_authorization:
        return decide_roles(identity, mapping, catalog, mapping_roles)
    if mapping.role_source != "roles_claim" or not mapping.roles:
        return None
    lenient = ClaimMapping.from_dict({**mapping.to_dict(), "requirement_policy": "drop"})
    try:
        return decide_roles(identity, lenient, catalog, ())
    except LoginFailure:
        return RoleDecision(frozenset({catalog.default_role}), {}, notes=("no usable role values: default role",))


def _provisioning_disabled(email: str) -> LoginFailure:
    return LoginFailure(
        "sso.provisioning_disabled", "user",
        "You have no user in Vestibule yet, and this organization does not create users automatically. Ask your administrator to invite you.",
        expected="an existing member or auto-provisioning on", received=f"unknown user {email}", fix_in="vestibule",
    )  # fmt: skip


def _not_invited(email: str) -> LoginFailure:
    return LoginFailure(
        "sso.provisioning_disabled", "user",
        "You are not a member of this organization yet. Ask your administrator to invite you.",
        expected="a member, an invitation for your address, or auto-provisioning on",
        received=f"no membership for {email}", fix_in="vestibule",
    )  # fmt: skip


def _external_id_conflict(email: str) -> LoginFailure:
    # The address belongs to a user already linked to another subject at this
    # connection: email links only users not yet linked here, so a second IdP
    # account asserting the same address cannot take this one over.
    return LoginFailure(
        "sso.external_id_conflict", "user",
        "Your email address is already linked to a different user at your identity provider. Ask your administrator.",
        expected="the external user ID already linked to this email at this connection",
        received=f"another external user ID for {email}", fix_in="identity_provider",
    )  # fmt: skip


def _email_change_refused(current: str, asserted: str) -> LoginFailure:
    return LoginFailure(
        "sso.email_change_refused", "user",
        "Your identity provider sent a different email address for you than the one you have here. Ask your administrator.",
        expected=f"{current} (only your home organization's provider may change it, within its own domains)",
        received=asserted, fix_in="identity_provider",
    )  # fmt: skip


def _user_disabled() -> LoginFailure:
    return LoginFailure(
        "sso.user_disabled",
        "user",
        "Your user is deactivated in Vestibule. Ask your administrator.",
        fix_in="vestibule",
    )


def _pending_approval() -> LoginFailure:
    return LoginFailure(
        "sso.pending_approval", "approval",
        "Your account was created and is waiting for approval by an administrator of your organization.",
        expected="approved user", received="pending", fix_in="vestibule",
    )  # fmt: skip


_KEPT_NOT_HOME = (
    "kept password login (this connection serves a shared domain; only the home account's provider converts)"
)
_KEPT_PINNED = "kept password login (an administrator switched this person to password sign-in)"
_KEPT_BREAK_GLASS = "kept password login (break-glass sso-admin of the home account)"
_UPGRADED = "upgraded to SSO-only; password, TOTP and password age purged"


class _Recorder:
    def __init__(self) -> None:
        self.notes: list[TraceNote] = []
        self.audit: list[AuditOutcome] = []

    def ok(self, step: str, **info: Any) -> None:
        self.notes.append(TraceNote(step, tuple((k, str(v)) for k, v in info.items())))

    def event(self, code: str, subject_email: str, *, by_user: bool = False, **detail: Any) -> None:
        self.audit.append(AuditOutcome(code, subject_email, tuple(detail.items()), by_user))


def plan(facts: LoginFacts) -> LoginPlan:
    """Every decision of one login, from its facts alone; a refusal comes back as ``failure``."""
    rec = _Recorder()
    try:
        return _plan(facts, rec)
    except LoginFailure as failure:
        return LoginPlan(notes=tuple(rec.notes), failure=failure)


def _plan(facts: LoginFacts, rec: _Recorder) -> LoginPlan:
    conn, identity, catalog = facts.connection, facts.identity, facts.catalog
    if not conn.enabled:
        raise connection_disabled()
    rec.ok("claims", email=identity.email, external_id=identity.external_id)
    require_domain(identity, conn.served)
    rec.ok("domain", domain=identity.domain)
    decision = decide_login_roles(
        identity, conn.mapping, catalog, sso_authorization=conn.sso_authorization, mapping_roles=conn.mapping_roles
    )
    if decision is not None:
        rec.ok(
            "roles",
            account=",".join(sorted(decision.account_roles)),
            mapping_roles=",".join(decision.matched_mapping_roles),
        )

    found = facts.user
    if facts.linked and found is not None:
        # The linked person's *current* address must be served too: a link made
        # while a domain was shared must not outlive the share.
        require_served(email_domain(found.email), conn.served, whose="a linked user")
    membership = facts.membership if found is not None else None
    invitation = facts.invitation if membership is None else None
    # Joining this account needs auto-provisioning, or an invitation from it
    # that this login (through the account's own provider) accepts.
    may_join = conn.auto_provision or invitation is not None
    action = decide_action(linked=facts.linked, email_match=found is not None, auto_provision=may_join)
    if action is Action.DENY or (membership is None and not may_join):
        raise _provisioning_disabled(identity.email)
    user = found
    if action is Action.ENROLL:
        user = UserFacts(id=None, email=identity.email, email_key=identity.email_key, name=identity.name)
    assert user is not None
    if not facts.linked and facts.linked_elsewhere:
        raise _external_id_conflict(identity.email)
    if not facts.linked and action is Action.LINK:
        rec.event("sso.identity_linked", user.email)
    rec.ok("user", action=action.value, user=user.email)

    # The operator's identity is the operator's alone: no account's provider converts, renames or purges it.
    home = conn.owner_of(user.email) == conn.account_id and not user.is_operator
    email, email_key, new_email = user.email, user.email_key, None
    if user.email_key != identity.email_key:
        # Same subject, new address at the provider (e.g. a rename). Only the
        # home account's provider may rename its person, and only within
        # domains its account owns: an address change never moves a person
        # across owners. Another user holding the new address keeps it.
        if not home or conn.owner_of(identity.email) != conn.account_id:
            raise _email_change_refused(user.email, identity.email)
        if not facts.new_email_taken:
            rec.event("sso.email_changed", identity.email, previous=user.email)
            email, email_key, new_email = identity.email, identity.email_key, identity.email
    new_name = None
    if home and (user.login_method == SSO_LOGIN or conn.sso_authorization) and identity.name != user.name:
        new_name = identity.name

    grants = list(facts.grants)
    member_active, approval = (
        (membership.is_active, membership.approval) if membership is not None else (True, APPROVED)
    )
    new_membership, accepted, newly_pending = None, None, False
    if membership is None:
        if invitation is not None and invitation.email_key != email_key:
            # Invited under the asserted address, but the linked person kept another one: not theirs to accept.
            invitation = None
            if not conn.auto_provision:
                raise _not_invited(email)
        if invitation is not None:
            accepted = invitation.id
            grants = _after_invitation(grants, invitation)
            rec.event("user.invitation_accepted", email, by_user=True, via="sso")
        else:
            approval = APPROVED if conn.provisioned_users_can_login else PENDING
            new_membership = approval
            # A new person, or a known one joining this account through its provider.
            rec.event(
                "sso.user_provisioned" if action is Action.ENROLL else "sso.member_provisioned",
                email,
                approval=approval,
            )
            newly_pending = approval == PENDING

    roles = RoleChanges()
    if decision is not None:
        roles, grants = _replace_sso_roles(
            grants, decision, conn, sweep=accepted is not None and conn.sso_authorization
        )
        for dropped in decision.dropped:
            rec.event("sso.role_dropped", email, role=dropped)
        granted, removed = _role_diff(facts.grants, grants)
        if granted or removed:
            # What the person holds now that they did not (and no longer holds): the login
            # announcement (seed 002) and the trace read it; "role" or "role@<project id>".
            rec.ok(
                "role_changes",
                granted=",".join(granted),
                removed=",".join(removed),
                mapping_roles=",".join(decision.matched_mapping_roles),
            )
    elif not grants:
        default = Grant(catalog.default_role)
        roles, grants = RoleChanges(create=(default,)), [default]

    upgrade, kept = False, None
    if user.login_method == PASSWORD_LOGIN:
        if not home:
            # A partner's or sandbox's provider serving a shared domain lets the
            # person into its own account; their credentials are their home's.
            kept = _KEPT_NOT_HOME
        elif user.password_pinned:
            # Seed 000 over seed 004: an administrator's explicit switch to
            # password is not undone by the automatic upgrade.
            kept = _KEPT_PINNED
        elif _break_glass(grants, member_active and approval == APPROVED, catalog):
            kept = _KEPT_BREAK_GLASS
        else:
            upgrade = True
            rec.event("sso.user_upgraded", email)
        rec.ok("upgrade", result=kept or _UPGRADED)

    # Access to the connection's linked projects and the projects its grants name; access from removed links goes.
    mapped = {g.project_id for g in grants if g.connection_id == conn.connection_id and g.project_id is not None}
    wanted = conn.linked_project_ids | mapped
    access = AccessChanges(
        add=tuple(sorted(wanted - facts.sso_access)), remove=tuple(sorted(facts.sso_access - wanted))
    )

    refusal = None
    if not user.is_active or not member_active:
        refusal = _user_disabled()
    elif approval == PENDING:
        refusal = _pending_approval()
    return LoginPlan(
        notes=tuple(rec.notes),
        action=action,
        create_user=action is Action.ENROLL,
        create_link=not facts.linked,
        home=home,
        new_email=new_email,
        new_name=new_name,
        upgrade=upgrade,
        kept_password=kept,
        new_membership=new_membership,
        accept_invitation=accepted,
        newly_pending=newly_pending,
        roles=roles,
        access=access,
        audit=tuple(rec.audit),
        refusal=refusal,
        grants_after=tuple(grants),
    )


def _after_invitation(grants: list[Grant], invitation: InvitationFacts) -> list[Grant]:
    """The grants once the invitation is accepted: its roles replace the manual ones of each scope it names."""
    scopes: dict[int | None, frozenset[str]] = {None: invitation.account_roles}
    for project_id, roles in invitation.project_roles.items():
        scopes[project_id] = roles
    scopes = {scope: roles for scope, roles in scopes.items() if roles}
    kept = [g for g in grants if not (g.source == MANUAL and g.project_id in scopes)]
    return kept + [Grant(r, scope) for scope, roles in scopes.items() for r in sorted(roles)]


def _replace_sso_roles(
    grants: list[Grant], decision: RoleDecision, conn: ConnectionFacts, *, sweep: bool
) -> tuple[RoleChanges, list[Grant]]:
    """SSO-managed roles are replaced wholesale at each login (seed 002), written only where they differ.

    With SSO authorization on, the identity provider decides every role of the
    person in this account: manual grants from before go too, or an
    administrator granted by hand would stay one whatever the provider now
    says. With it off, a roles claim only refreshes what earlier logins granted.
    Grants the account's directory made (SCIM groups named after mapping
    roles) belong to the directory, not to the login: they stay either way.
    """
    # Locked only when the provider decided under SSO authorization: a grant
    # made with it off (the default role included) must not become a managed
    # one when authorization is switched on later.
    managed = conn.sso_authorization
    wanted = [Grant(r, None, SSO, conn.connection_id, managed) for r in sorted(decision.account_roles)]
    for slug, roles in decision.project_roles.items():
        project = conn.project_ids.get(slug)
        if project is not None:
            wanted += [Grant(r, project, SSO, conn.connection_id, managed) for r in sorted(roles)]
    replaced: list[Grant] = []
    others: list[Grant] = []
    for g in grants:
        ours = g.source != SCIM and (conn.sso_authorization or g.source == SSO)
        (replaced if ours else others).append(g)
    unmatched = {g.shape for g in wanted}
    keep, delete = [], []
    for g in replaced:
        if g.shape in unmatched and g.id is not None:
            unmatched.discard(g.shape)
            keep.append(g)
        elif g.id is not None:
            delete.append(g.id)
    create = tuple(g for g in wanted if g.shape in unmatched)
    changes = RoleChanges(
        delete=tuple(delete),
        create=create,
        sweep=sweep,
        keep=tuple(g.id for g in keep if g.id is not None) if sweep else (),
    )
    return changes, others + keep + list(create)


def _role_diff(before: tuple[Grant, ...], after: list[Grant]) -> tuple[list[str], list[str]]:
    """Roles (per scope) the person gained and lost, whatever grant rows carry them."""

    def held(grants: tuple[Grant, ...] | list[Grant]) -> set[str]:
        return {g.role if g.project_id is None else f"{g.role}@{g.project_id}" for g in grants}

    was, now = held(before), held(after)
    return sorted(now - was), sorted(was - now)


def _break_glass(grants: list[Grant], in_force: bool, catalog: RoleCatalog) -> bool:
    """Whether the person holds sso-admin here (their home account), judged on the grants this login leaves."""
    if not in_force:
        return False
    roles = catalog.effective(g.role for g in grants if g.project_id is None and g.role in catalog.roles)
    return BREAK_GLASS_ROLE in roles
