"""REST endpoints: the SCIM tokens with which an account's directory provisions its people."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["directory"])
