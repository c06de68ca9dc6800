"""Directory sync: what an account's SCIM directory (Okta, Entra ID) holds in Vestibule.

A :class:`ScimToken` is the bearer credential one account's directory
provisions with; it speaks for that account only. A :class:`ScimUser` is the
directory's record of one membership: the ``externalId`` the directory knows
the person by and the name parts it sent (the person's identity itself stays
on :class:`~vestibule.accounts.models.User`, owned by their home account).
A :class:`ScimGroup` is a group of the account's members; a group named like
one of the account's mapping roles grants that mapping role's roles to its
members (see ``directory.provisioning``).
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from collections.abc import Iterable
from typing import Any

from django.db import models, transaction
from django.db.models import Q
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from vestibule.accounts.models import Account, Membership, RoleGrant, Source, User
from vestibule.accounts.roles import roles_changed
from vestibule.connections.models import MappingRole, MappingRoleGrant
from vestibule.login.models import token_digest

TOKEN_KIND = "vsc"
# Longer presented values are refused before any lookup.
MAX_TOKEN_LENGTH = 200
MAX_EXTERNAL_ID = 512
# RoleGrant.source of the roles a directory group grants through a mapping role (managed: locked for admins).
SCIM_SOURCE = Source.SCIM


class ScimToken(models.Model):
    """``vsc_<prefix>_<secret>``, stored as ApiKey stores its keys (see ``authority.models``).

    The secret is 256 bits of randomness, so a SHA-256 of it is enough (a
    slow password hash would add latency on every provisioning call, not
    safety). The prefix finds the row; the digest is compared in constant time.
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="scim_tokens")
    name = models.CharField(max_length=200, blank=True)
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64)
    # When set, the directory's externalId IS the person's external user ID at this connection
    # (SAML NameID / OIDC sub): SSO and SCIM then agree on who is who (see provisioning.link_external_id).
    connection = models.ForeignKey(
        "connections.Connection", null=True, blank=True, on_delete=models.SET_NULL, related_name="scim_tokens"
    )
    # "person:<email>", "api-key:<prefix>" or "cli": who made it.
    created_by = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    @property
    def label(self) -> str:
        """How the audit log names this token as an actor."""
        return f"scim-token:{self.prefix}"

    @classmethod
    def issue(
        cls, account: Account, *, name: str = "", connection: Any = None, created_by: str = ""
    ) -> tuple[ScimToken, str]:
        """Create a token; returns the row and the full token, which is never stored."""
        prefix = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        token = cls.objects.create(
            account=account,
            name=name,
            prefix=prefix,
            digest=token_digest(secret),
            connection=connection,
            created_by=created_by,
        )
        return token, f"{TOKEN_KIND}_{prefix}_{secret}"

    @classmethod
    def authenticate(cls, presented: str) -> ScimToken | None:
        """The live token ``presented`` names, or None (unknown, malformed, revoked)."""
        if len(presented) > MAX_TOKEN_LENGTH:
            return None
        parts = presented.split("_", 2)
        if len(parts) != 3 or parts[0] != TOKEN_KIND:
            return None
        token = (
            cls.objects.select_related("account", "connection").filter(prefix=parts[1], revoked_at__isnull=True).first()
        )
        if token is None or not hmac.compare_digest(token.digest, token_digest(parts[2])):
            return None
        return token


class ScimUser(models.Model):
    """The directory's record of one membership: its ``externalId`` ("" when none) and the name parts it sent."""

    membership = models.OneToOneField(Membership, on_delete=models.CASCADE, related_name="directory_record")
    # Denormalised from the membership so externalId is unique per account in the database itself.
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    external_id = models.CharField(max_length=MAX_EXTERNAL_ID, blank=True, default="")
    # The name attributes as the directory sent them ("" when absent); the identity's own name is User.name.
    display_name = models.CharField(max_length=200, blank=True)
    formatted = models.CharField(max_length=200, blank=True)
    given_name = models.CharField(max_length=200, blank=True)
    family_name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "external_id"],
                condition=~Q(external_id=""),
                name="one_scim_user_per_external_id",
            )
        ]


class ScimGroup(models.Model):
    """A group of the account's members, as the directory sends it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="scim_groups")
    display_name = models.CharField(max_length=200)
    external_id = models.CharField(max_length=MAX_EXTERNAL_ID, blank=True, default="")
    members = models.ManyToManyField(User, through="ScimGroupMember", related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            # A group's name is what maps it to a mapping role: two groups of one name would be ambiguous.
            models.UniqueConstraint(fields=["account", "display_name"], name="one_scim_group_per_name"),
            models.UniqueConstraint(
                fields=["account", "external_id"],
                condition=~Q(external_id=""),
                name="one_scim_group_per_external_id",
            ),
        ]


class ScimGroupMember(models.Model):
    group = models.ForeignKey(ScimGroup, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["group", "user"], name="one_scim_group_member")]


# Roles from groups: kept here, beside the rows, so the receivers are connected whenever the models are.


def sync_roles(account: Account, user_ids: Iterable[int]) -> None:
    """Make each person's ``scim`` grants in ``account`` exactly what their groups' mapping roles grant."""
    ids = sorted(set(user_ids))
    if not ids:
        return
    grants_by_name: dict[str, set[tuple[int | None, str]]] = {}
    for name, project_id, role in MappingRoleGrant.objects.filter(mapping_role__account=account).values_list(
        "mapping_role__name", "project_id", "role"
    ):
        grants_by_name.setdefault(name, set()).add((project_id, role))
    names_by_user: dict[int, set[str]] = {}
    for user_id, name in ScimGroupMember.objects.filter(group__account=account, user_id__in=ids).values_list(
        "user_id", "group__display_name"
    ):
        names_by_user.setdefault(user_id, set()).add(name)
    # Only members: a removed membership took its grants with it (remove_member).
    in_account = set(Membership.objects.filter(account=account, user_id__in=ids).values_list("user_id", flat=True))
    for user_id in ids:
        wanted: set[tuple[int | None, str]] = set()
        if user_id in in_account:
            for name in names_by_user.get(user_id, ()):
                wanted |= grants_by_name.get(name, set())
        existing = RoleGrant.objects.filter(user_id=user_id, account=account, source=SCIM_SOURCE)
        have = set(existing.values_list("project_id", "role"))
        stale = have - wanted
        if stale:
            gone = Q()
            for project_id, role in stale:
                gone |= Q(project_id=project_id, role=role)
            existing.filter(gone).delete()
        fresh = wanted - have
        RoleGrant.objects.bulk_create(
            RoleGrant(
                user_id=user_id, account=account, project_id=project_id, role=role, source=SCIM_SOURCE, managed=True
            )
            for project_id, role in sorted(fresh, key=lambda g: (g[0] or 0, g[1]))
        )
        if fresh or stale:
            roles_changed.send(sender=RoleGrant, user_id=user_id, account_id=account.pk)


def sync_account(account_id: int) -> None:
    """Every grouped person of the account afresh (a mapping role changed, was renamed or deleted)."""
    account = Account.objects.filter(pk=account_id).first()
    if account is None:
        return
    users = ScimGroupMember.objects.filter(group__account=account).values_list("user_id", flat=True)
    stale = RoleGrant.objects.filter(account=account, source=SCIM_SOURCE).values_list("user_id", flat=True)
    sync_roles(account, set(users) | set(stale))


@receiver(post_delete, sender=Membership, dispatch_uid="directory.membership_deleted")
def _membership_deleted(sender: Any, instance: Membership, **kwargs: Any) -> None:
    # Removed by any path (the admin API, the console, SCIM): out of the account's groups too, or the next
    # PATCH of a group would carry a member the account no longer has.
    ScimGroupMember.objects.filter(group__account_id=instance.account_id, user_id=instance.user_id).delete()


@receiver(post_save, sender=MappingRole, dispatch_uid="directory.mapping_role_saved")
@receiver(post_delete, sender=MappingRole, dispatch_uid="directory.mapping_role_deleted")
@receiver(post_delete, sender=MappingRoleGrant, dispatch_uid="directory.mapping_role_grant_deleted")
def _mapping_role_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    # After the commit: save_mapping_role saves the row before it replaces its grants.
    account_id = instance.account_id if isinstance(instance, MappingRole) else None
    if account_id is None:
        account_id = (
            MappingRole.objects.filter(pk=instance.mapping_role_id).values_list("account_id", flat=True).first()
        )
    if account_id is not None and ScimGroup.objects.filter(account_id=account_id).exists():
        transaction.on_commit(lambda: sync_account(account_id))


__all__ = ["SCIM_SOURCE", "ScimGroup", "ScimGroupMember", "ScimToken", "ScimUser", "sync_account", "sync_roles"]
