"""Registering applications (clients of the provider): the rules the API and the CLI share."""

from __future__ import annotations

import base64
import ipaddress
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.db import transaction
from django.utils import timezone
from oauth2_provider.generators import generate_client_secret

from vestibule.conf.secretbox import open_secret, seal_secret
from vestibule.provider import authorizations
from vestibule.provider.models import Application

CLIENT_TYPES = (Application.CLIENT_CONFIDENTIAL, Application.CLIENT_PUBLIC)


class ApplicationError(Exception):
    """Input an application cannot be registered with; ``field`` names the culprit."""

    def __init__(self, detail: str, *, field: str, status: int = 422) -> None:
        super().__init__(detail)
        self.detail, self.field, self.status = detail, field, status


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_uri(uri: Any, *, field: str, allow_empty: bool = False) -> str:
    """An absolute https URI (http only on loopback, for development), with no fragment and no credentials.

    Redirect URIs are compared exactly, character for character, so they are
    not normalised here either: what is registered is what must be sent.
    """
    if not isinstance(uri, str) or not uri.strip():
        if allow_empty and (uri is None or uri == ""):
            return ""
        raise ApplicationError("must be an absolute URI", field=field)
    if uri != uri.strip() or any(ord(ch) < 0x21 or ch == "\x7f" for ch in uri) or len(uri) > 2000:
        raise ApplicationError(f"{uri!r} contains spaces or control characters", field=field)
    parts = urlsplit(uri)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ApplicationError(f"{uri} is not an absolute http(s) URI", field=field)
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ApplicationError(f"{uri} must use https (http is allowed only on 127.0.0.1 or localhost)", field=field)
    if parts.fragment or "#" in uri:
        raise ApplicationError(f"{uri} must not have a fragment", field=field)
    if parts.username or parts.password:
        raise ApplicationError(f"{uri} must not carry credentials", field=field)
    return uri


def check_uris(uris: Any, *, field: str, required: bool) -> list[str]:
    if uris is None:
        uris = []
    if not isinstance(uris, list):
        raise ApplicationError("must be a list of URIs", field=field)
    if required and not uris:
        raise ApplicationError("at least one URI is required", field=field)
    if len(uris) > 50:
        raise ApplicationError("at most 50 URIs", field=field)
    checked = [check_uri(u, field=field) for u in uris]
    return list(dict.fromkeys(checked))


def check_name(name: Any) -> str:
    stripped = name.strip() if isinstance(name, str) else ""
    if not stripped or len(stripped) > 200:
        raise ApplicationError("a name of 1 to 200 characters is required", field="name")
    return stripped


@dataclass(frozen=True)
class Registered:
    application: Application
    client_secret: str | None
    # The Standard Webhooks signing secret ("whsec_..."), when a webhook URL was given: shown once.
    webhook_secret: str | None = None


WEBHOOK_SECRET_PURPOSE = "webhook-secret"


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def set_webhook_secret(application: Application) -> str:
    """Give the application a new webhook signing secret (sealed at rest); returns it, to be shown once."""
    secret = new_webhook_secret()
    application.webhook_secret_sealed = seal_secret(secret, purpose=WEBHOOK_SECRET_PURPOSE)
    return secret


def webhook_secret(application: Application) -> str:
    return open_secret(application.webhook_secret_sealed, purpose=WEBHOOK_SECRET_PURPOSE)


def register(
    *,
    name: str,
    redirect_uris: list[str],
    client_type: str = Application.CLIENT_CONFIDENTIAL,
    post_logout_redirect_uris: list[str] | None = None,
    backchannel_logout_uri: str | None = None,
    webhook_url: str | None = None,
    created_by: str = "",
) -> Registered:
    """Register an application; a confidential one's secret is returned here once and stored hashed."""
    name = check_name(name)
    if client_type not in CLIENT_TYPES:
        raise ApplicationError(f"must be one of {', '.join(CLIENT_TYPES)}", field="client_type")
    redirects = check_uris(redirect_uris, field="redirect_uris", required=True)
    logouts = check_uris(post_logout_redirect_uris, field="post_logout_redirect_uris", required=False)
    backchannel = check_uri(backchannel_logout_uri, field="backchannel_logout_uri", allow_empty=True)
    webhook = check_uri(webhook_url, field="webhook_url", allow_empty=True)
    secret = str(generate_client_secret()) if client_type == Application.CLIENT_CONFIDENTIAL else ""
    application = Application(
        name=name,
        client_type=client_type,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=" ".join(redirects),
        post_logout_redirect_uris=" ".join(logouts),
        backchannel_logout_uri=backchannel,
        webhook_url=webhook,
        client_secret=secret,
        # A public client has no secret; hashing would store a hash of "" for nothing.
        hash_client_secret=bool(secret),
        # Applications are the operator's own (first-party): no consent screen.
        skip_authorization=True,
        algorithm=Application.RS256_ALGORITHM,
        created_by=created_by,
    )
    hook_secret = set_webhook_secret(application) if webhook else None
    application.save()
    return Registered(application, secret or None, hook_secret)


def change(application: Application, changes: dict[str, Any]) -> str | None:
    """Validate and set the changed fields with the registration's rules (not saved).

    Returns a new webhook secret when the application gains a webhook URL: shown once.
    """
    if "name" in changes:
        application.name = check_name(changes["name"])
    if "redirect_uris" in changes:
        application.redirect_uris = " ".join(check_uris(changes["redirect_uris"], field="redirect_uris", required=True))
    if "post_logout_redirect_uris" in changes:
        uris = check_uris(changes["post_logout_redirect_uris"], field="post_logout_redirect_uris", required=False)
        application.post_logout_redirect_uris = " ".join(uris)
    if "backchannel_logout_uri" in changes:
        application.backchannel_logout_uri = check_uri(
            changes["backchannel_logout_uri"], field="backchannel_logout_uri", allow_empty=True
        )
    new_secret = None
    if "webhook_url" in changes:
        had_webhook = bool(application.webhook_url)
        application.webhook_url = check_uri(changes["webhook_url"], field="webhook_url", allow_empty=True)
        if not application.webhook_url:
            # No URL, nothing signed: the secret goes with it, and a later URL gets a fresh one.
            application.webhook_secret_sealed = ""
        elif not had_webhook or not application.webhook_secret_sealed:
            new_secret = set_webhook_secret(application)
    return new_secret


def rotate_secret(application: Application) -> str:
    if application.client_type != Application.CLIENT_CONFIDENTIAL:
        raise ApplicationError("a public client has no secret", field="client_type", status=409)
    secret = str(generate_client_secret())
    application.client_secret = secret
    application.save(update_fields=["client_secret", "updated"])
    return secret


def revoke(application: Application) -> int:
    """Revoke the application: it authenticates nowhere from now on, and its open sign-ins end."""
    with transaction.atomic():
        application.revoked_at = timezone.now()
        application.save(update_fields=["revoked_at", "updated"])
        return authorizations.end_for_application(application)


def describe(application: Application) -> dict[str, Any]:
    return {
        "client_id": application.client_id,
        "name": application.name,
        "client_type": application.client_type,
        "redirect_uris": application.redirect_uri_list(),
        "post_logout_redirect_uris": application.post_logout_redirect_uri_list(),
        "backchannel_logout_uri": application.backchannel_logout_uri or None,
        "webhook_url": application.webhook_url or None,
        "created_at": application.created,
        "created_by": application.created_by,
        "revoked_at": application.revoked_at,
    }
