"""REST endpoints of the OpenID Provider's operator: applications (clients) and the provider's signing keys.

Applications are the operator's own (DESIGN.md: "Registered by the
operator"), and the signing keys sign for every account, so every endpoint
here needs the operator: an operator API key or an operator's session. An
account's key or administrator gets a 403, whichever account it belongs to.

Secrets (a confidential client's secret, a webhook signing secret) are
returned once, by the call that made them, and never again: the client
secret is stored hashed, the webhook secret sealed. Audit events name the
application and what changed, never a secret. Private signing keys never
leave the provider; only their ID, algorithm and state are shown.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from django.db import transaction
from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from pydantic import Field

from vestibule.api.errors import ApiError, Conflict, NotFound, Unprocessable
from vestibule.api.schemas import ErrorOut, StrictSchema, changes_without_nulls
from vestibule.api.security import require_operator, who
from vestibule.audit.events import record
from vestibule.provider import applications, deliveries, keys
from vestibule.provider.applications import ApplicationError, Registered
from vestibule.provider.keys import SigningKeyError
from vestibule.provider.models import Application, SigningKey

router = Router(tags=["applications"])

# django-oauth-toolkit makes client IDs of 40 letters and digits; anything that
# cannot be one names no application and never reaches the database.
_CLIENT_ID = re.compile(r"[A-Za-z0-9._~-]{1,100}")

_URI = "An absolute https URI (http only on 127.0.0.1 or localhost), without fragment or credentials"
_REFUSALS: dict[int | str, Any] = {
    401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut,
}  # fmt: skip


# Schemas ---------------------------------------------------------------------------


class ApplicationIn(StrictSchema):
    name: str = Field(max_length=200, description="What people and the audit log call the application")
    redirect_uris: list[str] = Field(
        max_length=50, description=f"Where codes may be sent, compared character for character. {_URI}"
    )
    client_type: Literal["confidential", "public"] = Field(
        default="confidential",
        description="confidential: a server that keeps a client secret; public: a browser or native app (PKCE only)",
    )
    post_logout_redirect_uris: list[str] = Field(
        default_factory=list, max_length=50, description=f"Where RP-initiated logout may return. {_URI}"
    )
    backchannel_logout_uri: str | None = Field(
        default=None, max_length=2000, description=f"Receives signed logout tokens (Back-Channel Logout 1.0). {_URI}"
    )
    webhook_url: str | None = Field(
        default=None, max_length=2000, description=f"Receives signed event webhooks (Standard Webhooks). {_URI}"
    )


class ApplicationPatch(StrictSchema):
    # Read-only, listed so that a PATCH of it is told why and what to do instead.
    client_type: Any = Field(
        default=None, description="Read-only: fixed at registration; register a new application for the other type"
    )
    name: str | None = Field(default=None, max_length=200)
    redirect_uris: list[str] | None = Field(default=None, max_length=50, description=_URI)
    post_logout_redirect_uris: list[str] | None = Field(default=None, max_length=50, description=_URI)
    backchannel_logout_uri: str | None = Field(default=None, max_length=2000, description=f"{_URI}; null removes it")
    webhook_url: str | None = Field(
        default=None,
        max_length=2000,
        description=(
            f"{_URI}; null removes it (and its secret). Setting the first one makes a webhook secret, returned once"
        ),
    )


class SigningKeyRotationIn(StrictSchema):
    action: Literal["stage", "promote", "discard"] = Field(
        description=(
            "stage: make a next key, published in the JWKS at once but signing nothing yet; promote: the next key "
            "signs from now on and the active one retires (still published until its tokens have expired); "
            "discard: drop a staged key unused"
        )
    )
    algorithm: Literal["RS256", "ES256"] | None = Field(
        default=None, description="The staged key's algorithm (stage only; default RS256)"
    )


class ApplicationOut(Schema):
    client_id: str
    name: str
    client_type: str
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    backchannel_logout_uri: str | None
    webhook_url: str | None
    created_at: str = Field(description="ISO 8601")
    created_by: str = Field(description="'person:<email>', 'api-key:<prefix>' or 'cli'")
    revoked_at: str | None = Field(description="ISO 8601; a revoked application authenticates nowhere")


class ApplicationCreated(ApplicationOut):
    client_secret: str | None = Field(description="Confidential clients only. Shown once: only a hash is kept")
    webhook_secret: str | None = Field(
        description="The Standard Webhooks signing secret (whsec_...), when a webhook URL was given. Shown once"
    )


class ApplicationChanged(ApplicationOut):
    webhook_secret: str | None = Field(
        description="Set only when this change gave the application its first webhook URL. Shown once"
    )


class ClientSecretOut(Schema):
    client_id: str
    client_secret: str = Field(description="Shown once; the previous secret no longer authenticates")


class WebhookSecretOut(Schema):
    client_id: str
    webhook_secret: str = Field(description="Shown once; webhooks are signed with it from now on")


class DeliveryOut(Schema):
    message_id: str
    kind: str = Field(description="backchannel_logout or webhook")
    event_type: str
    url: str
    status: str = Field(description="pending, delivered or failed")
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: str
    last_attempt_at: str | None
    next_attempt_at: str | None
    delivered_at: str | None


class SigningKeyOut(Schema):
    kid: str
    algorithm: str
    state: str = Field(description="next (published, signs nothing yet), active (signs) or retired")
    created_at: str
    activated_at: str | None
    retired_at: str | None
    published: bool = Field(description="Listed in /oauth/jwks")


class DeliveryQuery(Schema):
    limit: int = Field(default=100, ge=1, le=1000, description="How many of the newest deliveries")


# What the API (and the CLI, which prints the same JSON) shows ----------------------


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _json(v) for k, v in row.items()}


def application_out(application: Application) -> dict[str, Any]:
    return _jsonable(applications.describe(application))


def created_out(registered: Registered) -> dict[str, Any]:
    """The registration's answer: the application, and its secrets this once."""
    return {
        **application_out(registered.application),
        "client_secret": registered.client_secret,
        "webhook_secret": registered.webhook_secret,
    }


def key_status_out() -> list[dict[str, Any]]:
    # key_status() describes each key by ID, algorithm, state and dates: no key material.
    return [_jsonable(row) for row in keys.key_status()]


def application_detail(application: Application) -> dict[str, Any]:
    """The audit log's record of an application: what it is and where it sends people and messages."""
    described = applications.describe(application)
    return {key: described[key] for key in AUDITED_FIELDS}


AUDITED_FIELDS = (
    "client_id",
    "name",
    "client_type",
    "redirect_uris",
    "post_logout_redirect_uris",
    "backchannel_logout_uri",
    "webhook_url",
)


def key_changes(action: str, before: list[dict[str, Any]], after: list[dict[str, Any]]) -> dict[str, Any]:
    """Which keys one rotation step touched, by key ID (public values only), for the audit log."""

    def kids(rows: list[dict[str, Any]], state: str) -> set[str]:
        return {row["kid"] for row in rows if row["state"] == state}

    if action == "stage":
        staged = [row for row in after if row["state"] == "next"]
        return {"kid": staged[0]["kid"], "algorithm": staged[0]["algorithm"]} if staged else {}
    if action == "promote":
        return {"kid": sorted(kids(after, "active")), "retired_kid": sorted(kids(before, "active"))}
    return {"kid": sorted(kids(before, "next"))}


KEY_EVENTS = {"stage": "signing_key.staged", "promote": "signing_key.promoted", "discard": "signing_key.discarded"}


def _refused(exc: ApplicationError | SigningKeyError) -> ApiError:
    return ApiError(exc.detail, field=exc.field, status=exc.status)


def _application(client_id: str, *, for_update: bool = False) -> Application:
    # Operator-only routes: the caller may see every application, so the ID alone resolves it.
    rows = Application.objects.select_for_update() if for_update else Application.objects.all()
    application: Application | None = (
        rows.filter(client_id=client_id).first() if _CLIENT_ID.fullmatch(client_id) else None
    )
    if application is None:
        raise NotFound(f"application '{client_id}' not found", field="client_id")
    return application


def _changeable(client_id: str) -> Application:
    """The application, locked for this transaction; a revoked one is kept as it was."""
    application = _application(client_id, for_update=True)
    if application.revoked_at is not None:
        raise Conflict(
            f"application '{client_id}' was revoked at {application.revoked_at.isoformat()} and can no longer "
            "change: register a new one",
            field="client_id",
        )
    return application


# Applications ----------------------------------------------------------------------


@router.get("/applications", response={200: list[ApplicationOut], **_REFUSALS})
def list_applications(request: HttpRequest) -> list[dict[str, Any]]:
    """Every registered application, oldest first; revoked ones too, with ``revoked_at``."""
    require_operator(request)
    return [application_out(a) for a in Application.objects.order_by("created", "pk")]


@router.post("/applications", response={201: ApplicationCreated, **_REFUSALS})
def create_application(request: HttpRequest, payload: ApplicationIn) -> Status[Any]:
    """Register an application. A confidential client's secret, and the webhook secret, are in this answer only."""
    acting = require_operator(request)
    try:
        registered = applications.register(**payload.model_dump(), created_by=acting.label)
    except ApplicationError as exc:
        raise _refused(exc) from None
    record("application.created", **who(request), **application_detail(registered.application))
    return Status(201, created_out(registered))


@router.get("/applications/{client_id}", response={200: ApplicationOut, **_REFUSALS})
def get_application(request: HttpRequest, client_id: str) -> dict[str, Any]:
    require_operator(request)
    return application_out(_application(client_id))


# The columns a PATCH field is stored in: a webhook URL carries its sealed secret along.
_COLUMNS = {
    "name": ("name",),
    "redirect_uris": ("redirect_uris",),
    "post_logout_redirect_uris": ("post_logout_redirect_uris",),
    "backchannel_logout_uri": ("backchannel_logout_uri",),
    "webhook_url": ("webhook_url", "webhook_secret_sealed"),
}


@router.patch("/applications/{client_id}", response={200: ApplicationChanged, **_REFUSALS})
def patch_application(request: HttpRequest, client_id: str, payload: ApplicationPatch) -> dict[str, Any]:
    """Change an application's name or URIs; the same rules as at registration apply. All or nothing."""
    require_operator(request)
    changes = changes_without_nulls(payload, "name", "redirect_uris", "post_logout_redirect_uris")
    with transaction.atomic():
        application = _changeable(client_id)
        if "client_type" in changes and changes.pop("client_type") != application.client_type:
            raise Unprocessable(
                f"the client type is fixed at registration (this one is {application.client_type}): register a "
                "new application of the other type and move the app to it",
                field="client_type",
            )
        try:
            webhook_secret = applications.change(application, changes)
        except ApplicationError as exc:
            raise _refused(exc) from None
        stored = {column for field in changes for column in _COLUMNS[field]}
        application.save(update_fields=sorted(stored | {"updated"}))
    record(
        "application.updated",
        **who(request),
        fields=sorted(changes),
        webhook_secret_created=webhook_secret is not None,
        **application_detail(application),
    )
    return {**application_out(application), "webhook_secret": webhook_secret}


@router.delete("/applications/{client_id}", response={204: None, **_REFUSALS})
def revoke_application(request: HttpRequest, client_id: str) -> Status[None]:
    """Revoke an application: it authenticates nowhere from now on, and the sign-ins it holds end.

    The application stays listed (with ``revoked_at``) so the audit log and
    the delivery log keep naming it; it cannot be changed or restored.
    """
    require_operator(request)
    with transaction.atomic():
        application = _changeable(client_id)
        ended = applications.revoke(application)
    record("application.revoked", **who(request), client_id=application.client_id, name=application.name, ended=ended)
    return Status(204, None)


@router.post("/applications/{client_id}/secret", response={200: ClientSecretOut, **_REFUSALS})
def rotate_client_secret(request: HttpRequest, client_id: str) -> dict[str, Any]:
    """A new client secret, shown once; the old one stops authenticating at once (tokens already issued stay valid)."""
    require_operator(request)
    with transaction.atomic():
        application = _changeable(client_id)
        try:
            secret = applications.rotate_secret(application)
        except ApplicationError as exc:
            raise _refused(exc) from None
    record("application.secret_rotated", **who(request), client_id=application.client_id, name=application.name)
    return {"client_id": application.client_id, "client_secret": secret}


@router.post("/applications/{client_id}/webhook-secret", response={200: WebhookSecretOut, **_REFUSALS})
def rotate_webhook_secret(request: HttpRequest, client_id: str) -> dict[str, Any]:
    """A new webhook signing secret, shown once: webhooks are signed with it from the next attempt on."""
    require_operator(request)
    with transaction.atomic():
        application = _changeable(client_id)
        if not application.webhook_url:
            raise Conflict(
                "this application has no webhook URL: set one (PATCH webhook_url), which also makes its secret",
                field="webhook_url",
            )
        secret = applications.set_webhook_secret(application)
        application.save(update_fields=["webhook_secret_sealed", "updated"])
    record("application.webhook_secret_rotated", **who(request), client_id=application.client_id, name=application.name)
    return {"client_id": application.client_id, "webhook_secret": secret}


@router.get("/applications/{client_id}/deliveries", response={200: list[DeliveryOut], **_REFUSALS})
def list_deliveries(request: HttpRequest, client_id: str, query: Query[DeliveryQuery]) -> list[dict[str, Any]]:
    """The delivery log: back-channel logout tokens and webhooks sent to the application, newest first."""
    require_operator(request)
    application = _application(client_id)
    return [_jsonable(row) for row in deliveries.delivery_log(application, limit=query.limit)]


# Signing keys ----------------------------------------------------------------------


@router.get("/signing-keys", response={200: list[SigningKeyOut], **_REFUSALS})
def list_signing_keys(request: HttpRequest) -> list[dict[str, Any]]:
    """The provider's signing keys, newest first: ID, algorithm, state, and whether /oauth/jwks lists it."""
    require_operator(request)
    return key_status_out()


@router.post("/signing-keys/rotate", response={200: list[SigningKeyOut], **_REFUSALS})
def rotate_signing_keys(request: HttpRequest, payload: SigningKeyRotationIn) -> list[dict[str, Any]]:
    """One step of a signing-key rotation (stage, promote, or discard a staged key). Audited.

    Stage, then wait until relying parties have refreshed their cached JWKS
    (at least the JWKS cache lifetime they use), then promote. A step that
    does not apply now (promote with nothing staged, stage twice) is a 409
    that says what to do first.
    """
    require_operator(request)
    if payload.algorithm is not None and payload.action != "stage":
        raise Unprocessable("algorithm applies to stage only: a promoted key keeps its own", field="algorithm")
    before = keys.key_status()
    try:
        keys.rotate(payload.action, algorithm=payload.algorithm or SigningKey.Algorithm.RS256)
    except SigningKeyError as exc:
        raise _refused(exc) from None
    after = key_status_out()
    record(KEY_EVENTS[payload.action], **who(request), **key_changes(payload.action, before, after))
    return after


__all__ = ["router"]
