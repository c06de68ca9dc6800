"""SSO browser endpoints: start, SAML metadata and ACS, OIDC callback.

Each view runs one protocol step and hands the verified subject to the login
pipeline. Refusals are not handled here: ``signin.failures.sso_endpoint``
resolves the connection, keeps the login trace and turns every
``LoginFailure`` or protocol error into the failure page, with the status of
its reason in ``vestibule.domain.reasons``.
"""

from __future__ import annotations

import copy
import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
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
from vestibule.domain.reasons import reason
from vestibule.login import ratelimit
from vestibule.login.redirects import safe_next
from vestibule.login.sessions import announce_role_changes, start_session
from vestibule.oidc import PendingAuthorization
from vestibule.protocol_errors import ProtocolError
from vestibule.saml import (
    SamlError,
    build_authn_request,
    build_authn_request_form,
    build_sp_metadata,
    validate_response,
)
from vestibule.signin import adapters, dry_run
from vestibule.signin import pending as pending_logins
from vestibule.signin.failures import (
    connection_for,
    provider_unusable,
    refused_by_protocol,
    sso_endpoint,
    unusable_at_start,
)
from vestibule.signin.pipeline import (
    VerifiedSubject,
    rehearse_pipeline,
    require_enabled,
    run_pipeline,
)
from vestibule.signin.replay import DatabaseReplayCache
from vestibule.signin.trace import TraceRecorder

log = logging.getLogger("vestibule.sso")


def _now() -> datetime:
    return datetime.now(UTC)


def _finish(
    request: HttpRequest, connection: Connection, trace: TraceRecorder, verified: VerifiedSubject, next_url: str
) -> HttpResponse:
    user = run_pipeline(connection, verified, trace)
    trace.ok("session")
    # The trace, its audit event and the session rows in one transaction: one commit where each
    # INSERT was its own (on PostgreSQL a WAL flush each, on SQLite a write lock each).
    with transaction.atomic():
        trace.succeed(user.email)
        response = start_session(
            request,
            user,
            method="sso",
            next_url=next_url,
            account=connection.account,
            connection_id=str(connection.pk),
            trace_id=trace.id,
        )
    # Roles granted or changed by this login: the one-time announcement first (seed 002; helper sso).
    return announce_role_changes(request, response, account=connection.account, steps=trace.steps)


# Start ---------------------------------------------------------------------


def _rate_limited(view: Callable[[HttpRequest, str], HttpResponse]) -> Callable[[HttpRequest, str], HttpResponse]:
    """Sign-in starts per client address, counted before the connection is even looked up; no trace is written."""

    @functools.wraps(view)
    def limited(request: HttpRequest, connection_id: str) -> HttpResponse:
        if (
            ratelimit.hit(ratelimit.SSO_STARTS_PER_IP, client_ip(request) or "unknown")
            > ratelimit.SSO_STARTS_PER_IP.attempts
        ):
            limit = reason("sso.rate_limited")
            return render(
                request,
                "vestibule/message.html",
                {"title": limit.title, "text": limit.message, "code": limit.code},
                status=limit.status,
            )
        return view(request, connection_id)

    return limited


@require_GET
@_rate_limited
@sso_endpoint(protocol_errors=unusable_at_start)
def sso_start(request: HttpRequest, connection: Connection, trace: TraceRecorder) -> HttpResponse:
    """The sign-in link: goes straight to the connection's provider (seed 001)."""
    next_url = safe_next(request.GET.get("next"))
    require_enabled(connection)
    if connection.protocol == Connection.Protocol.SAML:
        return _saml_start(request, connection, next_url, login_hint=request.GET.get("login_hint", ""))
    return _oidc_start(request, connection, next_url, login_hint=request.GET.get("login_hint", ""))


def _saml_start(
    request: HttpRequest,
    connection: Connection,
    next_url: str,
    *,
    login_hint: str = "",
    data: dict[str, Any] | None = None,
) -> HttpResponse:
    sp = adapters.service_provider(connection)
    settings = adapters.saml_settings(connection)
    pending, token = pending_logins.prepare(
        request, connection, next_url=next_url, data=data, bind_browser=pending_logins.binds_saml_post()
    )
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
    # Stored once the request ID is known (one INSERT), and only for a request that could be built.
    pending.request_id = request_id
    pending.save(force_insert=True)
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


# ---- Test sign-ins (setup links; helper setup-links) ---------------------------


def start_test_login(
    request: HttpRequest, connection: Connection, *, handler: str, data: dict[str, Any]
) -> HttpResponse:
    """Send the browser to the connection's provider for a test sign-in, also while the connection is disabled.

    Its end is the registered ``handler``'s (see :mod:`vestibule.signin.dry_run`):
    the ACS or callback validates the response as for any login and plans it,
    applying nothing and starting no session. Raises the protocol error of
    settings that cannot start a sign-in, for the caller to show.
    """
    payload = {**data, dry_run.DATA_KEY: handler}
    if connection.protocol == Connection.Protocol.SAML:
        return _saml_start(request, connection, "", data=payload)
    return _oidc_start(request, connection, "", data=payload)


def _rehearsed(connection: Connection, verify: Callable[[], VerifiedSubject]) -> dry_run.DryRun:
    """Validate (``verify``) and plan a test sign-in; any refusal becomes the result's ``failure``."""
    verified = None
    try:
        verified = verify()
        identity, rehearsal = rehearse_pipeline(connection, verified)
    except (LoginFailure, ProtocolError) as exc:
        failure = exc if isinstance(exc, LoginFailure) else refused_by_protocol(exc, connection)
        claims = dry_run.shown_claims(verified.claims) if verified is not None else None
        return dry_run.DryRun(verified.subject if verified else None, claims, failure=failure)
    return dry_run.DryRun(verified.subject, dry_run.shown_claims(verified.claims), identity, rehearsal)


# ---- (end of test sign-ins)


# SAML ----------------------------------------------------------------------


@require_GET
def saml_metadata(request: HttpRequest, connection_id: str) -> HttpResponse:
    connection = connection_for(connection_id, Connection.Protocol.SAML)
    try:
        settings = adapters.saml_settings(connection)
    except SamlError:
        settings = None
    xml = build_sp_metadata(adapters.service_provider(connection), settings=settings)
    return HttpResponse(xml, content_type="application/samlmetadata+xml")


@csrf_exempt  # The IdP posts cross-site; the signed response and RelayState are the proof.
@require_POST
@sso_endpoint(Connection.Protocol.SAML)
def saml_acs(request: HttpRequest, connection: Connection, trace: TraceRecorder) -> HttpResponse:
    relay_state = request.POST.get("RelayState") or None
    pending = pending_logins.consume(request, connection, relay_state) if relay_state else None
    # A test sign-in (setup links) works before the connection is enabled, and ends with its handler.
    test = dry_run.handler_for(pending)
    if test is not None and pending is not None:
        return test(
            request,
            connection,
            pending,
            _rehearsed(connection, lambda: _saml_verified(request, connection, trace, pending)),
        )
    require_enabled(connection)
    if relay_state and pending is None:
        trace.ok("relay_state", result="unknown, used or expired reference: treated as unsolicited")
    verified = _saml_verified(request, connection, trace, pending)
    return _finish(request, connection, trace, verified, pending.next_url if pending else "/")


def _saml_verified(
    request: HttpRequest, connection: Connection, trace: TraceRecorder, pending: PendingLogin | None
) -> VerifiedSubject:
    """The posted SAMLResponse, validated completely (signature, audience, lifetime, InResponseTo, replay)."""
    saml_response = request.POST.get("SAMLResponse")
    if not saml_response:
        raise LoginFailure(
            "sso.assertion_invalid",
            "validate",
            "The sign-in response is empty.",
            expected="a SAMLResponse form field",
            received="none",
            detail_code="saml.malformed",
        )
    assertion = validate_response(
        saml_response,
        sp=adapters.service_provider(connection),
        settings=adapters.saml_settings(connection),
        now=_now(),
        expected_request_id=pending.request_id if pending else None,
        replay=DatabaseReplayCache(),
    )
    notes = (
        {} if assertion.has_authn_statement else {"authn_statement": "absent (accepted: answers our own AuthnRequest)"}
    )
    trace.ok(
        "validate",
        issuer=assertion.issuer,
        assertion_id=assertion.assertion_id,
        signed=",".join(assertion.signed_parts),
        **notes,
    )
    return VerifiedSubject(subject=assertion.name_id, claims=assertion.attributes)


# OIDC ----------------------------------------------------------------------


@require_GET
@sso_endpoint(Connection.Protocol.OIDC)
def oidc_callback(request: HttpRequest, connection: Connection, trace: TraceRecorder) -> HttpResponse:
    pending = pending_logins.consume(request, connection, request.GET.get("state"))
    if pending is None:
        raise LoginFailure(
            "sso.state_invalid", "state",
            expected="the state of a login started in this browser in the last 10 minutes", received="unknown, used or expired state",
            detail_code="oidc.state_invalid",
        )  # fmt: skip
    learn = pending.purpose == PendingLogin.Purpose.CONNECT_ORGANIZATION
    # A test sign-in (setup links) works before the connection is enabled, and ends with its handler.
    test = dry_run.handler_for(pending)
    if test is not None and not learn:
        return test(
            request,
            connection,
            pending,
            _rehearsed(connection, lambda: _oidc_verified(request, connection, trace, pending)),
        )
    # "Connect organization" signs nobody in, and must work before the
    # connection is enabled: enabling an unbound connection would route
    # the domain's users to a provider that refuses them all.
    if not learn:
        require_enabled(connection)
    login = adapters.relying_party(_unbound(connection) if learn else connection).complete(
        request.GET.dict(),
        PendingAuthorization(
            state=pending.key, nonce=pending.data["nonce"], code_verifier=pending.data["code_verifier"],
            redirect_uri=adapters.redirect_uri(connection),
        ),
        learn_tenant=learn,
    )  # fmt: skip
    trace.ok("validate", subject=login.subject, tenant=login.tenant_id or "")
    if learn:
        return _record_tenant(request, connection, pending, login.tenant_id, trace)
    return _finish(
        request, connection, trace, VerifiedSubject(subject=login.subject, claims=login.claims), pending.next_url
    )


def _oidc_verified(
    request: HttpRequest, connection: Connection, trace: TraceRecorder, pending: PendingLogin
) -> VerifiedSubject:
    """A test sign-in's callback, validated as any login's (state, code exchange, ID token, nonce, tenant)."""
    login = adapters.relying_party(connection).complete(
        request.GET.dict(),
        PendingAuthorization(
            state=pending.key, nonce=pending.data["nonce"], code_verifier=pending.data["code_verifier"],
            redirect_uri=adapters.redirect_uri(connection),
        ),
    )  # fmt: skip
    trace.ok("validate", subject=login.subject, tenant=login.tenant_id or "")
    return VerifiedSubject(subject=login.subject, claims=login.claims)


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


def _record_tenant(
    request: HttpRequest, connection: Connection, pending: PendingLogin, tenant_id: str | None, trace: TraceRecorder
) -> HttpResponse:
    """Connect organization (seed 003): bind the connection to the tenant just seen."""
    admin = pending.initiated_by
    if admin is None or not holds_sso_admin_everywhere(admin, [connection.account]) or not tenant_id:
        raise LoginFailure(
            "sso.connect_not_allowed", "connect",
            expected="an sso-admin starting 'connect organization'", received=admin.email if admin else "nobody signed in",
        )  # fmt: skip
    bound = connection.external_tenant_id
    if bound and bound != tenant_id and not _rebind_confirmed(pending, bound):
        raise _rebind_unconfirmed(bound, tenant_id)
    # Compare-and-set: a binding changed by someone else since this flow began
    # was not the one the admin saw (or confirmed replacing), so it stays.
    changed = Connection.objects.filter(pk=connection.pk, external_tenant_id=bound).update(
        external_tenant_id=tenant_id, tenant_verified_at=dj_timezone.now(), updated_at=dj_timezone.now()
    )
    if changed != 1:
        now_bound = Connection.objects.get(pk=connection.pk).external_tenant_id or "none"
        raise LoginFailure(
            "sso.connect_rebind_unconfirmed", "connect",
            f"The connection's organization changed while you were signing in (it is now {now_bound}). Nothing was changed by this attempt. "
            "Review it and start 'Connect organization' again.",
            expected=f"binding still {bound or 'none'}", received=f"binding {now_bound}",
        )  # fmt: skip
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
        "sso.connect_rebind_unconfirmed",
        "connect",
        f"This connection is already bound to the external organization {bound}, but you signed in with {seen}. Nothing was changed. "
        f"To move the connection to {seen}, start 'Connect organization' again and confirm replacing the binding; "
        f"to keep it, sign in at the provider with an account of {bound}.",
        expected=f"tenant {bound}, or a confirmed rebinding",
        received=f"tenant {seen}, rebinding not confirmed",
    )


@require_http_methods(["GET", "POST"])
@sso_endpoint(Connection.Protocol.OIDC, protocol_errors=provider_unusable)
def oidc_connect(request: HttpRequest, connection: Connection, trace: TraceRecorder) -> HttpResponse:
    """Connect organization (seed 003): GET explains and asks; only the CSRF-protected POST starts the flow.

    Starting on GET let any page send a signed-in sso-admin's browser here
    (the session cookie is SameSite=Lax, so it rides along on top-level
    navigations) and bind the connection to the attacker's tenant.
    """
    if not request.user.is_authenticated:
        return HttpResponseRedirect("/login?" + urlencode({"next": request.path}))
    user: User = request.user
    # In the session's own scope: a sign-in through another organization's provider is not this account's sso-admin.
    if SSO_ADMIN not in session_principal(user, request.session).roles_in(connection.account):
        # Refused before any attempt begins: a plain page, no login trace.
        return render(
            request,
            "vestibule/message.html",
            {
                "title": "Not allowed",
                "text": "Connecting an organization needs the sso-admin role in this account.",
                "code": "sso.connect_not_allowed",
            },
            status=403,
        )
    bound = connection.external_tenant_id
    if request.method == "GET":
        return render(request, "vestibule/oidc_connect.html", {"connection": connection, "bound": bound})
    confirm = bool(bound) and request.POST.get("confirm_rebind") == "yes"
    if confirm and request.POST.get("shown_tenant") != bound:
        # The admin confirmed replacing the binding the page showed; it has changed since.
        return render(
            request,
            "vestibule/oidc_connect.html",
            {"connection": connection, "bound": bound, "changed": True},
            status=409,
        )
    return _oidc_start(
        request, connection, "/", purpose=PendingLogin.Purpose.CONNECT_ORGANIZATION,
        data={"confirm_rebind": confirm, "replaces_tenant": bound if confirm else ""},
    )  # fmt: skip
