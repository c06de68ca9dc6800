"""Request IDs and the one log line per request.

:class:`RequestLogMiddleware` runs right after the health probes. It takes the
``X-Request-ID`` a proxy or client sent when it is 1 to 128 characters of
``[A-Za-z0-9._:-]`` and makes a new one otherwise, so a hostile header cannot
forge a log line, break one with a newline or pass for JSON. The ID is bound
to the log context of the request (every line written while it runs carries
it), returned in the ``X-Request-ID`` response header of every answer (errors,
404s and CSRF refusals included) and ends the request's line::

    {"event": "request", "method": "POST", "route": "saml-acs", "status": 302,
     "duration_ms": 12.4, "request_id": "...", "account": "acme", "connection": "...", ...}

The line names the URL route, never the path or query string: those carry
setup and demo sign-in tokens and authorization codes. gunicorn's access log,
which printed them, is off (vestibule.conf.logging.GunicornLogger).

The health probes get neither an ID nor a line: a load balancer asks every
second or so, and those lines would bury the rest.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable

import structlog
from django.core.signals import request_finished
from django.http import HttpRequest, HttpResponse
from django.utils.crypto import salted_hmac

from vestibule.conf.routes import route_name

__all__ = ["HEADER", "RequestLogMiddleware", "bind", "pseudonym", "request_id_from"]

HEADER = "X-Request-ID"
_VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

log = structlog.get_logger("vestibule.request")
# A method is whatever the client wrote; the line says one of these or "other".
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def request_id_from(given: str | None) -> str:
    """The incoming ID when it is safe to log and return as it is, else a fresh one."""
    if given is not None and _VALID_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


def bind(**fields: str | int | None) -> None:
    """Add fields (account slug, connection id, reason code) to every later line of this request.

    Outside a request (the demo's seed, a background thread) nothing is bound: nothing would unbind it,
    and every later line of that thread would carry the fields.
    """
    if "request_id" in structlog.contextvars.get_contextvars():
        structlog.contextvars.bind_contextvars(**{k: v for k, v in fields.items() if v not in (None, "")})


def pseudonym(email_key: str) -> str:
    """A stable stand-in for an email address in the log: 16 hex digits of an HMAC under the secret key.

    Lines about the same address can be told apart and followed across nodes
    (one address under attack, or many addresses tried once) without the log
    becoming a list of who signs in when. Keyed, because an address is
    guessable: a plain hash is reversed by hashing a list of addresses. The
    audit events, which an administrator may read, keep the address itself.
    """
    return salted_hmac("vestibule.log.subject", email_key, algorithm="sha256").hexdigest()[:16]


class RequestLogMiddleware:
    """Binds the request ID, writes the request line, returns ``X-Request-ID``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_from(request.headers.get(HEADER))
        # A worker thread serves one request after another: nothing of the previous one may leak in.
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        response = self.get_response(request)
        response[HEADER] = request_id
        log.info(
            "request",
            method=request.method if request.method in _METHODS else "other",
            route=route_name(request),
            status=response.status_code,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        # The context stays bound until the response is closed: Django logs a 4xx or 5xx ("Not Found",
        # "Forbidden (CSRF ...)") after the last middleware returned, and that line belongs to this request.
        return response


def _request_finished(**_: object) -> None:
    structlog.contextvars.clear_contextvars()


request_finished.connect(_request_finished, dispatch_uid="vestibule.conf.request_log")
