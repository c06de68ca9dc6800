"""Running the login pipeline against the database (DESIGN "Login", step 3).

Protocol views validate their message, then call :func:`run_pipeline` with the
verified subject and claims. Everything after that is protocol-independent:
claims -> domain ownership -> user lookup / provisioning -> SSO-only upgrade
-> roles -> linked projects. Each step is recorded in the login trace, and a
refusal raises :class:`~vestibule.domain.pipeline.LoginFailure`.

Identity ownership decides what a login may change. A connection of the
person's *home account* (the owner of their email domain) may make them
SSO-only, purge their credentials, follow an address change within that
owner's domains and refresh their name; a connection that serves a domain
*shared* with its account only lets the person into that account.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from vestibule.accounts.models import Approval, Invitation, Membership, Project, ProjectAccess, RoleGrant, Source, User
from vestibule.accounts.roles import get_catalog
from vestibule.audit.events import record
from vestibule.authority.break_glass import is_break_glass
from vestibule.authority.ownership import is_home_connection, same_owner
from vestibule.connections.authorization import mapping_roles_of
from vestibule.connections.models import Connection, ExternalIdentity
from vestibule.domain.claims import ClaimMapping
from vestibule.domain.emails import email_domain
from vestibule.domain.pipeline import (
    Action,
    AssertedIdentity,
    LoginFailure,
    RoleDecision,
    decide_action,
    decide_roles,
    extract_identity,
    require_domain,
    require_served,
)
from vestibule.login.credentials import credentials_changed
from vestibule.people import members
from vestibule.signin.trace import TraceRecorder


@dataclass(frozen=True)
class VerifiedSubject:
    """What a protocol layer hands over once its message is fully validated."""

    subject: str
    claims: Mapping[str, Any]


def require_enabled(connection: Connection) -> None:
    if not connection.enabled:
        raise LoginFailure(
            "sso.connection_disabled", "start",
            "Single sign-on through this provider is turned off. Ask your administrator, or sign in with a password if you have one.",
            expected="an enabled connection", received="disabled", fix_in="vestibule",
        )


def run_pipeline(connection: Connection, verified: VerifiedSubject, trace: TraceRecorder) -> User:
    mapping = ClaimMapping.from_dict(connection.claims)
    trace.note_identity(subject=verified.subject)
    identity = extract_identity(verified.claims, verified.subject, mapping)
    trace.note_identity(subject=identity.external_id, email=identity.email)
    trace.ok("claims", email=identity.email, external_id=identity.external_id)

    served = frozenset(connection.domains.values_list("domain", flat=True))
    require_domain(identity, served)
    trace.ok("domain", domain=identity.domain)

    decision = _decide_roles(connection, identity, mapping)
    if decision is not None:
        trace.ok("roles", account=",".join(sorted(decision.account_roles)), mapping_roles=",".join(decision.matched_mapping_roles))

    # Two first logins of the same new person can race; the loser of the
    # unique constraint retries once and then finds the winner's rows.
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                user, membership, newly_pending = _apply(connection, served, identity, mapping, decision, trace)
            break
        except IntegrityError:
            if attempt == 2:
                raise
    if not user.is_active or not membership.is_active:
        raise LoginFailure("sso.user_disabled", "user", "Your user is deactivated in Vestibule. Ask your administrator.", fix_in="vestibule")
    if newly_pending:
        # After the rows are in, once per person and account: the queue has someone to approve.
        told = members.notify_pending_approval(membership, via=f"{connection.name} ({connection.protocol.upper()})")
        record("user.approval_requested", account=connection.account, connection=connection, subject_email=user.email, notified=len(told))
    if membership.approval == Approval.PENDING:
        raise LoginFailure(
            "sso.pending_approval", "approval",
            "Your account was created and is waiting for approval by an administrator of your organization.",
            expected="approved user", received="pending", fix_in="vestibule",
        )
    return user


def _decide_roles(connection: Connection, identity: AssertedIdentity, mapping: ClaimMapping) -> RoleDecision | None:
    """Roles from the claims, or None to leave the user's roles alone.

    With SSO authorization on, the claims decide and a bad value refuses the
    login. With it off, a configured roles claim is still applied at login,
    but leniently: unusable values fall back to the catalog default and an
    unmet requirement drops the role instead of locking the person out.
    """
    catalog = get_catalog()
    if connection.sso_authorization:
        return decide_roles(identity, mapping, catalog, mapping_roles_of(connection))
    if mapping.role_source != "roles_claim" or not mapping.roles:
        return None
    lenient = ClaimMapping.from_dict({**mapping.to_dict(), "requirement_policy": "drop"})
    try:
        return decide_roles(identity, lenient, catalog, ())
    except LoginFailure:
        return RoleDecision(frozenset({catalog.default_role}), {}, notes=("no usable role values: default role",))


def _find_user(connection: Connection, identity: AssertedIdentity) -> tuple[User | None, ExternalIdentity | None]:
    link = (
        ExternalIdentity.objects.select_for_update()
        .select_related("user")
        .filter(connection=connection, external_id=identity.external_id)
        .first()
    )
    if link is not None:
        return link.user, link
    user = User.objects.select_for_update().filter(email_key=identity.email_key).first()
    if user is not None:
        # A concurrent first login of this same subject may have committed the
        # user and its link between our two queries; with the user row locked,
        # look again so that login counts as the same subject, not a conflict.
        link = ExternalIdentity.objects.filter(connection=connection, external_id=identity.external_id).first()
        if link is not None:
            return link.user, link
    return user, None


def _apply(
    connection: Connection,
    served: frozenset[str],
    identity: AssertedIdentity,
    mapping: ClaimMapping,
    decision: RoleDecision | None,
    trace: TraceRecorder,
) -> tuple[User, Membership, bool]:
    """The user and their membership here, and whether this login just put them in the approval queue."""
    account = connection.account
    user, link = _find_user(connection, identity)
    if link is not None and user is not None:
        # The linked person's *current* address must be served too: a link made
        # while a domain was shared must not outlive the share.
        require_served(email_domain(user.email), served, whose="a linked user")
    membership = Membership.objects.filter(user=user, account=account).first() if user is not None else None
    invitation = None
    newly_pending = False
    if membership is None:
        invitation = (
            Invitation.objects.filter(account=account, email_key=identity.email_key, accepted_at__isnull=True, revoked_at__isnull=True)
            .order_by("-created_at")
            .first()
        )
        if invitation is not None and not invitation.is_open:
            invitation = None
    # Joining this account needs auto-provisioning, or an invitation from it
    # that this login (through the account's own provider) accepts.
    may_join = connection.auto_provision or invitation is not None
    action = decide_action(linked=link is not None, email_match=user is not None, auto_provision=may_join)
    if action is Action.DENY or (membership is None and not may_join):
        raise LoginFailure(
            "sso.provisioning_disabled", "user",
            "You have no user in Vestibule yet, and this organization does not create users automatically. Ask your administrator to invite you.",
            expected="an existing member or auto-provisioning on", received=f"unknown user {identity.email}", fix_in="vestibule",
        )
    if action is Action.ENROLL:
        user = User.objects.create_user(identity.email, name=identity.name, login_method=User.LoginMethod.SSO)
    assert user is not None
    if link is None and ExternalIdentity.objects.filter(connection=connection, user=user).exists():
        # The address belongs to a user already linked to another subject at
        # this connection: email links only users not yet linked here, so a
        # second IdP account asserting the same address cannot take this one over.
        raise LoginFailure(
            "sso.external_id_conflict", "user",
            "Your email address is already linked to a different user at your identity provider. Ask your administrator.",
            expected="the external user ID already linked to this email at this connection",
            received=f"another external user ID for {identity.email}", fix_in="identity_provider",
        )
    if link is None:
        # The subject is new at this connection: link it. Email is used only here.
        link = ExternalIdentity.objects.create(connection=connection, external_id=identity.external_id, user=user)
        if action is Action.LINK:
            record("sso.identity_linked", account=account, connection=connection, subject_email=user.email)
    trace.ok("user", action=action.value, user=user.email)

    # The operator's identity is the operator's alone: no account's provider converts, renames or purges it.
    home = is_home_connection(connection, user) and not user.is_operator
    if user.email_key != identity.email_key:
        _follow_email_change(connection, user, identity, home)
    if home and (user.login_method == User.LoginMethod.SSO or connection.sso_authorization):
        user.name = identity.name

    if membership is None:
        if invitation is not None and invitation.email_key != user.email_key:
            # Invited under the asserted address, but the linked person kept another one: not theirs to accept.
            invitation = None
            if not connection.auto_provision:
                raise LoginFailure(
                    "sso.provisioning_disabled", "user",
                    "You are not a member of this organization yet. Ask your administrator to invite you.",
                    expected="a member, an invitation for your address, or auto-provisioning on",
                    received=f"no membership for {user.email}", fix_in="vestibule",
                )
        if invitation is not None:
            membership = members.accept_invitation(invitation, user)
            record("user.invitation_accepted", account=account, connection=connection, actor_user=user, subject_email=user.email, via="sso")
        else:
            allowed = connection.provisioned_users_can_login
            membership = Membership.objects.create(
                user=user, account=account, source=Source.SSO, approval=Approval.APPROVED if allowed else Approval.PENDING
            )
            # A new person, or a known one joining this account through its provider.
            code = "sso.user_provisioned" if action is Action.ENROLL else "sso.member_provisioned"
            record(code, account=account, connection=connection, subject_email=user.email, approval=membership.approval)
            newly_pending = not allowed
    if decision is not None:
        _replace_sso_roles(user, connection, decision)
        for dropped in decision.dropped:
            record("sso.role_dropped", account=account, connection=connection, subject_email=user.email, role=dropped)
    elif _has_no_roles(user, account.pk):
        RoleGrant.objects.create(user=user, account=account, role=get_catalog().default_role, source=Source.MANUAL)
    _sync_linked_projects(user, connection)

    if user.login_method == User.LoginMethod.PASSWORD:
        if not home:
            # A partner's or sandbox's provider serving a shared domain lets the
            # person into its own account; their credentials are their home's.
            trace.ok("upgrade", result="kept password login (this connection serves a shared domain; only the home account's provider converts)")
        elif user.password_pinned:
            # Seed 000 over seed 004: an administrator's explicit switch to
            # password is not undone by the automatic upgrade.
            trace.ok("upgrade", result="kept password login (an administrator switched this person to password sign-in)")
        elif is_break_glass(user):
            trace.ok("upgrade", result="kept password login (break-glass sso-admin of the home account)")
        else:
            user.login_method = User.LoginMethod.SSO
            user.purge_credentials()
            credentials_changed(user)
            record("sso.user_upgraded", account=account, connection=connection, subject_email=user.email)
            trace.ok("upgrade", result="upgraded to SSO-only; password, TOTP and password age purged")
    user.last_login = timezone.now()
    user.save()
    link.last_claims = identity.authorization_claims()
    link.last_login_at = timezone.now()
    link.save(update_fields=["last_claims", "last_login_at"])
    return user, membership, newly_pending


def _follow_email_change(connection: Connection, user: User, identity: AssertedIdentity, home: bool) -> None:
    """Same subject, new address at the provider (e.g. a rename).

    Only the home account's provider may rename its person, and only within
    domains its account owns: an address change never moves a person across
    owners. Another user holding the new address keeps it.
    """
    if not home or not same_owner(user.email, identity.email):
        raise LoginFailure(
            "sso.email_change_refused", "user",
            "Your identity provider sent a different email address for you than the one you have here. Ask your administrator.",
            expected=f"{user.email} (only your home organization's provider may change it, within its own domains)",
            received=identity.email, fix_in="identity_provider",
        )
    if not User.objects.filter(email_key=identity.email_key).exclude(pk=user.pk).exists():
        record("sso.email_changed", account=connection.account, connection=connection, subject_email=identity.email, previous=user.email)
        user.email = identity.email


def _has_no_roles(user: User, account_id: int) -> bool:
    return not RoleGrant.objects.filter(user=user, account_id=account_id).exists()


def _replace_sso_roles(user: User, connection: Connection, decision: RoleDecision) -> None:
    """SSO-managed roles are replaced wholesale at each login (seed 002).

    With SSO authorization on, the identity provider decides every role of the
    user in this account: manual grants from before go too, or an administrator
    granted by hand would stay one whatever the provider now says. With it off,
    a roles claim only refreshes what earlier logins granted.
    """
    account = connection.account
    previous = RoleGrant.objects.filter(user=user, account=account)
    if not connection.sso_authorization:
        previous = previous.filter(source=Source.SSO)
    previous.delete()
    projects = {p.slug: p for p in Project.objects.filter(account=account, slug__in=list(decision.project_roles))}
    # Locked only when the provider decided under SSO authorization: a grant
    # made with it off (the default role included) must not become a managed
    # one when authorization is switched on later.
    managed = connection.sso_authorization
    grants = [
        RoleGrant(user=user, account=account, role=r, source=Source.SSO, connection=connection, managed=managed)
        for r in sorted(decision.account_roles)
    ]
    for slug, roles in decision.project_roles.items():
        project = projects.get(slug)
        if project is None:
            continue
        grants += [
            RoleGrant(user=user, account=account, project=project, role=r, source=Source.SSO, connection=connection, managed=managed)
            for r in sorted(roles)
        ]
        ProjectAccess.objects.get_or_create(user=user, project=project, source=Source.SSO, connection=connection)
    RoleGrant.objects.bulk_create(grants)


def _sync_linked_projects(user: User, connection: Connection) -> None:
    """Access to the connection's linked projects; access from removed links goes."""
    linked = set(connection.linked_projects.values_list("pk", flat=True))
    mapped = set(
        RoleGrant.objects.filter(user=user, connection=connection, project__isnull=False).values_list("project_id", flat=True)
    )
    wanted = linked | mapped
    ProjectAccess.objects.filter(user=user, connection=connection, source=Source.SSO).exclude(project_id__in=wanted).delete()
    have = set(ProjectAccess.objects.filter(user=user, connection=connection, source=Source.SSO).values_list("project_id", flat=True))
    ProjectAccess.objects.bulk_create(
        ProjectAccess(user=user, project_id=pid, source=Source.SSO, connection=connection) for pid in sorted(wanted - have)
    )
