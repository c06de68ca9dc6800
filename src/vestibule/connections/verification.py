"""Domain verification: an account proves it controls a domain by publishing a DNS TXT record.

The account starts a challenge and publishes ``vestibule-domain-verification=<token>``
as a TXT record at ``_vestibule-challenge.<domain>``; a check asks DNS
(``VESTIBULE_DNS_RESOLVER`` when set, else the system's resolver) and, when one of
the TXT records is exactly that value, claims the domain through
:func:`~vestibule.connections.rules.claim_domain`, whose unique constraint
keeps one owner per domain in the whole deployment.

The token is random per challenge, so a record published for another account
or for an earlier challenge proves nothing here. A domain another account
already holds is refused only after the record has been proven: before that,
starting a challenge answers the same for every domain, so nobody can probe
which domains the deployment's tenants own.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

import dns.exception
import dns.rdatatype
import dns.resolver
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from vestibule.accounts.models import Account
from vestibule.connections.models import DomainClaim, DomainVerification
from vestibule.connections.public_mail_domains import is_public_mail_domain
from vestibule.connections.rules import ConnectionRuleError, claim_domain, refuse_public_mail
from vestibule.domain.emails import InvalidEmail, normalize_domain

__all__ = [
    "CHALLENGE_LABEL",
    "CheckOutcome",
    "TooSoon",
    "check",
    "claimable_domain",
    "effective_status",
    "record_name",
    "record_value",
    "start",
]

CHALLENGE_LABEL = "_vestibule-challenge"
VALUE_PREFIX = "vestibule-domain-verification="
LIFETIME = timedelta(days=7)
# One DNS query per challenge per interval: Vestibule must not become a
# DNS amplifier (or a way to hammer someone's name servers) for anyone with an API key.
CHECK_INTERVAL = timedelta(seconds=5)
MAX_PENDING = 20
# Seconds per attempt and for the whole lookup (UDP, then TCP when truncated).
DNS_TIMEOUT = 2.0
DNS_LIFETIME = 4.0


class TooSoon(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"checked moments ago; try again in {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class CheckOutcome:
    """The result of a check. ``reason`` is empty when the domain is now claimed."""

    verification: DomainVerification
    reason: str = ""
    detail: str = ""
    #: True when this check claimed the domain (not when it was verified before).
    claimed: bool = False

    @property
    def verified(self) -> bool:
        return not self.reason


class _LookupFailed(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def record_name(domain: str) -> str:
    return f"{CHALLENGE_LABEL}.{domain}"


def record_value(verification: DomainVerification) -> str:
    return f"{VALUE_PREFIX}{verification.token}"


def effective_status(verification: DomainVerification) -> str:
    """The stored status, with a pending challenge past its expiry shown as expired."""
    if verification.status == DomainVerification.Status.PENDING and verification.expires_at <= timezone.now():
        return DomainVerification.Status.EXPIRED
    return verification.status


def claimable_domain(value: str) -> str:
    """``value`` normalized, or a 422 when it is no domain or a public mail domain."""
    try:
        domain = normalize_domain(value)
    except InvalidEmail as exc:
        raise ConnectionRuleError(422, f"{value!r} is not a domain: {exc.reason}", "domain") from None
    refuse_public_mail(domain)
    return domain


def start(account: Account, value: str) -> tuple[DomainVerification, bool]:
    """Start (or return the running) challenge of ``account`` for a domain; True when a new token was made.

    A pending challenge that has not expired is returned unchanged, so asking
    twice does not invalidate a record the administrator already published.
    """
    domain = claimable_domain(value)
    if DomainClaim.objects.filter(domain=domain, account=account).exists():
        raise ConnectionRuleError(409, f"domain {domain} is already claimed by '{account.slug}'", "domain")
    now = timezone.now()
    with transaction.atomic():
        current = DomainVerification.objects.select_for_update().filter(account=account, domain=domain).first()
        if current is not None and effective_status(current) == DomainVerification.Status.PENDING:
            return current, False
        pending = DomainVerification.objects.filter(
            account=account, status=DomainVerification.Status.PENDING, expires_at__gt=now
        ).count()
        if pending >= MAX_PENDING:
            raise ConnectionRuleError(
                409,
                f"an account may have at most {MAX_PENDING} pending domain verifications; finish or cancel one first",
                "domain",
            )
        fresh = {
            "token": secrets.token_urlsafe(32),
            "status": DomainVerification.Status.PENDING,
            "created_at": now,
            "expires_at": now + LIFETIME,
            "verified_at": None,
            "last_checked_at": None,
            "last_error": "",
        }
        # An expired challenge, or a verified one whose claim was since released, starts over with a new token.
        verification, _ = DomainVerification.objects.update_or_create(account=account, domain=domain, defaults=fresh)
    return verification, True


def _resolver() -> dns.resolver.Resolver:
    configured: tuple[str, int] | None = getattr(settings, "VESTIBULE_DNS_RESOLVER", None)
    if configured:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [configured[0]]
        resolver.port = configured[1]
    else:
        try:
            resolver = dns.resolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            raise _LookupFailed(
                "dns_error", "this server has no DNS resolver configured; the operator sets VESTIBULE_DNS_RESOLVER"
            ) from None
    resolver.timeout = DNS_TIMEOUT
    resolver.lifetime = DNS_LIFETIME
    resolver.cache = None  # an administrator who just fixed the record wants it read now
    return resolver


def _txt_values(name: str) -> list[bytes]:
    """Every TXT record at ``name``, each record's strings joined (RFC 7208 §3.3 style)."""
    try:
        answer = _resolver().resolve(name, dns.rdatatype.TXT, search=False)
    except dns.resolver.NXDOMAIN:
        raise _LookupFailed("no_record", f"{name} does not exist in DNS (NXDOMAIN)") from None
    except dns.resolver.NoAnswer:
        raise _LookupFailed("no_record", f"{name} has no TXT record") from None
    except dns.resolver.LifetimeTimeout:
        raise _LookupFailed("dns_timeout", f"the DNS lookup of {name} timed out after {DNS_LIFETIME:g} s") from None
    except dns.resolver.NoNameservers:
        raise _LookupFailed(
            "dns_error", f"no DNS server answered the lookup of {name} (server failure or refusal)"
        ) from None
    except dns.exception.DNSException as exc:
        raise _LookupFailed("dns_error", f"the DNS lookup of {name} failed: {type(exc).__name__}") from None
    return [b"".join(rdata.strings) for rdata in answer if rdata.rdtype == dns.rdatatype.TXT]


def _matches(values: list[bytes], expected: bytes) -> bool:
    # Compare with every record, without stopping at the first hit.
    found = False
    for value in values:
        found |= hmac.compare_digest(value, expected)
    return found


def _fail(verification: DomainVerification, reason: str, detail: str) -> CheckOutcome:
    verification.last_error = detail[:500]
    DomainVerification.objects.filter(pk=verification.pk).update(last_error=verification.last_error)
    return CheckOutcome(verification, reason, detail)


def check(verification: DomainVerification) -> CheckOutcome:
    """Look the record up now; claim the domain when it is published. Raises :class:`TooSoon`."""
    if verification.status == DomainVerification.Status.VERIFIED:
        # Idempotent: checking a verified challenge again costs no DNS query.
        if DomainClaim.objects.filter(domain=verification.domain, account_id=verification.account_id).exists():
            return CheckOutcome(verification)
        return _fail(verification, "released", "the domain was released after this check; start a new challenge")
    now = timezone.now()
    if effective_status(verification) == DomainVerification.Status.EXPIRED:
        verification.status = DomainVerification.Status.EXPIRED
        DomainVerification.objects.filter(pk=verification.pk).update(status=verification.status)
        return _fail(verification, "expired", "this challenge expired; start a new one for a new token")
    # The conditional update is the rate limit: of concurrent checks, one wins the slot.
    taken = (
        DomainVerification.objects.filter(pk=verification.pk)
        .filter(Q(last_checked_at__isnull=True) | Q(last_checked_at__lte=now - CHECK_INTERVAL))
        .update(last_checked_at=now)
    )
    if not taken:
        last = verification.last_checked_at or now
        wait = CHECK_INTERVAL - (now - last)
        raise TooSoon(max(1, int(wait.total_seconds() + 0.999)))
    verification.last_checked_at = now
    domain = verification.domain
    if is_public_mail_domain(domain):  # the list may have grown since the challenge started
        return _fail(verification, "public_mail_domain", f"{domain} is a public mail domain; it cannot be claimed")
    name = record_name(domain)
    try:
        values = _txt_values(name)
    except _LookupFailed as exc:
        return _fail(verification, exc.reason, exc.detail + "; publish the record and check again")
    if not _matches(values, record_value(verification).encode()):
        return _fail(
            verification,
            "wrong_value",
            f"{name} has {len(values)} TXT record(s), none exactly {VALUE_PREFIX}<this challenge's token>; "
            "a record from an earlier challenge does not count",
        )
    try:
        with transaction.atomic():
            claim_domain(verification.account, domain)
            verification.status = DomainVerification.Status.VERIFIED
            verification.verified_at = now
            verification.last_error = ""
            verification.save(update_fields=["status", "verified_at", "last_error", "last_checked_at"])
    except ConnectionRuleError:
        # Proven control, yet another account holds the domain: only the operator can settle that.
        return _fail(
            verification,
            "unavailable",
            f"the record is published, but {domain} cannot be claimed by '{verification.account.slug}'; "
            "ask the operator",
        )
    return CheckOutcome(verification, claimed=True)
