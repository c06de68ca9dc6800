"""Response headers every page gets: a strict Content-Security-Policy with a per-request nonce.

Pages use inline ``<style>`` and, for the SAML HTTP-POST binding, one small
inline script that submits a form; the nonce lets exactly those scripts run
and nothing an attacker could inject. ``form-action`` stays open because the
POST binding submits to the customer's identity provider, whose origin is
per connection.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


def content_security_policy(nonce: str, *, style_src: str = "'self' 'unsafe-inline'") -> str:
    """The policy every page gets; a view may widen ``style_src`` and set it itself (the API docs do)."""
    return (
        "default-src 'none'; "
        # Same-origin scripts (the console's vendored htmx and its own script) carry the nonce too.
        f"script-src 'nonce-{nonce}'; "
        f"style-src {style_src}; "
        "img-src 'self' data:; "
        "connect-src 'self'; "
        "base-uri 'none'; "
        "frame-ancestors 'none'"
    )


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        nonce = secrets.token_urlsafe(16)
        request.csp_nonce = nonce  # type: ignore[attr-defined]
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = content_security_policy(nonce)
        response.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        response.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if request.path.startswith(("/login", "/sso/", "/password", "/recovery-access", "/invite", "/api/v1/session")):
            # Sign-in pages and session data are never cached by browsers or proxies.
            response.setdefault("Cache-Control", "no-store")
        return response
