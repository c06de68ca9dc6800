"""Webhook events for applications, from the model signals of people, memberships and roles.

What applications hear about (Standard Webhooks, queued by
:func:`vestibule.provider.deliveries.queue_webhooks`), each about one person in
one account::

    person.created       a new identity, once per account it belongs to
    person.updated       email or name changed, or reactivated
    person.deactivated   the identity signs in nowhere any more
    membership.created   the person joined the account
    membership.updated   its active flag or approval changed
    membership.removed   the person left the account (or it was deleted)
    roles.changed        their roles or projects in the account changed

The body is ``{"type", "timestamp", "data"}``; ``data`` names the person as
the ID token does (``sub``, ``email``, ``name``) and, for that one account,
``org`` (``{"slug", "name"}``), ``membership``, ``roles`` and ``projects``:
no other account, and nothing secret. Every non-revoked application with a
webhook URL receives every event (applications are the operator's own,
deployment-wide).

How: the receivers below only note *who* changed (no query, so a sign-in's
statement budget stays as it was) in a buffer of the current transaction.
When it commits, the buffer is read once: events about the same person and
account are merged (a role replacement that deletes two grants and adds one
is one ``roles.changed``), each is checked against the committed rows (a
note from a rolled-back savepoint that changed nothing is dropped) and
described as things now are, then queued and sent. Nothing is queued when
the transaction rolls back. A crash in the instant between the commit and
that write loses the event; back-channel logout, which must not be lost, is
queued inside the transaction instead (``deliveries.queue_backchannel_logout``).

Covered writes: ``save()``/``delete()`` of users, memberships and role grants,
including cascades (deleting an account or a person), and the bulk role
writes of ``accounts.roles.replace_manual_roles`` and the sign-in pipeline,
which send ``accounts.roles.roles_changed``. Not covered: ``QuerySet.update()``
on these models (none changes a field events describe today), project access
given or taken without a role change outside the sign-in pipeline's signal,
and a deleted project's disappearance from ``projects``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from django.core.signals import request_started
from django.db import transaction
from django.db.models.signals import post_delete, post_init, post_save, pre_delete
from django.dispatch import receiver
from django.utils import timezone

from vestibule.accounts.models import Account, Membership, RoleGrant, User
from vestibule.accounts.roles import accounts_payload, roles_changed
from vestibule.provider import deliveries

log = logging.getLogger("vestibule.provider.events")

PERSON_CREATED = "person.created"
PERSON_UPDATED = "person.updated"
PERSON_DEACTIVATED = "person.deactivated"
MEMBERSHIP_CREATED = "membership.created"
MEMBERSHIP_UPDATED = "membership.updated"
MEMBERSHIP_REMOVED = "membership.removed"
ROLES_CHANGED = "roles.changed"
EVENT_TYPES = (
    PERSON_CREATED,
    PERSON_UPDATED,
    PERSON_DEACTIVATED,
    MEMBERSHIP_CREATED,
    MEMBERSHIP_UPDATED,
    MEMBERSHIP_REMOVED,
    ROLES_CHANGED,
)
_PERSON = (PERSON_CREATED, PERSON_UPDATED, PERSON_DEACTIVATED)
# The identity fields an event describes; saves of anything else (last_login, credentials) say nothing.
_USER_FIELDS = ("email", "name", "is_active")
_MEMBERSHIP_FIELDS = ("is_active", "approval")
_SEEN = "_webhook_seen"

Key = tuple[str, int, int | None]


@dataclass
class _Buffer:
    """What changed in one transaction, by (event type, user id, account id); sent when it commits."""

    events: dict[Key, None] = field(default_factory=dict)
    # People and accounts being deleted, as they were: after the commit they cannot be read.
    people: dict[int, dict[str, Any]] = field(default_factory=dict)
    orgs: dict[int, dict[str, str]] = field(default_factory=dict)
    done: bool = False

    def __post_init__(self) -> None:
        # One bound method, so its presence among the connection's commit hooks can be checked.
        self.callback = self.flush

    def alive(self) -> bool:
        """Still waiting for this transaction's commit (not run, not dropped by a rollback)."""
        hooks = transaction.get_connection().run_on_commit
        return not self.done and any(hook[1] is self.callback for hook in hooks)

    def flush(self) -> None:
        self.done = True
        if not self.events:
            return
        try:
            _send(self)
        except Exception:
            # The change is committed whatever happens here; losing its events must not fail the caller.
            log.exception("webhook events of a committed change could not be queued")


class _Local(threading.local):
    buffer: _Buffer | None = None


_local = _Local()


def _buffer() -> tuple[_Buffer, bool]:
    """The current transaction's buffer, and whether to send it at once (no transaction: already committed)."""
    if not transaction.get_connection().in_atomic_block:
        return _Buffer(), True
    current = _local.buffer
    if current is None or not current.alive():
        current = _local.buffer = _Buffer()
        transaction.on_commit(current.callback, robust=True)
    return current, False


def _note(kind: str, user_id: int, account_id: int | None = None) -> None:
    buffer, now = _buffer()
    buffer.events[(kind, user_id, account_id)] = None
    if now:
        buffer.flush()


# ---- Receivers


def _seen(instance: Any, names: tuple[str, ...]) -> dict[str, Any]:
    # From __dict__: a deferred field is unknown, not loaded (that would be a query per instance).
    values = instance.__dict__
    return {name: values[name] for name in names if name in values}


def _changed(instance: Any, names: tuple[str, ...], update_fields: Any) -> dict[str, tuple[Any, Any]]:
    """Fields of ``names`` this save changed: (before, after); a field saved without a known before counts."""
    before = getattr(instance, _SEEN, {})
    saved = set(names) if update_fields is None else set(update_fields) & set(names)
    changes = {}
    for name in saved:
        now = getattr(instance, name)
        if name not in before or before[name] != now:
            changes[name] = (before.get(name), now)
    setattr(instance, _SEEN, _seen(instance, names))
    return changes


@receiver(post_init, sender=User, dispatch_uid="provider.events.user_loaded")
def _user_loaded(sender: Any, instance: User, **kwargs: Any) -> None:
    setattr(instance, _SEEN, _seen(instance, _USER_FIELDS))


@receiver(post_init, sender=Membership, dispatch_uid="provider.events.membership_loaded")
def _membership_loaded(sender: Any, instance: Membership, **kwargs: Any) -> None:
    setattr(instance, _SEEN, _seen(instance, _MEMBERSHIP_FIELDS))


@receiver(post_save, sender=User, dispatch_uid="provider.events.user_saved")
def _user_saved(sender: Any, instance: User, created: bool, update_fields: Any = None, **kwargs: Any) -> None:
    changes = _changed(instance, _USER_FIELDS, update_fields)
    if created:
        _note(PERSON_CREATED, instance.pk)
    elif "is_active" in changes and changes["is_active"][1] is False:
        _note(PERSON_DEACTIVATED, instance.pk)
    elif changes:
        _note(PERSON_UPDATED, instance.pk)


@receiver(pre_delete, sender=User, dispatch_uid="provider.events.user_deleting")
def _user_deleting(sender: Any, instance: User, **kwargs: Any) -> None:
    buffer, _ = _buffer()
    buffer.people[instance.pk] = _person(instance)


@receiver(pre_delete, sender=Account, dispatch_uid="provider.events.account_deleting")
def _account_deleting(sender: Any, instance: Account, **kwargs: Any) -> None:
    buffer, _ = _buffer()
    buffer.orgs[instance.pk] = _org(instance)


@receiver(post_save, sender=Membership, dispatch_uid="provider.events.membership_saved")
def _membership_saved(
    sender: Any, instance: Membership, created: bool, update_fields: Any = None, **kwargs: Any
) -> None:
    changes = _changed(instance, _MEMBERSHIP_FIELDS, update_fields)
    if created:
        _note(MEMBERSHIP_CREATED, instance.user_id, instance.account_id)
    elif changes:
        _note(MEMBERSHIP_UPDATED, instance.user_id, instance.account_id)


@receiver(post_delete, sender=Membership, dispatch_uid="provider.events.membership_deleted")
def _membership_deleted(sender: Any, instance: Membership, **kwargs: Any) -> None:
    _note(MEMBERSHIP_REMOVED, instance.user_id, instance.account_id)


@receiver(post_save, sender=RoleGrant, dispatch_uid="provider.events.grant_saved")
@receiver(post_delete, sender=RoleGrant, dispatch_uid="provider.events.grant_deleted")
def _grant_changed(sender: Any, instance: RoleGrant, **kwargs: Any) -> None:
    _note(ROLES_CHANGED, instance.user_id, instance.account_id)


@receiver(roles_changed, dispatch_uid="provider.events.roles_changed")
def _roles_changed(sender: Any, user_id: int, account_id: int, **kwargs: Any) -> None:
    _note(ROLES_CHANGED, user_id, account_id)


@receiver(request_started, dispatch_uid="provider.events.serving")
def _serving(sender: Any, environ: Any = None, **kwargs: Any) -> None:
    # Each gunicorn worker (``vestibule serve``) sweeps pending deliveries in a thread of its own;
    # the test client, the CLI and other servers do not start one.
    if environ is not None and str(environ.get("SERVER_SOFTWARE", "")).startswith("gunicorn/"):
        deliveries.start_sweeper()


# ---- Sending


def _person(user: User) -> dict[str, Any]:
    return {"sub": str(user.subject), "email": user.email, "name": user.name, "active": user.is_active}


def _org(account: Account) -> dict[str, str]:
    return {"slug": account.slug, "name": account.name}


def _merged(events: dict[Key, None]) -> list[Key]:
    """One event per (person, account) fact: the more telling one wins, gone beats changed."""
    keys = list(events)
    removed = {(u, a) for kind, u, a in keys if kind == MEMBERSHIP_REMOVED}
    joined = {(u, a) for kind, u, a in keys if kind == MEMBERSHIP_CREATED}
    created = {u for kind, u, _ in keys if kind == PERSON_CREATED}
    deactivated = {u for kind, u, _ in keys if kind == PERSON_DEACTIVATED}
    kept = []
    for kind, user_id, account_id in keys:
        pair = (user_id, account_id)
        if kind in (MEMBERSHIP_UPDATED, ROLES_CHANGED) and (pair in removed or pair in joined):
            continue
        if kind == PERSON_UPDATED and (user_id in created or user_id in deactivated):
            continue
        if kind == PERSON_DEACTIVATED and user_id in created:
            continue
        kept.append((kind, user_id, account_id))
    return kept


def _send(buffer: _Buffer) -> None:
    targets = deliveries.webhook_applications()
    if not targets:
        return
    events = _merged(buffer.events)
    user_ids = {user_id for _, user_id, _ in events}
    users = User.objects.in_bulk(user_ids)
    memberships: dict[int, dict[int, Membership]] = {}
    for membership in Membership.objects.filter(user_id__in=user_ids).select_related("account"):
        memberships.setdefault(membership.user_id, {})[membership.account_id] = membership
    orgs = {**buffer.orgs, **{m.account_id: _org(m.account) for by in memberships.values() for m in by.values()}}
    missing = {a for _, _, a in events if a is not None and a not in orgs}
    orgs.update({a.pk: _org(a) for a in Account.objects.filter(pk__in=missing)})
    roles: dict[int, dict[str, dict[str, Any]]] = {}

    def grants(user: User, slug: str) -> dict[str, Any]:
        if user.pk not in roles:
            roles[user.pk] = {row["slug"]: row for row in accounts_payload(user)}
        row = roles[user.pk].get(slug)
        # A membership that is deactivated or waiting for approval gives no roles.
        return {"roles": row["roles"], "projects": row["projects"]} if row else {"roles": [], "projects": []}

    stamp = timezone.now().isoformat().replace("+00:00", "Z")
    messages: list[dict[str, Any]] = []

    def add(
        kind: str, person: dict[str, Any], account_id: int, membership: Membership | None, user: User | None
    ) -> None:
        org = orgs.get(account_id)
        if org is None:
            return
        data: dict[str, Any] = {**person, "org": org}
        if membership is not None and user is not None:
            data["membership"] = {"active": membership.is_active, "approval": membership.approval}
            data.update(grants(user, org["slug"]))
        else:
            data.update(membership=None, roles=[], projects=[])
        messages.append({"type": kind, "timestamp": stamp, "data": data})

    for kind, user_id, account_id in events:
        user = users.get(user_id)
        held = memberships.get(user_id, {})
        if kind == MEMBERSHIP_REMOVED:
            # Checked against the committed rows: a removal that was rolled back is no removal.
            if account_id is None or account_id in held:
                continue
            person = _person(user) if user is not None else buffer.people.get(user_id)
            if person is not None:
                add(kind, person, account_id, None, None)
            continue
        if user is None:
            continue
        if kind in _PERSON:
            if kind == PERSON_DEACTIVATED and user.is_active:
                continue
            for membership in held.values():
                add(kind, _person(user), membership.account_id, membership, user)
        elif account_id is not None and account_id in held:
            add(kind, _person(user), account_id, held[account_id], user)
    deliveries.queue_webhooks(targets, messages)
