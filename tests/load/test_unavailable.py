"""A lost database or Redis connection answers 503 + Retry-After, never a 500 (``conf.unavailable``).

Fast tests of the middleware, in the ordinary suite (no ``load`` marker); the
load test's fault phases show the same against a PostgreSQL and a Redis that
are really stopped.
"""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.db import IntegrityError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory, override_settings
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.conftest import PASSWORD, csrf_token_from
from vestibule.conf.unavailable import UnavailableMiddleware, unavailable_dependency

REFUSING_REDIS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": getattr(settings, "REDIS_CACHE_OPTIONS", {}),
    }
}


def _browser() -> Client:
    # The default test client re-raises a view's exception; a browser gets the response.
    return Client(raise_request_exception=False)


def _password_step(browser: Client, email: str) -> HttpResponse:
    token = csrf_token_from(browser.get("/login").content.decode())
    response: HttpResponse = browser.post("/login", {"email": email, "password": PASSWORD, "next": "",
                                                     "csrfmiddlewaretoken": token})  # fmt: skip
    return response


@pytest.mark.django_db
def test_a_password_login_while_redis_is_down_is_a_clean_503(make_user) -> None:
    user = make_user("alice@example.com")
    # Positive control: the same login with Redis answering signs Alice in.
    browser = _browser()
    assert _password_step(browser, user.email).status_code == 302
    assert browser.get("/api/v1/session").status_code == 200

    browser = _browser()
    token = csrf_token_from(browser.get("/login").content.decode())
    with override_settings(CACHES=REFUSING_REDIS):
        response = browser.post("/login", {"email": user.email, "password": PASSWORD, "next": "",
                                           "csrfmiddlewaretoken": token})  # fmt: skip
    assert response.status_code == 503, response.content[:500]
    assert response["Retry-After"] == "5"
    assert response["Cache-Control"] == "no-store"
    assert b"service.unavailable" in response.content
    assert b"127.0.0.1" not in response.content and b"Traceback" not in response.content
    # Nothing was granted: no session for Alice.
    assert browser.get("/api/v1/session").status_code == 401


def _raising(exc: BaseException):
    def view(request: HttpRequest) -> HttpResponse:
        raise exc

    return view


@pytest.mark.parametrize(
    ("exc", "dependency"),
    [
        (OperationalError("server closed the connection unexpectedly"), "database"),
        (RedisConnectionError("Error 111 connecting to 127.0.0.1:6379"), "cache"),
    ],
)
def test_an_unavailable_dependency_escaping_every_layer_is_a_503(exc: BaseException, dependency: str) -> None:
    """The 500 page itself may need the database; then the error reaches the outermost middleware."""
    middleware = UnavailableMiddleware(_raising(exc))
    page = middleware(RequestFactory().get("/login"))
    assert page.status_code == 503 and page["Retry-After"] == "5"
    assert b"Temporarily unavailable" in page.content and b"127.0.0.1" not in page.content
    api = middleware(RequestFactory().post("/oauth/token"))
    assert api.status_code == 503
    assert json.loads(api.content) == {
        "error": "temporarily_unavailable",
        "code": "service.unavailable",
        "dependency": dependency,
    }


def test_an_error_raised_from_a_lost_connection_is_recognised() -> None:
    try:
        try:
            raise OperationalError("terminating connection due to administrator command")
        except OperationalError as lost:
            raise RuntimeError("while rendering the page") from lost
    except RuntimeError as wrapped:
        assert unavailable_dependency(wrapped) == "database"


@pytest.mark.parametrize("exc", [IntegrityError("duplicate key"), ValueError("a bug"), KeyError("state")])
def test_other_errors_stay_errors(exc: BaseException) -> None:
    """A bug must not hide behind "temporarily unavailable": it still raises (and becomes the logged 500)."""
    assert unavailable_dependency(exc) is None
    with pytest.raises(type(exc)):
        UnavailableMiddleware(_raising(exc))(RequestFactory().get("/login"))
