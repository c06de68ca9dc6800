"""Provisioning: what a SCIM request does to the account's people, memberships and roles.

The rules are the admin API's, with the directory as the actor:

* **Identity ownership** (``authority.ownership``). A directory speaks for
  one account. It creates, renames and re-addresses only people whose home
  account is its own (the account that owns their email domain); for everyone
  else it manages the account's *membership* alone — active or not, removed,
  groups — and a write that would touch their identity (userName, name) is a
  403 that says so. The operator's identity is never a directory's to change.
* **Deprovisioning**. ``active: false`` ends the membership's access at once:
  the membership is saved inactive, which the OpenID Provider hears
  (``provider.signals``: the applications' sign-ins and refresh tokens end,
  back-channel logout and webhooks go out), and the browser sessions the
  person started through this account's connections end. From the home
  account the identity is deactivated too, exactly as ``PATCH
  /api/v1/accounts/<slug>/users/<id> {"is_active": false}`` does. DELETE
  removes the membership with ``people.members.remove_member``.
* **Groups and mapping roles**. A group whose displayName equals one of the
  account's mapping roles grants that mapping role's roles to its members, as
  :class:`~vestibule.accounts.models.RoleGrant` rows of source ``scim``,
  ``managed``: an administrator's PUT of roles replaces manual grants only,
  so it cannot remove them; they change when the directory changes the group
  (or the mapping role changes).
* **External IDs**. ``externalId`` is kept per account directory. When the
  token is bound to one of the account's connections and the account owns
  the person's identity, it is also the person's external user ID at that
  connection (SAML NameID / OIDC sub): the next SSO login through it finds
  the provisioned person, and a value already linked to someone else is a 409.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from vestibule.accounts.models import Account, Membership, User
from vestibule.audit.events import record
from vestibule.authority.ownership import home_account_of_email, is_home, same_owner
from vestibule.connections import rules
from vestibule.connections.models import Connection
from vestibule.directory.documents import GroupDocument, UserDocument
from vestibule.directory.models import ScimGroup, ScimGroupMember, ScimToken, ScimUser, sync_roles
from vestibule.directory.tokens import base_url
from vestibule.domain.emails import email_domain, email_key
from vestibule.login.credentials import credentials_changed
from vestibule.login.sessions import end_sessions
from vestibule.people import members
from vestibule.scim import resources
from vestibule.scim.errors import ScimError


@dataclass(frozen=True)
class Directory:
    """One request's directory: the token, hence the account (every query below is rooted at it)."""

    token: ScimToken
    request: HttpRequest | None = None

    @property
    def account(self) -> Account:
        return self.token.account

    def audit(self, code: str, *, subject_email: str = "", **detail: Any) -> None:
        record(
            code,
            request=self.request,
            account=self.account,
            subject_email=subject_email,
            actor=self.token.label,
            scim_token=self.token.prefix,
            **detail,
        )


def _identity_refused(directory: Directory, user: User, what: str) -> ScimError:
    home = home_account_of_email(user.email)
    owner = "the account that owns their email domain" if home is not None else "the person themselves"
    return ScimError(
        f"{what} is part of {user.email}'s identity, which {owner} manages, not account "
        f"'{directory.account.slug}': this directory manages only their membership (active, groups, removal)",
        status=403,
    )


def manages_identity(account: Account, user: User) -> bool:
    """The home account manages the identity — except the operator's, which is the operator's alone."""
    return is_home(account, user) and not user.is_operator


# Users ---------------------------------------------------------------------------------


def user_members(directory: Directory) -> Any:
    """The account's memberships, as the Users endpoint sees them (rooted at the token's account)."""
    return (
        Membership.objects.filter(account=directory.account)
        .select_related("user", "directory_record")
        .order_by("created_at", "pk")
    )


def find_member(directory: Directory, user_id: uuid.UUID | None, *, lock: bool = False) -> Membership | None:
    """The member with this id, or None; ``lock``: the row stays locked until the caller's transaction ends.

    Directories send concurrent requests for one resource (a PATCH racing a
    DELETE): on PostgreSQL the second waits for the first, then reads what it
    left (SQLite has no row locks; the views answer what slips through).
    """
    # IDOR check: the id resolves only among this account's members.
    if user_id is None:
        return None
    rows = user_members(directory).filter(user__subject=user_id)
    if lock:
        rows = rows.select_for_update(of=("self",))
    found: Membership | None = rows.first()
    return found


def _record_of(membership: Membership) -> ScimUser | None:
    try:
        return membership.directory_record
    except ScimUser.DoesNotExist:
        return None


def render_user(membership: Membership) -> dict[str, Any]:
    """The User as the directory last described it, with the identity's current email, name and state.

    ``name`` is the directory's own record (what it sent, round-tripped);
    ``displayName`` is the person's name in Vestibule, shown while the
    directory keeps one (a member it never described shows the name alone).
    """
    user = membership.user
    kept = _record_of(membership)
    location = f"{base_url()}/Users/{user.subject}"
    created = kept.created_at if kept is not None else membership.created_at
    modified = kept.updated_at if kept is not None else membership.created_at
    return resources.user_resource(
        id=str(user.subject),
        user_name=user.email,
        display_name=user.name if kept is None or kept.display_name else "",
        formatted=kept.formatted if kept is not None else user.name,
        given_name=kept.given_name if kept is not None else "",
        family_name=kept.family_name if kept is not None else "",
        active=membership.is_active and user.is_active,
        external_id=(kept.external_id or None) if kept is not None else None,
        meta=resources.meta("User", location, created, modified),
    )


def _external_id_taken(directory: Directory, external_id: str) -> ScimError:
    return ScimError(
        f"externalId '{external_id}' is already used by another User of this directory", status=409,
        scim_type="uniqueness",
    )  # fmt: skip


def _keep_record(directory: Directory, membership: Membership, doc: UserDocument, replace: bool) -> None:
    """Store the directory's own view of the member: externalId and the name attributes (``replace``: all of them)."""
    name = membership.user.name
    # A member the directory never described reads as their name alone (render_user): the record starts there.
    kept = _record_of(membership) or ScimUser(
        membership=membership, account=directory.account, display_name=name, formatted=name
    )
    if doc.external_id_sent or replace:
        if doc.external_id_sent and doc.external_id is not None:
            clash = ScimUser.objects.filter(account=directory.account, external_id=doc.external_id)
            if kept.pk is not None:
                clash = clash.exclude(pk=kept.pk)
            if clash.exists():
                raise _external_id_taken(directory, doc.external_id)
        kept.external_id = doc.external_id or ""
    for field in ("display_name", "formatted", "given_name", "family_name"):
        if replace or getattr(doc, field) is not None:
            setattr(kept, field, getattr(doc, field) or "")
    kept.updated_at = timezone.now()
    try:
        with transaction.atomic():
            kept.save()
    except IntegrityError:
        raise _external_id_taken(directory, doc.external_id or "") from None
    membership.directory_record = kept


def _link_external_id(directory: Directory, user: User, external_id: str | None) -> None:
    """SSO and SCIM agree: with a bound connection, externalId is the person's subject at it (see module doc)."""
    connection = directory.token.connection
    if connection is None or not manages_identity(directory.account, user):
        return
    if email_domain(user.email) not in connection.domain_list:
        return  # its logins could never sign this person in: nothing to agree on
    try:
        previous = rules.set_external_id(connection, user, external_id, "externalId")
    except rules.ConnectionRuleError as exc:
        raise ScimError(
            exc.detail, status=exc.status if exc.status in (403, 404, 409) else 400,
            scim_type="uniqueness" if exc.status == 409 else "invalidValue",
        ) from None  # fmt: skip
    if previous != external_id:
        directory.audit(
            "user.external_id_changed", subject_email=user.email, connection=str(connection.pk),
            external_id=external_id, previous=previous,
        )  # fmt: skip


def create_user(directory: Directory, doc: UserDocument) -> Membership:
    """POST /Users: add the person to the account (creating the identity when the account owns it)."""
    account = directory.account
    existing = User.objects.filter(email_key=email_key(doc.user_name)).first()
    if existing is not None and Membership.objects.filter(user=existing, account=account).exists():
        raise ScimError(
            f"a User with userName '{doc.user_name}' already exists in this directory (id {existing.subject})",
            status=409, scim_type="uniqueness",
        )  # fmt: skip
    home = home_account_of_email(doc.user_name)
    if home is None or home.pk != account.pk or (existing is not None and existing.is_operator):
        owner = "another account" if home is not None else "no account (the person owns their identity)"
        raise ScimError(
            f"account '{account.slug}' does not own the domain of {doc.user_name} ({owner} does): a directory "
            "provisions the people of its account's claimed domains; invite others through the admin API "
            f"(POST /api/v1/accounts/{account.slug}/users), then this directory can manage their membership",
            status=403,
        )
    try:
        with transaction.atomic():
            user, created = members.add_member(account, doc.user_name, doc.full_name(), claim_identity=True)
            membership = Membership.objects.select_related("user").get(user=user, account=account)
            _keep_record(directory, membership, doc, replace=True)
            if doc.external_id is not None:
                _link_external_id(directory, user, doc.external_id)
            if doc.active is False:
                _set_active(directory, membership, False)
    except (members.UserConflict, IntegrityError):
        # Another request added the same person a moment ago (the checks above raced with it).
        raise ScimError(
            f"a User with userName '{doc.user_name}' already exists in this directory", status=409,
            scim_type="uniqueness",
        ) from None  # fmt: skip
    directory.audit("scim.user_created", subject_email=user.email, created_identity=created, active=doc.active)
    return membership


def replace_user(directory: Directory, membership: Membership, doc: UserDocument) -> Membership:
    """PUT /Users/<id>: attributes sent replace; attributes left out keep their value."""
    return _update_user(directory, membership, doc, replace=False)


def patch_user(directory: Directory, membership: Membership, patched: UserDocument) -> Membership:
    """PATCH /Users/<id>, given the whole resource as the operations left it (``scim.patch.apply_patch``)."""
    if patched.active is None:
        # "remove active" has no meaning for a membership (the schema says it is required): it stays as it is.
        patched = replace(patched, active=membership.is_active and membership.user.is_active)
    return _update_user(directory, membership, patched, replace=True)


def _new_name(user: User, kept: ScimUser | None, doc: UserDocument, *, replace: bool) -> str:
    """The identity's one name after this request: what the directory changed decides.

    A changed displayName first, else a changed name.formatted, else changed
    given or family names joined; nothing changed (or everything removed)
    leaves the name as it is. Without ``replace`` (PUT), an attribute left
    out is unchanged.
    """
    before = (
        (kept.display_name, kept.formatted, kept.given_name, kept.family_name)
        if kept is not None
        else (user.name, user.name, "", "")
    )
    sent = (doc.display_name, doc.formatted, doc.given_name, doc.family_name)
    after = tuple((v or "") if (replace or v is not None) else b for v, b in zip(sent, before, strict=True))
    for index in (0, 1):
        if after[index] and after[index] != before[index]:
            return after[index]
    if after[2:] != before[2:]:
        return " ".join(p for p in after[2:] if p) or user.name
    return user.name


def _update_user(directory: Directory, membership: Membership, doc: UserDocument, *, replace: bool) -> Membership:
    account, user = directory.account, membership.user
    name = _new_name(user, _record_of(membership), doc, replace=replace)
    changed: list[str] = []
    with transaction.atomic():
        if email_key(doc.user_name) != user.email_key or doc.user_name != user.email:
            _change_email(directory, user, doc.user_name)
            changed.append("userName")
        if name != user.name:
            if manages_identity(account, user):
                user.name = name
                user.save(update_fields=["name"])
                changed.append("name")
            elif doc.display_name is not None and doc.display_name != user.name:
                raise _identity_refused(directory, user, "displayName")
            # The name object alone stays in this directory's record: it renames nobody.
        before = _record_of(membership)
        previous_external = (before.external_id or None) if before is not None else None
        _keep_record(directory, membership, doc, replace=replace)
        if (doc.external_id_sent or replace) and doc.external_id != previous_external:
            _link_external_id(directory, user, doc.external_id)
            changed.append("externalId")
        active_before = membership.is_active and user.is_active
        if doc.active is not None and doc.active != active_before:
            _set_active(directory, membership, doc.active)
            changed.append("active")
    if changed:
        directory.audit("scim.user_updated", subject_email=user.email, fields=changed)
    if "active" in changed:
        directory.audit("scim.user_reactivated" if doc.active else "scim.user_deactivated", subject_email=user.email)
    membership.refresh_from_db()
    return membership


def _change_email(directory: Directory, user: User, new_email: str) -> None:
    account = directory.account
    if not manages_identity(account, user):
        raise _identity_refused(directory, user, "userName (the email address)")
    if not same_owner(user.email, new_email):
        raise ScimError(
            f"{new_email} is not in a domain of account '{account.slug}': an address may change only within "
            "the domains its home account owns",
            status=403,
        )
    if User.objects.filter(email_key=email_key(new_email)).exclude(pk=user.pk).exists():
        raise ScimError(f"userName '{new_email}' is already taken", status=409, scim_type="uniqueness")
    previous = user.email
    user.email = new_email
    try:
        with transaction.atomic():
            user.save(update_fields=["email", "email_key"])
    except IntegrityError:
        raise ScimError(f"userName '{new_email}' is already taken", status=409, scim_type="uniqueness") from None
    # The old mailbox may be handed to someone else: links already sent there must not work any more.
    credentials_changed(user)
    directory.audit("scim.user_renamed", subject_email=new_email, previous=previous)


def _account_connection_ids(account: Account) -> list[Any]:
    return list(Connection.objects.for_account(account).values_list("pk", flat=True))


def _set_active(directory: Directory, membership: Membership, active: bool) -> None:
    """The admin API's deactivation (``people.members.set_active``), plus the sessions through this account's providers."""
    account, user = directory.account, membership.user
    members.set_active(membership, active, owns_identity=manages_identity(account, user))
    if not active:
        end_sessions(user_ids=[user.pk], connection_ids=_account_connection_ids(account))


def delete_user(directory: Directory, membership: Membership) -> None:
    """DELETE /Users/<id>: the membership goes, with what it granted (and the identity, by remove_member's rules)."""
    account, user = directory.account, membership.user
    email = user.email
    owns = manages_identity(account, user) or (home_account_of_email(user.email) is None and not user.is_operator)
    with transaction.atomic():
        ScimGroupMember.objects.filter(group__account=account, user=user).delete()
        end_sessions(user_ids=[user.pk], connection_ids=_account_connection_ids(account))
        removed_identity = members.remove_member(user, account, owns_identity=owns)
    directory.audit("scim.user_deleted", subject_email=email, identity_removed=removed_identity)


# Groups --------------------------------------------------------------------------------


def groups(directory: Directory) -> Any:
    return ScimGroup.objects.filter(account=directory.account).order_by("created_at", "pk")


def find_group(directory: Directory, group_id: uuid.UUID | None, *, lock: bool = False) -> ScimGroup | None:
    """The group with this id, or None; ``lock`` as for :func:`find_member`."""
    # IDOR check: the id resolves only among this account's groups.
    if group_id is None:
        return None
    rows = groups(directory).filter(pk=group_id)
    if lock:
        rows = rows.select_for_update()
    found: ScimGroup | None = rows.first()
    return found


def render_group(group: ScimGroup) -> dict[str, Any]:
    base = base_url()
    rows = ScimGroupMember.objects.filter(group=group).order_by("pk").values_list("user__subject", flat=True)
    return resources.group_resource(
        id=str(group.pk),
        display_name=group.display_name,
        external_id=group.external_id or None,
        members=[(str(s), f"{base}/Users/{s}") for s in rows],
        meta=resources.meta("Group", f"{base}/Groups/{group.pk}", group.created_at, group.updated_at),
    )


def _resolve_members(directory: Directory, ids: Iterable[uuid.UUID]) -> list[User]:
    wanted = list(ids)
    # IDOR check: only people who are members of this account can be put in its groups.
    found = {
        u.subject: u for u in User.objects.filter(subject__in=wanted, memberships__account=directory.account).distinct()
    }
    for value in wanted:
        if value not in found:
            raise ScimError(f"members: no User with id {value} in this directory", scim_type="invalidValue")
    return [found[v] for v in wanted]


def _check_group_unique(directory: Directory, doc: GroupDocument, group: ScimGroup | None) -> None:
    same_name = ScimGroup.objects.filter(account=directory.account, display_name=doc.display_name)
    same_external = (
        ScimGroup.objects.filter(account=directory.account, external_id=doc.external_id)
        if doc.external_id is not None
        else ScimGroup.objects.none()
    )
    if group is not None:
        same_name, same_external = same_name.exclude(pk=group.pk), same_external.exclude(pk=group.pk)
    if same_name.exists():
        raise ScimError(
            f"a Group named '{doc.display_name}' already exists in this directory", status=409, scim_type="uniqueness"
        )
    if same_external.exists():
        raise ScimError(
            f"externalId '{doc.external_id}' is already used by another Group of this directory",
            status=409, scim_type="uniqueness",
        )  # fmt: skip


def _save_group(group: ScimGroup) -> None:
    try:
        with transaction.atomic():
            group.save()
    except IntegrityError:
        raise ScimError("a Group with this displayName or externalId already exists", status=409,
                        scim_type="uniqueness") from None  # fmt: skip


def create_group(directory: Directory, doc: GroupDocument) -> ScimGroup:
    with transaction.atomic():
        _check_group_unique(directory, doc, None)
        people = _resolve_members(directory, doc.members or ())
        group = ScimGroup(account=directory.account, display_name=doc.display_name, external_id=doc.external_id or "")
        _save_group(group)
        ScimGroupMember.objects.bulk_create(ScimGroupMember(group=group, user=u) for u in people)
        sync_roles(directory.account, [u.pk for u in people])
    directory.audit("scim.group_created", group=str(group.pk), display_name=group.display_name, members=len(people))
    return group


def update_group(
    directory: Directory, group: ScimGroup, doc: GroupDocument, *, members_: Any, whole: bool = False
) -> ScimGroup:
    try:
        return _update_group(directory, group, doc, members_=members_, whole=whole)
    except IntegrityError:
        # A concurrent change to the same group: the directory retries with the state it reads back.
        raise ScimError("the group changed while this request ran; retry", status=409) from None


def _update_group(
    directory: Directory, group: ScimGroup, doc: GroupDocument, *, members_: Any, whole: bool
) -> ScimGroup:
    """PUT or PATCH /Groups/<id>; ``members_`` is the full member list wanted, or None to leave it as it is.

    ``whole``: ``doc`` is the entire resource (after a PATCH), so an attribute it lacks was removed.
    """
    with transaction.atomic():
        _check_group_unique(directory, doc, group)
        renamed = doc.display_name != group.display_name
        affected: set[int] = set()
        if members_ is not None:
            people = _resolve_members(directory, members_)
            wanted = {u.pk for u in people}
            have = set(ScimGroupMember.objects.filter(group=group).values_list("user_id", flat=True))
            ScimGroupMember.objects.filter(group=group, user_id__in=have - wanted).delete()
            ScimGroupMember.objects.bulk_create(ScimGroupMember(group=group, user_id=pk) for pk in wanted - have)
            affected = have ^ wanted
        group.display_name = doc.display_name
        if doc.external_id_sent or whole:
            group.external_id = doc.external_id or ""
        group.updated_at = timezone.now()
        _save_group(group)
        if renamed:
            affected |= set(ScimGroupMember.objects.filter(group=group).values_list("user_id", flat=True))
        sync_roles(directory.account, affected)
    directory.audit(
        "scim.group_updated", group=str(group.pk), display_name=group.display_name, renamed=renamed,
        members_changed=len(affected) if members_ is not None else 0,
    )  # fmt: skip
    return group


def delete_group(directory: Directory, group: ScimGroup) -> None:
    with transaction.atomic():
        affected = list(ScimGroupMember.objects.filter(group=group).values_list("user_id", flat=True))
        name = group.display_name
        group.delete()
        sync_roles(directory.account, affected)
    directory.audit("scim.group_deleted", display_name=name, members=len(affected))
