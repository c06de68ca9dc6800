from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView

from example_site.auth import CLAIMS_SESSION_KEY


class CallbackView(OIDCAuthenticationCallbackView):
    def login_success(self) -> Any:
        # django.contrib.auth.login() empties the session when someone else was signed in
        # here; the claims the backend kept for this sign-in are put back after it.
        claims = self.request.session.get(CLAIMS_SESSION_KEY)
        response = super().login_success()
        self.request.session[CLAIMS_SESSION_KEY] = claims
        return response


def home(request: HttpRequest) -> HttpResponse:
    claims = request.session.get(CLAIMS_SESSION_KEY) if request.user.is_authenticated else None
    return render(
        request, "example_site/home.html", {"claims": claims, "failed": "failed" in request.GET and claims is None}
    )
