"""The account's Branding page (display name and logo), and the logo images the pages show."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_GET, require_POST

from vestibule.accounts.models import Account
from vestibule.audit.events import record
from vestibule.authority.principal import ADMINISTRATOR, Principal
from vestibule.console import branding
from vestibule.console.access import account_page
from vestibule.console.forms.branding import DisplayNameForm, LogoForm
from vestibule.console.pages import console_page


def _page(
    request: HttpRequest,
    acting: Principal,
    account: Account,
    *,
    name_form: DisplayNameForm | None = None,
    logo_form: LogoForm | None = None,
    status: int = 200,
) -> HttpResponse:
    return console_page(
        request,
        "branding/branding.html",
        acting,
        account=account,
        status=status,
        title="Branding",
        name_form=name_form or DisplayNameForm(initial={"name": account.name}),
        logo_form=logo_form or LogoForm(),
    )


def _back(account: Account) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("console:branding", args=[account.slug]))


@account_page(ADMINISTRATOR)
def branding_page(request: HttpRequest, acting: Principal, account: Account) -> HttpResponse:
    if request.method != "POST":
        return _page(request, acting, account)
    form = DisplayNameForm(request.POST)
    if not form.is_valid():
        return _page(request, acting, account, name_form=form, status=400)
    before, after = account.name, form.cleaned_data["name"]
    if before == after:
        messages.info(request, f"The display name is already {after}; nothing changed.")
        return _back(account)
    account.name = after
    account.save(update_fields=["name"])
    record("account.renamed", request=request, account=account, **acting.actor(), before=before, after=after)
    messages.success(request, f"Display name changed from {before} to {after}.")
    return _back(account)


@require_POST
@account_page(ADMINISTRATOR)
def logo_upload(request: HttpRequest, acting: Principal, account: Account) -> HttpResponse:
    form = LogoForm(request.POST, request.FILES)
    if not form.is_valid():
        return _page(request, acting, account, logo_form=form, status=400)
    logo = form.cleaned_data["logo"]
    branding.set_account_logo(account, logo)
    record(
        "account.logo_uploaded",
        request=request,
        account=account,
        **acting.actor(),
        content_type=logo.content_type,
        size=len(logo.data),
        digest=logo.digest,
    )
    messages.success(request, f"Logo saved ({logo.width}×{logo.height} pixels). It shows on your sign-in pages now.")
    return _back(account)


@require_POST
@account_page(ADMINISTRATOR)
def logo_remove(request: HttpRequest, acting: Principal, account: Account) -> HttpResponse:
    if branding.remove_account_logo(account):
        record("account.logo_removed", request=request, account=account, **acting.actor())
        messages.success(request, f"Logo of {account.name} removed. The sign-in pages show its name alone.")
    else:
        messages.info(request, f"{account.name} has no logo; nothing changed.")
    return _back(account)


@require_GET
def deployment_logo(request: HttpRequest, digest: str) -> HttpResponse:
    return branding.deployment_logo_response(digest)


@require_GET
def account_logo(request: HttpRequest, digest: str) -> HttpResponse:
    return branding.account_logo_response(digest)


urlpatterns: list[URLPattern] = [
    path("a/<str:slug>/branding/", branding_page, name="branding"),
    path("a/<str:slug>/branding/logo", logo_upload, name="branding-logo"),
    path("a/<str:slug>/branding/logo/remove", logo_remove, name="branding-logo-remove"),
]

# Public, outside /console/ (vestibule.console.public_urls, included at /branding/ by vestibule.urls).
public_urlpatterns: list[URLPattern] = [
    path("logo/<str:digest>", deployment_logo, name="brand-logo"),
    path("logos/<str:digest>", account_logo, name="brand-account-logo"),
]
