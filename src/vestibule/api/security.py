"""API key authentication and the scope checks every endpoint goes through."""

from __future__ import annotations

import re

from django.http import HttpRequest
from django.utils import timezone
from ninja.security import HttpBearer

from vestibule.accounts.models import Account
from vestibule.api.errors import Forbidden, NotFound
from vestibule.api.models import ApiKey

_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?")


class ApiKeyAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        key = ApiKey.authenticate(token)
        if key is not None:
            # Coarse last-use tracking: at most one write per key per minute.
            now = timezone.now()
            if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
                ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return key


def api_key(request: HttpRequest) -> ApiKey:
    return request.auth  # type: ignore[attr-defined,no-any-return]


def require_operator(request: HttpRequest) -> ApiKey:
    key = api_key(request)
    if not key.is_operator:
        raise Forbidden("this action needs an operator API key (vestibule api-key create --operator)")
    return key


def account_for(request: HttpRequest, slug: str) -> Account:
    """Resolve an account from the URL, enforcing the key's scope (the IDOR check).

    An account key asking for another account gets the same 404 as for an
    account that does not exist, so keys cannot probe which slugs are taken.
    """
    key = api_key(request)
    # A string that cannot be a slug names no account; it never reaches the database.
    account = Account.objects.filter(slug=slug).first() if _SLUG.fullmatch(slug) else None
    if account is None or (not key.is_operator and key.account_id != account.pk):
        raise NotFound(f"account '{slug}' not found", field="slug")
    return account
