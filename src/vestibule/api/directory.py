"""REST endpoints: the SCIM tokens with which an account's directory provisions its people.

A token is created by the account's administrator (or the operator), shown
once, and speaks for that account only at ``{VESTIBULE_BASE_URL}/scim/v2``.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Status
from pydantic import Field

from vestibule.api.errors import NotFound, applying_rules
from vestibule.api.schemas import StrictSchema
from vestibule.api.security import account_for, principal, who
from vestibule.authority.principal import ADMINISTRATOR
from vestibule.directory import tokens

router = Router(tags=["directory"])


class ScimTokenIn(StrictSchema):
    name: str = Field(default="", max_length=200, description="What people and the audit log call the directory")
    connection: str | None = Field(
        default=None,
        max_length=64,
        description=(
            "ID of a connection of this account: the directory's externalId is then the person's external user ID "
            "at that connection (SAML NameID / OIDC sub), so the next SSO login finds the provisioned person"
        ),
    )


@router.get("/accounts/{slug}/scim-tokens")
def list_scim_tokens(request: HttpRequest, slug: str) -> list[dict[str, Any]]:
    """The account's live SCIM tokens, without their secrets."""
    account = account_for(request, slug, ADMINISTRATOR)
    return [tokens.token_out(t) for t in tokens.live_tokens(account)]


@router.post("/accounts/{slug}/scim-tokens", response={201: dict})
def create_scim_token(request: HttpRequest, slug: str, payload: ScimTokenIn) -> Status[Any]:
    """A bearer token for the account's directory, and the SCIM base URL to configure with it (shown once)."""
    account = account_for(request, slug, ADMINISTRATOR)
    _, body = applying_rules(
        lambda: tokens.issue(
            account,
            actor=who(request),
            name=payload.name,
            connection_id=payload.connection,
            created_by=principal(request).label,
        )
    )
    return Status(201, body)


@router.delete("/accounts/{slug}/scim-tokens/{prefix}", response={204: None})
def revoke_scim_token(request: HttpRequest, slug: str, prefix: str) -> Status[Any]:
    """Revoke a token: the directory's next request with it gets 401."""
    account = account_for(request, slug, ADMINISTRATOR)
    if not tokens.revoke(account, prefix, actor=who(request)):
        raise NotFound(f"SCIM token '{prefix}' not found", field="prefix")
    return Status(204, None)


__all__ = ["router"]
