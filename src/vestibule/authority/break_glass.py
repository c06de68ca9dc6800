"""Who keeps a password: break-glass administrators (seed 003), judged in their home account."""

from __future__ import annotations

from collections.abc import Iterable

from vestibule.accounts.models import Account, User
from vestibule.accounts.roles import effective_account_roles
from vestibule.authority.ownership import home_account
from vestibule.domain.plan import BREAK_GLASS_ROLE

__all__ = ["BREAK_GLASS_ROLE", "holds_sso_admin_everywhere", "is_break_glass"]


def holds_sso_admin_everywhere(user: User, accounts: Iterable[Account]) -> bool:
    accounts = list(accounts)
    return bool(accounts) and all(BREAK_GLASS_ROLE in effective_account_roles(user, a) for a in accounts)


def is_break_glass(user: User) -> bool:
    """A password user holding sso-admin in their home account (or the operator) keeps password sign-in.

    Judged in the home account alone: a sandbox or partner account that shares
    the domain cannot make (or unmake) production's break-glass admin.
    """
    if user.login_method != User.LoginMethod.PASSWORD:
        return False
    if user.is_operator:
        # No account's identity provider may take the operator's password away.
        return True
    home = home_account(user)
    return home is not None and holds_sso_admin_everywhere(user, [home])
