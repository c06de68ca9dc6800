"""Prometheus metrics: the counters the sign-in code moves, the request histogram, and ``GET /metrics``.

Under ``vestibule serve`` every gunicorn worker writes its samples to
``PROMETHEUS_MULTIPROC_DIR`` (set by the CLI before ``prometheus_client`` is
imported) and a scrape of any worker sums them all; a finished worker's files
are marked dead by gunicorn's ``child_exit`` hook. Elsewhere (tests, a plain
WSGI server) the process's default registry is served.

Every label is a bounded set: protocols, outcomes, the ``sso.*`` reason codes
of :mod:`vestibule.domain.reasons` (a family such as ``sso.claim_missing.email``
counts under its family), grant types, the ``outbound.*`` reasons and URL
route names, never a raw path or anything a client sends.

``/metrics`` answers only ``Authorization: Bearer $VESTIBULE_METRICS_TOKEN``
(compared in constant time): 404 while the variable is unset, 401 otherwise.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Callable

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from vestibule.domain.reasons import UnknownReason, reason

__all__ = [
    "RequestMetricsMiddleware",
    "metrics_view",
    "outbound_fetch_error",
    "password_login",
    "sso_login",
    "token_issued",
]

SSO_LOGINS = Counter(
    "vestibule_sso_logins",
    "SSO sign-ins that ended, by protocol, outcome and reason code",
    ["protocol", "outcome", "reason"],
)
PASSWORD_LOGINS = Counter("vestibule_password_logins", "Password checks, by outcome", ["outcome"])
REQUEST_DURATION = Histogram(
    "vestibule_http_request_duration_seconds", "Time to answer a request, by URL route name", ["route"]
)
OUTBOUND_FETCH_ERRORS = Counter(
    "vestibule_outbound_fetch_errors", "Server-side fetches that failed or were refused, by reason", ["kind"]
)
OP_TOKENS = Counter("vestibule_op_tokens", "Token endpoint answers of the OpenID Provider", ["grant", "outcome"])


def sso_login(protocol: str, outcome: str, code: str = "") -> None:
    """One finished SSO sign-in: ``outcome`` "success" (no code) or "failure" with its reason code."""
    label = ""
    if code:
        try:
            label = reason(code).code
        except UnknownReason:
            label = "other"
    SSO_LOGINS.labels(protocol=protocol, outcome=outcome, reason=label).inc()


def password_login(outcome: str) -> None:
    """One password check: "success", "invalid", "locked" or "rate_limited"."""
    PASSWORD_LOGINS.labels(outcome=outcome).inc()


def outbound_fetch_error(kind: str) -> None:
    """A server-side fetch failed: ``kind`` is an ``outbound.*`` reason or an ``httpx`` error family."""
    OUTBOUND_FETCH_ERRORS.labels(kind=kind).inc()


def token_issued(grant: str, outcome: str) -> None:
    OP_TOKENS.labels(grant=grant, outcome=outcome).inc()


def _route(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return match.url_name or match.view_name or "unnamed"


class RequestMetricsMiddleware:
    """Times every request (after the health probes) into the histogram, by route name."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        REQUEST_DURATION.labels(route=_route(request)).observe(time.perf_counter() - started)
        return response


def _registry() -> CollectorRegistry:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    token: str = settings.VESTIBULE_METRICS_TOKEN
    if not token:
        raise Http404("metrics are off")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        refused = HttpResponse("unauthorized\n", status=401, content_type="text/plain")
        refused["WWW-Authenticate"] = 'Bearer realm="metrics"'
        refused["Cache-Control"] = "no-store"
        return refused
    response = HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
