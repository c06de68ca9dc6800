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

# The owner an earlier step of this request found, kept with the address it was found for.
_HOME = "_vestibule_home_account"


def home_account_of_email(email: str) -> Account | None:
    try:
        domain = email_domain(email)
    except InvalidEmail:
        return None
    claim = DomainClaim.objects.filter(domain=domain).select_related("account").first()
    return claim.account if claim is not None else None


def home_account(user: User) -> Account | None:
    return home_account_of_email(user.email)


def remember_home(user: User, account_id: int | None) -> None:
    """Note on this ``user`` object who owns its current address, already known to the caller (the login pipeline)."""
    user.__dict__[_HOME] = (user.email, account_id)


def home_account_id(user: User) -> int | None:
    remembered = user.__dict__.get(_HOME)
    if remembered is not None and remembered[0] == user.email:
        account_id: int | None = remembered[1]
        return account_id
    home = home_account(user)
    return home.pk if home is not None else None


def is_home(account: Account, user: User) -> bool:
    home = home_account_id(user)
    return home is not None and home == account.pk


def is_home_connection(connection: Connection, user: User) -> bool:
    """A connection of the person's home account: the only kind that may change their credentials."""
    return is_home(connection.account, user)


def same_owner(email_a: str, email_b: str) -> bool:
    """Whether two addresses' domains are owned by the same account (an email change may not cross owners)."""
    a, b = home_account_of_email(email_a), home_account_of_email(email_b)
    return a is not None and b is not None and a.pk == b.pk
