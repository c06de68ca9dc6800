"""The ninja API object: authentication, error mapping, and the routers of each app."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import ninja
from django.core.exceptions import RequestDataTooBig
from django.db import DataError, IntegrityError
from django.http import Http404, HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.utils.html import format_html, json_script
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.openapi.docs import DocsBase

from vestibule import __version__
from vestibule.api.accounts import router as accounts_router
from vestibule.api.applications import router as applications_router
from vestibule.api.audit import router as audit_router
from vestibule.api.connections import router as connections_router
from vestibule.api.directory import router as directory_router
from vestibule.api.domains import router as domains_router
from vestibule.api.errors import ApiError
from vestibule.api.security import ApiKeyAuth, SessionAuth
from vestibule.conf.middleware import content_security_policy

# Swagger UI as django-ninja ships it (its package holds a copy of swagger-ui-dist):
# name -> content type. Only these files are served.
DOCS_ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui-init.js": "text/javascript; charset=utf-8",
}
_DOCS_ASSET_DIR = Path(ninja.__file__).parent / "static" / "ninja"

_DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Vestibule</title>
<link rel="stylesheet" href="{base}/assets/swagger-ui.css?v={version}">
</head>
<body data-csrf-token="{csrf}" data-api-csrf="true">
{settings}
<div id="swagger-ui"></div>
<script nonce="{nonce}" src="{base}/assets/swagger-ui-bundle.js?v={version}"></script>
<script nonce="{nonce}" src="{base}/assets/swagger-ui-init.js?v={version}"></script>
</body>
</html>
"""


class SelfHostedSwagger(DocsBase):
    """Swagger UI served by Vestibule itself: no CDN, scripts allowed by the page's CSP nonce.

    ninja's own renderer falls back to a CDN page unless ``ninja`` is an
    installed app; our CSP blocks other origins (and a self-hosted deployment
    may have no internet), so v0.1's docs page was blank. The stylesheet is
    same-origin, so this page's policy adds ``'self'`` to ``style-src``.
    """

    def render_page(self, request: HttpRequest, api: NinjaAPI, **kwargs: Any) -> HttpResponse:
        nonce = request.csp_nonce  # type: ignore[attr-defined]
        swagger = {
            "url": self.get_openapi_url(api, kwargs), "layout": "BaseLayout", "deepLinking": True,
            # Swagger UI would otherwise load a badge from validator.swagger.io.
            "validatorUrl": None,
        }  # fmt: skip
        page = format_html(
            _DOCS_PAGE,
            title=api.title, base=request.path.rstrip("/"), version=ninja.__version__, nonce=nonce,
            # The signed-in person's session needs the CSRF token on unsafe methods ("Try it out").
            csrf=get_token(request), settings=json_script(swagger, "swagger-settings"),
        )  # fmt: skip
        response = HttpResponse(page)
        response["Content-Security-Policy"] = content_security_policy(nonce, style_src="'self' 'unsafe-inline'")
        return response


@functools.cache
def _docs_asset(name: str) -> bytes:
    return (_DOCS_ASSET_DIR / name).read_bytes()


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
    docs=SelfHostedSwagger(),
)


@api.get("/docs/assets/{name}", auth=None, include_in_schema=False)
def docs_asset(request: HttpRequest, name: str) -> HttpResponse:
    """The docs page's scripts and stylesheet, from the installed django-ninja package."""
    if name not in DOCS_ASSETS:  # an allowlist: no path from the URL reaches the file system
        raise Http404("no such asset")
    response = HttpResponse(_docs_asset(name), content_type=DOCS_ASSETS[name])
    # The URL carries ninja's version, so a cached copy is never stale for long.
    response["Cache-Control"] = "public, max-age=86400"
    return response


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
        {
            "detail": "missing or invalid API key: send Authorization: Bearer <api key>, or sign in and use your browser session"
        },
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
        request,
        {"detail": "the request holds a value that cannot be stored (NUL character or out-of-range number)"},
        status=400,
    )


api.add_router("", accounts_router)
api.add_router("", connections_router)
api.add_router("", domains_router)
api.add_router("", audit_router)
api.add_router("", applications_router)
api.add_router("", directory_router)
