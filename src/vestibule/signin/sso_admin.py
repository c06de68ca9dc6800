"""The SSO administrator's page: where recovery access lands (seed 002).

An sso-admin whose identity provider is broken signs in with a recovery link
and must be able to act at once: see each connection of the accounts they
administer, the latest failed sign-ins with their reason codes, and turn a
connection off or on. The same rules as the API apply — the role in the
connection's own account — through the same connection rules.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from vestibule.accounts.models import User
from vestibule.audit.events import record
from vestibule.audit.models import LoginTrace
from vestibule.authority.principal import SSO_ADMIN, NoStanding, RoleRequired, session_principal
from vestibule.connections import rules
from vestibule.connections.models import Connection
from vestibule.connections.rules import ConnectionRuleError
from vestibule.signin import adapters


def _signed_in(request: HttpRequest) -> User | None:
    user = request.user
    return user if user.is_authenticated and user.is_active else None


@require_GET
def sso_admin_home(request: HttpRequest) -> HttpResponse:
    user = _signed_in(request)
    if user is None:
        return HttpResponseRedirect(f"{reverse('login')}?next={reverse('sso-admin')}")
    accounts = session_principal(user, request.session).administered_accounts(SSO_ADMIN).order_by("slug")
    sections: list[dict[str, Any]] = []
    for account in accounts:
        connections = Connection.objects.for_account(account).prefetch_related("domains").order_by("name")
        sections.append(
            {
                "account": account,
                "connections": [{"c": c, "sign_in_url": adapters.sp_urls(c)["sign_in_url"]} for c in connections],
                "failures": LoginTrace.objects.filter(account=account, outcome="failure")[:10],
            }
        )
    status = 200 if sections else 403
    return render(
        request,
        "vestibule/sso_admin.html",
        {"sections": sections, "changed": request.GET.get("changed")},
        status=status,
    )


@require_POST
def set_enabled(request: HttpRequest, connection_id: str) -> HttpResponse:
    user = _signed_in(request)
    if user is None:
        return HttpResponseRedirect(reverse("login"))
    connection = Connection.objects.by_id(connection_id)
    if connection is None:
        raise Http404("unknown connection")
    try:
        session_principal(user, request.session).require(connection.account, SSO_ADMIN)
    except NoStanding:
        raise Http404("unknown connection") from None
    except RoleRequired:
        return render(
            request, "vestibule/message.html",
            {"title": "Not allowed", "text": f"Turning connections on or off needs the sso-admin role in {connection.account.name}.", "code": "authority.role_required"},
            status=403,
        )  # fmt: skip
    enabled = request.POST.get("enabled") == "1"
    try:
        rules.update_connection(connection, {"enabled": enabled})
    except ConnectionRuleError as exc:
        return render(
            request,
            "vestibule/message.html",
            {"title": "Not changed", "text": exc.detail, "hint": reverse("sso-admin")},
            status=exc.status,
        )
    record(
        "connection.updated",
        account=connection.account,
        connection=connection,
        actor_user=user,
        fields=["enabled"],
        enabled=enabled,
    )
    return HttpResponseRedirect(f"{reverse('sso-admin')}?changed={connection.pk}")
