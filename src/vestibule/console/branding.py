"""The deployment's and the account's brand on every page (product name, logo, accent colour).

The deployment's brand comes from ``VESTIBULE_PRODUCT_NAME``,
``VESTIBULE_LOGO_FILE`` and ``VESTIBULE_ACCENT_COLOR`` (checked at startup by
``vestibule.conf.env``); an account's is its display name and the logo its
administrator uploads on the console's Branding page.

Logos are served from this origin (the CSP's ``img-src 'self' data:``) at
content-addressed URLs: ``/branding/logo/<sha256>`` and
``/branding/logos/<sha256>``. An account's logo URL carries no slug, so the
endpoint tells nothing about which accounts exist: knowing a URL means having
seen the page that shows it (a sign-in page of that account), or having the
image itself to hash.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound

from vestibule.accounts.models import Account, AccountLogo
from vestibule.conf.images import DARK_TEXT, Logo, ink
from vestibule.login.mail import product_name

DEPLOYMENT_LOGO_PATH = "/branding/logo/"


def deployment_logo() -> Logo | None:
    logo = getattr(settings, "VESTIBULE_LOGO", None)
    return logo if isinstance(logo, Logo) else None


def brand(request: HttpRequest) -> dict[str, Any]:
    """``brand`` for every template: product_name, logo_url, accent, accent_text, accent_ink."""
    logo = deployment_logo()
    accent = getattr(settings, "VESTIBULE_ACCENT", None)
    return {
        "brand": {
            "product_name": product_name(),
            "logo_url": f"{DEPLOYMENT_LOGO_PATH}{logo.digest}" if logo is not None else "",
            "accent": accent or "",
            "accent_text": getattr(settings, "VESTIBULE_ACCENT_TEXT", None) or "",
            # Links and headings on the white card: the accent only where it reads there.
            "accent_ink": ink(accent) if accent else "",
            "dark_text": DARK_TEXT,
        }
    }


def set_account_logo(account: Account, logo: Logo) -> None:
    with transaction.atomic():
        AccountLogo.objects.update_or_create(
            account=account, defaults={"digest": logo.digest, "content_type": logo.content_type, "data": logo.data}
        )
        account.logo_digest = logo.digest
        account.save(update_fields=["logo_digest"])


def remove_account_logo(account: Account) -> bool:
    """True when there was a logo to remove."""
    with transaction.atomic():
        deleted, _ = AccountLogo.objects.filter(account=account).delete()
        account.logo_digest = ""
        account.save(update_fields=["logo_digest"])
    return deleted > 0


def image_response(data: bytes, content_type: str) -> HttpResponse:
    """An image that is only ever an image: exact type, no sniffing, no script even if opened directly."""
    response = HttpResponse(data, content_type=content_type)
    # The URL names the content (its SHA-256): it never changes, so browsers keep it.
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Content-Disposition"] = "inline"
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    return response


def _no_logo() -> HttpResponse:
    # Plain text, not the HTML 404 page: an image URL answers nothing a browser would render as a page.
    response = HttpResponseNotFound("No such logo.\n", content_type="text/plain; charset=utf-8")
    response["X-Content-Type-Options"] = "nosniff"
    return response


def deployment_logo_response(digest: str) -> HttpResponse:
    logo = deployment_logo()
    if logo is None or digest != logo.digest:
        return _no_logo()
    return image_response(logo.data, logo.content_type)


def account_logo_response(digest: str) -> HttpResponse:
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        return _no_logo()
    row = AccountLogo.objects.filter(digest=digest).values_list("data", "content_type").first()
    if row is None:
        return _no_logo()
    return image_response(bytes(row[0]), row[1])
