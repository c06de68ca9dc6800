"""Identity ownership: which account owns a person's identity.

A person's identity — email, name, credentials, login method, TOTP, external
user IDs, global active flag — is owned by their **home account**, the account
that owns their email domain, and by the operator. Every other account they
belong to owns only its membership. A person whose domain no account owns owns
their identity themselves: no account may change it.
"""

from __future__ import annotations

from vestibule.accounts.models import Account, User
from vestibule.connections.models import Connection, DomainClaim
from vestibule.domain.emails import InvalidEmail, email_domain


def home_account_of_email(email: str) -> Account | None:
    try:
        domain = email_domain(email)
    except InvalidEmail:
        return None
    claim = DomainClaim.objects.filter(domain=domain).select_related("account").first()
    return claim.account if claim is not None else None


def home_account(user: User) -> Account | None:
    return home_account_of_email(user.email)


def is_home(account: Account, user: User) -> bool:
    home = home_account(user)
    return home is not None and home.pk == account.pk


def is_home_connection(connection: Connection, user: User) -> bool:
    """A connection of the person's home account: the only kind that may change their credentials."""
    return is_home(connection.account, user)


def same_owner(email_a: str, email_b: str) -> bool:
    """Whether two addresses' domains are owned by the same account (an email change may not cross owners)."""
    a, b = home_account_of_email(email_a), home_account_of_email(email_b)
    return a is not None and b is not None and a.pk == b.pk
