"""Running the login pipeline against the database (DESIGN "Login", step 3): load facts, plan, apply.

Protocol views validate their message, then call :func:`run_pipeline` with the
verified subject and claims. Everything after that is protocol-independent
and decided by :func:`vestibule.domain.plan.plan` from facts this module
loads in a few queries (the link and its person locked first). Applying the
plan writes only what it says changed: one ``User`` UPDATE, role grants and
project access only where they differ, the login's audit events in one
INSERT. The plan's notes become the login trace; a refusal raises
:class:`~vestibule.domain.pipeline.LoginFailure`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, models, transaction
from django.db.models import Q, Value
from django.db.models.functions import Cast
from django.utils import timezone

from vestibule.accounts.models import Approval, Invitation, Membership, Project, ProjectAccess, RoleGrant, Source, User
from vestibule.accounts.roles import get_catalog, roles_changed
from vestibule.audit.events import record, record_many
from vestibule.authority.ownership import remember_home
from vestibule.connections.authorization import mapping_roles_of
from vestibule.connections.models import Connection, ConnectionDomain, ExternalIdentity
from vestibule.domain.claims import ClaimMapping
from vestibule.domain.pipeline import AssertedIdentity, MappingRoleGrants, extract_identity
from vestibule.domain.plan import (
    ConnectionFacts,
    Grant,
    InvitationFacts,
    LoginFacts,
    LoginPlan,
    MembershipFacts,
    UserFacts,
    connection_disabled,
    plan,
)
from vestibule.domain.rehearsal import Rehearsal, rehearse
from vestibule.domain.roles import RoleCatalog
from vestibule.login.credentials import credentials_changed
from vestibule.people import members
from vestibule.signin.compiled import CompiledQuery, attnames, instance
from vestibule.signin.trace import TraceRecorder


@dataclass(frozen=True)
class VerifiedSubject:
    """What a protocol layer hands over once its message is fully validated."""

    subject: str
    claims: Mapping[str, Any]


def require_enabled(connection: Connection) -> None:
    if not connection.enabled:
        raise connection_disabled()


def run_pipeline(connection: Connection, verified: VerifiedSubject, trace: TraceRecorder) -> User:
    mapping = ClaimMapping.from_dict(connection.claims)
    trace.note_identity(subject=verified.subject)
    identity = extract_identity(verified.claims, verified.subject, mapping)
    trace.note_identity(subject=identity.external_id, email=identity.email)
    catalog = get_catalog()
    mapping_roles = tuple(mapping_roles_of(connection)) if connection.sso_authorization else ()

    # Two first logins of the same new person can race; the loser of the
    # unique constraint retries once and then finds the winner's rows.
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                user, login, membership = _login(connection, identity, mapping, mapping_roles, catalog)
            break
        except IntegrityError:
            if attempt == 2:
                raise
    trace.follow(login.notes)
    if login.failure is not None:
        raise login.failure
    assert user is not None
    if login.refusal is not None and login.refusal.code == "sso.user_disabled":
        raise login.refusal
    if login.newly_pending and membership is not None:
        # After the rows are in, once per person and account: the queue has someone to approve.
        told = members.notify_pending_approval(membership, via=f"{connection.name} ({connection.protocol.upper()})")
        record(
            "user.approval_requested",
            account=connection.account,
            connection=connection,
            subject_email=user.email,
            notified=len(told),
        )
    if login.refusal is not None:
        raise login.refusal
    return user


# ---- Facts


def _login(
    connection: Connection,
    identity: AssertedIdentity,
    mapping: ClaimMapping,
    mapping_roles: tuple[MappingRoleGrants, ...],
    catalog: RoleCatalog,
) -> tuple[User | None, LoginPlan, Membership | None]:
    """Inside the transaction: lock the link (or the email's user), load the facts, plan, apply."""
    link, user, invitation, facts = _facts(connection, identity, mapping, mapping_roles, catalog)
    login = plan(facts)
    if login.refused:
        return None, login, None
    user, membership = _apply(connection, identity, login, link, user, invitation)
    remember_home(user, facts.connection.owner_of(user.email))
    return user, login, membership


def _facts(
    connection: Connection,
    identity: AssertedIdentity,
    mapping: ClaimMapping,
    mapping_roles: tuple[MappingRoleGrants, ...],
    catalog: RoleCatalog,
) -> tuple[ExternalIdentity | None, User | None, Invitation | None, LoginFacts]:
    link, user, linked_elsewhere = _find_user(connection, identity)
    loaded = _load(connection, user)
    invitation = None
    if user is None or loaded.membership is None:
        invitation = _open_invitation(connection, identity)
    slugs = {slug for m in mapping_roles for slug in m.project_roles}
    if invitation is not None:
        slugs |= {str(item.get("slug")) for item in invitation.grants.get("projects", [])}
    project_ids = (
        dict(Project.objects.filter(account_id=connection.account_id, slug__in=sorted(slugs)).values_list("slug", "pk"))
        if slugs
        else {}
    )
    facts = LoginFacts(
        connection=ConnectionFacts(
            connection_id=str(connection.pk),
            account_id=connection.account_id,
            enabled=connection.enabled,
            auto_provision=connection.auto_provision,
            provisioned_users_can_login=connection.provisioned_users_can_login,
            sso_authorization=connection.sso_authorization,
            mapping=mapping,
            owners=loaded.owners,
            linked_project_ids=frozenset(loaded.linked),
            mapping_roles=mapping_roles,
            project_ids=project_ids,
        ),
        identity=identity,
        catalog=catalog,
        linked=link is not None,
        user=_user_facts(user) if user is not None else None,
        linked_elsewhere=linked_elsewhere,
        membership=loaded.membership,
        invitation=_invitation_facts(invitation, project_ids) if invitation is not None else None,
        grants=tuple(loaded.grants),
        sso_access=frozenset(loaded.access),
        new_email_taken=(
            user is not None
            and user.email_key != identity.email_key
            and User.objects.filter(email_key=identity.email_key).exclude(pk=user.pk).exists()
        ),
    )
    return link, user, invitation, facts


# ---- A rehearsal (setup links' test sign-in): the plan, never applied ---- (helper setup-links)


def rehearse_pipeline(connection: Connection, verified: VerifiedSubject) -> tuple[AssertedIdentity, Rehearsal]:
    """What :func:`run_pipeline` would decide for ``verified``, as if the connection were enabled; writes nothing.

    Raises the :class:`LoginFailure` of claims that yield no identity (no
    email, say). The facts are read in a transaction that is rolled back, so
    the row locks :func:`_find_user` takes end with it and nothing can stick.
    """
    mapping = ClaimMapping.from_dict(connection.claims)
    identity = extract_identity(verified.claims, verified.subject, mapping)
    mapping_roles = tuple(mapping_roles_of(connection)) if connection.sso_authorization else ()
    with transaction.atomic():
        _, _, _, facts = _facts(connection, identity, mapping, mapping_roles, get_catalog())
        transaction.set_rollback(True)
    return identity, rehearse(facts)


# ---- (end of the rehearsal)


# The subject's link at the connection with its person, both rows locked; compiled once (signin.compiled).
_LINK = CompiledQuery(
    lambda connection_id, external_id: (
        ExternalIdentity.objects.select_for_update()
        .filter(connection_id=connection_id, external_id=external_id)
        .values_list(*attnames(ExternalIdentity), *attnames(User, "user__"))
    ),
    connection_id=uuid.UUID,
    external_id=str,
)


def _find_user(connection: Connection, identity: AssertedIdentity) -> tuple[ExternalIdentity | None, User | None, bool]:
    """The link of this subject and its user, else the email's user; both rows locked. Also: is that user linked elsewhere here."""
    found = _LINK.rows(connection_id=connection.pk, external_id=identity.external_id)
    if found:
        link = instance(ExternalIdentity, found[0], 0)
        link.user = instance(User, found[0], len(ExternalIdentity._meta.concrete_fields))
        return link, link.user, False
    user = User.objects.select_for_update().filter(email_key=identity.email_key).first()
    if user is None:
        return None, None, False
    # A concurrent first login of this same subject may have committed the
    # user and its link between our two queries; with the user row locked,
    # look again so that login counts as the same subject, not a conflict.
    # The same query tells whether the user is linked to another subject here.
    rows = list(
        ExternalIdentity.objects.select_related("user").filter(
            Q(external_id=identity.external_id) | Q(user=user), connection=connection
        )
    )
    for row in rows:
        if row.external_id == identity.external_id:
            return row, row.user, False
    return None, user, bool(rows)


@dataclass
class _Loaded:
    owners: dict[str, int]
    linked: set[int]
    membership: MembershipFacts | None
    grants: list[Grant]
    access: set[int]


# One row shape for every fact of the union below: (kind, id, text, number, source, connection, flag).
_ROW = ("kind", "row_id", "text", "number", "row_source", "row_connection", "flag")


def _row(qs: models.QuerySet[Any], kind: str, **columns: Any) -> models.QuerySet[Any]:
    values = {
        "kind": Value(kind, output_field=models.CharField()),
        "row_id": columns.get("row_id", models.F("pk")),
        "text": columns.get("text", Value("", output_field=models.CharField())),
        # Typed NULLs: PostgreSQL types an untyped NULL in a UNION's first branch as text.
        "number": columns.get("number", Cast(Value(None), output_field=models.IntegerField())),
        "row_source": columns.get("row_source", Value("", output_field=models.CharField())),
        "row_connection": columns.get("row_connection", Cast(Value(None), output_field=models.UUIDField())),
        "flag": columns.get("flag", Value(False, output_field=models.BooleanField())),
    }
    rows: models.QuerySet[Any] = qs.annotate(**values).values_list(*_ROW)
    return rows


def _facts_query(*, connection_id: Any, account_id: Any, user_id: Any = None) -> models.QuerySet[Any]:
    """Served domains with their owners, linked projects, and (given ``user_id``) the person's membership,
    grants and SSO access here: one UNION query."""
    F = models.F
    parts = [
        _row(
            ConnectionDomain.objects.filter(connection_id=connection_id),
            "domain",
            text=F("domain"),
            number=F("claim__account_id"),
        ),
        _row(
            Connection.linked_projects.through.objects.filter(connection_id=connection_id),
            "linked",
            number=F("project_id"),
        ),
    ]
    if user_id is not None:
        parts += [
            _row(
                Membership.objects.filter(user_id=user_id, account_id=account_id), "membership",
                text=F("approval"), flag=F("is_active"),
            ),
            _row(
                RoleGrant.objects.filter(user_id=user_id, account_id=account_id), "grant",
                text=F("role"), number=F("project_id"), row_source=F("source"), row_connection=F("connection_id"), flag=F("managed"),
            ),
            _row(
                ProjectAccess.objects.filter(user_id=user_id, connection_id=connection_id, source=Source.SSO), "access",
                number=F("project_id"),
            ),
        ]  # fmt: skip
    return parts[0].union(*parts[1:], all=True)


# Compiled once per connection and thread (signin.compiled): building and compiling this union cost more
# CPU than any other statement of a login.
_FACTS_WITHOUT_USER = CompiledQuery(
    lambda connection_id: _facts_query(connection_id=connection_id, account_id=None), connection_id=uuid.UUID
)
_FACTS_WITH_USER = CompiledQuery(_facts_query, connection_id=uuid.UUID, account_id=int, user_id=int)


def _load(connection: Connection, user: User | None) -> _Loaded:
    """Served domains with their owners, linked projects, and the person's membership, grants and SSO access here: one query."""
    if user is None:
        rows = _FACTS_WITHOUT_USER.rows(connection_id=connection.pk)
    else:
        rows = _FACTS_WITH_USER.rows(connection_id=connection.pk, account_id=connection.account_id, user_id=user.pk)
    loaded = _Loaded(owners={}, linked=set(), membership=None, grants=[], access=set())
    for kind, row_id, text, number, source, connection_id, flag in rows:
        if kind == "domain":
            loaded.owners[text] = number
        elif kind == "linked":
            loaded.linked.add(number)
        elif kind == "membership":
            loaded.membership = MembershipFacts(is_active=bool(flag), approval=text)
        elif kind == "grant":
            loaded.grants.append(
                Grant(text, number, source, str(connection_id) if connection_id else None, bool(flag), id=row_id)
            )
        elif kind == "access":
            loaded.access.add(number)
    loaded.grants.sort(key=lambda g: g.id or 0)
    return loaded


def _open_invitation(connection: Connection, identity: AssertedIdentity) -> Invitation | None:
    invitation = (
        Invitation.objects.filter(
            account_id=connection.account_id,
            email_key=identity.email_key,
            accepted_at__isnull=True,
            revoked_at__isnull=True,
        )
        .order_by("-created_at")
        .first()
    )
    return invitation if invitation is not None and invitation.is_open else None


def _invitation_facts(invitation: Invitation, project_ids: Mapping[str, int]) -> InvitationFacts:
    projects: dict[int, frozenset[str]] = {}
    for item in invitation.grants.get("projects", []):
        pid = project_ids.get(str(item.get("slug")))
        if pid is not None and item.get("roles"):
            projects[pid] = frozenset(item["roles"])
    return InvitationFacts(
        id=invitation.pk,
        email_key=invitation.email_key,
        account_roles=frozenset(invitation.grants.get("roles", [])),
        project_roles=projects,
    )


def _user_facts(user: User) -> UserFacts:
    return UserFacts(
        id=user.pk,
        email=user.email,
        email_key=user.email_key,
        name=user.name,
        login_method=user.login_method,
        is_active=user.is_active,
        is_operator=user.is_operator,
        password_pinned=user.password_pinned,
    )


# ---- Apply


def _apply(
    connection: Connection,
    identity: AssertedIdentity,
    login: LoginPlan,
    link: ExternalIdentity | None,
    user: User | None,
    invitation: Invitation | None,
) -> tuple[User, Membership | None]:
    """Write what the plan changes, and nothing else."""
    now = timezone.now()
    if login.create_user:
        user = User.objects.create_user(
            identity.email, name=identity.name, login_method=User.LoginMethod.SSO, last_login=now
        )
    else:
        assert user is not None
        fields = ["last_login"]
        user.last_login = now
        if login.new_email is not None:
            user.email = login.new_email
            fields += ["email", "email_key"]
        if login.new_name is not None:
            user.name = login.new_name
            fields.append("name")
        if login.upgrade:
            user.login_method = User.LoginMethod.SSO
            fields += ["login_method", *user.purge_credentials()]
        user.save(update_fields=fields)
        if login.upgrade:
            credentials_changed(user)
    claims = identity.authorization_claims()
    if link is None:
        # The subject is new at this connection: link it. Email is used only here.
        ExternalIdentity.objects.create(
            connection=connection, external_id=identity.external_id, user=user, last_claims=claims, last_login_at=now
        )
    else:
        changed = ["last_login_at"] + (["last_claims"] if link.last_claims != claims else [])
        link.last_claims, link.last_login_at = claims, now
        link.save(update_fields=changed)

    membership = None
    if login.new_membership is not None:
        membership = Membership.objects.create(
            user=user, account_id=connection.account_id, source=Source.SSO, approval=Approval(login.new_membership)
        )
        membership.account = connection.account
    elif login.accept_invitation is not None:
        assert invitation is not None and invitation.pk == login.accept_invitation
        membership = members.accept_invitation(invitation, user)

    changes = login.roles
    if changes.sweep:
        # The directory's grants are not the login's to sweep (see domain.plan._replace_sso_roles).
        RoleGrant.objects.filter(user=user, account_id=connection.account_id).exclude(pk__in=changes.keep).exclude(
            source=Source.SCIM
        ).delete()
    elif changes.delete:
        RoleGrant.objects.filter(user=user, pk__in=changes.delete).delete()
    if changes.create:
        RoleGrant.objects.bulk_create(
            RoleGrant(
                user=user, account_id=connection.account_id, project_id=g.project_id, role=g.role, source=g.source,
                connection_id=g.connection_id, managed=g.managed,
            )
            for g in changes.create
        )  # fmt: skip
    if login.access.remove:
        ProjectAccess.objects.filter(
            user=user, connection=connection, source=Source.SSO, project_id__in=login.access.remove
        ).delete()
    if login.access.add:
        ProjectAccess.objects.bulk_create(
            ProjectAccess(user=user, project_id=pid, source=Source.SSO, connection=connection)
            for pid in login.access.add
        )
    if changes.create or login.access.add or login.access.remove:
        # Bulk writes send no post_save (deleted grants sent post_delete): one signal for the lot.
        roles_changed.send(sender=RoleGrant, user_id=user.pk, account_id=connection.account_id)
    if login.audit:
        record_many(
            [
                {
                    "code": event.code, "account": connection.account, "connection": connection,
                    "actor_user": user if event.by_user else None, "subject_email": event.subject_email, **dict(event.detail),
                }
                for event in login.audit
            ]
        )  # fmt: skip
    return user, membership
