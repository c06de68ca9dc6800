"""SCIM filters (RFC 7644 §3.4.2.2) as Django queries, over an explicit allow-list of attributes.

``vestibule.scim.filters`` parses the filter into a tree; here each node
becomes a ``Q`` over the account's own rows (the caller roots the queryset at
the token's account). Only the attributes and operators listed below are
translated; anything else is a 400 ``invalidFilter`` naming it, so no
client-chosen string ever becomes a field lookup. Values only ever reach the
database as query parameters.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db.models import Q

from vestibule.domain.text import is_storable
from vestibule.scim.errors import ScimError
from vestibule.scim.filters import And, Compare, Filter, Not, Or, Present

# Text comparisons per operator: case-insensitive, as RFC 7643 declares userName, emails and displayName.
_TEXT_LOOKUPS = {"eq": "iexact", "co": "icontains", "sw": "istartswith", "ew": "iendswith"}
# ...and case-exact for externalId (caseExact: true).
_EXACT_LOOKUPS = {"eq": "exact", "co": "contains", "sw": "startswith", "ew": "endswith"}


@dataclass(frozen=True)
class Field:
    """How one SCIM attribute is found in the database."""

    lookup: str
    kind: str  # "text", "exact", "uuid", "active", "constant"


USER_FIELDS = {
    "username": Field("user__email", "text"),
    "emails.value": Field("user__email", "text"),
    "emails": Field("user__email", "text"),
    "displayname": Field("user__name", "text"),
    "name.formatted": Field("user__name", "text"),
    "name.givenname": Field("directory_record__given_name", "text"),
    "name.familyname": Field("directory_record__family_name", "text"),
    "externalid": Field("directory_record__external_id", "exact"),
    "id": Field("user__subject", "uuid"),
    "active": Field("", "active"),
    # Every User has exactly one email, of type "work" and primary (see scim.resources.user_resource):
    # these hold for all or none, so Entra's emails[type eq "work"].value eq "x" narrows by the value alone.
    "emails.type": Field("work", "constant"),
    "emails.primary": Field("", "constant"),
}

GROUP_FIELDS = {
    "displayname": Field("display_name", "text"),
    "externalid": Field("external_id", "exact"),
    "id": Field("id", "uuid"),
    "members.value": Field("memberships__user__subject", "uuid"),
    "members": Field("memberships__user__subject", "uuid"),
}


def _nothing() -> Q:
    return Q(pk__in=[])


def _active(value: bool) -> Q:
    # A member is active when their membership and their identity both are.
    both = Q(is_active=True, user__is_active=True)
    return both if value else ~both


def to_q(node: Filter, fields: dict[str, Field]) -> Q:
    """The ``Q`` for a parsed filter; ScimError(400, invalidFilter) for anything outside ``fields``."""
    if isinstance(node, And):
        return to_q(node.left, fields) & to_q(node.right, fields)
    if isinstance(node, Or):
        return to_q(node.left, fields) | to_q(node.right, fields)
    if isinstance(node, Not):
        return ~to_q(node.inner, fields)
    field = _field(node.attribute, fields)
    if isinstance(node, Present):
        if field.kind in ("active", "constant"):
            return Q()
        present = Q(**{f"{field.lookup}__isnull": False})
        return present & ~Q(**{field.lookup: ""}) if field.kind in ("text", "exact") else present
    return _compare(node, field)


def _field(attribute: str, fields: dict[str, Field]) -> Field:
    field = fields.get(attribute.lower())
    if field is None:
        raise ScimError(
            f"filtering on '{attribute}' is not supported; use one of {', '.join(sorted(fields))}",
            scim_type="invalidFilter",
        )
    return field


def _compare(node: Compare, field: Field) -> Q:
    op, value = node.op.lower(), node.value
    if op == "ne":
        return ~_compare(Compare(node.attribute, "eq", value), field)
    if field.kind == "active":
        if op != "eq" or not isinstance(value, bool):
            raise ScimError("active is compared with eq true or eq false", scim_type="invalidFilter")
        return _active(value)
    if field.kind == "constant":
        return _constant(node, field)
    if field.kind == "uuid":
        if op != "eq" or not isinstance(value, str):
            raise ScimError(f"'{node.attribute}' is compared with eq and an id", scim_type="invalidFilter")
        try:
            return Q(**{field.lookup: uuid.UUID(value)})
        except ValueError:
            return _nothing()  # no id has that form: nothing matches, as for an unknown id
    lookups = _TEXT_LOOKUPS if field.kind == "text" else _EXACT_LOOKUPS
    if op not in lookups:
        raise ScimError(
            f"'{node.attribute}' supports {', '.join(['eq', 'ne', *sorted(set(lookups) - {'eq'})])} and pr, not {op}",
            scim_type="invalidFilter",
        )
    if not isinstance(value, str):
        raise ScimError(f"'{node.attribute}' is compared with a string", scim_type="invalidFilter")
    if not is_storable(value):
        # PostgreSQL refuses NUL even as a query parameter: a 400 here, not a 500 there.
        raise ScimError("a filter value contains NUL or another control character", scim_type="invalidFilter")
    return Q(**{f"{field.lookup}__{lookups[op]}": value})


def _constant(node: Compare, field: Field) -> Q:
    """``emails.type`` is "work" and ``emails.primary`` is true for everyone: a comparison is all or nothing."""
    if field.lookup:  # emails.type
        if node.op.lower() != "eq" or not isinstance(node.value, str):
            raise ScimError(f"'{node.attribute}' is compared with eq and a string", scim_type="invalidFilter")
        return Q() if node.value.lower() == field.lookup else _nothing()
    if node.op.lower() != "eq" or not isinstance(node.value, bool):
        raise ScimError(f"'{node.attribute}' is compared with eq true or eq false", scim_type="invalidFilter")
    return Q() if node.value else _nothing()


@dataclass(frozen=True)
class Page:
    start_index: int
    count: int


MAX_QUERY_INTEGER = 10**9


def page(start_index: str | None, count: str | None, max_results: int) -> Page:
    """RFC 7644 §3.4.2.4: 1-based ``startIndex`` (below 1 means 1), ``count`` bounded to ``max_results``."""
    return Page(
        start_index=max(1, _integer(start_index, "startIndex", 1)),
        count=min(max(0, _integer(count, "count", max_results)), max_results),
    )


def _integer(text: str | None, label: str, default: int) -> int:
    if text is None or text == "":
        return default
    stripped = text.strip()
    if not stripped.lstrip("-").isdigit() or not stripped.isascii() or len(stripped) > 12:
        raise ScimError(f"{label} must be an integer", scim_type="invalidValue")
    return max(-MAX_QUERY_INTEGER, min(int(stripped), MAX_QUERY_INTEGER))
