"""A clean 503 while the database or Redis is out of reach, instead of a 500.

A database restart or a Redis outage is not a bug in the request: the answer
is "try again shortly" (503 with ``Retry-After``), which a load balancer, an
API client and a person all understand, and which the load test's fault
phases require (never a 500).

Django turns an exception raised below any middleware into the 500 page at
that layer, so the exception never reaches an outer middleware. Two paths
lead here instead:

- ``got_request_exception`` (sent inside the handler's ``except`` block, for
  every uncaught exception) marks the request when the exception, or one it
  was raised from, is a lost connection to the database or to Redis; the 500
  that follows is replaced by the 503 on the way out.
- The 500 page itself may need the database (sessions, the signed-in user):
  then the error escapes every layer and is caught in :meth:`__call__`.

The page touches neither the database nor the cache. Security checks are not
weakened: the request did not happen, and replay protection and sessions
live in the database, so nothing is accepted while it is down; a rate limit
whose counter cannot be read refuses the request (the 503) instead of letting
it through. Django still logs the exception with its traceback. An
``OperationalError`` also covers a database that lacks its tables (SQLite's
"no such table"): "not ready, try again" is the right answer there too.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# The log's formatter reads the same mark, to log the request as the 503 it answered.
from vestibule.conf.logging import UNAVAILABLE_MARK

__all__ = ["UnavailableMiddleware", "unavailable_dependency"]

RETRY_AFTER_SECONDS = 5
_DATABASE = (OperationalError, InterfaceError)
_CACHE = (RedisConnectionError, RedisTimeoutError)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Temporarily unavailable</title></head>
<body><main><h1>Temporarily unavailable</h1>
<p>Sign-in is paused for a moment while a service it depends on comes back.
Try again in a few seconds; if this page stays, tell the people who run this service.</p><p><small>Error code: service.unavailable</small></p></main></body></html>
"""


def unavailable_dependency(exc: BaseException | None) -> str | None:
    """``"database"`` or ``"cache"`` when ``exc`` (or an exception it came from) is a lost connection, else None."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, _DATABASE):
            return "database"
        if isinstance(exc, _CACHE):
            return "cache"
        exc = exc.__cause__ or exc.__context__
    return None


def _note_exception(sender: Any, request: HttpRequest | None = None, **_: Any) -> None:
    dependency = unavailable_dependency(sys.exc_info()[1])
    if request is not None and dependency is not None:
        setattr(request, UNAVAILABLE_MARK, dependency)


got_request_exception.connect(_note_exception, dispatch_uid="vestibule.conf.unavailable")


def _wants_json(request: HttpRequest) -> bool:
    return request.path_info.startswith(("/api/", "/oauth/", "/scim/")) or "json" in request.headers.get("Accept", "")


def _unavailable(request: HttpRequest, dependency: str) -> HttpResponse:
    response: HttpResponse
    if _wants_json(request):
        response = JsonResponse(
            {"error": "temporarily_unavailable", "code": "service.unavailable", "dependency": dependency}, status=503
        )
    else:
        response = HttpResponse(_PAGE, status=503, content_type="text/html; charset=utf-8")
        response["Content-Security-Policy"] = "default-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


class UnavailableMiddleware:
    """Answers 503 + ``Retry-After`` for requests that failed because the database or Redis was unreachable."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            response = self.get_response(request)
        except Exception as exc:
            dependency = unavailable_dependency(exc)
            if dependency is None:
                raise
            return _unavailable(request, dependency)
        dependency = getattr(request, UNAVAILABLE_MARK, None)
        if response.status_code == 500 and dependency is not None:
            return _unavailable(request, dependency)
        return response
