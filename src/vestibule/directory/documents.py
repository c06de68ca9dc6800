"""What a directory sends: request bodies read once, bounded, and parsed into plain values.

Everything here is hostile until it is a :class:`UserDocument` or a
:class:`GroupDocument`: the body's size and media type, its JSON (no NaN, no
nesting beyond :data:`MAX_DEPTH`), every string storable (no NUL, no lone
surrogate: PostgreSQL refuses them), and each attribute of the type RFC 7643
gives it. Attributes Vestibule does not store (the enterprise extension,
phone numbers…) are accepted and ignored, as RFC 7644 §3.3 allows.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest

from vestibule.directory.models import MAX_EXTERNAL_ID
from vestibule.domain.emails import InvalidEmail, require_canonical_email
from vestibule.domain.text import is_storable
from vestibule.scim.errors import ScimError

MAX_BODY = 256 * 1024
MAX_DEPTH = 16
MAX_MEMBERS = 1000
# A group after a PATCH: its stored members plus at most the operations' additions.
MAX_GROUP_SIZE = 100_000
MAX_NAME = 200
MEDIA_TYPES = frozenset({"application/scim+json", "application/json", ""})


def _refuse_constant(name: str) -> Any:
    raise ScimError(f"{name} is not a JSON value SCIM accepts", scim_type="invalidSyntax")


def read_json(request: HttpRequest) -> Any:
    """The request's JSON body, or a :class:`ScimError` naming what is wrong with it."""
    media = request.META.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
    if media not in MEDIA_TYPES:
        raise ScimError(f"send the body as application/scim+json (got {media!r})", status=415)
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY:
        raise ScimError(f"the body is larger than {MAX_BODY} bytes", status=413)
    try:
        raw = request.body
    except RequestDataTooBig:
        raise ScimError(f"the body is larger than {MAX_BODY} bytes", status=413) from None
    if len(raw) > MAX_BODY:
        raise ScimError(f"the body is larger than {MAX_BODY} bytes", status=413)
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except ScimError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ScimError("the body is not a JSON document", scim_type="invalidSyntax") from None
    _check_storable(value)
    return value


def _check_storable(value: Any) -> None:
    """Every string (keys too) storable, and nesting bounded; iterative, so no depth can overflow the stack."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ScimError(f"the body nests deeper than {MAX_DEPTH} levels", scim_type="invalidSyntax")
        if isinstance(item, str):
            if not is_storable(item):
                raise ScimError(
                    "a value contains NUL, a control character or a lone surrogate", scim_type="invalidValue"
                )
        elif isinstance(item, dict):
            stack.extend((k, depth + 1) for k in item)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def _lower_keys(body: dict[str, Any]) -> dict[str, Any]:
    # Attribute names are case-insensitive (RFC 7643 §2.1); the last spelling wins on a duplicate.
    return {k.lower(): v for k, v in body.items()}


def _text(body: dict[str, Any], key: str, label: str, *, limit: int = MAX_NAME) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ScimError(f"{label} must be a string", scim_type="invalidValue")
    if len(value) > limit:
        raise ScimError(f"{label} has at most {limit} characters", scim_type="invalidValue")
    return value


def _external_id(body: dict[str, Any]) -> str | None:
    value = _text(body, "externalid", "externalId", limit=MAX_EXTERNAL_ID)
    if value is not None and (not value or value != value.strip()):
        raise ScimError("externalId must not be empty or have surrounding whitespace", scim_type="invalidValue")
    return value


def _boolean(value: Any, label: str) -> bool:
    # Entra ID sends "True"/"False" as strings (its documented dialect); anything else must be a JSON boolean.
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ScimError(f"{label} must be a boolean", scim_type="invalidValue")


def _object(value: Any, label: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ScimError(f"{label} must be a JSON object", scim_type="invalidSyntax")
    return value


@dataclass(frozen=True)
class UserDocument:
    """A User as the directory wants it. ``None`` is "not sent" (left as it is), except for ``external_id``."""

    user_name: str
    display_name: str | None
    formatted: str | None
    given_name: str | None
    family_name: str | None
    active: bool | None
    external_id: str | None
    external_id_sent: bool

    def full_name(self) -> str:
        """The one name Vestibule keeps: displayName, else name.formatted, else given and family names."""
        if self.display_name:
            return self.display_name
        if self.formatted:
            return self.formatted
        return " ".join(p for p in (self.given_name, self.family_name) if p)


def user_document(unverified: Any) -> UserDocument:
    body = _lower_keys(_object(unverified, "a User"))
    user_name = _text(body, "username", "userName", limit=254)
    if user_name is None:
        raise ScimError("userName is required (the person's email address)", scim_type="invalidValue")
    try:
        user_name = require_canonical_email(user_name)
    except InvalidEmail as exc:
        raise ScimError(
            f"userName must be the person's email address: {exc.reason}", scim_type="invalidValue"
        ) from None
    name = _lower_keys(_object(body["name"], "name")) if body.get("name") is not None else {}
    active = body.get("active")
    return UserDocument(
        user_name=user_name,
        display_name=_text(body, "displayname", "displayName"),
        formatted=_text(name, "formatted", "name.formatted"),
        given_name=_text(name, "givenname", "name.givenName"),
        family_name=_text(name, "familyname", "name.familyName"),
        active=None if active is None else _boolean(active, "active"),
        external_id=_external_id(body),
        external_id_sent="externalid" in body,
    )


@dataclass(frozen=True)
class GroupDocument:
    display_name: str
    external_id: str | None
    external_id_sent: bool
    # User ids (their ``subject``), in the order sent, without repeats; None when not sent.
    members: tuple[uuid.UUID, ...] | None


def group_document(unverified: Any, *, max_members: int = MAX_MEMBERS) -> GroupDocument:
    body = _lower_keys(_object(unverified, "a Group"))
    display_name = _text(body, "displayname", "displayName")
    if not display_name or not display_name.strip():
        raise ScimError("displayName is required", scim_type="invalidValue")
    members: tuple[uuid.UUID, ...] | None = None
    if body.get("members") is not None:
        raw = body["members"]
        if not isinstance(raw, list):
            raise ScimError("members must be a list", scim_type="invalidValue")
        if len(raw) > max_members:
            raise ScimError(f"at most {max_members} members in one request; add more with PATCH", scim_type="tooMany")
        seen: dict[uuid.UUID, None] = {}
        for index, item in enumerate(raw):
            member = _lower_keys(_object(item, f"members[{index}]"))
            seen[member_id(member.get("value"), f"members[{index}].value")] = None
        members = tuple(seen)
    return GroupDocument(
        display_name=display_name,
        external_id=_external_id(body),
        external_id_sent="externalid" in body,
        members=members,
    )


def member_id(value: Any, label: str) -> uuid.UUID:
    """A member's ``value``: the id of a User of this directory (a UUID)."""
    if not isinstance(value, str):
        raise ScimError(f"{label} must be the id of a User", scim_type="invalidValue")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ScimError(f"{label} is not the id of a User of this directory", scim_type="invalidValue") from None


def resource_id(value: str) -> uuid.UUID | None:
    """An id from the URL, or None when it cannot name anything (then: 404)."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
