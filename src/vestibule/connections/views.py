"""SSO browser endpoints."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from vestibule.login.views import message


def sso_start(request: HttpRequest, connection_id: str) -> HttpResponse:
    return message(request, "Single sign-on is not available", "This connection cannot start a sign-in yet.", status=404, code="sso.connection_unknown")
