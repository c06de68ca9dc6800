"""SSO browser endpoints: start, SAML metadata and ACS, OIDC callback.

Each view resolves the connection, runs one protocol step, and hands the
verified subject to the login pipeline. Failures become a 4xx page carrying
the stable reason code and the login-trace reference.
"""

from __future__ import annotations

import copy
import logging
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone as dj_timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from vestibule.accounts.models import User
from vestibule.audit.events import client_ip, record
from vestibule.authority.break_glass import holds_sso_admin_everywhere
from vestibule.authority.principal import SSO_ADMIN, session_principal
from vestibule.connections.models import Connection, PendingLogin
from vestibule.domain.pipeline import LoginFailure
from vestibule.login import ratelimit
from vestibule.login.redirects import safe_next
from vestibule.login.sessions import start_session
from vestibule.oidc import OidcError, PendingAuthorization
from vestibule.outbound import NETWORK_REASONS
from vestibule.protocol_errors import ProtocolError
from vestibule.saml import (
    SamlError,
    build_authn_request,
    build_authn_request_form,
    build_sp_metadata,
    validate_response,
)
from vestibule.signin import adapters
from vestibule.signin import pending as pending_logins
from vestibule.signin.pipeline import (
    VerifiedSubject,
    require_enabled,
    run_pipeline,
)
from vestibule.signin.replay import DatabaseReplayCache
from vestibule.signin.trace import TraceRecorder

log = logging.getLogger("vestibule.sso")

# Refusals caused by the protocol message are 400; policy refusals are 403.
_BAD_REQUEST = {
    "sso.assertion_invalid", "sso.id_token_invalid", "sso.state_invalid", "sso.provider_error", "sso.provider_unavailable",
}  # fmt: skip
# OIDC failures by their protocol code; anything else about the ID token is sso.id_token_invalid.
_OIDC_REASONS = {
    "oidc.tenant_mismatch": "sso.tenant_mismatch",
    "oidc.provider_error": "sso.provider_error",
    "oidc.token_endpoint_error": "sso.provider_error",
    "oidc.userinfo_sub_mismatch": "sso.provider_error",
    "oidc.discovery_failed": "sso.provider_unavailable",
    "oidc.jwks_unavailable": "sso.provider_unavailable",
    "oidc.userinfo_failed": "sso.provider_unavailable",
    "oidc.state_invalid": "sso.state_invalid",
    "oidc.callback_invalid": "sso.state_invalid",
}


def _connection(connection_id: str, protocol: str | None = None) -> Connection:
    """The connection of the URL (any account: these are public sign-in endpoints), of ``protocol`` if given."""
    connection = Connection.objects.by_id(connection_id)
    if connection is None:
        raise Http404("unknown connection")
    if protocol is not None and connection.protocol != protocol:
        raise Http404(f"not a {protocol.upper()} connection")
    return connection


def _now() -> datetime:
    return datetime.now(timezone.utc)


def failure_page(request: HttpRequest, failure: LoginFailure, trace: TraceRecorder | None) -> HttpResponse:
    status = 400 if failure.code in _BAD_REQUEST else 403
    title = "Waiting for approval" if failure.code == "sso.pending_approval" else "We could not sign you in"
    return render(
        request,
        "vestibule/sso_error.html",
        {"title": title, "failure": failure, "trace_id": trace.id if trace else None},
        status=status,
    )


def _protocol_failure(exc: ProtocolError, code: str) -> LoginFailure:
    return LoginFailure(
        code,
        "validate",
        "The sign-in response from your identity provider was not valid.",
        expected=exc.expected,
        received=exc.received,
        fix_in=exc.fix_in,
        detail_code=exc.code,
    )


def _finish(request: HttpRequest, connection: Connection, trace: TraceRecorder, verified: VerifiedSubject, next_url: str) -> HttpResponse:
    try:
        user = run_pipeline(connection, verified, trace)
    except LoginFailure as failure:
        trace.fail(failure)
        return failure_page(request, failure, trace)
    trace.ok("session")
    trace.succeed(user.email)
    return start_session(request, user, method="sso", next_url=next_url, account=connection.account, connection_id=str(connection.pk), trace_id=trace.id)


# Start ---------------------------------------------------------------------


@require_GET
def sso_start(request: HttpRequest, connection_id: str) -> HttpResponse:
    """The sign-in link: goes straight to the connection's provider (seed 001)."""
    if ratelimit.hit(ratelimit.SSO_STARTS_PER_IP, client_ip(request) or "unknown") > ratelimit.SSO_STARTS_PER_IP.attempts:
        return render(
            request, "vestibule/message.html",
            {"title": "Too many sign-in attempts", "text": "Too many sign-ins were started from your network. Wait a few minutes and try again.", "code": "sso.rate_limited"},
            status=429,
        )  # fmt: skip
    connection = _connection(connection_id)
    next_url = safe_next(request.GET.get("next"))
    try:
        require_enabled(connection)
        if connection.protocol == Connection.Protocol.SAML:
            return _saml_start(request, connection, next_url, login_hint=request.GET.get("login_hint", ""))
        return _oidc_start(request, connection, next_url, login_hint=request.GET.get("login_hint", ""))
    except LoginFailure as failure:
        trace = TraceRecorder(request, connection, connection.protocol)
        trace.fail(failure)
        return failure_page(request, failure, trace)
    except (SamlError, OidcError) as exc:
        trace = TraceRecorder(request, connection, connection.protocol)
        failure = LoginFailure(
            "sso.connection_misconfigured", "start",
            "This sign-in is not fully set up yet. Ask your administrator.",
            expected=exc.expected, received=exc.received or exc.description[:200],
            fix_in="vestibule", detail_code=exc.code,
        )
        trace.fail(failure)
        return failure_page(request, failure, trace)


def _saml_start(request: HttpRequest, connection: Connection, next_url: str, *, login_hint: str = "") -> HttpResponse:
    sp = adapters.service_provider(connection)
    settings = adapters.saml_settings(connection)
    pending, token = pending_logins.create(request, connection, next_url=next_url, bind_browser=pending_logins.binds_saml_post())
    if settings.sso_binding == "post":
        form, request_id = build_authn_request_form(sp, settings, _now(), pending.key)
        response: HttpResponse = render(request, "vestibule/post_form.html", {"form": form})
    else:
        url, request_id = build_authn_request(sp, settings, _now(), pending.key)
        if login_hint:
            # Outside the signed octets (bindings §3.4.4.1 signs only SAMLRequest,
            # RelayState and SigAlg); Entra ID, Okta and the test IdP pre-fill it.
            url += "&" + urlencode({"login_hint": login_hint[:254]})
        response = HttpResponseRedirect(url)
    PendingLogin.objects.filter(pk=pending.pk).update(request_id=request_id)
    pending_logins.set_binding_cookie(response, token)
    return response


def _oidc_start(
    request: HttpRequest,
    connection: Connection,
    next_url: str,
    *,
    login_hint: str = "",
    purpose: str = PendingLogin.Purpose.LOGIN,
    data: dict[str, Any] | None = None,
) -> HttpResponse:
    rp = adapters.relying_party(connection)
    extra = {"login_hint": login_hint[:254]} if login_hint else None
    auth = rp.begin(adapters.redirect_uri(connection), extra_params=extra)
    _, token = pending_logins.create(
        request, connection, key=auth.state, next_url=next_url, purpose=purpose,
        data={**(data or {}), "nonce": auth.nonce, "code_verifier": auth.code_verifier},
    )  # fmt: skip
    response = HttpResponseRedirect(auth.url)
    pending_logins.set_binding_cookie(response, token)
    return response


# SAML ----------------------------------------------------------------------


@require_GET
def saml_metadata(request: HttpRequest, connection_id: str) -> HttpResponse:
    connection = _connection(connection_id, Connection.Protocol.SAML)
    try:
        settings = adapters.saml_settings(connection)
    except SamlError:
        settings = None
    xml = build_sp_metadata(adapters.service_provider(connection), settings=settings)
    return HttpResponse(xml, content_type="application/samlmetadata+xml")


@csrf_exempt  # The IdP posts cross-site; the signed response and RelayState are the proof.
@require_POST
def saml_acs(request: HttpRequest, connection_id: str) -> HttpResponse:
    connection = _connection(connection_id, Connection.Protocol.SAML)
    trace = TraceRecorder(request, connection, "saml")
    try:
        require_enabled(connection)
        relay_state = request.POST.get("RelayState") or None
        pending = pending_logins.consume(request, connection, relay_state) if relay_state else None
        if relay_state and pending is None:
            trace.ok("relay_state", result="unknown, used or expired reference: treated as unsolicited")
        saml_response = request.POST.get("SAMLResponse")
        if not saml_response:
            raise LoginFailure("sso.assertion_invalid", "validate", "The sign-in response is empty.", expected="a SAMLResponse form field", received="none", detail_code="saml.malformed")
        try:
            assertion = validate_response(
                saml_response,
                sp=adapters.service_provider(connection),
                settings=adapters.saml_settings(connection),
                now=_now(),
                expected_request_id=pending.request_id if pending else None,
                replay=DatabaseReplayCache(),
            )
        except SamlError as exc:
            raise _protocol_failure(exc, "sso.assertion_invalid") from None
        notes = {} if assertion.has_authn_statement else {"authn_statement": "absent (accepted: answers our own AuthnRequest)"}
        trace.ok("validate", issuer=assertion.issuer, assertion_id=assertion.assertion_id, signed=",".join(assertion.signed_parts), **notes)
    except LoginFailure as failure:
        trace.fail(failure)
        return failure_page(request, failure, trace)
    verified = VerifiedSubject(subject=assertion.name_id, claims=assertion.attributes)
    return _finish(request, connection, trace, verified, pending.next_url if pending else "/")


# OIDC ----------------------------------------------------------------------


@require_GET
def oidc_callback(request: HttpRequest, connection_id: str) -> HttpResponse:
    connection = _connection(connection_id, Connection.Protocol.OIDC)
    trace = TraceRecorder(request, connection, "oidc")
    try:
        pending = pending_logins.consume(request, connection, request.GET.get("state"))
        if pending is None:
            raise LoginFailure(
                "sso.state_invalid", "state",
                "This sign-in link was already used, has expired, or was started in another browser. Start again.",
                expected="the state of a login started in this browser in the last 10 minutes", received="unknown, used or expired state",
                fix_in="user", detail_code="oidc.state_invalid",
            )
        learn = pending.purpose == PendingLogin.Purpose.CONNECT_ORGANIZATION
        # "Connect organization" signs nobody in, and must work before the
        # connection is enabled: enabling an unbound connection would route
        # the domain's users to a provider that refuses them all.
        if not learn:
            require_enabled(connection)
        try:
            login = adapters.relying_party(_unbound(connection) if learn else connection).complete(
                request.GET.dict(),
                PendingAuthorization(
                    state=pending.key, nonce=pending.data["nonce"], code_verifier=pending.data["code_verifier"],
                    redirect_uri=adapters.redirect_uri(connection),
                ),
                learn_tenant=learn,
            )
        except OidcError as exc:
            raise _protocol_failure(exc, _OIDC_REASONS.get(exc.code, "sso.id_token_invalid")) from None
        trace.ok("validate", subject=login.subject, tenant=login.tenant_id or "")
    except LoginFailure as failure:
        trace.fail(failure)
        return failure_page(request, failure, trace)
    if learn:
        return _record_tenant(request, connection, pending, login.tenant_id, trace)
    return _finish(request, connection, trace, VerifiedSubject(subject=login.subject, claims=login.claims), pending.next_url)


def _unbound(connection: Connection) -> Connection:
    """The connection without its learned binding, for "connect organization" callbacks only.

    Validated against the bound tenant, a different one would be refused as a
    plain tenant mismatch, and a confirmed rebinding could never happen;
    observing it instead lets ``_record_tenant`` decide. That is safe because
    this flow signs nobody in. A tenant pinned in the settings still applies.
    """
    unbound = copy.copy(connection)
    unbound.external_tenant_id = ""
    return unbound


def _record_tenant(request: HttpRequest, connection: Connection, pending: PendingLogin, tenant_id: str | None, trace: TraceRecorder) -> HttpResponse:
    """Connect organization (seed 003): bind the connection to the tenant just seen."""
    admin = pending.initiated_by
    if admin is None or not holds_sso_admin_everywhere(admin, [connection.account]) or not tenant_id:
        failure = LoginFailure(
            "sso.connect_not_allowed", "connect",
            "Connecting an organization needs an sso-admin of the account, and a provider that names its tenant.",
            expected="an sso-admin starting 'connect organization'", received=admin.email if admin else "nobody signed in", fix_in="vestibule",
        )
        trace.fail(failure)
        return failure_page(request, failure, trace)
    bound = connection.external_tenant_id
    if bound and bound != tenant_id and not _rebind_confirmed(pending, bound):
        failure = _rebind_unconfirmed(bound, tenant_id)
        trace.fail(failure)
        return failure_page(request, failure, trace)
    # Compare-and-set: a binding changed by someone else since this flow began
    # was not the one the admin saw (or confirmed replacing), so it stays.
    changed = Connection.objects.filter(pk=connection.pk, external_tenant_id=bound).update(
        external_tenant_id=tenant_id, tenant_verified_at=dj_timezone.now(), updated_at=dj_timezone.now()
    )
    if changed != 1:
        now_bound = Connection.objects.get(pk=connection.pk).external_tenant_id or "none"
        failure = LoginFailure(
            "sso.connect_rebind_unconfirmed", "connect",
            f"The connection's organization changed while you were signing in (it is now {now_bound}). Nothing was changed by this attempt. "
            "Review it and start 'Connect organization' again.",
            expected=f"binding still {bound or 'none'}", received=f"binding {now_bound}", fix_in="user",
        )  # fmt: skip
        trace.fail(failure)
        return failure_page(request, failure, trace)
    rebound = bool(bound) and bound != tenant_id
    trace.ok("connect", tenant=tenant_id, previous_tenant=bound if rebound else "")
    trace.succeed(admin.email, purpose="connect_organization", tenant=tenant_id)
    record(
        "connection.organization_connected", request=request, account=connection.account, connection=connection, actor_user=admin,
        tenant=tenant_id, previous_tenant=bound if rebound else None,
    )  # fmt: skip
    text = f"{connection.name} is now bound to the external organization {tenant_id}. Sign-ins from any other organization are refused."
    if rebound:
        text += f" It replaces {bound}, whose people can no longer sign in through this connection."
    return render(request, "vestibule/message.html", {"title": "Organization connected", "text": text, "hint": "/"})


def _rebind_confirmed(pending: PendingLogin, bound: str) -> bool:
    # The confirmation covers replacing the binding the admin was shown, not whatever it became since.
    return pending.data.get("confirm_rebind") is True and pending.data.get("replaces_tenant") == bound


def _rebind_unconfirmed(bound: str, seen: str) -> LoginFailure:
    return LoginFailure(
        "sso.connect_rebind_unconfirmed", "connect",
        f"This connection is already bound to the external organization {bound}, but you signed in with {seen}. Nothing was changed. "
        f"To move the connection to {seen}, start 'Connect organization' again and confirm replacing the binding; "
        f"to keep it, sign in at the provider with an account of {bound}.",
        expected=f"tenant {bound}, or a confirmed rebinding", received=f"tenant {seen}, rebinding not confirmed", fix_in="user",
    )


@require_http_methods(["GET", "POST"])
def oidc_connect(request: HttpRequest, connection_id: str) -> HttpResponse:
    """Connect organization (seed 003): GET explains and asks; only the CSRF-protected POST starts the flow.

    Starting on GET let any page send a signed-in sso-admin's browser here
    (the session cookie is SameSite=Lax, so it rides along on top-level
    navigations) and bind the connection to the attacker's tenant.
    """
    connection = _connection(connection_id, Connection.Protocol.OIDC)
    if not request.user.is_authenticated:
        return HttpResponseRedirect("/login?" + urlencode({"next": request.path}))
    user: User = request.user  # type: ignore[assignment]
    # In the session's own scope: a sign-in through another organization's provider is not this account's sso-admin.
    if SSO_ADMIN not in session_principal(user, request.session).roles_in(connection.account):
        return render(request, "vestibule/message.html", {"title": "Not allowed", "text": "Connecting an organization needs the sso-admin role in this account.", "code": "sso.connect_not_allowed"}, status=403)
    bound = connection.external_tenant_id
    if request.method == "GET":
        return render(request, "vestibule/oidc_connect.html", {"connection": connection, "bound": bound})
    confirm = bool(bound) and request.POST.get("confirm_rebind") == "yes"
    if confirm and request.POST.get("shown_tenant") != bound:
        # The admin confirmed replacing the binding the page showed; it has changed since.
        return render(request, "vestibule/oidc_connect.html", {"connection": connection, "bound": bound, "changed": True}, status=409)
    try:
        return _oidc_start(
            request, connection, "/", purpose=PendingLogin.Purpose.CONNECT_ORGANIZATION,
            data={"confirm_rebind": confirm, "replaces_tenant": bound if confirm else ""},
        )  # fmt: skip
    except OidcError as exc:
        # A destination the outbound guard refuses is this connection's own setting (a 4xx to fix here);
        # a provider that is down or answers nonsense is upstream's (502). Either way only our reason text.
        refused = exc.outbound_reason is not None and exc.outbound_reason not in NETWORK_REASONS
        trace = TraceRecorder(request, connection, connection.protocol)
        trace.fail(LoginFailure(
            "sso.connection_misconfigured" if refused else "sso.provider_unavailable", "connect",
            "The identity provider could not be used.", expected=exc.expected, received=exc.received or exc.code,
            fix_in="vestibule" if refused else "identity_provider", detail_code=exc.code,
        ))  # fmt: skip
        advice = "Check the connection's issuer settings." if refused else "Try again in a few minutes; if it keeps failing, check the connection's issuer settings."
        return render(
            request, "vestibule/message.html",
            {"title": "Provider unavailable", "text": f"Vestibule could not use {connection.name}'s identity provider: {exc.description.rstrip('.')}. {advice}", "code": exc.code, "trace_id": trace.id},
            status=422 if refused else 502,
        )  # fmt: skip
