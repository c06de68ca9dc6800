"""Setup links (sso-admin): list, create (the token shown once), revoke.

The IT admin who receives a link follows the wizard of ``vestibule.setup``;
when they finish, the connection is reviewed and enabled on the connections page.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from vestibule.accounts.models import Account
from vestibule.audit.events import record
from vestibule.authority.principal import SSO_ADMIN, Principal
from vestibule.console.access import account_page
from vestibule.console.forms.setup_links import SetupLinkForm
from vestibule.console.pages import console_page, refusal
from vestibule.setup import services
from vestibule.setup.models import SetupLink

PAGE_LIMIT = 200


def _page(
    request: HttpRequest, acting: Principal, account: Account, form: SetupLinkForm, status: int = 200
) -> HttpResponse:
    links = list(
        SetupLink.objects.filter(account=account)
        .select_related("connection", "created_by")
        .order_by("-created_at")[:PAGE_LIMIT]
    )
    return console_page(
        request,
        "setup_links/list.html",
        acting,
        account=account,
        status=status,
        title="Setup links",
        links=links,
        form=form,
    )


@require_http_methods(["GET", "POST"])
@never_cache
@account_page(SSO_ADMIN)
def setup_links(request: HttpRequest, acting: Principal, account: Account) -> HttpResponse:
    if request.method == "GET":
        return _page(request, acting, account, SetupLinkForm(account=account))
    form = SetupLinkForm(request.POST, account=account)
    if not form.is_valid():
        return _page(request, acting, account, form, 400)
    connection = form.cleaned_data["connection"]
    try:
        link, token = services.create(
            account, connection, form.cleaned_data["provider"], form.cleaned_data["hours"],
            created_by=request.user if request.user.is_authenticated else None, label=acting.label,
        )  # fmt: skip
    except services.SetupError as exc:
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        return _page(request, acting, account, form, 400)
    record(
        "setup_link.created", account=account, connection=connection, **acting.actor(),
        link=link.prefix, provider=link.provider, expires_at=link.expires_at.isoformat(),
    )  # fmt: skip
    # The deployment's own address, never the request's Host header.
    url = settings.VESTIBULE_BASE_URL + reverse("setup:open", args=[token])
    return console_page(
        request, "setup_links/created.html", acting, account=account, title="Setup link created", link=link, url=url
    )


@require_POST
@account_page(SSO_ADMIN)
def revoke(request: HttpRequest, acting: Principal, account: Account, link_id: str) -> HttpResponse:
    link = SetupLink.objects.filter(account=account, prefix=link_id[:16]).select_related("connection").first()
    if link is None:
        return refusal(
            request, acting, 404, "No such setup link",
            "This account has no setup link with that reference. Pick one from the list.", account=account,
        )  # fmt: skip
    if not services.revoke(link, acting.actor()):
        messages.warning(
            request, f"The setup link {link.prefix} was already {link.status_label.lower()}; nothing changed."
        )
    else:
        messages.success(
            request,
            f"The setup link {link.prefix} for {link.connection.name} is revoked. It cannot be opened any more.",
        )
    return HttpResponseRedirect(reverse("console:setup-links", args=[account.slug]))


urlpatterns = [
    path("a/<str:slug>/setup-links/", setup_links, name="setup-links"),
    path("a/<str:slug>/setup-links/<str:link_id>/revoke", revoke, name="setup-link-revoke"),
]
