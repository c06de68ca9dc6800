"""Who signed in: mozilla-django-oidc's backend, taught Vestibule's claims.

People are matched on ``sub`` (stable and opaque, unlike an email, which can
change or be given to someone else), and the organization claims of the
sign-in (``org``, ``roles``, ``projects``) are kept in the session: they
belong to this sign-in, in the organization it was made for.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

CLAIMS_SESSION_KEY = "vestibule_claims"


class VestibuleBackend(OIDCAuthenticationBackend):
    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        # The library checks the signature (against the JWKS) and the nonce; the issuer,
        # audience and expiry of the ID token are checked here.
        payload: dict[str, Any] = super().verify_token(token, **kwargs)
        audience = payload.get("aud")
        audiences = [audience] if isinstance(audience, str) else list(audience or [])
        if payload.get("iss") != settings.OIDC_ISSUER:
            raise SuspiciousOperation(f"ID token from {payload.get('iss')!r}, not {settings.OIDC_ISSUER!r}")
        if settings.OIDC_RP_CLIENT_ID not in audiences:
            raise SuspiciousOperation("ID token issued to another client")
        if not isinstance(payload.get("exp"), int) or payload["exp"] < time.time():
            raise SuspiciousOperation("ID token expired")
        return payload

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        return bool(claims.get("sub")) and bool(claims.get("email"))

    def filter_users_by_claims(self, claims: dict[str, Any]) -> Any:
        return self.UserModel.objects.filter(username=claims["sub"])

    def create_user(self, claims: dict[str, Any]) -> Any:
        user = get_user_model().objects.create_user(username=claims["sub"], email=claims["email"])
        return self.update_user(user, claims)

    def update_user(self, user: Any, claims: dict[str, Any]) -> Any:
        user.email = claims["email"]
        user.first_name = (claims.get("name") or "")[:150]
        user.save(update_fields=["email", "first_name"])
        return user

    def get_userinfo(self, access_token: str, id_token: str, payload: dict[str, Any]) -> dict[str, Any]:
        # Vestibule's userinfo answer carries the same claims as the ID token, read now.
        self.userinfo: dict[str, Any] = super().get_userinfo(access_token, id_token, payload)
        return self.userinfo

    def get_or_create_user(self, access_token: str, id_token: str, payload: dict[str, Any]) -> Any:
        user = super().get_or_create_user(access_token, id_token, payload)
        if user is not None:
            self.request.session[CLAIMS_SESSION_KEY] = {
                key: self.userinfo.get(key) for key in ("sub", "email", "name", "org", "roles", "projects")
            }
        return user


def provider_logout_url(request: HttpRequest) -> str:
    """Vestibule's end_session_endpoint: it ends its own session too, then sends the browser back home."""
    endpoint = settings.OIDC_OP_END_SESSION_ENDPOINT
    id_token = request.session.get("oidc_id_token")
    if not endpoint or not id_token:
        return str(settings.LOGOUT_REDIRECT_URL)
    query = {
        "id_token_hint": id_token,
        "client_id": settings.OIDC_RP_CLIENT_ID,
        "post_logout_redirect_uri": settings.OIDC_POST_LOGOUT_REDIRECT_URI,
    }
    return f"{endpoint}?{urlencode(query)}"
