"""The operator's screens: accounts, domain claims across the deployment, and the deployment checks.

Each action is the operator-only action of the admin API (``api/accounts.py``,
``api/domains.py``) with the same rules and the same audit events.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core import checks
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from vestibule.accounts.models import Account
from vestibule.audit.events import record
from vestibule.authority.principal import Principal
from vestibule.connections import rules
from vestibule.connections.models import DomainClaim
from vestibule.console.access import operator_page
from vestibule.console.forms.operator import AccountForm, ClaimForm
from vestibule.console.pages import console_page, refusal
from vestibule.domain.emails import InvalidEmail, normalize_domain
from vestibule.signin import revocation

LIST_LIMIT = 500


def _accounts_page(request: HttpRequest, acting: Principal, form: AccountForm, status: int = 200) -> HttpResponse:
    accounts = Account.objects.annotate(
        members=Count("memberships", distinct=True),
        connection_count=Count("connections", distinct=True),
        domain_count=Count("domain_claims", distinct=True),
    ).order_by("slug")[:LIST_LIMIT]
    return console_page(
        request, "operator/accounts.html", acting, status=status, title="Accounts", accounts=accounts, form=form
    )


@require_http_methods(["GET", "POST"])
@operator_page
def accounts(request: HttpRequest, acting: Principal) -> HttpResponse:
    if request.method == "GET":
        return _accounts_page(request, acting, AccountForm())
    form = AccountForm(request.POST)
    if not form.is_valid():
        return _accounts_page(request, acting, form, 400)
    try:
        with transaction.atomic():
            account = Account.objects.create(slug=form.cleaned_data["slug"], name=form.cleaned_data["name"])
    except IntegrityError:
        form.add_error("slug", f"The slug '{form.cleaned_data['slug']}' is taken; choose another.")
        return _accounts_page(request, acting, form, 409)
    record("account.created", account=account, **acting.actor())
    messages.success(request, f"The account {account.name} is created. Open its console to add people and connections.")
    return HttpResponseRedirect(reverse("console:operator-accounts"))


def _domains_page(request: HttpRequest, acting: Principal, form: ClaimForm, status: int = 200) -> HttpResponse:
    claims = list(
        DomainClaim.objects.select_related("account")
        .annotate(
            connection_count=Count("connection_domains", distinct=True), share_count=Count("shares", distinct=True)
        )
        .order_by("domain")[:LIST_LIMIT]
    )
    return console_page(
        request, "operator/domains.html", acting, status=status, title="Domain claims", claims=claims, form=form
    )


@require_http_methods(["GET", "POST"])
@operator_page
def domains(request: HttpRequest, acting: Principal) -> HttpResponse:
    """Every claim of the deployment; the operator claims a domain for an account directly (no DNS proof)."""
    if request.method == "GET":
        return _domains_page(request, acting, ClaimForm())
    form = ClaimForm(request.POST)
    if not form.is_valid():
        return _domains_page(request, acting, form, 400)
    account = Account.objects.filter(slug=form.cleaned_data["account"]).first()
    if account is None:
        form.add_error("account", f"There is no account '{form.cleaned_data['account']}'.")
        return _domains_page(request, acting, form, 422)
    try:
        domain = normalize_domain(form.cleaned_data["domain"])
    except InvalidEmail as exc:
        form.add_error("domain", f"This is not a domain: {exc.reason}.")
        return _domains_page(request, acting, form, 422)
    if DomainClaim.objects.filter(domain=domain, account=account).exists():
        form.add_error("domain", f"The domain {domain} is already claimed by '{account.slug}'.")
        return _domains_page(request, acting, form, 409)
    try:
        rules.claim_domain(account, domain)
    except rules.ConnectionRuleError as exc:
        form.add_error("domain", exc.detail[:1].upper() + exc.detail[1:] + ".")
        return _domains_page(request, acting, form, exc.status)
    record("domain.claimed", account=account, **acting.actor(), domain=domain)
    messages.success(request, f"{domain} is claimed for {account.name}.")
    return HttpResponseRedirect(reverse("console:operator-domains"))


@require_POST
@operator_page
def release_domain(request: HttpRequest, acting: Principal, domain: str) -> HttpResponse:
    """Releasing ends every hold on the domain: shares, and the links and sessions they left."""
    try:
        normalized = normalize_domain(domain[:253])
    except InvalidEmail:
        normalized = ""
    claim = DomainClaim.objects.filter(domain=normalized).select_related("account").first() if normalized else None
    if claim is None:
        return refusal(request, acting, 404, "No such domain claim", f"No account claims {domain[:253]}.")
    if claim.connection_domains.exists():
        messages.error(
            request,
            f"Connections of {claim.account.name} still serve {claim.domain}; remove the domain from them (or delete "
            "them) first. Nothing was released.",
        )
        return HttpResponseRedirect(reverse("console:operator-domains"))
    with transaction.atomic():
        ended: dict[str, Any] = revocation.release(claim)
    record("domain.released", account=claim.account, **acting.actor(), domain=claim.domain, **ended)
    messages.success(request, f"{claim.domain} is released from {claim.account.name}.")
    return HttpResponseRedirect(reverse("console:operator-domains"))


SEVERITIES = (
    (checks.CRITICAL, "Critical", "Critical"),
    (checks.ERROR, "Errors", "Error"),
    (checks.WARNING, "Warnings", "Warning"),
    (checks.INFO, "Information", "Information"),
    (checks.DEBUG, "Debug", "Debug"),
)


@require_GET
@operator_page
def deployment_checks(request: HttpRequest, acting: Principal) -> HttpResponse:
    """Vestibule's system checks (``vestibule check --deploy``), grouped by severity, run at each visit."""
    found = [
        m
        for m in checks.run_checks(tags=["vestibule"], include_deployment_checks=True)
        if str(m.id or "").startswith("vestibule.")
    ]
    groups = []
    for level, label, one in SEVERITIES:
        items = sorted((m for m in found if m.level == level), key=lambda m: (str(m.id), m.msg))
        if items:
            groups.append({"label": label, "one": one, "level": level, "items": items})
    return console_page(
        request, "operator/checks.html", acting, title="Deployment checks", groups=groups, total=len(found)
    )


urlpatterns = [
    path("operator/accounts/", accounts, name="operator-accounts"),
    path("operator/domains/", domains, name="operator-domains"),
    path("operator/domains/<str:domain>/release", release_domain, name="operator-domain-release"),
    path("operator/checks/", deployment_checks, name="operator-checks"),
]
