"""How an SSO endpoint fails: one login trace and one failure page (house style rules 5, 19, 20).

Every browser endpoint of a sign-in (start, SAML ACS, OIDC callback, connect
organization) is wrapped in :func:`sso_endpoint`. It resolves the connection
the URL names, opens the attempt's :class:`~vestibule.signin.trace.TraceRecorder`,
and runs the view. A refusal, raised anywhere below as a
:class:`~vestibule.domain.pipeline.LoginFailure` or a protocol error
(:class:`~vestibule.protocol_errors.ProtocolError`), ends there: the failed
step is recorded in the trace (and the audit log), and the person gets
``vestibule/sso_error.html`` with the HTTP status, title and message of the
reason in :mod:`vestibule.domain.reasons`. Views never catch refusals.

A protocol error becomes the reason its class declares, except where an
endpoint says what it means there: at the start of a sign-in (nothing has
been received yet) it is the connection that cannot be used as configured.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from vestibule.accounts.models import Account
from vestibule.audit.traces import openable_by
from vestibule.connections.models import Connection
from vestibule.domain.pipeline import LoginFailure
from vestibule.domain.reasons import FixIn, reason
from vestibule.outbound import NETWORK_REASONS
from vestibule.protocol_errors import ProtocolError
from vestibule.signin.compiled import CompiledQuery, attnames, instance
from vestibule.signin.trace import TraceRecorder

__all__ = [
    "SsoView",
    "connection_for",
    "failure_page",
    "provider_unusable",
    "refused_by_protocol",
    "sso_endpoint",
    "unusable_at_start",
]

#: A view behind :func:`sso_endpoint`: the request, the URL's connection and the attempt's trace.
SsoView = Callable[[HttpRequest, Connection, TraceRecorder], HttpResponse]
#: What a protocol error means at one endpoint.
Translation = Callable[[ProtocolError, Connection], LoginFailure]


# ``Connection.objects.by_id`` with its account, compiled once (signin.compiled): every start and ACS runs it.
_CONNECTION = CompiledQuery(
    lambda pk: Connection.objects.filter(pk=pk).values_list(*attnames(Connection), *attnames(Account, "account__")),
    pk=uuid.UUID,
)


def connection_for(connection_id: str, protocol: str | None = None) -> Connection:
    """The connection of the URL (any account: these are public sign-in endpoints), of ``protocol`` if given."""
    try:
        pk = uuid.UUID(str(connection_id))
    except ValueError:
        raise Http404("unknown connection") from None
    rows = _CONNECTION.rows(pk=pk)
    if not rows:
        raise Http404("unknown connection")
    connection = instance(Connection, rows[0], 0)
    connection.account = instance(Account, rows[0], len(Connection._meta.concrete_fields))
    if protocol is not None and connection.protocol != protocol:
        raise Http404(f"not a {protocol.upper()} connection")
    return connection


def refused_by_protocol(exc: ProtocolError, connection: Connection | None = None) -> LoginFailure:
    """A protocol error that stopped a received response: the reason its class declares, at the validate step."""
    declared = reason(exc.reason)
    return LoginFailure(
        exc.reason,
        "validate" if "validate" in declared.steps else declared.step,
        expected=exc.expected,
        received=exc.received,
        fix_in=exc.fix_in,
        detail_code=exc.code,
    )


def unusable_at_start(exc: ProtocolError, connection: Connection | None = None) -> LoginFailure:
    """Before anything is received, a protocol error means the connection cannot be used as configured."""
    return LoginFailure(
        "sso.connection_misconfigured",
        "start",
        expected=exc.expected,
        received=exc.received or exc.description[:200],
        fix_in=FixIn.VESTIBULE,
        detail_code=exc.code,
    )


def provider_unusable(exc: ProtocolError, connection: Connection) -> LoginFailure:
    """Connect organization could not reach the provider.

    A destination the outbound guard refuses is this connection's own setting
    (the admin fixes it here: 422); a provider that is down or answers
    nonsense is upstream's (502). Either way the page says only our reason text.
    """
    outbound = getattr(exc, "outbound_reason", None)
    refused = outbound is not None and outbound not in NETWORK_REASONS
    advice = (
        "Check the connection's issuer settings."
        if refused
        else "Try again in a few minutes; if it keeps failing, check the connection's issuer settings."
    )
    return LoginFailure(
        "sso.connection_misconfigured" if refused else "sso.provider_unavailable",
        "connect",
        f"We could not use {connection.name}'s identity provider: {exc.description.rstrip('.')}. {advice}",
        expected=exc.expected,
        received=exc.received or exc.code,
        fix_in=FixIn.VESTIBULE if refused else FixIn.IDENTITY_PROVIDER,
        detail_code=exc.code,
    )


def failure_page(request: HttpRequest, failure: LoginFailure, trace: TraceRecorder | None) -> HttpResponse:
    """The page a refused person sees: the reason's title and status, the message, codes and trace reference."""
    trace_id = trace.id if trace else None
    # The console link to the trace, for an sso-admin of its account only (the refused person sees the reference).
    trace_account = (
        openable_by(getattr(request, "user", None), getattr(request, "session", None), trace_id) if trace_id else None
    )
    return render(
        request,
        "vestibule/sso_error.html",
        {
            "title": failure.title,
            "failure": failure,
            "trace_id": trace_id,
            "trace_account": trace_account,
            # The sign-in page's look: the account whose connection refused (base.html shows its name and logo).
            "brand_account": trace.connection.account if trace else None,
        },
        status=failure.status,
    )


def fail(request: HttpRequest, trace: TraceRecorder, failure: LoginFailure) -> HttpResponse:
    """Record the refusal in the attempt's trace (and the audit log), then render its page."""
    trace.fail(failure)
    return failure_page(request, failure, trace)


def sso_endpoint(
    protocol: str | None = None, *, protocol_errors: Translation = refused_by_protocol
) -> Callable[[SsoView], Callable[[HttpRequest, str], HttpResponse]]:
    """Wrap an SSO view taking ``(request, connection, trace)`` into a URL view taking ``(request, connection_id)``.

    ``protocol`` restricts the endpoint to SAML or OIDC connections (others
    are a 404). ``protocol_errors`` says what a protocol error means here.
    The trace is saved only when the attempt ends (refused here, or finished
    by the view), so a view that answers otherwise leaves no trace.
    """

    def decorate(view: SsoView) -> Callable[[HttpRequest, str], HttpResponse]:
        @functools.wraps(view)
        def endpoint(request: HttpRequest, connection_id: str) -> HttpResponse:
            connection = connection_for(connection_id, protocol)
            trace = TraceRecorder(request, connection, connection.protocol)
            try:
                return view(request, connection, trace)
            except LoginFailure as failure:
                return fail(request, trace, failure)
            except ProtocolError as exc:
                return fail(request, trace, protocol_errors(exc, connection))

        return endpoint

    return decorate
