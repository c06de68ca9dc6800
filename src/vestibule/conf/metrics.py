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

Some figures are the database's state rather than events counted by a worker
(how soon an IdP certificate expires, which metadata changes wait for an
admin). Lower layers hand a function to :func:`add_scrape_collector`; it runs
at each scrape, so every process answers the same and nothing goes stale in
a dead worker's multiprocess file.

``/metrics`` answers only ``Authorization: Bearer $VESTIBULE_METRICS_TOKEN``
(compared in constant time): 404 while the variable is unset, 401 otherwise.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Callable, Iterable

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
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from vestibule.conf.routes import route_name
from vestibule.domain.reasons import UnknownReason, reason

__all__ = [
    "RequestMetricsMiddleware",
    "add_scrape_collector",
    "idp_certificate_warning",
    "idp_metadata_refresh",
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
IDP_CERTIFICATE_WARNINGS = Counter(
    "vestibule_idp_certificate_warnings",
    "IdP signing certificate expiry announcements (audited once per certificate and threshold), by threshold",
    ["threshold"],
)
IDP_METADATA_REFRESHES = Counter(
    "vestibule_idp_metadata_refreshes",
    "IdP metadata fetches from a connection's metadata URL, by outcome (unchanged, adopted, pending, failed)",
    ["outcome"],
)


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


def idp_certificate_warning(threshold: str) -> None:
    """An expiry threshold ("30d", "7d", "expired") of one pinned IdP certificate was announced."""
    IDP_CERTIFICATE_WARNINGS.labels(threshold=threshold).inc()


def idp_metadata_refresh(outcome: str) -> None:
    """One metadata fetch ended: "unchanged", "adopted", "pending" or "failed"."""
    IDP_METADATA_REFRESHES.labels(outcome=outcome).inc()


_SCRAPE_COLLECTORS: list[Callable[[], Iterable[Metric]]] = []


def add_scrape_collector(collect: Callable[[], Iterable[Metric]]) -> None:
    """Run ``collect`` at every scrape (idempotent: a function is added once)."""
    if collect not in _SCRAPE_COLLECTORS:
        _SCRAPE_COLLECTORS.append(collect)


class _AtScrape(Collector):
    def collect(self) -> Iterable[Metric]:
        for collect in list(_SCRAPE_COLLECTORS):
            yield from collect()

    def describe(self) -> Iterable[Metric]:
        # Registering must not query the database; the names are not needed up front.
        return []


_AT_SCRAPE = _AtScrape()
REGISTRY.register(_AT_SCRAPE)


class RequestMetricsMiddleware:
    """Times every request (after the health probes) into the histogram, by route name."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        REQUEST_DURATION.labels(route=route_name(request)).observe(time.perf_counter() - started)
        return response


def _registry() -> CollectorRegistry:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    registry.register(_AT_SCRAPE)
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
