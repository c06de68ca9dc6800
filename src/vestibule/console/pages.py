"""Rendering a console page: the layout's menu, the account switcher and refusals."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from vestibule.accounts.models import Account
from vestibule.authority.principal import Principal
from vestibule.console.navigation import account_menu, operator_menu


def _current_url_name(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    return match.view_name if match is not None else ""


def layout(request: HttpRequest, acting: Principal | None, account: Account | None) -> dict[str, Any]:
    """What ``console/base.html`` needs around the page: menus and the accounts to switch between."""
    if acting is None:
        return {"menu": [], "switch_accounts": [], "account": account}
    current = _current_url_name(request)
    menu = operator_menu(acting, current)
    if account is not None:
        menu = account_menu(acting, account, current) + menu
    switch = list(acting.administered_accounts().order_by("name")[:200]) if not acting.is_operator else []
    return {"menu": menu, "switch_accounts": switch, "account": account, "acting": acting}


def console_page(
    request: HttpRequest,
    template: str,
    acting: Principal | None,
    *,
    account: Account | None = None,
    status: int = 200,
    **context: Any,
) -> HttpResponse:
    """Render ``vestibule/console/<template>`` inside the console's layout."""
    full = {**layout(request, acting, account), **context}
    return render(request, f"vestibule/console/{template}", full, status=status)


def refusal(
    request: HttpRequest,
    acting: Principal | None,
    status: int,
    title: str,
    text: str,
    *,
    account: Account | None = None,
) -> HttpResponse:
    """A page that says what was refused and what to do instead (never a bare 403/404)."""
    return console_page(request, "refusal.html", acting, account=account, status=status, title=title, text=text)
