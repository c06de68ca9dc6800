"""Roles of users: the deployment catalog, grants and effective roles."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import transaction
from django.dispatch import Signal

from vestibule.accounts.models import Account, Membership, Project, ProjectAccess, RoleGrant, Source, User
from vestibule.domain.roles import DEFAULT_CATALOG, RoleCatalog, RoleRuleError

# Sent (user_id=, account_id=) after a person's role grants in one account were written in bulk:
# ``bulk_create`` sends no ``post_save``, and the OpenID Provider's webhooks (provider.events) must hear of it.
roles_changed = Signal()


@lru_cache(maxsize=1)
def get_catalog() -> RoleCatalog:
    path = settings.VESTIBULE_ROLE_CATALOG_PATH
    if path is None:
        return DEFAULT_CATALOG
    return RoleCatalog.from_json(path.read_text())


class SsoManagedRoles(Exception):
    """The roles of this scope are managed by an identity provider."""

    def __init__(self, connection_name: str) -> None:
        super().__init__(
            f"roles in this scope are managed by the identity provider of connection '{connection_name}' "
            "(SSO authorization); change them there or in the account's mapping roles, "
            "or turn SSO authorization off on that connection to manage roles in Vestibule again"
        )


def sso_managing_connection(user: User, account: Account) -> Any:
    """The connection managing this user's roles in ``account`` (SSO authorization on), if any.

    Once an identity provider manages a user's authorization in an account,
    every scope of that account is its to decide (seed 002, seed 004). Only
    grants a login made *with* authorization on count: what logins granted
    while it was off (the default role, a roles claim applied leniently)
    stays editable until the next login decides under the new rules.
    """
    grant = (
        RoleGrant.objects.filter(
            user=user, account=account, source=Source.SSO, managed=True, connection__sso_authorization=True
        )
        .select_related("connection")
        .first()
    )
    return grant.connection if grant is not None else None


def replace_manual_roles(
    user: User, account: Account, roles: Iterable[str], project: Project | None = None
) -> frozenset[str]:
    """Replace the manual roles of one scope, after checking every catalog rule.

    The requirement rules are checked against the union with the scope's other
    grants (an SSO-granted analyst satisfies a manual pii-viewer), and for a
    project scope also with the account-scope grants, which apply there too.
    """
    catalog = get_catalog()
    wanted = catalog.require_known(roles)
    with transaction.atomic():
        managed = sso_managing_connection(user, account)
        if managed is not None:
            raise SsoManagedRoles(managed.name)
        existing = RoleGrant.objects.select_for_update().filter(user=user, account=account, project=project)
        others = set(existing.exclude(source=Source.MANUAL).values_list("role", flat=True))
        if project is not None:
            others |= set(
                RoleGrant.objects.filter(user=user, account=account, project__isnull=True).values_list(
                    "role", flat=True
                )
            )
        catalog.validate(wanted | others)
        if project is None:
            _check_projects_still_valid(user, account, wanted | others)
        existing.filter(source=Source.MANUAL).exclude(role__in=wanted).delete()
        have = set(existing.filter(source=Source.MANUAL).values_list("role", flat=True))
        RoleGrant.objects.bulk_create(
            RoleGrant(user=user, account=account, project=project, role=r, source=Source.MANUAL)
            for r in sorted(wanted - have)
        )
        if wanted - have:
            roles_changed.send(sender=RoleGrant, user_id=user.pk, account_id=account.pk)
    return wanted


def _check_projects_still_valid(user: User, account: Account, account_roles: frozenset[str] | set[str]) -> None:
    """Account-scope roles apply in every project: a project grant relying on one must still hold."""
    catalog = get_catalog()
    scoped: dict[str, set[str]] = defaultdict(set)
    for slug, role in RoleGrant.objects.filter(user=user, account=account, project__isnull=False).values_list(
        "project__slug", "role"
    ):
        if role in catalog.roles:
            scoped[slug].add(role)
    for slug in sorted(scoped):
        try:
            catalog.validate(scoped[slug] | account_roles)
        except RoleRuleError as exc:
            raise RoleRuleError(
                exc.role, f"{exc.message} (granted in project '{slug}', which relies on the account-scope roles)"
            ) from None


def accounts_payload(user: User, only_account_id: int | None = None) -> list[dict[str, Any]]:
    """The ``accounts`` list of ``GET /api/v1/session``: effective roles per account and project.

    ``only_account_id`` narrows it to the one account a session speaks for.
    """
    catalog = get_catalog()
    # A membership that is deactivated or waiting for approval gives nothing yet.
    memberships = Membership.objects.in_force().filter(user=user)
    grant_rows = RoleGrant.objects.filter(user=user)
    access_rows = ProjectAccess.objects.filter(user=user)
    if only_account_id is not None:
        memberships = memberships.filter(account_id=only_account_id)
        grant_rows = grant_rows.filter(account_id=only_account_id)
        access_rows = access_rows.filter(project__account_id=only_account_id)
    # Plain rows, not model instances: this runs at every token refresh of the OpenID Provider.
    grants: dict[int, dict[int | None, set[str]]] = defaultdict(lambda: defaultdict(set))
    for account_id, project_id, role in grant_rows.values_list("account_id", "project_id", "role"):
        grants[account_id][project_id].add(role)
    slugs: dict[int, dict[int, str]] = defaultdict(dict)
    for project_id, slug, account_id in access_rows.values_list("project_id", "project__slug", "project__account_id"):
        slugs[account_id][project_id] = slug
    granted_only = {p for by_project in grants.values() for p in by_project if p is not None} - {
        p for by_project in slugs.values() for p in by_project
    }
    if granted_only:
        for project_id, slug, account_id in Project.objects.filter(pk__in=granted_only).values_list(
            "pk", "slug", "account_id"
        ):
            slugs[account_id][project_id] = slug
    result = []
    for account_id, account_slug, account_name in memberships.order_by("account__slug").values_list(
        "account_id", "account__slug", "account__name"
    ):
        account_roles = grants[account_id][None]
        account_effective = catalog.effective(r for r in account_roles if r in catalog.roles)
        project_ids = set(slugs[account_id]) | {p for p in grants[account_id] if p is not None}
        project_rows = []
        for project_id in sorted(project_ids, key=lambda pid: slugs[account_id].get(pid, "")):
            scoped = grants[account_id][project_id] | account_roles
            project_rows.append(
                {
                    "slug": slugs[account_id].get(project_id, ""),
                    "roles": sorted(catalog.effective(r for r in scoped if r in catalog.roles)),
                }
            )
        result.append(
            {"slug": account_slug, "name": account_name, "roles": sorted(account_effective), "projects": project_rows}
        )
    return result


def effective_account_roles(user: User, account: Account) -> frozenset[str]:
    """Roles in force: none while the membership is deactivated or waiting for approval."""
    catalog = get_catalog()
    if not Membership.objects.in_force().filter(user=user, account=account).exists():
        return frozenset()
    roles = RoleGrant.objects.filter(user=user, account=account, project__isnull=True).values_list("role", flat=True)
    return catalog.effective(r for r in roles if r in catalog.roles)
