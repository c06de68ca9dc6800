"""Which accounts a connection lets its users into, and who administers them."""

from __future__ import annotations

from collections.abc import Iterable

from vestibule.accounts.internal.rolekit import effective_account_roles
from vestibule.accounts.models import Account, User
from vestibule.connections.models import Connection


def accounts_reached(connection: Connection) -> list[Account]:
    """A connection signs users into its own account only.

    Linked projects are projects of that account, so the account is the whole
    reach today; this function is the one place to widen it.
    """
    return [connection.account]


def holds_sso_admin_everywhere(user: User, accounts: Iterable[Account]) -> bool:
    accounts = list(accounts)
    return bool(accounts) and all("sso-admin" in effective_account_roles(user, a) for a in accounts)
