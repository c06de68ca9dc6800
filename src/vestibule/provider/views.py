"""The provider's endpoints: django-oauth-toolkit's views with Vestibule's routing, keys and logout."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, cast
from urllib.parse import urlencode

from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET
from oauth2_provider.exceptions import (
    ClientIdMissmatch,
    FatalClientError,
    InvalidIDTokenError,
    InvalidOIDCClientError,
    InvalidOIDCRedirectURIError,
    OAuthToolkitError,
)
from oauth2_provider.views.base import AuthorizationView
from oauth2_provider.views.mixins import OAuthLibMixin
from oauth2_provider.views.oidc import ConnectDiscoveryInfoView, RPInitiatedLogoutView
from oauthlib.common import add_params_to_uri
from oauthlib.oauth2.rfc6749.errors import MissingRedirectURIError

from vestibule.accounts.models import Account, Membership, User
from vestibule.authority.principal import SCOPE_ACCOUNT
from vestibule.conf import metrics
from vestibule.connections.models import Connection
from vestibule.login.routing import route_email
from vestibule.provider import authorizations, deliveries, keys
from vestibule.provider.models import Application, IDToken
from vestibule.provider.scopes import requested_organization
from vestibule.provider.validator import CONTEXT

# Set when prompt=login or max_age asks for a fresh sign-in: the authorization request goes on
# only once the session's sign-in is newer than this.
REAUTH_AFTER = "op_reauth_after"


def _signed_in_after(login_at: Any, moment: str) -> bool:
    try:
        return isinstance(login_at, str) and datetime.fromisoformat(login_at) > datetime.fromisoformat(moment)
    except ValueError:
        return False


def _page(request: HttpRequest, template: str, status: int = 200, **context: Any) -> HttpResponse:
    return render(request, f"vestibule/provider/{template}", context, status=status)


def _without(request: HttpRequest, *names: str) -> str:
    query = request.GET.copy()
    for name in names:
        query.pop(name, None)
    return f"{request.path}?{query.urlencode()}"


@method_decorator(csrf_exempt, name="dispatch")
class AuthorizeView(AuthorizationView):
    """The authorization endpoint.

    Before any screen, ``organization`` and ``login_hint`` send the person
    straight to the identity provider that serves them; ``prompt=login`` and
    ``max_age`` ask for a fresh sign-in; the ``organization`` scope is
    settled (named, the only one, or chosen on a page) before a code is issued.
    """

    template_name = "vestibule/provider/authorize.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method == "POST":
            # OpenID Connect Core 3.1.2.1: a form POST is accepted too, answered as the same request by GET
            # (a POST changes nothing here, so the application's cross-site form needs no CSRF token).
            again = HttpResponseRedirect(f"{request.path}?{request.POST.urlencode()}")
            again.status_code = 303
            return again
        if request.method != "GET":
            return HttpResponse(status=405, headers={"Allow": "GET, POST"})
        # The client and its redirect URI are checked first: an unknown client or an
        # unregistered redirect URI is an error page here, never a redirect.
        try:
            scopes, credentials = self.validate_authorization_request(request)
        except OAuthToolkitError as error:
            return cast(HttpResponse, self.error_response(error, application=None))
        if not request.GET.get("redirect_uri"):
            # OpenID Connect requires it (Core 3.1.2.1); the library would fall back to a lone registered URI.
            return cast(HttpResponse, self.error_response(FatalClientError(MissingRedirectURIError()), None))
        self._credentials = credentials
        # Request objects are not supported (discovery says so): refused as Core 3.1.2.6 names it, not
        # ignored, or what the application put in the object would silently not apply.
        for name, refusal in (("request", "request_not_supported"), ("request_uri", "request_uri_not_supported")):
            if name in request.GET:
                return self._redirect_error(refusal)
        prompt = set(request.GET.get("prompt", "").split())
        if not request.user.is_authenticated:
            if "none" in prompt:
                return self._redirect_error("login_required")
            return self._route_to_sign_in(request, scopes)
        if "login" in prompt or self._too_old(request):
            if "none" in prompt:
                return self._redirect_error("login_required")
            request.session[REAUTH_AFTER] = timezone.now().isoformat()
            return self._to_login(request, _without(request, "prompt", "max_age"))
        reauth_after = request.session.get(REAUTH_AFTER)
        if reauth_after is not None:
            if not _signed_in_after(request.session.get("login_at"), reauth_after):
                return self._to_login(request, request.get_full_path())
            del request.session[REAUTH_AFTER]
        account, response = self._organization(request, scopes)
        if response is not None:
            # prompt=none forbids any page: the application learns why it got no code.
            if "none" in prompt:
                return self._redirect_error(
                    "account_selection_required" if response.status_code == 200 else "access_denied"
                )
            return response
        self._account = account
        return cast(HttpResponse, super().dispatch(request, *args, **kwargs))

    # --- before sign-in ---------------------------------------------------------------------
    def _route_to_sign_in(self, request: HttpRequest, scopes: list[str]) -> HttpResponse:
        next_url = request.get_full_path()
        hint = request.GET.get("login_hint", "").strip()
        slug = request.GET.get("organization") or requested_organization(scopes)[1]
        # The named organization's enabled connections, else those that serve the hinted address.
        connections: list[Connection] = []
        if slug:
            connections = list(
                Connection.objects.filter(account__slug=slug, enabled=True).select_related("account").order_by("name")
            )
        if not connections and hint:
            connections = route_email(hint).connections
        if len(connections) == 1:
            return self._to_sso(connections[0], next_url, hint)
        if connections:
            return render(
                request, "vestibule/login_choose.html", {"connections": connections, "next": next_url, "email": hint}
            )
        return self._to_login(request, next_url, email=hint)

    def _to_sso(self, connection: Connection, next_url: str, hint: str) -> HttpResponse:
        query = {"next": next_url, **({"login_hint": hint} if hint else {})}
        return HttpResponseRedirect(f"{reverse('sso-start', args=[connection.pk])}?{urlencode(query)}")

    def _to_login(self, request: HttpRequest, next_url: str, email: str = "") -> HttpResponse:
        query = {"next": next_url, **({"email": email} if email else {})}
        return HttpResponseRedirect(f"{reverse('login')}?{urlencode(query)}")

    def _too_old(self, request: HttpRequest) -> bool:
        raw = request.GET.get("max_age")
        if raw is None or not (raw.isascii() and raw.isdigit()):
            return False
        login_at = request.session.get("login_at")
        if not isinstance(login_at, str):
            return True
        return (timezone.now() - datetime.fromisoformat(login_at)).total_seconds() > int(raw)

    def _redirect_error(self, error: str) -> HttpResponse:
        params = [("error", error)]
        if self._credentials.get("state"):
            params.append(("state", self._credentials["state"]))
        params.append(("iss", keys.issuer()))
        return HttpResponseRedirect(add_params_to_uri(self._credentials["redirect_uri"], params))

    # --- after sign-in ----------------------------------------------------------------------
    def _organization(self, request: HttpRequest, scopes: list[str]) -> tuple[Account | None, HttpResponse | None]:
        user = cast(User, request.user)
        wanted, named = requested_organization(scopes)
        if named and request.GET.get("organization") not in (None, "", named):
            # The granted scope would name an organization the tokens do not speak for.
            return None, self._redirect_error("invalid_request")
        named = request.GET.get("organization") or named
        if not wanted and not named:
            return None, None
        memberships = Membership.objects.in_force().filter(user=user).select_related("account")
        only_account = request.session.get(SCOPE_ACCOUNT)
        if only_account is not None:
            memberships = memberships.filter(account_id=only_account)
        accounts = sorted((m.account for m in memberships), key=lambda a: a.name.lower())
        if named:
            match = next((a for a in accounts if a.slug == named), None)
            if match is None:
                return None, _page(
                    request,
                    "not_a_member.html",
                    status=403,
                    organization=named,
                    email=user.email,
                    application=self._application_name(),
                )
            return match, None
        if len(accounts) == 1:
            return accounts[0], None
        if not accounts:
            return None, _page(
                request, "not_a_member.html", status=403, email=user.email, application=self._application_name()
            )
        choices = [(a, f"{_without(request, 'organization')}&{urlencode({'organization': a.slug})}") for a in accounts]
        return None, _page(request, "choose_organization.html", choices=choices, application=self._application_name())

    def _application_name(self) -> str:
        row = Application.objects.filter(client_id=self._credentials.get("client_id")).only("name").first()
        return row.name if row else "The application"

    def validate_authorization_request(self, request: HttpRequest) -> Any:
        # Validated once per request: dispatch() does it before anything else, the library's get() again.
        if getattr(self, "_validated", None) is None:
            self._validated = super().validate_authorization_request(request)
        return self._validated

    def create_authorization_response(
        self, request: HttpRequest, scopes: str, credentials: dict[str, Any], allow: bool
    ) -> Any:
        credentials[CONTEXT] = {"session": request.session, "account": getattr(self, "_account", None)}
        return super().create_authorization_response(request, scopes, credentials, allow)

    def error_response(self, error: Any, application: Any = None, **kwargs: Any) -> Any:
        response = super().error_response(error, application, **kwargs)
        if response.status_code == 302:
            # RFC 9207: error responses name the issuer too (the library adds it to successes only).
            response["Location"] = add_params_to_uri(response["Location"], [("iss", keys.issuer())])
        return response


# RFC 6749 section 5.2's error codes: the token counter's outcome label stays a bounded set.
_TOKEN_ERRORS = frozenset({
    "invalid_request", "invalid_client", "invalid_grant", "unauthorized_client", "unsupported_grant_type",
    "invalid_scope",
})  # fmt: skip


def _token_outcome(status: int, body: str | bytes) -> str:
    """ "success", or the error code of a refused exchange ("error" for anything else)."""
    if status == 200:
        return "success"
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return "error"
    return error if error in _TOKEN_ERRORS else "error"


@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(sensitive_post_parameters("client_secret", "code", "code_verifier", "refresh_token"), name="post")
class TokenView(OAuthLibMixin, View):
    """The token endpoint: the library's, without re-reading the token it has just written.

    (The library's own view reads the new access token back to send its
    ``app_authorized`` signal, which nothing here listens to: one query per
    exchange and refresh saved.) Only the code and refresh grants exist here.
    """

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        grant_type = request.POST.get("grant_type")
        if grant_type and grant_type not in ("authorization_code", "refresh_token"):
            # Refused before the library, whose device-code grant raises (a 500) on an unknown device code.
            refused = JsonResponse({"error": "unsupported_grant_type"}, status=400)
            refused["Cache-Control"] = "no-store"
            metrics.token_issued("unsupported", "unsupported_grant_type")
            return refused
        _url, headers, body, status = self.create_token_response(request)
        metrics.token_issued(grant_type or "missing", _token_outcome(status, body))
        response = HttpResponse(content=body, status=status)
        for key, value in headers.items():
            response[key] = value
        return response


class DiscoveryView(ConnectDiscoveryInfoView):
    """The library's discovery document, naming what this provider really does."""

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().get(request, *args, **kwargs)
        data = json.loads(response.content)
        data.update(
            id_token_signing_alg_values_supported=list(keys.ALGORITHMS),
            code_challenge_methods_supported=["S256"],
            grant_types_supported=["authorization_code", "refresh_token"],
            response_modes_supported=["query"],
            scopes_supported=["openid", "email", "profile", "organization", "organization:<slug>"],
            claims_parameter_supported=False,
            request_parameter_supported=False,
            request_uri_parameter_supported=False,
            backchannel_logout_supported=True,
            backchannel_logout_session_supported=True,
            prompt_values_supported=["none", "login"],
            acr_values_supported=[authorizations.ACR_PASSWORD, authorizations.ACR_MFA, authorizations.ACR_SSO],
        )
        out = JsonResponse(data)
        out["Access-Control-Allow-Origin"] = "*"
        out["Cache-Control"] = "public, max-age=300"
        return out


@require_GET
def jwks_view(request: HttpRequest) -> HttpResponse:
    response = JsonResponse(keys.jwks())
    response["Access-Control-Allow-Origin"] = "*"
    # Short enough that a staged key is seen well before it is promoted.
    response["Cache-Control"] = "public, max-age=300"
    return response


class LogoutView(RPInitiatedLogoutView):
    """RP-initiated logout: ends the Vestibule session too, and with it every application's sign-in from it."""

    template_name = "vestibule/provider/logout_confirm.html"

    def validate_logout_request_user(self, id_token_hint: str | None, client_id: str | None) -> IDToken | None:
        if not id_token_hint:
            return None
        try:
            claims = keys.verify_issued(id_token_hint)
        except keys.TokenRejected:
            raise InvalidIDTokenError() from None
        jti = claims.get("jti")
        row = (
            IDToken.objects.select_related("application", "user").filter(jti=jti).first()
            if isinstance(jti, str)
            else None
        )
        if row is None:
            # Its sign-in has already ended (and its rows with it): nothing is left to end but the session.
            audience = claims.get("aud")
            audiences = [audience] if isinstance(audience, str) else list(audience or [])
            if client_id and client_id not in audiences:
                raise ClientIdMissmatch()
            return None
        if client_id and (row.application is None or row.application.client_id != client_id):
            raise ClientIdMissmatch()
        return row

    def validate_post_logout_redirect_uri(self, application: Any, post_logout_redirect_uri: str | None) -> None:
        super().validate_post_logout_redirect_uri(application, post_logout_redirect_uri)
        # Character for character, as redirect URIs: the library's match ignores the host's case.
        if post_logout_redirect_uri and post_logout_redirect_uri not in application.post_logout_redirect_uri_list():
            raise InvalidOIDCRedirectURIError("This client does not have this redirect uri registered.")

    def validate_logout_request(
        self, id_token_hint: str | None, client_id: str | None, post_logout_redirect_uri: str | None
    ) -> tuple[Any, Any]:
        id_token = self.validate_logout_request_user(id_token_hint, client_id)
        application = self.get_request_application(id_token, client_id)
        if post_logout_redirect_uri and application is None:
            raise InvalidOIDCClientError()
        self.validate_post_logout_redirect_uri(application, post_logout_redirect_uri)
        return application, id_token.user if id_token else None

    def get_request_application(self, id_token: IDToken | None, client_id: str | None) -> Any:
        if client_id:
            application = Application.objects.filter(client_id=client_id, revoked_at__isnull=True).first()
            if application is None:
                raise InvalidOIDCClientError()
            return application
        return id_token.application if id_token else None

    def do_logout(
        self,
        application: Any = None,
        post_logout_redirect_uri: str | None = None,
        state: str | None = None,
        token_user: Any = None,
    ) -> HttpResponse:
        request = self.request
        if application is not None:
            # The application asking is not told by back-channel what it just did: its sign-ins end
            # first, with the reason that says so, and the session's end below tells only the others.
            own = authorizations.open_authorizations().filter(application=application)
            if request.user.is_authenticated:
                own = own.filter(session_key=request.session.session_key or "")
            elif token_user is not None:
                # No Vestibule session in this browser: that application's open sign-ins of this person.
                own = own.filter(user=token_user)
            else:
                own = own.none()
            authorizations.end(own, deliveries.RP_INITIATED_LOGOUT)
        # Ending the Vestibule session ends every application's sign-in from it (provider.signals).
        logout(request)
        if post_logout_redirect_uri:
            target = (
                add_params_to_uri(post_logout_redirect_uri, [("state", state)]) if state else post_logout_redirect_uri
            )
            return HttpResponseRedirect(target)
        return _page(request, "logged_out.html")
