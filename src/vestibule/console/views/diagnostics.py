"""Diagnostics of an account: login traces, the audit log, API keys, domains with their shares and verifications.

Each action checks the role the admin API checks for the same action
(``api/audit.py``, ``api/accounts.py``, ``api/domains.py``) and writes the
same audit event, so the console is no back door around the API's rules.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import NoReverseMatch, path, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from vestibule.accounts.models import Account
from vestibule.audit import api_keys as api_keys_service
from vestibule.audit import queries
from vestibule.audit.events import record, record_many
from vestibule.audit.models import AuditEvent, LoginTrace
from vestibule.audit.traces import FIX_SIDES, fix_for
from vestibule.authority.principal import ADMIN_ROLES, ADMINISTRATOR, SSO_ADMIN, Principal
from vestibule.connections import rules, verification
from vestibule.connections.models import Connection, DomainClaim, DomainShare, DomainVerification
from vestibule.connections.rules import ConnectionRuleError
from vestibule.console.access import account_page
from vestibule.console.forms.diagnostics import (
    SLUG,
    ApiKeyForm,
    AuditFilterForm,
    DomainForm,
    ScimTokenForm,
    ShareForm,
    TraceFilterForm,
)
from vestibule.console.pages import console_page, refusal
from vestibule.directory import tokens as scim_tokens
from vestibule.domain.emails import InvalidEmail, normalize_domain
from vestibule.login import ratelimit
from vestibule.signin import revocation

PAGE_SIZE = 50
# What a key's or token's prefix can be; anything else (a NUL, which PostgreSQL refuses in text) finds nothing.
_PREFIX = re.compile(r"[A-Za-z0-9_-]{1,16}")
# As the API's DNS_CHECKS_PER_ACCOUNT: the console shares the account's budget of DNS queries.
DNS_CHECKS_PER_ACCOUNT = ratelimit.Limit("domain_checks_per_account", 30, 60)


def _page(request: HttpRequest, rows: QuerySet[Any]) -> Any:
    # get_page turns a missing, non-numeric or out-of-range page into a valid one.
    return Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page", "")[:10])


def _query_without_page(request: HttpRequest) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


# Login traces -------------------------------------------------------------------


def _connection_names(account: Account) -> dict[str, str]:
    return {str(c.pk): c.name for c in Connection.objects.filter(account=account).order_by("name")[:500]}


@require_GET
@account_page(SSO_ADMIN)
def traces(request: HttpRequest, acting: Principal, account: Account) -> HttpResponse:
    names = _connection_names(account)
    form = TraceFilterForm(request.GET or None, connections=list(names.items()))
    status = 200
    rows = queries.traces(account, queries.TraceFilter())
    if form.is_bound:
        if form.is_valid():
            rows = queries.traces(account, form.filters())
        else:
            status = 400
            rows = LoginTrace.objects.none()
    page = _page(request, rows)
    for trace in page.object_list:
        trace.connection_name = names.get(str(trace.connection_id), "")
    return console_page(
        request,
        "diagnostics/traces.html",
        acting,
        account=account,
        status=status,
        title="Login traces",
        form=form,
        page=page,
        query=_query_without_page(request),
    )


def _fix_link(account: Account, trace: LoginTrace, page: str) -> str:
    """The console page where the fix is made; empty while that page is not built in this deployment."""
    try:
        url = reverse(page, args=[account.slug])
    except NoReverseMatch:
        return ""
    if page == "console:connections" and trace.connection_id:
        url += f"#connection-{trace.connection_id}"
    return url


_FIX_PAGES = {
    "console:connections": "the connection's settings",
    "console:mapping-roles": "Mapping roles",
    "console:users": "Users",
    "console:pending": "Pending approval",
}


def _steps(account: Account, trace: LoginTrace) -> list[dict[str, Any]]:
    """The trace's steps as the detail page shows them: a failed one with its fix and where to make it."""
    shown = []
    for raw in trace.steps if isinstance(trace.steps, list) else []:
        if not isinstance(raw, dict):
            continue
        step: dict[str, Any] = {
            k: raw.get(k) for k in ("step", "status", "code", "message", "expected", "received", "detail_code")
        }
        step["info"] = {
            k: v
            for k, v in raw.items()
            if k not in step and k not in ("fix_in",) and isinstance(v, str | int | float | bool)
        }
        fix_in = str(raw.get("fix_in") or "")
        step["fix_side"] = FIX_SIDES.get(fix_in, "")
        fix = fix_for(str(raw.get("code") or "")) if raw.get("status") == "failed" else None
        if fix is not None:
            step["fix_hint"] = fix.hint
            step["fix_url"] = _fix_link(account, trace, fix.page)
            step["fix_page"] = _FIX_PAGES.get(fix.page, "")
            # The connection's card holds what the other pages do not (auto-provisioning, domains, settings).
            if fix.page != "console:connections" and trace.connection_id:
                step["connection_url"] = _fix_link(account, trace, "console:connections")
        shown.append(step)
    return shown


@require_GET
@account_page(SSO_ADMIN)
def trace_detail(request: HttpRequest, acting: Principal, account: Account, trace_id: str) -> HttpResponse:
    trace = queries.trace_of(account, trace_id[:64])
    if trace is None:
        return refusal(
            request,
            acting,
            404,
            "No such login trace",
            "This account has no login trace with that reference. Traces are kept for a limited time; "
            "search the list of login traces.",
            account=account,
        )
    connection = (
        Connection.objects.filter(account=account, pk=trace.connection_id).first() if trace.connection_id else None
    )
    return console_page(
        request,
        "diagnostics/trace.html",
        acting,
        account=account,
        title="Login trace",
        trace=trace,
        connection=connection,
        connection_url=_fix_link(account, trace, "console:connections") if connection else "",
        steps=_steps(account, trace),
    )


# Audit log ----------------------------------------------------------------------


@require_GET
@account_page(*sorted(ADMIN_ROLES))
def audit(request: HttpRequest, acting: Principal, account: Account) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    status = 200
    rows: QuerySet[AuditEvent] = queries.events(account, queries.EventFilter())
    if form.is_bound:
        if form.is_valid():
            rows = queries.events(account, form.filters())
        else:
            status = 400
            rows = AuditEvent.objects.none()
    page = _page(request, rows)
    for event in page.object_list:
        event.detail_text = (
            json.dumps(event.detail, indent=2, sort_keys=True, ensure_ascii=False) if event.detail else ""
        )
        event.actor_label = (
            event.actor_user.email
            if event.actor_user
            else (f"API key {event.actor_api_key.prefix}" if event.actor_api_key else "")
        )
    return console_page(
        request,
        "diagnostics/audit.html",
        acting,
        account=account,
        status=status,
        title="Audit log",
        form=form,
        can_open_traces=SSO_ADMIN in acting.roles_in(account),
        page=page,
        query=_query_without_page(request),
    )


# API keys ------------------------------------------------------------------------


def _keys_page(
    request: HttpRequest, acting: Principal, account: Account, form: ApiKeyForm, status: int = 200
) -> HttpResponse:
    keys = api_keys_service.active_keys(account)[:500]
    return console_page(
        request,
        "diagnostics/api_keys.html",
        acting,
        account=account,
        status=status,
        title="API keys",
        form=form,
        keys=keys,
    )


@require_http_methods(["GET", "POST"])
@never_cache
@account_page(ADMINISTRATOR)
def api_keys(request: HttpRequest, acting: Principal, account: Account) -> HttpResponse:
    """The account's keys; a POST creates one and shows its secret this once (the page is never cached)."""
    if request.method == "GET":
        return _keys_page(request, acting, account, ApiKeyForm(initial={"roles": [ADMINISTRATOR]}))
    form = ApiKeyForm(request.POST)
    if not form.is_valid():
        return _keys_page(request, acting, account, form, 400)
    try:
        key, secret = api_keys_service.issue(
            acting, account, name=form.cleaned_data["name"], roles=list(form.cleaned_data["roles"])
        )
    except api_keys_service.RolesBeyondCreator as exc:
        form.add_error("roles", f"A key cannot hold roles you lack: {', '.join(sorted(exc.roles))}.")
        return _keys_page(request, acting, account, form, 403)
    return console_page(
        request,
        "diagnostics/api_key_created.html",
        acting,
        account=account,
        title="API key created",
        key=key,
        secret=secret,
    )


@require_POST
@account_page(ADMINISTRATOR)
def revoke_key(request: HttpRequest, acting: Principal, account: Account, prefix: str) -> HttpResponse:
    key = api_keys_service.active_keys(account).filter(prefix=prefix).first() if _PREFIX.fullmatch(prefix) else None
    if key is None or not api_keys_service.revoke(acting, account, key.prefix):
        return refusal(
            request,
            acting,
            404,
            "No such API key",
            "This account has no active API key with that prefix; it may have been revoked already.",
            account=account,
        )
    messages.success(request, f"The API key {key.name or key.prefix} is revoked. Requests using it are refused now.")
    return HttpResponseRedirect(reverse("console:api-keys", args=[account.slug]))


# Domains, shares and verifications -------------------------------------------------


def _domains_url(account: Account) -> str:
    return reverse("console:domains", args=[account.slug])


def _domains_page(
    request: HttpRequest,
    acting: Principal,
    account: Account,
    *,
    status: int = 200,
    share_form: ShareForm | None = None,
    share_domain: str = "",
    verify_form: DomainForm | None = None,
) -> HttpResponse:
    held = acting.roles_in(account)
    sso = SSO_ADMIN in held
    owned: list[dict[str, Any]] = []
    shared: list[DomainClaim] = []
    offers: list[DomainShare] = []
    if sso:
        claims = (
            DomainClaim.objects.filter(account=account)
            .prefetch_related("shares", "connection_domains")
            .order_by("domain")[:200]
        )
        owned = [
            {
                "claim": claim,
                "shares": sorted(claim.shares.all(), key=lambda s: s.target_slug),
                "in_use": bool(claim.connection_domains.all()),
                "form": share_form
                if share_form is not None and share_domain == claim.domain
                else ShareForm(prefix=f"share-{claim.pk}"),
            }
            for claim in claims
        ]
        shared = list(
            DomainClaim.objects.filter(shares__account=account, shares__status=DomainShare.Status.ACTIVE)
            .select_related("account")
            .order_by("domain")[:200]
        )
        offers = list(
            DomainShare.objects.filter(target_slug=account.slug, status=DomainShare.Status.OFFERED)
            .select_related("claim__account")
            .order_by("claim__domain")[:200]
        )
    challenges = [
        {
            "c": c,
            "record_name": verification.record_name(c.domain),
            "record_value": verification.record_value(c),
            "status": verification.effective_status(c),
        }
        for c in DomainVerification.objects.filter(account=account).order_by("domain")[:200]
    ]
    return console_page(
        request,
        "diagnostics/domains.html",
        acting,
        account=account,
        status=status,
        title="Domains",
        sso=sso,
        administrator=ADMINISTRATOR in held,
        owned=owned,
        shared=shared,
        offers=offers,
        challenges=challenges,
        verify_form=verify_form or DomainForm(),
    )


def _domain_or_none(value: str) -> str | None:
    try:
        return normalize_domain(value[:253])
    except InvalidEmail:
        return None


def _not_found(request: HttpRequest, acting: Principal, account: Account, what: str) -> HttpResponse:
    return refusal(
        request, acting, 404, "Not found", f"{what} Go back to the domains page and try again.", account=account
    )


@require_GET
@account_page(ADMINISTRATOR, SSO_ADMIN)
def domains(request: HttpRequest, acting: Principal, account: Account) -> HttpResponse:
    return _domains_page(request, acting, account)


@require_POST
@account_page(SSO_ADMIN)
def share_domain(request: HttpRequest, acting: Principal, account: Account, domain: str) -> HttpResponse:
    """Offer a domain to another account; the offer answers the same whether or not that account exists."""
    claim = rules.owned_claim(account, domain)
    if claim is None:
        return _not_found(request, acting, account, f"This account does not own the domain {domain[:253]}.")
    form = ShareForm(request.POST, prefix=f"share-{claim.pk}")
    if not form.is_valid():
        return _domains_page(request, acting, account, status=400, share_form=form, share_domain=claim.domain)
    target = form.cleaned_data["account"]
    try:
        rules.check_offer(claim, target)
        # As the API: the operator grants a share at once, to an account that exists.
        partner = Account.objects.filter(slug=target).first() if acting.is_operator else None
        if acting.is_operator and partner is None:
            raise ConnectionRuleError(422, f"there is no account '{target}'", "account")
        rules.offer_domain(claim, target, grant_to=partner)
    except ConnectionRuleError as exc:
        form.add_error("account", exc.detail[:1].upper() + exc.detail[1:] + ".")
        return _domains_page(request, acting, account, status=exc.status, share_form=form, share_domain=claim.domain)
    if partner is not None:
        record("domain.shared", account=account, **acting.actor(), domain=claim.domain, shared_with=target)
        messages.success(request, f"{claim.domain} is shared with '{target}'.")
    else:
        record("domain.share_offered", account=account, **acting.actor(), domain=claim.domain, offered_to=target)
        messages.success(
            request, f"{claim.domain} is offered to '{target}'. It can serve the domain once that account accepts."
        )
    return HttpResponseRedirect(_domains_url(account))


@require_POST
@account_page(SSO_ADMIN)
def revoke_share(request: HttpRequest, acting: Principal, account: Account, domain: str, target: str) -> HttpResponse:
    claim = rules.owned_claim(account, domain)
    share = (
        DomainShare.objects.filter(claim=claim, target_slug=target).first()
        if claim and SLUG.fullmatch(target)
        else None
    )
    if claim is None or share is None:
        return _not_found(request, acting, account, f"The domain {domain[:253]} is not shared with '{target[:50]}'.")
    with transaction.atomic():
        ended: dict[str, Any] = revocation.revoke_share(share)
    record("domain.share_revoked", account=account, **acting.actor(), domain=claim.domain, shared_with=target, **ended)
    messages.success(
        request,
        f"{claim.domain} is no longer shared with '{target}': {ended['links_removed']} links removed, "
        f"{ended['sessions_ended']} sessions ended.",
    )
    return HttpResponseRedirect(_domains_url(account))


@require_POST
@account_page(SSO_ADMIN)
def accept_offer(request: HttpRequest, acting: Principal, account: Account, domain: str) -> HttpResponse:
    share = rules.pending_offer(account, domain)
    if share is None:
        return _not_found(request, acting, account, f"There is no offer of {domain[:253]} to this account.")
    try:
        rules.accept_offer(account, share)
    except ConnectionRuleError:
        messages.error(request, "The offer changed meanwhile; nothing was accepted. Read the offers again.")
        return HttpResponseRedirect(_domains_url(account))
    actor = acting.actor()
    record("domain.share_accepted", account=account, **actor, domain=share.claim.domain, owner=share.claim.account.slug)
    record(
        "domain.share_accepted",
        account=share.claim.account,
        **actor,
        domain=share.claim.domain,
        shared_with=account.slug,
    )
    messages.success(request, f"{share.claim.domain} is shared with this account: its connections may serve it now.")
    return HttpResponseRedirect(_domains_url(account))


@require_POST
@account_page(SSO_ADMIN)
def decline_offer(request: HttpRequest, acting: Principal, account: Account, domain: str) -> HttpResponse:
    share = rules.pending_offer(account, domain)
    if share is None:
        return _not_found(request, acting, account, f"There is no offer of {domain[:253]} to this account.")
    share.delete()
    record(
        "domain.share_declined",
        account=share.claim.account,
        **acting.actor(),
        domain=share.claim.domain,
        declined_by=account.slug,
    )
    messages.success(request, f"The offer of {share.claim.domain} is declined.")
    return HttpResponseRedirect(_domains_url(account))


@require_POST
@account_page(ADMINISTRATOR)
def start_verification(request: HttpRequest, acting: Principal, account: Account) -> HttpResponse:
    form = DomainForm(request.POST)
    if not form.is_valid():
        return _domains_page(request, acting, account, status=400, verify_form=form)
    try:
        challenge, created = verification.start(account, form.cleaned_data["domain"])
    except ConnectionRuleError as exc:
        form.add_error("domain", exc.detail)
        return _domains_page(request, acting, account, status=exc.status, verify_form=form)
    if created:
        record(
            "domain.verification_started",
            account=account,
            **acting.actor(),
            domain=challenge.domain,
            record_name=verification.record_name(challenge.domain),
            expires_at=challenge.expires_at.isoformat(),
        )
    messages.success(
        request,
        f"Publish the TXT record below for {challenge.domain}, then press “Check now”."
        if created
        else f"The verification of {challenge.domain} is already running; its record is unchanged.",
    )
    return HttpResponseRedirect(f"{_domains_url(account)}#verification-{challenge.pk}")


def _challenge(account: Account, domain: str) -> DomainVerification | None:
    normalized = _domain_or_none(domain)
    if normalized is None:
        return None
    return DomainVerification.objects.filter(account=account, domain=normalized).select_related("account").first()


@require_POST
@account_page(ADMINISTRATOR)
def check_verification(request: HttpRequest, acting: Principal, account: Account, domain: str) -> HttpResponse:
    """Look the TXT record up now; the result is told on the domains page."""
    challenge = _challenge(account, domain)
    if challenge is None:
        return _not_found(request, acting, account, f"This account has no verification of {domain[:253]}.")
    back = HttpResponseRedirect(f"{_domains_url(account)}#verification-{challenge.pk}")
    if ratelimit.hit(DNS_CHECKS_PER_ACCOUNT, account.slug) > DNS_CHECKS_PER_ACCOUNT.attempts:
        messages.error(request, "Too many domain checks in this account; try again in a minute.")
        return back
    try:
        outcome = verification.check(challenge)
    except verification.TooSoon as exc:
        messages.error(request, f"{challenge.domain} was checked moments ago; try again in {exc.retry_after} seconds.")
        return back
    actor = acting.actor()
    if outcome.claimed:
        record_many(
            [
                {"code": code, "account": account, **actor, "domain": challenge.domain, "method": "dns_txt"}
                for code in ("domain.verified", "domain.claimed")
            ]
        )
    if outcome.verified:
        messages.success(request, f"{challenge.domain} is verified: this account now owns the domain.")
        return back
    record(
        "domain.verification_failed",
        outcome=AuditEvent.Outcome.FAILURE,
        account=account,
        **actor,
        domain=challenge.domain,
        reason=outcome.reason,
    )
    messages.error(request, f"{challenge.domain} is not verified yet ({outcome.reason}): {outcome.detail}")
    return back


@require_POST
@account_page(ADMINISTRATOR)
def cancel_verification(request: HttpRequest, acting: Principal, account: Account, domain: str) -> HttpResponse:
    challenge = _challenge(account, domain)
    if challenge is None:
        return _not_found(request, acting, account, f"This account has no verification of {domain[:253]}.")
    challenge.delete()
    record("domain.verification_cancelled", account=account, **acting.actor(), domain=challenge.domain)
    messages.success(request, f"The verification of {challenge.domain} is cancelled.")
    return HttpResponseRedirect(_domains_url(account))


# SCIM tokens ---------------------------------------------------------------------------


def _scim_page(
    request: HttpRequest, acting: Principal, account: Account, form: ScimTokenForm | None = None, status: int = 200
) -> HttpResponse:
    names = _connection_names(account)
    return console_page(
        request,
        "diagnostics/scim_tokens.html",
        acting,
        account=account,
        status=status,
        title="Directory sync (SCIM)",
        form=form or ScimTokenForm(connections=list(names.items())),
        tokens=[
            {"token": t, "connection": names.get(str(t.connection_id), "")} for t in scim_tokens.live_tokens(account)
        ],
        base_url=scim_tokens.base_url(),
    )


@require_http_methods(["GET", "POST"])
@never_cache
@account_page(ADMINISTRATOR)
def scim_token_list(request: HttpRequest, acting: Principal, account: Account) -> HttpResponse:
    """The account's SCIM tokens; a POST creates one and shows it this once, as api/directory.py does."""
    if request.method == "GET":
        return _scim_page(request, acting, account)
    form = ScimTokenForm(request.POST, connections=list(_connection_names(account).items()))
    if not form.is_valid():
        return _scim_page(request, acting, account, form, 400)
    try:
        token, body = scim_tokens.issue(
            account,
            actor=acting.actor(),
            name=form.cleaned_data["name"],
            connection_id=form.cleaned_data["connection"] or None,
            created_by=acting.label,
        )
    except ConnectionRuleError as exc:
        form.add_error("connection", exc.detail)
        return _scim_page(request, acting, account, form, exc.status)
    return console_page(
        request,
        "diagnostics/scim_token_created.html",
        acting,
        account=account,
        title="SCIM token created",
        token=token,
        secret=body["token"],
        base_url=body["base_url"],
    )


@require_POST
@account_page(ADMINISTRATOR)
def revoke_scim_token(request: HttpRequest, acting: Principal, account: Account, prefix: str) -> HttpResponse:
    if not _PREFIX.fullmatch(prefix) or not scim_tokens.revoke(account, prefix, actor=acting.actor()):
        return refusal(
            request,
            acting,
            404,
            "No such SCIM token",
            "This account has no live SCIM token with that prefix; it may have been revoked already.",
            account=account,
        )
    messages.success(
        request, f"The SCIM token {prefix[:16]} is revoked: the directory's next request with it is refused."
    )
    return HttpResponseRedirect(reverse("console:scim-tokens", args=[account.slug]))


urlpatterns = [
    path("a/<str:slug>/traces/", traces, name="traces"),
    path("a/<str:slug>/traces/<str:trace_id>/", trace_detail, name="trace"),
    path("a/<str:slug>/audit/", audit, name="audit"),
    path("a/<str:slug>/api-keys/", api_keys, name="api-keys"),
    path("a/<str:slug>/api-keys/<str:prefix>/revoke", revoke_key, name="api-key-revoke"),
    path("a/<str:slug>/scim-tokens/", scim_token_list, name="scim-tokens"),
    path("a/<str:slug>/scim-tokens/<str:prefix>/revoke", revoke_scim_token, name="scim-token-revoke"),
    path("a/<str:slug>/domains/", domains, name="domains"),
    path("a/<str:slug>/domains/verifications", start_verification, name="domain-verify"),
    path("a/<str:slug>/domains/verifications/<str:domain>/check", check_verification, name="domain-check"),
    path("a/<str:slug>/domains/verifications/<str:domain>/cancel", cancel_verification, name="domain-verify-cancel"),
    path("a/<str:slug>/domains/offers/<str:domain>/accept", accept_offer, name="domain-offer-accept"),
    path("a/<str:slug>/domains/offers/<str:domain>/decline", decline_offer, name="domain-offer-decline"),
    path("a/<str:slug>/domains/<str:domain>/shares", share_domain, name="domain-share"),
    path("a/<str:slug>/domains/<str:domain>/shares/<str:target>/revoke", revoke_share, name="domain-share-revoke"),
]
