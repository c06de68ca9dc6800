"""The ninja API object: authentication, error mapping, and the routers of each app."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.db import DataError, IntegrityError
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from vestibule import __version__
from vestibule.api.errors import ApiError
from vestibule.api.security import ApiKeyAuth, SessionAuth

api = NinjaAPI(
    title="Vestibule admin API",
    version=__version__,
    description=(
        "Accounts, users, roles, SSO connections and audit. Authenticate as a person (the browser session of a "
        "signed-in administrator, with the CSRF token on unsafe methods) or with an API key: "
        "`Authorization: Bearer <api key>`. Every action needs a role in the account concerned: "
        "administrator, user-manager or sso-admin (see the README)."
    ),
    auth=[ApiKeyAuth(), SessionAuth()],
    urls_namespace="api",
    openapi_url="/openapi.json",
    docs_url="/docs",
)


def _field(loc: list[Any] | tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "payload")]
    return ".".join(parts) or "body"


@api.exception_handler(ApiError)
def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    return api.create_response(request, exc.body(), status=exc.status)


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = [{"field": _field(e.get("loc", ())), "message": str(e.get("msg", "invalid"))} for e in exc.errors]
    first = errors[0] if errors else {"field": "body", "message": "invalid"}
    return api.create_response(
        request,
        {"detail": f"{first['field']}: {first['message']}", "field": first["field"], "errors": errors},
        status=422,
    )


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = api.create_response(
        request,
        {"detail": "missing or invalid API key: send Authorization: Bearer <api key>, or sign in and use your browser session"},
        status=401,
    )
    response["WWW-Authenticate"] = "Bearer"
    return response


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return api.create_response(request, {"detail": str(exc)}, status=exc.status_code)


@api.exception_handler(RequestDataTooBig)
def _too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return api.create_response(request, {"detail": "request body is too large (limit 1 MiB)"}, status=413)


@api.exception_handler(IntegrityError)
def _integrity(request: HttpRequest, exc: IntegrityError) -> HttpResponse:
    # A unique constraint lost a race that the endpoint's own check had passed.
    return api.create_response(request, {"detail": "conflicts with a concurrent change; retry"}, status=409)


@api.exception_handler(DataError)
def _data_error(request: HttpRequest, exc: DataError) -> HttpResponse:
    # A value no schema caught but the database cannot store (NUL character,
    # out-of-range number): the request's fault, not the server's.
    return api.create_response(
        request, {"detail": "the request holds a value that cannot be stored (NUL character or out-of-range number)"}, status=400
    )


def _mount() -> None:
    from vestibule.accounts.api import router as accounts_router
    from vestibule.audit.api import router as audit_router
    from vestibule.connections.api import router as connections_router

    api.add_router("", accounts_router)
    api.add_router("", connections_router)
    api.add_router("", audit_router)


_mount()
