"""SCIM resources as Vestibule serves them (RFC 7643 §4, §5, §6, §7; RFC 7644 §3.4.2).

Pure rendering from plain values: the Django layer (``vestibule.directory``)
reads its models and calls these. The discovery documents are built with
scim2-models from the RFC's own schema definitions, narrowed to the attributes
Vestibule actually stores, so a client (or scim2-tester) that reads
``/Schemas`` never writes an attribute that would silently vanish.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    ETag,
    Filter,
    Group,
    Patch,
    ResourceType,
    ServiceProviderConfig,
    Sort,
    User,
)

USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST_URN = "urn:ietf:params:scim:api:messages:2.0:ListResponse"

# The largest page a list answers, whatever ``count`` asks (advertised as filter.maxResults).
MAX_RESULTS = 200

# Per resource: the schema attributes Vestibule stores, each with the sub-attributes it keeps.
_SERVED: dict[str, dict[str, set[str] | None]] = {
    "User": {
        "userName": None,
        "name": {"formatted", "givenName", "familyName"},
        "displayName": None,
        "active": None,
        "emails": {"value", "type", "primary"},
    },
    # members.display is left out: RFC 7643 §8.7.1 lists value, $ref and type, and a display the
    # directory could set would be a second name for a person who already has one.
    "Group": {"displayName": None, "members": {"value", "$ref", "type"}},
}
# Where Vestibule's storage differs from the RFC's defaults, the schema says so (RFC 7643 §7).
_OVERRIDES: dict[tuple[str, str], dict[str, Any]] = {
    # The one email is userName's: it changes with userName, never on its own.
    ("User", "emails"): {"mutability": "readOnly"},
    # Every membership is active or not: there is no "unknown".
    ("User", "active"): {"required": True},
}


def _served_schema(model: Any, resource: str, base: str) -> dict[str, Any]:
    schema: dict[str, Any] = model.to_schema().model_dump()
    keep = _SERVED[resource]
    attributes = []
    for attribute in schema["attributes"]:
        if attribute["name"] not in keep:
            continue
        subs = keep[attribute["name"]]
        if subs is not None and attribute.get("subAttributes"):
            attribute = {
                **attribute,
                "subAttributes": [
                    {**s, **_OVERRIDES.get((resource, f"{attribute['name']}.{s['name']}"), {})}
                    for s in attribute["subAttributes"]
                    if s["name"] in subs
                ],
            }
            if (resource, attribute["name"]) in _OVERRIDES and "mutability" in _OVERRIDES[
                (resource, attribute["name"])
            ]:
                # A read-only attribute has read-only parts.
                attribute["subAttributes"] = [{**s, "mutability": "readOnly"} for s in attribute["subAttributes"]]
        attributes.append({**attribute, **_OVERRIDES.get((resource, attribute["name"]), {})})
    schema["attributes"] = attributes
    schema["meta"] = {"resourceType": "Schema", "location": f"{base}/Schemas/{schema['id']}"}
    return schema


def schemas(base: str) -> list[dict[str, Any]]:
    """``/Schemas`` (RFC 7644 §4): the User and Group schemas, narrowed to what is stored."""
    return [_served_schema(User, "User", base), _served_schema(Group, "Group", base)]


def resource_types(base: str) -> list[dict[str, Any]]:
    """``/ResourceTypes`` (RFC 7644 §4). The enterprise extension is accepted on writes, ignored, and not advertised."""
    user = ResourceType.model_validate(
        {
            "id": "User",
            "name": "User",
            "description": "A person in the account, with their membership's active state",
            "endpoint": "/Users",
            "schema": USER_URN,
        }
    ).model_dump()
    group = ResourceType.model_validate(
        {
            "id": "Group",
            "name": "Group",
            "description": "A group of the account's people; named like a mapping role, it grants that role's roles",
            "endpoint": "/Groups",
            "schema": GROUP_URN,
        }
    ).model_dump()
    for item in (user, group):
        item["meta"] = {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/{item['id']}"}
    return [user, group]


def service_provider_config(base: str) -> dict[str, Any]:
    """``/ServiceProviderConfig`` (RFC 7643 §5): what this service provider supports."""
    config = ServiceProviderConfig(
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=False),
        authentication_schemes=[
            AuthenticationScheme(
                type=AuthenticationScheme.Type.oauthbearertoken,
                name="Bearer token",
                description=(
                    "A SCIM token of the account (POST /api/v1/accounts/<slug>/scim-tokens), "
                    "sent as 'Authorization: Bearer <token>'"
                ),
                primary=True,
            )
        ],
    ).model_dump()
    config["meta"] = {"resourceType": "ServiceProviderConfig", "location": f"{base}/ServiceProviderConfig"}
    return config


def _stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def meta(resource_type: str, location: str, created: datetime, modified: datetime) -> dict[str, Any]:
    return {
        "resourceType": resource_type,
        "created": _stamp(created),
        "lastModified": _stamp(modified),
        "location": location,
    }


def user_resource(
    *,
    id: str,
    user_name: str,
    display_name: str,
    formatted: str,
    given_name: str,
    family_name: str,
    active: bool,
    external_id: str | None,
    meta: Mapping[str, Any],
) -> dict[str, Any]:
    """A User (RFC 7643 §4.1): ``userName`` is the email, which is also the one primary work email.

    Empty strings are attributes without a value, left out.
    """
    name: dict[str, str] = {}
    if formatted:
        name["formatted"] = formatted
    if given_name:
        name["givenName"] = given_name
    if family_name:
        name["familyName"] = family_name
    resource: dict[str, Any] = {"schemas": [USER_URN], "id": id}
    if external_id is not None:
        resource["externalId"] = external_id
    resource["userName"] = user_name
    if name:
        resource["name"] = name
    if display_name:
        resource["displayName"] = display_name
    resource["emails"] = [{"value": user_name, "type": "work", "primary": True}]
    resource["active"] = active
    resource["meta"] = dict(meta)
    return resource


def group_resource(
    *,
    id: str,
    display_name: str,
    external_id: str | None,
    members: Iterable[tuple[str, str]],
    meta: Mapping[str, Any],
) -> dict[str, Any]:
    """A Group (RFC 7643 §4.2); ``members`` are (id, $ref) of Users."""
    resource: dict[str, Any] = {"schemas": [GROUP_URN], "id": id}
    if external_id is not None:
        resource["externalId"] = external_id
    resource["displayName"] = display_name
    resource["members"] = [{"value": value, "$ref": ref, "type": "User"} for value, ref in members]
    resource["meta"] = dict(meta)
    return resource


def list_response(resources: list[dict[str, Any]], *, total: int, start_index: int) -> dict[str, Any]:
    """RFC 7644 §3.4.2: one page of results."""
    return {
        "schemas": [LIST_URN],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


# Attributes returned whatever ``attributes``/``excludedAttributes`` say (RFC 7643 §7 "returned": "always").
_ALWAYS = frozenset({"id", "schemas"})
_URN_PREFIXES = (USER_URN + ":", GROUP_URN + ":")


def attribute_list(text: str | None) -> set[str] | None:
    """``attributes=a,b.c`` as lower-case paths without a core schema URN, or None when absent."""
    if text is None:
        return None
    paths = set()
    for raw in text.split(","):
        path = raw.strip()
        for prefix in _URN_PREFIXES:
            if path.lower().startswith(prefix.lower()):
                path = path[len(prefix) :]
        if path:
            paths.add(path.lower())
    return paths


def project(resource: dict[str, Any], *, attributes: set[str] | None, excluded: set[str] | None) -> dict[str, Any]:
    """RFC 7644 §3.4.2.5: keep only ``attributes`` (or drop ``excluded``), top level and one sub-attribute deep."""
    if attributes is None and not excluded:
        return resource
    out: dict[str, Any] = {}
    for key, value in resource.items():
        lower = key.lower()
        if lower in _ALWAYS:
            out[key] = value
            continue
        if attributes is not None:
            if lower in attributes:
                out[key] = value
                continue
            subs = {p.split(".", 1)[1] for p in attributes if p.startswith(lower + ".")}
            if subs and isinstance(value, dict):
                out[key] = {k: v for k, v in value.items() if k.lower() in subs}
            elif subs and isinstance(value, list):
                out[key] = [
                    {k: v for k, v in item.items() if k.lower() in subs} for item in value if isinstance(item, dict)
                ]
            continue
        assert excluded is not None
        if lower in excluded:
            continue
        subs = {p.split(".", 1)[1] for p in excluded if p.startswith(lower + ".")}
        if subs and isinstance(value, dict):
            out[key] = {k: v for k, v in value.items() if k.lower() not in subs}
        elif subs and isinstance(value, list):
            out[key] = [
                {k: v for k, v in item.items() if k.lower() not in subs} for item in value if isinstance(item, dict)
            ]
        else:
            out[key] = value
    return out


__all__ = [
    "ENTERPRISE_USER_URN",
    "GROUP_URN",
    "LIST_URN",
    "MAX_RESULTS",
    "USER_URN",
    "attribute_list",
    "group_resource",
    "list_response",
    "meta",
    "project",
    "resource_types",
    "schemas",
    "service_provider_config",
    "user_resource",
]
