"""The scopes applications may ask for, ``organization:<slug>`` among them."""

from __future__ import annotations

from typing import Any

from oauth2_provider.scopes import BaseScopes

ORGANIZATION = "organization"
ORGANIZATION_PREFIX = "organization:"

SCOPES = {
    "openid": "Sign you in",
    "email": "Your email address",
    "profile": "Your name",
    ORGANIZATION: "Your organization and your roles in it",
}


def requested_organization(scopes: list[str] | tuple[str, ...] | set[str]) -> tuple[bool, str | None]:
    """Whether the organization scope was asked for, and the slug ``organization:<slug>`` named, if any."""
    named = [s.removeprefix(ORGANIZATION_PREFIX) for s in scopes if s.startswith(ORGANIZATION_PREFIX)]
    return (ORGANIZATION in scopes or bool(named)), (named[0] if named else None)


class _Descriptions(dict[str, str]):
    """The scope descriptions, answering for any ``organization:<slug>`` too."""

    def __missing__(self, key: str) -> str:
        if key.startswith(ORGANIZATION_PREFIX):
            return f"Your roles in the organization {key.removeprefix(ORGANIZATION_PREFIX)}"
        raise KeyError(key)


class Scopes(BaseScopes):
    def get_all_scopes(self) -> dict[str, str]:
        return _Descriptions(SCOPES)

    def get_available_scopes(
        self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any
    ) -> list[str]:
        asked = list(getattr(request, "scopes", None) or [])
        # One named organization at a most; its slug's existence is checked where it is used (the authorize view).
        named = [s for s in asked if s.startswith(ORGANIZATION_PREFIX) and len(s) > len(ORGANIZATION_PREFIX)][:1]
        return [*SCOPES, *named]

    def get_default_scopes(self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any) -> list[str]:
        return ["openid"]
