"""The console's front door: where a signed-in person lands, and each account's overview."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.http import require_GET

from vestibule.accounts.models import Account
from vestibule.authority.principal import Principal
from vestibule.console.access import SLUG, account_page, signed_in_page
from vestibule.console.pages import console_page


@require_GET
@signed_in_page
def home(request: HttpRequest, acting: Principal) -> HttpResponse:
    """The accounts this person administers; with exactly one (and not the operator), straight into it."""
    accounts = list(acting.administered_accounts().order_by("name")[:500])
    if len(accounts) == 1 and not acting.is_operator:
        return HttpResponseRedirect(reverse("console:account", args=[accounts[0].slug]))
    return console_page(request, "home.html", acting, accounts=accounts, title="Console")


@require_GET
@signed_in_page
def switch(request: HttpRequest, acting: Principal) -> HttpResponse:
    # Only something shaped like a slug is put in a URL; the account page then checks standing as always.
    slug = request.GET.get("slug", "")
    if not SLUG.fullmatch(slug):
        return HttpResponseRedirect(reverse("console:home"))
    return HttpResponseRedirect(reverse("console:account", args=[slug]))


@require_GET
@account_page()
def account_overview(request: HttpRequest, acting: Principal, account: Account) -> HttpResponse:
    roles = sorted(acting.roles_in(account))
    return console_page(request, "account.html", acting, account=account, roles=roles, title="Overview")
