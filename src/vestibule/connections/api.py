"""REST endpoints: connections, domains, mapping roles."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["connections"])
