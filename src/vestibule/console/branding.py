"""The deployment's and the account's brand on every page (product name, logo, accent colour)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def brand(request: HttpRequest) -> dict[str, Any]:
    return {"brand": {"product_name": getattr(settings, "VESTIBULE_PRODUCT_NAME", "Vestibule")}}
