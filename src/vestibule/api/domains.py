"""REST endpoints: email domains an account claims, and the shares that let other accounts' connections serve them.

An account's administrator claims a domain by DNS verification (a TXT record,
see :mod:`vestibule.connections.verification`); the operator claims directly.
Owning a domain makes the account the home account of every address under it
(DESIGN "Identity ownership"), a power over people and not only over sign-in,
so starting, checking and cancelling a verification needs ``administrator``,
not ``sso-admin`` alone; an ``sso-admin`` may read them.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from ninja import Router, Status
from pydantic import Field

from vestibule.accounts.models import Account
from vestibule.api.errors import Conflict, NotFound, Unprocessable, applying_rules
from vestibule.api.schemas import StrictSchema
from vestibule.api.security import account_for, principal, require_operator, who
from vestibule.audit.events import record, record_many
from vestibule.audit.models import AuditEvent
from vestibule.authority.principal import ADMINISTRATOR, SSO_ADMIN
from vestibule.connections import rules, verification
from vestibule.connections.models import DomainClaim, DomainShare, DomainVerification
from vestibule.domain.emails import InvalidEmail, normalize_domain
from vestibule.login import ratelimit
from vestibule.signin import revocation

router = Router(tags=["domains"])


class DomainIn(StrictSchema):
    domain: str = Field(max_length=253)


class ShareIn(StrictSchema):
    account: str = Field(
        pattern=r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$", description="Slug of the account to offer the domain to"
    )


# Domains -------------------------------------------------------------------


def domain_out(claim: DomainClaim) -> dict[str, Any]:
    shares = list(claim.shares.order_by("target_slug"))
    return {
        "domain": claim.domain,
        "account": claim.account.slug,
        "shared_with": [s.target_slug for s in shares if s.status == DomainShare.Status.ACTIVE],
        "shares": [{"account": s.target_slug, "status": s.status} for s in shares],
        "connections": sorted(str(c) for c in claim.connection_domains.values_list("connection_id", flat=True)),
    }


def shared_out(claim: DomainClaim, viewer: Account) -> dict[str, Any]:
    """A domain as the account it is shared with sees it: its own connections, not the owner's nor other partners'."""
    mine = claim.connection_domains.filter(connection__account=viewer).values_list("connection_id", flat=True)
    return {"domain": claim.domain, "account": claim.account.slug, "connections": sorted(str(c) for c in mine)}


def offer_out(share: DomainShare) -> dict[str, Any]:
    return {
        "domain": share.claim.domain,
        "account": share.target_slug,
        "status": share.status,
        "offered_by": share.claim.account.name,
    }


def _domain(value: str) -> str:
    try:
        return normalize_domain(value)
    except InvalidEmail as exc:
        raise Unprocessable(f"{value!r} is not a domain: {exc.reason}", field="domain") from None


@router.get("/accounts/{slug}/domains")
def list_domains(request: HttpRequest, slug: str) -> dict[str, Any]:
    account = account_for(request, slug, SSO_ADMIN)
    owned = DomainClaim.objects.filter(account=account).select_related("account").order_by("domain")
    shared = (
        DomainClaim.objects.filter(shares__account=account, shares__status=DomainShare.Status.ACTIVE)
        .select_related("account")
        .order_by("domain")
    )
    return {
        "items": [domain_out(c) for c in owned],
        "shared_with_this_account": [shared_out(c, account) for c in shared],
    }


@router.post("/accounts/{slug}/domains", response={201: dict})
def claim_domain(request: HttpRequest, slug: str, payload: DomainIn) -> Status[Any]:
    require_operator(request)
    account = account_for(request, slug)
    domain = _domain(payload.domain)
    if DomainClaim.objects.filter(domain=domain, account=account).exists():
        raise Conflict(f"domain {domain} is already claimed by '{slug}'", field="domain")
    claim = applying_rules(lambda: rules.claim_domain(account, domain))
    record("domain.claimed", account=account, **who(request), domain=domain)
    return Status(201, domain_out(claim))


def _owned_claim(account: Account, domain: str) -> DomainClaim:
    claim = DomainClaim.objects.filter(domain=_domain(domain), account=account).select_related("account").first()
    if claim is None:
        raise NotFound(f"account '{account.slug}' does not own domain {domain}", field="domain")
    return claim


@router.delete("/accounts/{slug}/domains/{domain}", response={204: None})
def release_domain(request: HttpRequest, slug: str, domain: str) -> Status[None]:
    """Releasing a domain ends every hold on it: shares, and the links and sessions they left."""
    require_operator(request)
    account = account_for(request, slug)
    claim = _owned_claim(account, domain)
    if claim.connection_domains.exists():
        raise Conflict(f"connections still serve {claim.domain}; delete them first", field="domain")
    with transaction.atomic():
        ended: dict[str, Any] = revocation.release(claim)
    record("domain.released", account=account, **who(request), domain=claim.domain, **ended)
    return Status(204, None)


@router.post("/accounts/{slug}/domains/{domain}/shares", response={201: dict, 202: dict})
def share_domain(request: HttpRequest, slug: str, domain: str, payload: ShareIn) -> Status[Any]:
    """Offer a domain to another account (202), which accepts it; the operator grants directly (201).

    The offer is stored whether or not an account has that slug, and the
    answer is the same either way: offering reveals nothing about which
    accounts exist.
    """
    owner = account_for(request, slug, SSO_ADMIN)
    claim = _owned_claim(owner, domain)
    applying_rules(lambda: rules.check_offer(claim, payload.account))
    if principal(request).is_operator:
        target = Account.objects.filter(slug=payload.account).first()
        if target is None:
            raise Unprocessable(f"no account '{payload.account}'", field="account")
        applying_rules(lambda: rules.offer_domain(claim, target.slug, grant_to=target))
        record("domain.shared", account=owner, **who(request), domain=claim.domain, shared_with=target.slug)
        return Status(201, domain_out(claim))
    share = applying_rules(lambda: rules.offer_domain(claim, payload.account))
    record("domain.share_offered", account=owner, **who(request), domain=claim.domain, offered_to=payload.account)
    return Status(202, offer_out(share))


@router.delete("/accounts/{slug}/domains/{domain}/shares/{target}", response={204: None})
def revoke_share(request: HttpRequest, slug: str, domain: str, target: str) -> Status[None]:
    """Revoking a share (or withdrawing an offer) ends the partner's hold on the domain at once.

    Its connections stop serving the domain, the external-ID links they made
    for the owner's people are removed, and the sessions they started end.
    """
    owner = account_for(request, slug, SSO_ADMIN)
    claim = _owned_claim(owner, domain)
    share = DomainShare.objects.filter(claim=claim, target_slug=target).select_related("account").first()
    if share is None:
        raise NotFound(f"{claim.domain} is not shared with '{target}'", field="target")
    with transaction.atomic():
        ended: dict[str, Any] = revocation.revoke_share(share)
    record("domain.share_revoked", account=owner, **who(request), domain=claim.domain, shared_with=target, **ended)
    return Status(204, None)


@router.get("/accounts/{slug}/domain-offers")
def list_offers(request: HttpRequest, slug: str) -> list[dict[str, Any]]:
    """Domains other accounts offer to share with this one, waiting for its answer."""
    account = account_for(request, slug, SSO_ADMIN)
    offers = DomainShare.objects.filter(target_slug=account.slug, status=DomainShare.Status.OFFERED).select_related(
        "claim__account"
    )
    return [offer_out(o) for o in offers.order_by("claim__domain")]


def _offer(account: Account, domain: str) -> DomainShare:
    share = (
        DomainShare.objects.filter(
            claim__domain=_domain(domain), target_slug=account.slug, status=DomainShare.Status.OFFERED
        )
        .select_related("claim__account")
        .first()
    )
    if share is None:
        raise NotFound(f"no offer of {domain} to '{account.slug}'", field="domain")
    return share


@router.post("/accounts/{slug}/domain-offers/{domain}/accept")
def accept_offer(request: HttpRequest, slug: str, domain: str) -> dict[str, Any]:
    """Accept a shared domain: this account's connections may then serve it."""
    account = account_for(request, slug, SSO_ADMIN)
    share = _offer(account, domain)
    applying_rules(lambda: rules.accept_offer(account, share))
    record(
        "domain.share_accepted",
        account=account,
        **who(request),
        domain=share.claim.domain,
        owner=share.claim.account.slug,
    )
    record(
        "domain.share_accepted",
        account=share.claim.account,
        **who(request),
        domain=share.claim.domain,
        shared_with=account.slug,
    )
    return shared_out(share.claim, account)


@router.delete("/accounts/{slug}/domain-offers/{domain}", response={204: None})
def decline_offer(request: HttpRequest, slug: str, domain: str) -> Status[None]:
    account = account_for(request, slug, SSO_ADMIN)
    share = _offer(account, domain)
    share.delete()
    record(
        "domain.share_declined",
        account=share.claim.account,
        **who(request),
        domain=share.claim.domain,
        declined_by=account.slug,
    )
    return Status(204, None)


# Domain verification ---------------------------------------------------------

# Beside the per-challenge interval (verification.CHECK_INTERVAL): all of an
# account's challenges together cause at most this many DNS queries.
DNS_CHECKS_PER_ACCOUNT = ratelimit.Limit("domain_checks_per_account", 30, 60)
# How a failed check answers: the record is not there yet (409), or can never be (422).
_CHECK_FAILURE_STATUS = {"public_mail_domain": 422}


def verification_out(challenge: DomainVerification) -> dict[str, Any]:
    return {
        "domain": challenge.domain,
        "record_name": verification.record_name(challenge.domain),
        "record_type": "TXT",
        "record_value": verification.record_value(challenge),
        "status": verification.effective_status(challenge),
        "created_at": challenge.created_at,
        "expires_at": challenge.expires_at,
        "verified_at": challenge.verified_at,
        "last_checked_at": challenge.last_checked_at,
        "last_error": challenge.last_error,
    }


def _challenge(account: Account, domain: str) -> DomainVerification:
    challenge = (
        DomainVerification.objects.filter(account=account, domain=_domain(domain)).select_related("account").first()
    )
    if challenge is None:
        raise NotFound(f"account '{account.slug}' has no verification of {domain}", field="domain")
    return challenge


@router.get("/accounts/{slug}/domain-verifications")
def list_verifications(request: HttpRequest, slug: str) -> dict[str, Any]:
    account = account_for(request, slug, ADMINISTRATOR, SSO_ADMIN)
    challenges = DomainVerification.objects.filter(account=account).order_by("domain")
    return {"items": [verification_out(c) for c in challenges]}


@router.post("/accounts/{slug}/domain-verifications", response={200: dict, 201: dict})
def start_verification(request: HttpRequest, slug: str, payload: DomainIn) -> Status[Any]:
    """Start proving control of a domain: publish the returned TXT record, then check.

    A challenge still pending is returned as it is (200), so its record stays valid.
    """
    account = account_for(request, slug, ADMINISTRATOR)
    challenge, created = applying_rules(lambda: verification.start(account, payload.domain))
    if not created:
        return Status(200, verification_out(challenge))
    record(
        "domain.verification_started",
        account=account,
        **who(request),
        domain=challenge.domain,
        record_name=verification.record_name(challenge.domain),
        expires_at=challenge.expires_at.isoformat(),
    )
    return Status(201, verification_out(challenge))


@router.get("/accounts/{slug}/domain-verifications/{domain}")
def get_verification(request: HttpRequest, slug: str, domain: str) -> dict[str, Any]:
    account = account_for(request, slug, ADMINISTRATOR, SSO_ADMIN)
    return verification_out(_challenge(account, domain))


@router.post(
    "/accounts/{slug}/domain-verifications/{domain}/check", response={200: dict, 409: dict, 422: dict, 429: dict}
)
def check_verification(request: HttpRequest, response: HttpResponse, slug: str, domain: str) -> Status[Any]:
    """Look the TXT record up now. 200 with status verified: the domain is the account's.

    Otherwise the challenge stays pending and the answer names the reason
    (``no_record``, ``wrong_value``, ``dns_timeout``, ``dns_error``, ``expired``,
    ``unavailable``, ``released``); 429 with Retry-After when checked moments ago.
    """
    account = account_for(request, slug, ADMINISTRATOR)
    challenge = _challenge(account, domain)
    if ratelimit.hit(DNS_CHECKS_PER_ACCOUNT, account.slug) > DNS_CHECKS_PER_ACCOUNT.attempts:
        response["Retry-After"] = str(DNS_CHECKS_PER_ACCOUNT.window_seconds)
        return Status(
            429, {"detail": "too many domain checks in this account; try again in a minute", "field": "domain"}
        )
    try:
        outcome = verification.check(challenge)
    except verification.TooSoon as exc:
        response["Retry-After"] = str(exc.retry_after)
        return Status(429, {"detail": str(exc), "field": "domain"})
    body = verification_out(outcome.verification)
    if outcome.claimed:
        actor = who(request)
        record_many(
            [
                {
                    "code": "domain.verified",
                    "account": account,
                    **actor,
                    "domain": challenge.domain,
                    "method": "dns_txt",
                },
                {
                    "code": "domain.claimed",
                    "account": account,
                    **actor,
                    "domain": challenge.domain,
                    "method": "dns_txt",
                },
            ]
        )
    if outcome.verified:
        return Status(200, body)
    record(
        "domain.verification_failed",
        outcome=AuditEvent.Outcome.FAILURE,
        account=account,
        **who(request),
        domain=challenge.domain,
        reason=outcome.reason,
    )
    status = _CHECK_FAILURE_STATUS.get(outcome.reason, 409)
    return Status(status, {"detail": outcome.detail, "field": "domain", "reason": outcome.reason, "verification": body})


@router.delete("/accounts/{slug}/domain-verifications/{domain}", response={204: None})
def cancel_verification(request: HttpRequest, slug: str, domain: str) -> Status[None]:
    """Forget a challenge. A domain it already claimed stays claimed (releasing one is the operator's)."""
    account = account_for(request, slug, ADMINISTRATOR)
    challenge = _challenge(account, domain)
    challenge.delete()
    record("domain.verification_cancelled", account=account, **who(request), domain=challenge.domain)
    return Status(204, None)
