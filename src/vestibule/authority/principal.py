"""The one who acts: a person with roles, or a named API key.

Admin authority in Vestibule is held by people: ``administrator``,
``user-manager`` and ``sso-admin`` granted in an account (``administrator``
implies the other two through the role catalog), and the deployment operator
above every account. An API key is a service credential that stands in for
such a person in exactly one account (or for the operator), holding the
subset of admin roles it was created with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vestibule.accounts.models import Account, Membership, User
from vestibule.accounts.roles import effective_account_roles, get_catalog
from vestibule.authority.models import ApiKey

ADMINISTRATOR = "administrator"
USER_MANAGER = "user-manager"
SSO_ADMIN = "sso-admin"
ADMIN_ROLES = frozenset({ADMINISTRATOR, USER_MANAGER, SSO_ADMIN})


def effective_admin_roles(roles: set[str] | frozenset[str] | list[str]) -> frozenset[str]:
    catalog = get_catalog()
    return catalog.effective(r for r in roles if r in catalog.roles) & ADMIN_ROLES


class NoStanding(Exception):
    """The principal has nothing to do with the account: answer as if it did not exist."""


class RoleRequired(Exception):
    """A member of the account, without the role the action needs."""

    def __init__(self, account: Account, roles: tuple[str, ...]) -> None:
        needs = " or ".join(f"'{r}'" for r in roles)
        super().__init__(f"this action needs the {needs} role in account '{account.slug}'")


@dataclass(frozen=True)
class Principal:
    """Exactly one of ``user`` and ``key`` is set.

    A person's session may be narrower than the person (see :func:`session_scope`):
    ``only_account_id`` limits it to one account, and ``operator_allowed`` is
    false when an account's identity provider, not the person's own
    credentials, started it.
    """

    user: User | None = None
    key: ApiKey | None = None
    only_account_id: int | None = None
    operator_allowed: bool = True

    @property
    def is_operator(self) -> bool:
        if self.key is not None:
            return self.key.is_operator
        return bool(self.user is not None and self.user.is_operator and self.user.is_active and self.operator_allowed)

    def _outside_scope(self, account: Account) -> bool:
        return self.only_account_id is not None and account.pk != self.only_account_id

    @property
    def label(self) -> str:
        """How the audit log and the invitee's page name who acted."""
        if self.key is not None:
            return f"api-key:{self.key.prefix}"
        assert self.user is not None
        return f"person:{self.user.email}"

    def actor(self) -> dict[str, Any]:
        """Keyword arguments for ``events.record``: the person or the key."""
        return {"actor_user": self.user, "actor_api_key": self.key}

    def roles_in(self, account: Account) -> frozenset[str]:
        """The admin roles this principal holds in ``account`` (all of them for the operator)."""
        if self.is_operator:
            return ADMIN_ROLES
        if self.key is not None:
            if self.key.account_id != account.pk:
                return frozenset()
            return effective_admin_roles(self.key.roles or [])
        assert self.user is not None
        if not self.user.is_active or self._outside_scope(account):
            return frozenset()
        return effective_account_roles(self.user, account) & ADMIN_ROLES

    def is_member_of(self, account: Account) -> bool:
        """Whether the account is visible to this principal at all (else it answers as if absent)."""
        if self.is_operator:
            return True
        if self.key is not None:
            return self.key.account_id == account.pk
        assert self.user is not None
        if self._outside_scope(account):
            return False
        return Membership.objects.filter(user=self.user, account=account, is_active=True).exists()

    def require(self, account: Account, *roles: str) -> None:
        """The one standing check: raises :class:`NoStanding` or :class:`RoleRequired` (one of ``roles`` is enough)."""
        if not self.is_member_of(account):
            raise NoStanding(account.slug)
        if roles and not self.roles_in(account) & set(roles):
            raise RoleRequired(account, roles)

    def administered_accounts(self, *roles: str) -> Any:
        """Accounts where this principal holds one of ``roles`` (by default, any admin role)."""
        wanted = set(roles or ADMIN_ROLES)
        if self.is_operator:
            return Account.objects.all()
        if self.key is not None:
            holds = effective_admin_roles(self.key.roles or []) & wanted
            if not holds or self.key.account_id is None:
                return Account.objects.none()
            return Account.objects.filter(pk=self.key.account_id)
        assert self.user is not None
        ids = [a.pk for a in Account.objects.filter(memberships__user=self.user) if self.roles_in(a) & wanted]
        return Account.objects.filter(pk__in=ids)


# Session keys written by ``login.internal.sessions.start_session``.
SCOPE_ACCOUNT = "scope_account"
SCOPE_OPERATOR = "scope_operator"


def session_scope(*, method: str, account: Account | None, home: bool) -> dict[str, Any]:
    """What a new session may do, from how it was started.

    A password (with its second factor) or a recovery link is the person
    themselves: everything they hold, the operator's powers included. A login
    through their home account's identity provider is everything they hold in
    their accounts, but an account's provider never confers the operator's
    powers. A login through a provider that serves a domain *shared* with its
    account (a sandbox's, a partner's) speaks only for that account.
    """
    if method != "sso":
        return {SCOPE_ACCOUNT: None, SCOPE_OPERATOR: True}
    if home or account is None:
        return {SCOPE_ACCOUNT: None, SCOPE_OPERATOR: False}
    return {SCOPE_ACCOUNT: account.pk, SCOPE_OPERATOR: False}


def session_principal(user: User, session: Any) -> Principal:
    """The principal of a signed-in browser session, within the scope it was started with."""
    return Principal(
        user=user,
        only_account_id=session.get(SCOPE_ACCOUNT),
        # Sessions from before scopes existed were full sessions.
        operator_allowed=bool(session.get(SCOPE_OPERATOR, True)),
    )
