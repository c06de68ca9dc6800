"""Ending a hold on a domain: revoked shares and released domains.

A share lets the partner's connections serve the owner's domain; while it
lasts they link external IDs to the owner's people and start sessions for
them. Revocation must take all of that back at once, not leave it to expire:
the partner's provider would otherwise keep signing in as the owner's users
through the links it made.
"""

from __future__ import annotations

from collections.abc import Iterable

from vestibule.connections.models import Connection, ConnectionDomain, DomainClaim, DomainShare, ExternalIdentity
from vestibule.domain.emails import InvalidEmail, email_domain
from vestibule.login.sessions import end_sessions


def revoke_share(share: DomainShare) -> dict[str, int]:
    """Withdraw an offer, or end an active share with everything it left behind."""
    claim = share.claim
    ended = {"links_removed": 0, "sessions_ended": 0}
    if share.account_id is not None:
        connections = list(Connection.objects.filter(account_id=share.account_id))
        ConnectionDomain.objects.filter(claim=claim, connection__in=connections).delete()
        ended = _end_links(claim.domain, connections)
    share.delete()
    return ended


def release(claim: DomainClaim) -> dict[str, int]:
    """The operator takes the domain from its owner: every share and every link to its people goes."""
    ended = {"links_removed": 0, "sessions_ended": 0}
    for share in list(claim.shares.all()):
        more = revoke_share(share)
        ended = {k: ended[k] + more[k] for k in ended}
    more = _end_links(claim.domain, Connection.objects.filter(account_id=claim.account_id))
    claim.delete()
    return {k: ended[k] + more[k] for k in ended}


def _end_links(domain: str, connections: Iterable[Connection]) -> dict[str, int]:
    """Remove the links these connections hold for people of ``domain``, and end the sessions they started."""
    ids = [c.pk for c in connections]
    links = [
        link
        for link in ExternalIdentity.objects.filter(connection_id__in=ids).select_related("user")
        if _domain_of(link.user.email) == domain
    ]
    users = {link.user_id for link in links}
    ExternalIdentity.objects.filter(pk__in=[link.pk for link in links]).delete()
    sessions = end_sessions(user_ids=users, connection_ids=ids)
    return {"links_removed": len(links), "sessions_ended": sessions}


def _domain_of(email: str) -> str | None:
    try:
        return email_domain(email)
    except InvalidEmail:
        return None
