"""Email-first routing: which connections, if any, serve an address (DESIGN "Login" step 1)."""

from __future__ import annotations

from dataclasses import dataclass, field

from vestibule.accounts.models import User
from vestibule.connections.models import Connection
from vestibule.domain.emails import InvalidEmail, email_domain, email_key


@dataclass(frozen=True)
class Route:
    """``kind`` is "sso" (one connection), "choose" (several) or "password"."""

    kind: str
    connections: list[Connection] = field(default_factory=list)


def connections_for_domain(domain: str) -> list[Connection]:
    # One indexed query over ConnectionDomain.domain, whatever the number of claimed domains.
    return list(
        Connection.objects.filter(domains__domain=domain, enabled=True)
        .select_related("account")
        .order_by("account__slug", "name")
    )


def is_break_glass(user: User, connection: Connection) -> bool:
    """A password user holding sso-admin in every account this connection reaches (seed 003)."""
    from vestibule.connections.internal.reachkit import accounts_reached, holds_sso_admin_everywhere

    return user.login_method == User.LoginMethod.PASSWORD and holds_sso_admin_everywhere(
        user, accounts_reached(connection)
    )


def route_email(email: str) -> Route:
    try:
        key = email_key(email)
        domain = email_domain(email)
    except InvalidEmail:
        return Route("password")
    candidates = [c for c in connections_for_domain(domain) if key not in {e.lower() for e in c.ignored_emails}]
    if not candidates:
        return Route("password")
    user = User.objects.filter(email_key=key).first()
    if user is not None and user.login_method == User.LoginMethod.PASSWORD:
        candidates = [c for c in candidates if not is_break_glass(user, c)]
        if not candidates:
            return Route("password")
    if len(candidates) == 1:
        return Route("sso", candidates)
    return Route("choose", candidates)
