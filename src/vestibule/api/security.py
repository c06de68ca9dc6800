"""Authentication of the admin API and the scope checks every endpoint goes through.

Two credentials reach the API: ``Authorization: Bearer <api key>`` (a service
credential) and a signed-in person's browser session, whose unsafe requests
must carry the CSRF token. Both become a :class:`~vestibule.authority.principal.Principal`.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from ninja.security import APIKeyCookie, HttpBearer

from vestibule.accounts.models import Account
from vestibule.api.errors import Forbidden, NotFound
from vestibule.authority.models import ApiKey
from vestibule.authority.principal import NoStanding, Principal, RoleRequired, session_principal
from vestibule.conf import request_log
from vestibule.connections.models import Connection

_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?")


class ApiKeyAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Principal | None:
        key = ApiKey.authenticate(token)
        if key is None:
            return None
        # Coarse last-use tracking: at most one write per key per minute.
        now = timezone.now()
        if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return Principal(key=key)


class SessionAuth(APIKeyCookie):
    """A signed-in person, as in the console. ninja checks the CSRF token on unsafe methods."""

    param_name = settings.SESSION_COOKIE_NAME

    def _get_key(self, request: HttpRequest) -> str | None:
        # Without a session cookie there is no session to protect: answer 401
        # (missing credentials), not a CSRF 403.
        if self.param_name not in request.COOKIES:
            return None
        return super()._get_key(request)

    def authenticate(self, request: HttpRequest, key: str | None) -> Principal | None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not user.is_active:
            return None
        return session_principal(user, request.session)


def principal(request: HttpRequest) -> Principal:
    return request.auth  # type: ignore[attr-defined,no-any-return]


def who(request: HttpRequest) -> dict[str, Any]:
    """The actor of an audit event: the person or the key."""
    return principal(request).actor()


def require_operator(request: HttpRequest) -> Principal:
    acting = principal(request)
    if not acting.is_operator:
        raise Forbidden("this action needs the operator (an operator API key: vestibule api-key create --operator)")
    return acting


def account_for(request: HttpRequest, slug: str, *roles: str) -> Account:
    """Resolve an account from the URL and check the principal holds one of ``roles`` there.

    Someone with no standing in the account (a key of another account, a
    person who is not a member) gets the same 404 as for an account that does
    not exist, so nobody can probe which slugs are taken. A member without the
    role gets a 403 naming the role.
    """
    # A string that cannot be a slug names no account; it never reaches the database.
    account = Account.objects.filter(slug=slug).first() if _SLUG.fullmatch(slug) else None
    if account is None:
        raise NotFound(f"account '{slug}' not found", field="slug")
    try:
        principal(request).require(account, *roles)
    except NoStanding:
        raise NotFound(f"account '{slug}' not found", field="slug") from None
    except RoleRequired as exc:
        raise Forbidden(str(exc)) from None
    # Bound once standing is proven, so `account` on a log line means the request acted in that account.
    request_log.bind(account=account.slug)
    return account


def connection_for(request: HttpRequest, connection_id: str, *roles: str) -> Any:
    """A connection from the URL, with the same standing rules as :func:`account_for`."""
    connection = Connection.objects.by_id(connection_id)
    try:
        if connection is None:
            raise NoStanding(connection_id)
        principal(request).require(connection.account, *roles)
    except NoStanding:
        raise NotFound(f"connection '{connection_id}' not found", field="id") from None
    except RoleRequired as exc:
        raise Forbidden(str(exc)) from None
    request_log.bind(account=connection.account.slug, connection=str(connection.id))
    return connection
