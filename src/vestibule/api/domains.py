"""REST endpoints: email domains an account claims, and the shares that let other accounts' connections serve them."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from ninja import Router, Status
from pydantic import Field

from vestibule.accounts.models import Account
from vestibule.api.errors import Conflict, NotFound, Unprocessable, applying_rules
from vestibule.api.schemas import StrictSchema
from vestibule.api.security import account_for, principal, require_operator, who
from vestibule.audit.events import record
from vestibule.authority.principal import SSO_ADMIN
from vestibule.connections import rules
from vestibule.connections.models import DomainClaim, DomainShare
from vestibule.domain.emails import InvalidEmail, normalize_domain
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
    if payload.account == owner.slug:
        raise Unprocessable("an account cannot share a domain with itself", field="account")
    if DomainShare.objects.filter(claim=claim, target_slug=payload.account).exists():
        raise Conflict(f"{claim.domain} is already offered to or shared with '{payload.account}'", field="account")
    if principal(request).is_operator:
        target = Account.objects.filter(slug=payload.account).first()
        if target is None:
            raise Unprocessable(f"no account '{payload.account}'", field="account")
        with transaction.atomic():
            DomainShare.objects.create(
                claim=claim,
                target_slug=target.slug,
                account=target,
                status=DomainShare.Status.ACTIVE,
                accepted_at=timezone.now(),
            )
        record("domain.shared", account=owner, **who(request), domain=claim.domain, shared_with=target.slug)
        return Status(201, domain_out(claim))
    with transaction.atomic():
        share = DomainShare.objects.create(claim=claim, target_slug=payload.account)
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
    updated = DomainShare.objects.filter(pk=share.pk, status=DomainShare.Status.OFFERED).update(
        account=account, status=DomainShare.Status.ACTIVE, accepted_at=timezone.now()
    )
    if updated != 1:
        raise Conflict("the offer changed meanwhile; list the offers again", field="domain")
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
