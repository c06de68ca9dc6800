"""The IT admin's wizard: open the link, pick the provider, paste values, give the IdP's side, test, finish.

No account and no session: the token in the link opens it once (a POST, so
link scanners and previews that fetch URLs do not claim it), and from then
on a random value in a cookie scoped to ``/setup/`` is the only key. The
wizard's pages are addressed by the link's ID, so the secret leaves the
address bar after the first step.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from vestibule.audit.events import record
from vestibule.connections.models import Connection, PendingLogin
from vestibule.protocol_errors import ProtocolError
from vestibule.setup import providers, services
from vestibule.setup.forms import OidcClientForm, ProviderForm, SamlMetadataForm
from vestibule.setup.models import SetupLink
from vestibule.setup.results import outcome_of
from vestibule.signin import dry_run
from vestibule.signin.views import start_test_login

COOKIE_MAX_AGE = 7 * 24 * 3600
STEPS = (
    ("provider", "Provider"),
    ("values", "Values to paste"),
    ("idp", "Your provider's details"),
    ("test", "Test sign-in"),
    ("finish", "Finish"),
)
# 4xx pages say what to do and nothing about the account or connection behind the link.
_DEAD = (
    "This setup link can no longer be used",
    "It has expired, was revoked, or was already used. Ask the person who sent it to you for a new setup link.",
)
_UNKNOWN = (
    "This setup link is not valid",
    "Check that you copied the whole link. If it still does not work, ask the person who sent it to you for a new one.",
)
_OTHER_BROWSER = (
    "This setup link was opened in another browser",
    "A setup link works only in the browser that opened it first. Go back to that browser, "
    "or ask the person who sent it to you for a new setup link.",
)

View = Callable[..., HttpResponse]


def _refused(request: HttpRequest, status: int, words: tuple[str, str]) -> HttpResponse:
    return render(
        request,
        "vestibule/setup/refused.html",
        {"title": words[0], "text": words[1]},
        status=status,
    )


def _secure() -> bool:
    return bool(settings.VESTIBULE_BASE_URL.startswith("https://"))


def _page(
    request: HttpRequest, link: SetupLink, template: str, step: str, status: int = 200, **context: Any
) -> HttpResponse:
    steps = [
        {"key": key, "label": label, "url": reverse(f"setup:{key}", args=[link.pk]), "current": key == step}
        for key, label in STEPS
    ]
    return render(
        request,
        f"vestibule/setup/{template}",
        {"link": link, "account": link.account, "connection": link.connection, "steps": steps, "step": step, **context},
        status=status,
    )


def wizard_page(view: View) -> View:
    """``view(request, link)`` for the browser this live link is bound to; others get a 4xx page saying what to do."""

    @functools.wraps(view)
    @never_cache
    def wrapper(request: HttpRequest, link_id: uuid.UUID) -> HttpResponse:
        link = SetupLink.objects.select_related("account", "connection").filter(pk=link_id).first()
        if link is None:
            return _refused(request, 404, _UNKNOWN)
        if not services.bound(link, request.COOKIES.get(services.BROWSER_COOKIE)):
            return _refused(request, 403, _OTHER_BROWSER if link.browser_digest else _UNKNOWN)
        if not link.is_live:
            return _refused(request, 410, _DEAD)
        return view(request, link)

    return wrapper


# ---- Opening


@require_http_methods(["GET", "POST"])
@never_cache
def open_link(request: HttpRequest, token: str) -> HttpResponse:
    """GET explains and offers to start; POST binds the link to this browser (first come) and enters the wizard."""
    try:
        link = services.find(request, token)
    except services.TooManyGuesses:
        return _refused(
            request,
            429,
            ("Too many attempts", "Too many setup links were tried from your network. Wait 15 minutes and try again."),
        )
    if link is None:
        return _refused(request, 404, _UNKNOWN)
    if not link.is_live:
        return _refused(request, 410, _DEAD)
    cookie = request.COOKIES.get(services.BROWSER_COOKIE)
    if services.bound(link, cookie):
        return HttpResponseRedirect(reverse("setup:provider", args=[link.pk]))
    if link.browser_digest:
        return _refused(request, 403, _OTHER_BROWSER)
    if request.method == "GET":
        return render(
            request, "vestibule/setup/open.html", {"link": link, "account": link.account, "connection": link.connection}
        )
    allowed, value = services.open_link(link, cookie)
    if not allowed or value is None:
        return _refused(request, 403, _OTHER_BROWSER)
    response = HttpResponseRedirect(reverse("setup:provider", args=[link.pk]))
    response.set_cookie(
        services.BROWSER_COOKIE,
        value,
        max_age=COOKIE_MAX_AGE,
        httponly=True,
        secure=_secure(),
        samesite="Lax",
        path="/setup/",
    )
    return response


# ---- Steps


@require_http_methods(["GET", "POST"])
@wizard_page
def provider(request: HttpRequest, link: SetupLink) -> HttpResponse:
    choices = services.providers_for(link.connection)
    if request.method == "GET":
        form = ProviderForm(initial={"provider": link.provider}, providers=choices)
        return _page(request, link, "provider.html", "provider", form=form)
    form = ProviderForm(request.POST, providers=choices)
    if not form.is_valid():
        return _page(request, link, "provider.html", "provider", status=400, form=form)
    if form.cleaned_data["provider"] != link.provider:
        SetupLink.objects.filter(pk=link.pk).update(provider=form.cleaned_data["provider"])
    return HttpResponseRedirect(reverse("setup:values", args=[link.pk]))


@require_GET
@wizard_page
def values(request: HttpRequest, link: SetupLink) -> HttpResponse:
    return _page(request, link, "values.html", "values", guide=providers.guide(link))


@require_http_methods(["GET", "POST"])
@wizard_page
def idp(request: HttpRequest, link: SetupLink) -> HttpResponse:
    saml = link.is_saml
    guide = providers.guide(link)
    form: SamlMetadataForm | OidcClientForm
    if request.method == "GET":
        if saml:
            form = SamlMetadataForm()
        else:
            current = link.connection.oidc_settings
            form = OidcClientForm(
                initial={"issuer": current.get("issuer", ""), "client_id": current.get("client_id", "")}
            )
        return _page(request, link, "idp.html", "idp", form=form, guide=guide)
    form = SamlMetadataForm(request.POST) if saml else OidcClientForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            if isinstance(form, SamlMetadataForm):
                url = data["metadata_url"].strip()
                services.import_saml_metadata(link, url=url or None, xml=None if url else data["metadata_xml"].encode())
            else:
                services.configure_oidc(
                    link, issuer=data["issuer"], client_id=data["client_id"], client_secret=data["client_secret"]
                )
        except services.SetupError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            return HttpResponseRedirect(reverse("setup:test", args=[link.pk]) + "?saved=1")
    return _page(request, link, "idp.html", "idp", status=400, form=form, guide=guide)


@require_http_methods(["GET", "POST"])
@wizard_page
def test(request: HttpRequest, link: SetupLink) -> HttpResponse:
    """GET: what the test does; POST: start a sign-in through the connection in test mode (it may still be disabled)."""
    if request.method == "GET":
        return _page(request, link, "test.html", "test", saved=request.GET.get("saved") == "1", result=_result(link))
    try:
        return start_test_login(request, link.connection, handler=HANDLER, data={"setup_link": str(link.pk)})
    except ProtocolError as exc:
        return _page(
            request, link, "test.html", "test", status=409, result=_result(link),
            start_error=f"The test sign-in could not start: {exc.description.rstrip('.')}. Check your provider's details in the previous step.",
        )  # fmt: skip


@require_GET
@wizard_page
def result(request: HttpRequest, link: SetupLink) -> HttpResponse:
    return _page(request, link, "result.html", "test", result=_result(link))


@require_http_methods(["GET", "POST"])
@wizard_page
def finish(request: HttpRequest, link: SetupLink) -> HttpResponse:
    if request.method == "GET":
        return _page(request, link, "finish.html", "finish", result=_result(link))
    if not services.finish(link):
        return _refused(request, 410, _DEAD)
    response = render(
        request, "vestibule/setup/done.html", {"link": link, "account": link.account, "connection": link.connection}
    )
    response.delete_cookie(services.BROWSER_COOKIE, path="/setup/")
    return response


def _result(link: SetupLink) -> dict[str, Any] | None:
    return link.last_test or None


# ---- The test sign-in's end (called by signin's ACS / callback for a pending login of ours)

HANDLER = "setup"


def test_finished(
    request: HttpRequest, connection: Connection, pending: PendingLogin, run: dry_run.DryRun
) -> HttpResponse:
    """Keep what the test showed on the link, audit it, and send the browser to the result page.

    Nothing here signs anyone in or writes a user: the run is the plan only.
    The link must still be live and of this connection (it may have been
    revoked while the admin was at the provider).
    """
    link_id = _uuid(pending.data.get("setup_link"))
    link = (
        SetupLink.objects.select_related("account", "connection").filter(pk=link_id, connection=connection).first()
        if link_id is not None
        else None
    )
    if link is None or not link.is_live:
        return _refused(request, 410, _DEAD)
    summary = outcome_of(run)
    SetupLink.objects.filter(pk=link.pk).update(last_test=summary, last_test_at=timezone.now())
    record(
        "setup_link.test_login",
        outcome="success" if summary["outcome"] != "refused" else "failure",
        account=link.account,
        connection=connection,
        link=link.prefix,
        decision=summary["outcome"],
        reason_code=summary.get("code", ""),
        subject_email=summary.get("identity", {}).get("email", ""),
    )
    return HttpResponseRedirect(reverse("setup:result", args=[link.pk]))


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


# Registered when the URLconf loads this module, so before any ACS or callback can be routed
# (signin must not import setup; an AppConfig.ready import would be a hidden, function-local one).
dry_run.register(HANDLER, test_finished)


__all__ = ["HANDLER", "finish", "idp", "open_link", "provider", "result", "test", "values", "wizard_page"]
