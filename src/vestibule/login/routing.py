"""Email-first routing: which connections, if any, serve an address (DESIGN "Login" step 1)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import F

from vestibule.accounts.models import User
from vestibule.authority.break_glass import is_break_glass
from vestibule.connections.models import Connection
from vestibule.domain.emails import InvalidEmail, email_domain, email_key


@dataclass(frozen=True)
class Route:
    """``kind`` is "sso" (one connection), "choose" (several) or "password"."""

    kind: str
    connections: list[Connection] = field(default_factory=list)


def connections_for_domain(domain: str) -> list[Connection]:
    # One indexed query over ConnectionDomain.domain, whatever the number of claimed domains;
    # ``domain_owner_id`` (the account that owns the domain) comes along in the same join.
    return list(
        Connection.objects.filter(domains__domain=domain, enabled=True)
        .annotate(domain_owner_id=F("domains__claim__account_id"))
        .select_related("account")
        .order_by("account__slug", "name")
    )


def _ignores(connection: Connection, key: str) -> bool:
    return key in {e.lower() for e in connection.ignored_emails}


def route_email(email: str) -> Route:
    try:
        key = email_key(email)
        domain = email_domain(email)
    except InvalidEmail:
        return Route("password")
    serving = connections_for_domain(domain)
    # The domain owner's "ignored emails" keep those people on passwords for every
    # provider serving the domain: a partner's or sandbox's provider must not catch them.
    owner_ignores = any(c.account_id == c.domain_owner_id and _ignores(c, key) for c in serving)  # type: ignore[attr-defined]
    candidates = [
        c for c in serving
        if not _ignores(c, key) and not (owner_ignores and c.account_id != c.domain_owner_id)  # type: ignore[attr-defined]
    ]  # fmt: skip
    if not candidates:
        return Route("password")
    user = User.objects.filter(email_key=key).first()
    if user is not None and user.password_pinned:
        # An administrator of the person's home switched them to password
        # sign-in (seed 000): that explicit choice outranks their domain's route.
        return Route("password")
    if user is not None and is_break_glass(user):
        # Break-glass is the home account's decision, the same for every
        # connection that serves the domain (a sandbox's included).
        return Route("password")
    if len(candidates) == 1:
        return Route("sso", candidates)
    return Route("choose", candidates)
