"""Liveness and readiness for load balancers: ``/healthz`` and ``/readyz``.

:class:`HealthMiddleware` is the first middleware and answers these two paths
itself, before Django checks the ``Host`` header against ``ALLOWED_HOSTS``
(``CommonMiddleware`` and the views call ``request.get_host()``): a load
balancer probes a node by its address with whatever ``Host`` it likes, and a
400 there would take a healthy node out of service. Nothing else is answered
before that check.

``/healthz`` says the process serves requests; it touches neither the database
nor the cache. ``/readyz`` says this node can sign people in: the database
answers, every migration is applied (checked once per process; a success is
remembered, since migrations do not un-apply) and the cache answers a set/get
round trip. A failing check names only the exception class, never a message
that could hold a host name or a password, and the answer is a 503, never a 500.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from django.core.cache import cache
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse

__all__ = ["HealthMiddleware", "readiness"]

OK = "ok"
_migrated = False


def _pending_migrations() -> int:
    """How many migrations the database still lacks (a query of ``django_migrations`` and a read of the files)."""
    executor = MigrationExecutor(connection)
    return len(executor.migration_plan(executor.loader.graph.leaf_nodes()))


def _failed(exc: BaseException) -> str:
    return f"error: {type(exc).__name__}"


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready", named by class only
        return _failed(exc)
    return OK


def _migrations() -> str:
    global _migrated
    if _migrated:
        return OK
    try:
        pending = _pending_migrations()
    except Exception as exc:  # noqa: BLE001
        return _failed(exc)
    if pending:
        return f"pending: {pending} migration(s) not applied"
    _migrated = True
    return OK


def _cache() -> str:
    key = "readyz:" + secrets.token_hex(8)
    value = secrets.token_hex(8)
    try:
        cache.set(key, value, timeout=10)
        seen = cache.get(key)
        cache.delete(key)
    except Exception as exc:  # noqa: BLE001
        return _failed(exc)
    return OK if seen == value else "error: value not read back"


def readiness() -> dict[str, str]:
    """Each check's result: ``"ok"`` or what failed (an exception class, never its message)."""
    database = _database()
    return {
        "database": database,
        "migrations": _migrations() if database == OK else "skipped: database unreachable",
        "cache": _cache(),
    }


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    return response


def healthz() -> HttpResponse:
    return _no_store(JsonResponse({"status": "ok"}))


def readyz() -> HttpResponse:
    checks = readiness()
    ready = all(result == OK for result in checks.values())
    body = {"status": "ready" if ready else "not ready", "checks": checks}
    return _no_store(JsonResponse(body, status=200 if ready else 503))


class HealthMiddleware:
    """Answers ``/healthz`` and ``/readyz`` before any other middleware, ``ALLOWED_HOSTS`` included."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if path in ("/healthz", "/readyz") and request.method in ("GET", "HEAD"):
            return healthz() if path == "/healthz" else readyz()
        return self.get_response(request)
