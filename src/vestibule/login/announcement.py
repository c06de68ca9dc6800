"""The one-time login announcement (seed 002: "Role assignment occurs during the login process, and users will
encounter a login announcement")."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from vestibule.accounts.models import Account, Project
from vestibule.login.redirects import DEFAULT_NEXT, safe_next
from vestibule.login.sessions import take_announcement


def _scopes(tokens: list[str], projects: dict[int, str], account: Account) -> list[dict[str, Any]]:
    """``["analyst", "report-viewer@12"]`` -> roles grouped by where they apply, the account first."""
    by_scope: dict[str, list[str]] = {}
    for token in tokens:
        role, _, project = token.partition("@")
        if not project:
            label = f"the account {account.name}"
        elif project.isascii() and project.isdigit() and int(project) in projects:
            label = f"the project {projects[int(project)]}"
        else:
            label = "a project that no longer exists"
        by_scope.setdefault(label, []).append(role)
    return [{"scope": scope, "roles": sorted(roles)} for scope, roles in by_scope.items()]


@never_cache
@require_GET
def login_announcement(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return HttpResponseRedirect("/login")
    data = take_announcement(request.session)
    if data is None:
        # Already shown (a reload, the back button): nothing to announce twice.
        return HttpResponseRedirect(DEFAULT_NEXT)
    next_url = safe_next(str(data.get("next") or ""))
    account_id = data.get("account_id")
    account = Account.objects.filter(pk=account_id).first() if isinstance(account_id, int) else None
    if account is None:
        return HttpResponseRedirect(next_url)
    granted, removed = list(data.get("granted") or []), list(data.get("removed") or [])
    ids = {
        int(p) for t in granted + removed if (p := str(t).partition("@")[2]).isascii() and p.isdigit() and len(p) < 19
    }
    projects = dict(Project.objects.filter(account=account, pk__in=ids).values_list("pk", "name")) if ids else {}
    return render(
        request,
        "vestibule/login_announcement.html",
        {
            "title": "Your access was updated",
            "account": account,
            "granted": _scopes([str(t) for t in granted], projects, account),
            "removed": _scopes([str(t) for t in removed], projects, account),
            "mapping_roles": [str(m) for m in data.get("mapping_roles") or []],
            "next_url": next_url,
        },
    )
