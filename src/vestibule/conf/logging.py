"""Structured logs: one JSON object per line on stderr, for every record the service emits.

Vestibule's own events go through structlog (``structlog.get_logger(...)``),
everything else (Django, gunicorn, libraries, the plain ``logging.getLogger``
calls of this code base) through the standard library; both end in the one
handler of :func:`logging_settings`, whose
:class:`structlog.stdlib.ProcessorFormatter` renders them alike. Each line
holds ``timestamp`` (ISO 8601, UTC), ``level``, ``logger`` and ``event``,
and, inside a request, whatever :mod:`vestibule.conf.request_log` and the
sign-in code bound to it: ``request_id``, ``account`` (slug), ``connection``
(id), ``reason`` (a reason code).

What is never logged is decided where a line is written: request lines name
the URL route, never the raw path or query string (which carry one-time
tokens and authorization codes); the sign-in events name account, connection
and reason code, never a credential, an assertion or an email address in
clear. :func:`redact` is a safety net behind that, not the guarantee: it masks
values under secret-sounding keys, and JWTs and long random-looking runs in any
text.

The format is ``VESTIBULE_LOG_FORMAT``: ``json`` (the default) for log
collectors, ``text`` for a person at a terminal. Both go to stderr; stdout is
left to what is meant for the person running the command (the start-up line,
the demo's credentials and one-time link, emails of the ``console:`` backend).
"""

from __future__ import annotations

import functools
import logging
import logging.config
import re
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog
from gunicorn import glogging

from vestibule.conf.routes import route_name

__all__ = ["GunicornLogger", "configure", "formatter", "logging_settings", "redact"]

REDACTED = "[redacted]"
# The attribute vestibule.conf.unavailable sets on a request that failed for a lost database or Redis.
UNAVAILABLE_MARK = "_vestibule_unavailable"

# Keys whose values never reach a log line, compared lower-case with "-" read as "_".
_SECRET_KEYS = frozenset(
    {
        "password", "passwd", "secret", "client_secret", "token", "access_token", "refresh_token", "id_token",
        "code", "code_verifier", "assertion", "samlresponse", "saml_response", "authorization", "cookie",
        "set_cookie", "csrfmiddlewaretoken", "api_key", "private_key", "session", "sessionid", "otp",
    }
)  # fmt: skip
_SECRET_SUFFIXES = ("password", "secret", "_token", "_key", "cookie")
# Fields this module or the request middleware fill with checked values, and the record's own metadata.
_TRUSTED_KEYS = frozenset({"timestamp", "level", "logger", "request_id"})
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")
# 40 or more characters of (URL-safe) base64: every token, key and assertion Vestibule handles is longer.
# A run counts as random only with a digit, an upper- and a lower-case letter in it, so a file path in
# a traceback (site-packages/django/core/handlers) or a long word stays readable.
_BLOB = re.compile(r"[A-Za-z0-9+/_-]{40,}={0,2}")


def _random_looking(run: str) -> bool:
    return any(c.isdigit() for c in run) and any(c.isupper() for c in run) and any(c.islower() for c in run)


# Neither a JWT (eyJ, 8, ".", 8, ".") nor a random run fits in fewer characters: most values are skipped.
_SHORTEST_MASKED = 21


def _mask_text(text: str) -> str:
    if len(text) < _SHORTEST_MASKED:
        return text
    text = _JWT.sub(REDACTED, text)
    return _BLOB.sub(lambda m: REDACTED if _random_looking(m.group()) else m.group(), text)


@functools.lru_cache(maxsize=1024)
def _secret_key(key: str) -> bool:
    name = key.lower().replace("-", "_")
    return name in _SECRET_KEYS or name.endswith(_SECRET_SUFFIXES)


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return _mask_text(value)
    if isinstance(value, Mapping):
        return {k: REDACTED if _secret_key(str(k)) else _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_mask(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    # Anything else is rendered by its repr, which may hold anything: mask that text.
    return _mask_text(repr(value))


def redact(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """The safety net: mask secret-named keys, and JWTs and long random runs in every other value."""
    for key in list(event_dict):
        if key in _TRUSTED_KEYS:
            continue
        event_dict[key] = REDACTED if _secret_key(key) else _mask(event_dict[key])
    return event_dict


def without_paths(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Django's request records ("Not Found: /setup/<token>") lose the path; the route name replaces it.

    ``django.request`` and ``django.security.*`` pass the request path as a
    format argument and the request itself as ``extra``. A path can carry a
    one-time token (``/setup/<token>``, ``/demo/sign-in/<token>``), so it is
    rebuilt without it. The ``request`` object is never rendered (its repr
    is the path too).
    """
    original = event_dict.pop("positional_args", ())
    record = event_dict.get("_record")
    request = getattr(record, "request", None)
    if record is None or request is None:
        return event_dict
    paths = {getattr(request, "path", None), getattr(request, "path_info", None)}
    full_path = getattr(request, "get_full_path", None)
    if callable(full_path):
        paths.add(full_path())
    paths.discard(None)
    hidden = [isinstance(arg, str) and arg in paths for arg in original] if isinstance(original, tuple) else []
    if any(hidden):
        safe = tuple("[path]" if hide else arg for arg, hide in zip(original, hidden, strict=True))
        try:
            event_dict["event"] = str(record.msg) % safe
        except (TypeError, ValueError):
            event_dict["event"] = str(record.msg)
    event_dict.setdefault("route", route_name(request))
    event_dict.setdefault("method", getattr(request, "method", None))
    status = getattr(record, "status_code", None)
    if isinstance(status, int):
        event_dict.setdefault("status", status)
    # vestibule.conf.unavailable marks a request that failed for a lost database or Redis connection, and
    # answers it with a 503: Django's "Internal Server Error" line (a 500 and a traceback, per request of
    # an outage) would say what did not happen. One warning naming the dependency and the exception class.
    dependency = getattr(request, UNAVAILABLE_MARK, None)
    if isinstance(dependency, str) and event_dict.get("status") == 500:
        exc_info = event_dict.pop("exc_info", None)
        event_dict.update(level="warning", status=503, event=f"Service unavailable: {dependency}")
        if isinstance(exc_info, tuple) and exc_info[1] is not None:
            event_dict["error"] = type(exc_info[1]).__name__
    return event_dict


# What every record gets, whether it came through structlog or the standard library.
_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
]


_FIRST = ("timestamp", "level", "logger", "event")


def first_fields(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
    """timestamp, level, logger and event lead every line, whatever order the fields were added in."""
    ordered = {key: event_dict.pop(key) for key in _FIRST if key in event_dict}
    ordered.update(event_dict)
    return ordered


def formatter(log_format: str = "json") -> structlog.stdlib.ProcessorFormatter:
    """The formatter of Vestibule's log handler; tests attach it to their own handler to see the real lines."""
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    return structlog.stdlib.ProcessorFormatter(
        # The original format arguments, so without_paths can rebuild a message without the path.
        pass_foreign_args=True,
        foreign_pre_chain=[*_SHARED, without_paths],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact,
            first_fields,
            renderer,
        ],
    )


def configure(settings: dict[str, Any]) -> None:
    """Django's ``LOGGING_CONFIG``: structlog first (its loggers hand records to logging), then the dict."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    logging.config.dictConfig(settings)
    # Python's warnings (a deprecated setting, an unverified certificate) become records too, not bare stderr.
    logging.captureWarnings(True)


def logging_settings(log_format: str, level: str) -> dict[str, Any]:
    """``LOGGING``: one stderr handler for every logger, in ``log_format`` ("json" or "text")."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"structured": {"()": formatter, "log_format": log_format}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            # Django's defaults print some of these itself (in plain text, when DEBUG is on): here they only
            # propagate to the one handler above.
            "django": {"handlers": [], "level": "INFO", "propagate": True},
            "django.server": {"handlers": [], "level": "INFO", "propagate": True},
            # Libraries whose DEBUG (or INFO) lines hold secrets stay above that level, whatever VESTIBULE_LOG_LEVEL says
            # (tests/test_logging.py found each one). With VESTIBULE_DEBUG, Django logs every SQL statement
            # with its parameters: session keys, email addresses.
            "django.db.backends": {"level": "INFO"},
            # signxml's DEBUG lines print each canonicalized signed element: the whole assertion.
            "signxml": {"level": "INFO"},
            # oauthlib's DEBUG lines name the authorization codes it issues and checks.
            "oauthlib": {"level": "INFO"},
            # httpx writes every outbound request's URL at INFO, query string included (a webhook or metadata
            # URL may carry a token in it); Vestibule logs and counts failed fetches itself.
            "httpx": {"level": "WARNING"},
            "django.security.DisallowedHost": {"level": "CRITICAL"},
        },
    }


class GunicornLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's own messages (boot, workers, timeouts) go through the handler above; no access log.

    The access log printed raw paths and query strings, which carry one-time
    tokens and authorization codes; :mod:`vestibule.conf.request_log` writes
    the request line instead, with the route name.
    """

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in list(log.handlers):
                log.removeHandler(handler)
        self.error_log.propagate = True
        self._access_log_enabled = False

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        return None
