"""Who may open a console page: the signed-in person's principal, checked as the admin API checks it.

The same standing rules as the REST layer: someone with nothing to do with
an account gets the same 404 as for an account that does not exist (no slug
probing); a member without the role gets a 403 that names it; the operator
is everywhere. A session started by one account's identity provider stays
within that account (see ``authority.principal.session_scope``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from vestibule.accounts.models import Account
from vestibule.authority.principal import NoStanding, Principal, RoleRequired, session_principal
from vestibule.conf import request_log
from vestibule.console.pages import refusal

SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?")

View = Callable[..., HttpResponse]


def console_principal(request: HttpRequest) -> Principal | None:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    return session_principal(user, request.session)


def _to_login(request: HttpRequest) -> HttpResponse:
    return HttpResponseRedirect(f"{reverse('login')}?{urlencode({'next': request.get_full_path()})}")


def signed_in_page(view: View) -> View:
    """``view(request, acting, ...)`` for any signed-in person."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        acting = console_principal(request)
        if acting is None:
            return _to_login(request)
        return view(request, acting, *args, **kwargs)

    return wrapper


def operator_page(view: View) -> View:
    """``view(request, acting, ...)`` for the deployment operator only; others get a 403 saying so."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        acting = console_principal(request)
        if acting is None:
            return _to_login(request)
        if not acting.is_operator:
            return refusal(
                request,
                acting,
                403,
                "Only the operator can open this page",
                "The operator runs this Vestibule deployment. If you are the operator, sign in with your own "
                "password (a sign-in through an account's identity provider does not carry the operator's powers).",
            )
        return view(request, acting, *args, **kwargs)

    return wrapper


def account_page(*roles: str) -> Callable[[View], View]:
    """``view(request, acting, account, ...)``: the ``slug`` URL argument resolved and checked.

    One of ``roles`` is enough; none means any member of the account.
    """

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, slug: str, **kwargs: Any) -> HttpResponse:
            acting = console_principal(request)
            if acting is None:
                return _to_login(request)
            account = Account.objects.filter(slug=slug).first() if SLUG.fullmatch(slug) else None
            try:
                if account is None:
                    raise NoStanding(slug)
                acting.require(account, *roles)
            except NoStanding:
                return refusal(
                    request,
                    acting,
                    404,
                    "No such account",
                    f"There is no account '{slug[:60]}' that you are a member of. Pick one of yours from the console.",
                )
            except RoleRequired as exc:
                return refusal(
                    request,
                    acting,
                    403,
                    "You do not have the role this page needs",
                    f"{str(exc).capitalize()}. Ask an administrator of the account to grant it.",
                    account=account,
                )
            request_log.bind(account=account.slug)
            return view(request, acting, account, *args, **kwargs)

        return wrapper

    return decorate
