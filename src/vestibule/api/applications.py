"""Applications (clients of the OpenID Provider) and the provider's signing keys (being written)."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["applications"])
