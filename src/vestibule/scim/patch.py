"""SCIM PATCH (RFC 7644 §3.5.2) on a resource held as a JSON dict, with the dialects of Entra ID and Okta.

:func:`parse_patch` validates the PatchOp message; :func:`apply_patch` applies
its operations to a copy of the resource and returns the copy, so a failing
operation leaves nothing half-applied and the caller's dict is never touched.
What may be written is read from a :class:`Schema`: the attribute definitions
of RFC 7643 as ``scim2-models`` declares them (type, multiplicity, mutability),
so the User and Group schemas here are derived from its models, not re-typed.

The real clients' dialects, all accepted:

- Entra ID capitalises ``op`` (``"Replace"``), sends booleans as strings
  (``"value": "False"``), sends path-less replaces whose value keys are paths
  (``"name.givenName"``, ``"emails[type eq \\"work\\"].value"``,
  ``"urn:…:enterprise:2.0:User:department"``), removes members with a value
  array (``{"op": "Remove", "path": "members", "value": [{"value": "ID"}]}``),
  sends the enterprise ``manager`` as a bare id string, and replaces
  ``emails[type eq "work"].value`` on a user who has no work email yet (the
  element the filter describes is created, as it expects).
- Okta deactivates with a path-less ``replace {"active": false}`` and restates
  read-only attributes unchanged (``{"id": "…", "displayName": "…"}``): writing
  a read-only attribute its current value is a no-op, any other value is
  refused with ``mutability``.

Every attribute of the RFC 7643 User schema is known, so a client's default
attribute mapping (``title``, ``phoneNumbers``, ``addresses``…) applies
cleanly; the service persists what it models and ignores the rest.

scim2-models has a PATCH engine of its own, and on standard operations this
one agrees with it (``tests/scim/test_scim2_models_agreement.py``); it refuses
four of Entra's forms above, which is why operations are applied here.

Cost is bounded for large groups: a run of membership operations (Okta's one
``members[value eq "ID"]`` removal per member) is merged and walks the member
list once, and a PATCH that would walk more than :data:`MAX_ELEMENT_VISITS`
values in all is refused with 413 before it takes more than about a second.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final, Literal, cast

from scim2_models import EnterpriseUser, Extension, Group, Resource, User

from vestibule.domain.text import is_storable
from vestibule.scim.errors import ScimError
from vestibule.scim.filters import And, AttrPath, Compare, Filter, ValuePath, compile_filter, parse_path

__all__ = [
    "ENTERPRISE_USER_URN",
    "GROUP_SCHEMA",
    "MAX_ELEMENT_VISITS",
    "MAX_OPERATIONS",
    "PATCH_OP_URN",
    "USER_SCHEMA",
    "Attribute",
    "PatchOperation",
    "Schema",
    "apply_patch",
    "parse_patch",
]

PATCH_OP_URN: Final = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ENTERPRISE_USER_URN: Final = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
# Entra batches membership changes; a thousand operations is far above what it sends in one request.
MAX_OPERATIONS: Final = 1000
# Each operation on a multi-valued attribute walks its values once: a PATCH may walk this many in all
# (a hundred operations on a group of twenty thousand members), about a second of work at worst.
MAX_ELEMENT_VISITS: Final = 2_000_000

Op = Literal["add", "replace", "remove"]


@dataclass(frozen=True)
class Attribute:
    """One attribute definition of RFC 7643 §7: what a PATCH may write and how its value is typed."""

    name: str
    type: str
    multi_valued: bool = False
    mutability: str = "readWrite"
    sub_attributes: tuple[Attribute, ...] = ()
    required: bool = False
    case_exact: bool = False

    def sub(self, name: str) -> Attribute | None:
        return self._subs.get(name.lower())

    @cached_property
    def _subs(self) -> dict[str, Attribute]:
        # Looked up once per element of a multi-valued attribute: a dict, not a scan.
        return {s.name.lower(): s for s in self.sub_attributes}


@dataclass(frozen=True)
class Schema:
    """A resource type's attributes, and those of each schema extension keyed by its URN."""

    attributes: tuple[Attribute, ...]
    extensions: dict[str, tuple[Attribute, ...]] = field(default_factory=dict)

    def attribute(self, name: str) -> Attribute | None:
        return _find(self.attributes, name)

    def extension(self, urn: str) -> tuple[str, tuple[Attribute, ...]] | None:
        """(the URN as the schema spells it, its attributes), looked up case-insensitively."""
        for known, attrs in self.extensions.items():
            if known.lower() == urn.lower():
                return known, attrs
        return None


def _find(attrs: Iterable[Attribute], name: str) -> Attribute | None:
    lowered = name.lower()
    return next((a for a in attrs if a.name.lower() == lowered), None)


def _from_definition(definition: Mapping[str, Any]) -> Attribute:
    return Attribute(
        name=definition["name"],
        type=definition["type"],
        multi_valued=bool(definition.get("multiValued")),
        mutability=definition.get("mutability") or "readWrite",
        sub_attributes=tuple(_from_definition(s) for s in definition.get("subAttributes") or ()),
        required=bool(definition.get("required")),
        case_exact=bool(definition.get("caseExact")),
    )


def _attributes_of(model: type[Resource[Any]] | type[Extension]) -> tuple[Attribute, ...]:
    definitions = model.to_schema().model_dump(mode="json")["attributes"]
    return tuple(_from_definition(d) for d in definitions)


# The common attributes of RFC 7643 §3.1, which no schema document lists.
_COMMON: Final = (
    Attribute("id", "string", mutability="readOnly", case_exact=True),
    Attribute("externalId", "string", case_exact=True),
    Attribute(
        "meta",
        "complex",
        mutability="readOnly",
        sub_attributes=tuple(
            Attribute(name, kind, mutability="readOnly")
            for name, kind in (
                ("resourceType", "string"),
                ("created", "dateTime"),
                ("lastModified", "dateTime"),
                ("location", "reference"),
                ("version", "string"),
            )
        ),
    ),
)

USER_SCHEMA: Final = Schema(_COMMON + _attributes_of(User), {ENTERPRISE_USER_URN: _attributes_of(EnterpriseUser)})
GROUP_SCHEMA: Final = Schema(_COMMON + _attributes_of(Group))


@dataclass(frozen=True)
class PatchOperation:
    """One operation of a PatchOp message: ``op`` in lower case, ``path`` as sent (None when absent)."""

    op: Op
    path: str | None
    value: Any = None


# ---------------------------------------------------------------------------
# The message


def _syntax(detail: str) -> ScimError:
    return ScimError(detail, scim_type="invalidSyntax")


def _member(body: Mapping[str, Any], name: str) -> tuple[bool, Any]:
    # Structural names are matched case-insensitively, as Entra's documentation asks of services.
    for key, value in body.items():
        if isinstance(key, str) and key.lower() == name:
            return True, value
    return False, None


def parse_patch(body: object) -> list[PatchOperation]:
    """Validate a PatchOp message (RFC 7644 §3.5.2) and return its operations.

    ``ScimError(400, "invalidSyntax")`` for a malformed message or operation,
    ``invalidPath`` for a path that does not parse.
    """
    if not isinstance(body, dict):
        raise _syntax("the PATCH body must be a JSON object")
    _, schemas = _member(body, "schemas")
    if not isinstance(schemas, list) or not any(
        isinstance(s, str) and s.lower() == PATCH_OP_URN.lower() for s in schemas
    ):
        raise _syntax(f"the PATCH body must list the schema {PATCH_OP_URN}")
    _, operations = _member(body, "operations")
    if not isinstance(operations, list) or not operations:
        raise _syntax("the PATCH body must carry a non-empty 'Operations' array")
    if len(operations) > MAX_OPERATIONS:
        # 413, as RFC 7644 §3.7.3 answers a bulk request over maxOperations.
        raise ScimError(f"a PATCH carries at most {MAX_OPERATIONS} operations", status=413)
    return [_operation(raw, index) for index, raw in enumerate(operations)]


def _operation(raw: object, index: int) -> PatchOperation:
    if not isinstance(raw, dict):
        raise _syntax(f"operation {index} is not a JSON object")
    _, op = _member(raw, "op")
    if not isinstance(op, str) or op.lower() not in {"add", "replace", "remove"}:
        raise _syntax(f"operation {index}: 'op' must be add, replace or remove")
    has_path, path = _member(raw, "path")
    if has_path and path is not None:
        if not isinstance(path, str) or not path.strip():
            raise ScimError(f"operation {index}: 'path' must be a non-empty string", scim_type="invalidPath")
        if _extension_key(path) is None:
            parse_path(path)
    else:
        path = None
    has_value, value = _member(raw, "value")
    lowered = cast(Op, op.lower())
    if lowered != "remove" and not has_value:
        raise _syntax(f"operation {index}: {lowered} needs a 'value'")
    return PatchOperation(lowered, path, value)


def _extension_key(text: str) -> str | None:
    # A path or value key that is a schema extension URN itself addresses the whole extension object.
    lowered = text.lower()
    for schema in (USER_SCHEMA, GROUP_SCHEMA):
        for urn in schema.extensions:
            if urn.lower() == lowered:
                return urn
    return None


# ---------------------------------------------------------------------------
# Applying operations


def apply_patch(resource: dict[str, Any], operations: list[PatchOperation], schema: Schema) -> dict[str, Any]:
    """Apply ``operations`` in order to a copy of ``resource``; all of them or none (any error raises)."""
    patched = copy.deepcopy(resource)
    held = {urn for urn in schema.extensions if _extension_container_key(resource, urn) is not None}
    token = _BUDGET.set(_Budget())
    try:
        for operation in _coalesced(operations, schema):
            if operation.path is None:
                if operation.op == "remove":
                    raise ScimError("remove needs a 'path'", scim_type="noTarget")
                _apply_pathless(patched, operation.op, operation.value, schema)
            else:
                _apply_path(patched, operation.op, operation.path, operation.value, schema)
    finally:
        _BUDGET.reset(token)
    _list_extensions(patched, schema, held)
    return patched


def _coalesced(operations: list[PatchOperation], schema: Schema) -> list[PatchOperation]:
    """Runs of membership operations merged into one, so a batch walks the member list once, not once per member.

    Okta removes each member with its own ``members[value eq "ID"]`` operation, and
    clients add or remove members a few per operation. A run of such operations
    on the same multi-valued attribute does what one operation over all their
    values does (adding and removing by value are order-independent within a
    run), so it is applied as one.
    """
    merged: list[PatchOperation] = []
    run_key: tuple[str, str] | None = None
    for operation in operations:
        key, values = _batchable(operation, schema)
        if key is not None and key == run_key:
            last = merged[-1]
            merged[-1] = PatchOperation(last.op, last.path, [*last.value, *values])
            continue
        run_key = key
        merged.append(operation if key is None else PatchOperation(operation.op, key[1], list(values)))
    return merged


def _batchable(operation: PatchOperation, schema: Schema) -> tuple[tuple[str, str] | None, list[Any]]:
    """(the run it can join: (op, attribute path), its values as a list), or (None, []) when it stands alone."""
    if operation.path is None or _extension_key(operation.path) is not None:
        return None, []
    try:
        path = parse_path(operation.path)
    except ScimError:
        return None, []  # refused when applied, in its turn
    found = schema.extension(path.attribute.urn) if path.attribute.urn is not None else ("", schema.attributes)
    attribute = _find(found[1], path.attribute.name) if found is not None else None
    if (
        attribute is None
        or not (attribute.multi_valued and attribute.type == "complex")
        or attribute.mutability == "readOnly"
        or path.attribute.sub is not None
        or path.sub is not None
    ):
        return None, []
    target = path.attribute.dotted
    if path.filter is None and operation.op in ("add", "remove") and operation.value is not None:
        values = operation.value if isinstance(operation.value, list) else [operation.value]
        return (operation.op, target), values
    selector = path.filter
    if (
        operation.op == "remove"
        and isinstance(selector, Compare)
        and selector.attribute == "value"
        and selector.op == "eq"
        and isinstance(selector.value, str)
        and attribute.sub("value") is not None
    ):
        # members[value eq "ID"] removes exactly what a removal of {"value": "ID"} removes.
        return ("remove", target), [{"value": selector.value}]
    return None, []


def _list_extensions(resource: dict[str, Any], schema: Schema, held: set[str]) -> None:
    """``schemas`` names an extension the PATCH added, and no longer one it removed (RFC 7643 §3).

    An extension listed without data (Entra lists the enterprise one on every user) stays listed.
    """
    schemas = resource.get("schemas")
    if not isinstance(schemas, list):
        return
    for urn in schema.extensions:
        listed = [s for s in schemas if isinstance(s, str) and s.lower() == urn.lower()]
        present = _extension_container_key(resource, urn) is not None
        if present and not listed:
            schemas = [*schemas, urn]
        elif listed and not present and urn in held:
            schemas = [s for s in schemas if s not in listed]
    resource["schemas"] = schemas


def _apply_pathless(resource: dict[str, Any], op: Op, value: Any, schema: Schema) -> None:
    if not isinstance(value, dict):
        raise ScimError(f"{op} without a path needs an object of attributes as its value", scim_type="invalidValue")
    for key, item in value.items():
        if not isinstance(key, str):
            raise ScimError("attribute names must be strings", scim_type="invalidPath")
        if key.lower() == "schemas":
            # Clients restate the resource's schemas; which extensions are present follows from the data.
            continue
        _apply_path(resource, op, key, item, schema)


def _apply_path(resource: dict[str, Any], op: Op, path_text: str, value: Any, schema: Schema) -> None:
    urn = _extension_key(path_text)
    if urn is not None:
        found = schema.extension(urn)
        if found is None:
            raise ScimError(f"{urn} is not an extension of this resource", scim_type="invalidPath")
        _apply_extension(resource, op, found[0], value, schema)
        return
    path = parse_path(path_text)
    container, attribute = _locate(resource, path.attribute, schema, create=op != "remove", text=path_text)
    if container is None:
        return  # removing from an extension the resource does not have: nothing to remove
    _write(container, attribute, op, path, value, path_text)
    if path.attribute.urn is not None and not container:
        # An extension left empty is dropped, as if it had never been set.
        _pop(resource, _extension_container_key(resource, path.attribute.urn) or "")


def _apply_extension(resource: dict[str, Any], op: Op, urn: str, value: Any, schema: Schema) -> None:
    if op == "remove":
        key = _extension_container_key(resource, urn)
        if key is not None:
            del resource[key]
        return
    if not isinstance(value, dict):
        raise ScimError(f"{urn} takes an object of its attributes", scim_type="invalidValue")
    for key, item in value.items():
        if not isinstance(key, str):
            raise ScimError("attribute names must be strings", scim_type="invalidPath")
        _apply_path(resource, op, f"{urn}:{key}", item, schema)


def _extension_container_key(resource: Mapping[str, Any], urn: str) -> str | None:
    return next((k for k in resource if k.lower() == urn.lower()), None)


def _locate(
    resource: dict[str, Any], path: AttrPath, schema: Schema, *, create: bool, text: str
) -> tuple[dict[str, Any] | None, Attribute]:
    attrs: tuple[Attribute, ...] = schema.attributes
    container: dict[str, Any] | None = resource
    if path.urn is not None:
        found = schema.extension(path.urn)
        if found is None:
            raise ScimError(f"unknown schema {path.urn!r} in the path {text!r}", scim_type="invalidPath")
        urn, attrs = found
        key = _extension_container_key(resource, urn)
        if key is None:
            container = resource.setdefault(urn, {}) if create else None
        else:
            existing = resource[key]
            if not isinstance(existing, dict):
                existing = {}
                resource[key] = existing
            container = existing
    attribute = _find(attrs, path.name)
    if attribute is None:
        raise ScimError(f"unknown attribute {path.name!r} in the path {text!r}", scim_type="invalidPath")
    return container, attribute


def _key(container: Mapping[str, Any], name: str) -> str | None:
    lowered = name.lower()
    return next((k for k in container if isinstance(k, str) and k.lower() == lowered), None)


def _get(container: Mapping[str, Any], name: str) -> Any:
    key = _key(container, name)
    return None if key is None else container[key]


def _pop(container: dict[str, Any], name: str) -> None:
    key = _key(container, name)
    if key is not None:
        del container[key]


def _set(container: dict[str, Any], name: str, value: Any) -> None:
    # One key per attribute, spelt as the schema spells it, whatever case the client used.
    _pop(container, name)
    container[name] = value


def _write(container: dict[str, Any], attribute: Attribute, op: Op, path: ValuePath, value: Any, text: str) -> None:
    sub_name = path.attribute.sub or path.sub
    if path.attribute.sub is not None and path.filter is not None:
        raise ScimError(f"the path {text!r} filters a sub-attribute", scim_type="invalidPath")
    sub: Attribute | None = None
    if sub_name is not None:
        if attribute.type != "complex":
            raise ScimError(f"{attribute.name} has no sub-attributes (path {text!r})", scim_type="invalidPath")
        sub = attribute.sub(sub_name)
        if sub is None:
            raise ScimError(f"unknown sub-attribute {sub_name!r} of {attribute.name}", scim_type="invalidPath")
    if path.filter is not None and not (attribute.multi_valued and attribute.type == "complex"):
        raise ScimError(
            f"{attribute.name} is not a multi-valued complex attribute (path {text!r})", scim_type="invalidPath"
        )

    current = _get(container, attribute.name)
    if attribute.mutability == "readOnly" or (sub is not None and sub.mutability == "readOnly"):
        if op != "remove" and path.filter is None and sub is None and _same(current, value):
            return  # Okta restates read-only attributes unchanged
        raise ScimError(f"{attribute.name} is read-only", scim_type="mutability")

    if path.filter is not None:
        _write_selected(container, attribute, op, path.filter, sub, value, text)
    elif sub is not None:
        _write_sub(container, attribute, op, sub, value, text)
    else:
        _write_whole(container, attribute, op, current, value)


def _write_whole(container: dict[str, Any], attribute: Attribute, op: Op, current: Any, value: Any) -> None:
    if op == "remove":
        if attribute.multi_valued and attribute.type == "complex" and value is not None:
            # Entra: {"op": "Remove", "path": "members", "value": [{"value": "ID"}]} removes those members only.
            doomed = {_identity(attribute, e) for e in _coerce_many(attribute, value)}
            kept = [e for e in _elements(current) if _identity(attribute, e) not in doomed]
            _store_many(container, attribute, kept)
            return
        if attribute.required:
            raise ScimError(f"{attribute.name} is required: it can be replaced, not removed", scim_type="mutability")
        _pop(container, attribute.name)
        return
    if value is None:
        # null unassigns (RFC 7644 §3.5.2.3 reads a missing value as clearing it).
        if attribute.required:
            raise ScimError(f"{attribute.name} is required and cannot be null", scim_type="invalidValue")
        _pop(container, attribute.name)
        return
    _check_immutable(attribute, current, value)
    if attribute.multi_valued:
        incoming = _coerce_many(attribute, value)
        existing = _elements(current) if op == "add" else []
        written = {_identity(attribute, e) for e in incoming}
        _store_many(container, attribute, _merged(attribute, existing, incoming), written)
    elif attribute.type == "complex":
        merged = dict(current) if isinstance(current, dict) else {}
        for key, item in _coerce_one(attribute, value, keep_nulls=True).items():
            _set(merged, key, item)
        for key in [k for k, v in merged.items() if v is None]:
            del merged[key]
        _store_complex(container, attribute, merged)
    else:
        _set(container, attribute.name, _coerce_simple(attribute, value, attribute.name))


def _write_sub(container: dict[str, Any], attribute: Attribute, op: Op, sub: Attribute, value: Any, text: str) -> None:
    current = _get(container, attribute.name)
    if attribute.multi_valued:
        # emails.value without a filter addresses that sub-attribute of every element.
        elements = _elements(current)
        if not elements:
            if op == "remove":
                return
            elements = [{}]
        for element in elements:
            _write_element_sub(element, sub, op, value, attribute.name)
        _store_many(container, attribute, elements)
        return
    holder = dict(current) if isinstance(current, dict) else {}
    _write_element_sub(holder, sub, op, value, attribute.name)
    _store_complex(container, attribute, holder)


def _write_element_sub(element: dict[str, Any], sub: Attribute, op: Op, value: Any, owner: str) -> None:
    if op == "remove" or value is None:
        if sub.required:
            raise ScimError(f"{owner}.{sub.name} is required", scim_type="mutability")
        _pop(element, sub.name)
        return
    if sub.mutability == "immutable" and _get(element, sub.name) not in (None, value):
        raise ScimError(f"{owner}.{sub.name} is immutable", scim_type="mutability")
    _set(element, sub.name, _coerce_simple(sub, value, f"{owner}.{sub.name}"))


def _write_selected(
    container: dict[str, Any],
    attribute: Attribute,
    op: Op,
    selector: Filter,
    sub: Attribute | None,
    value: Any,
    text: str,
) -> None:
    exact = frozenset(s.name.lower() for s in attribute.sub_attributes if s.case_exact)
    elements = _elements(_get(container, attribute.name))
    test = compile_filter(selector, case_exact=exact)
    selected = [i for i, e in enumerate(elements) if isinstance(e, dict) and test(e)]
    if op == "remove":
        if sub is None:
            # Idempotent: removing a member who is already gone is what Okta and Entra retry.
            doomed = set(selected)
            elements = [e for i, e in enumerate(elements) if i not in doomed]
        else:
            for i in selected:
                _write_element_sub(elements[i], sub, op, None, attribute.name)
        _store_many(container, attribute, elements)
        return
    if not selected:
        described = _described(selector, attribute)
        if described is None:
            raise ScimError(f"no value of {attribute.name} matches the filter in {text!r}", scim_type="noTarget")
        elements.append(described)
        selected = [len(elements) - 1]
    for i in selected:
        if sub is not None:
            _write_element_sub(elements[i], sub, op, value, attribute.name)
        else:
            if value is None:
                raise ScimError(f"{text!r} needs a value", scim_type="invalidValue")
            # Merged, not swapped: an element replaced by {"display": …} keeps the value that identifies it.
            for key, item in _coerce_one(attribute, value).items():
                _set(elements[i], key, item)
    written = {_identity(attribute, elements[i]) for i in selected}
    _store_many(container, attribute, _merged(attribute, [], elements), written)


def _described(selector: Filter, attribute: Attribute) -> dict[str, Any] | None:
    """The element a filter of ``eq`` comparisons joined by ``and`` describes (Entra adds through such paths)."""
    described: dict[str, Any] = {}
    stack: list[Filter] = [selector]
    while stack:
        node = stack.pop()
        if isinstance(node, And):
            stack += (node.left, node.right)
        elif isinstance(node, Compare) and node.op == "eq" and node.value is not None:
            sub = attribute.sub(node.attribute)
            if sub is None or sub.mutability == "readOnly":
                return None
            described[sub.name] = _coerce_simple(sub, node.value, f"{attribute.name}.{sub.name}")
        else:
            return None
    return described


# ---------------------------------------------------------------------------
# Values


def _invalid(detail: str) -> ScimError:
    return ScimError(detail, scim_type="invalidValue")


def _coerce_simple(attribute: Attribute, value: Any, where: str) -> Any:
    kind = attribute.type
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
            # Entra sends "True"/"False" as strings.
            return value.strip().lower() == "true"
        raise _invalid(f"{where} must be a boolean")
    if kind == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _invalid(f"{where} must be an integer")
    if kind == "decimal":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        raise _invalid(f"{where} must be a number")
    if kind == "complex":
        raise _invalid(f"{where} is complex and needs an object")
    if not isinstance(value, str):
        raise _invalid(f"{where} must be a string")
    if not is_storable(value):
        # PostgreSQL refuses NUL and lone surrogates; other control characters mean nothing in a directory.
        raise _invalid(f"{where} contains NUL, a lone surrogate or another control character")
    return value


def _coerce_one(attribute: Attribute, value: Any, *, keep_nulls: bool = False) -> dict[str, Any]:
    """A complex value with its sub-attributes typed and spelt as the schema spells them.

    A null sub-attribute is dropped, or kept as None with ``keep_nulls`` so a merge can unassign it.
    """
    if isinstance(value, str) and not attribute.multi_valued and attribute.sub("value") is not None:
        # Entra sends the enterprise manager as a bare id.
        value = {"value": value}
    if not isinstance(value, dict):
        raise _invalid(f"{attribute.name} needs an object of sub-attributes")
    out: dict[str, Any] = {}
    for key, item in value.items():
        sub = attribute.sub(key) if isinstance(key, str) else None
        if sub is None:
            raise ScimError(f"unknown sub-attribute {key!r} of {attribute.name}", scim_type="invalidPath")
        if sub.mutability == "readOnly":
            continue  # read-only sub-attributes the client echoes back are ignored (RFC 7643 §2.2)
        if item is None:
            if keep_nulls:
                out[sub.name] = None
            continue
        out[sub.name] = _coerce_simple(sub, item, f"{attribute.name}.{sub.name}")
    return out


def _coerce_many(attribute: Attribute, value: Any) -> list[dict[str, Any]] | list[Any]:
    items = value if isinstance(value, list) else [value]
    if attribute.type == "complex":
        return [_coerce_one(attribute, item) for item in items if item is not None]
    return [_coerce_simple(attribute, item, attribute.name) for item in items if item is not None]


def _elements(current: Any) -> list[Any]:
    # The list is the working copy's own (apply_patch deep-copied the resource): elements change in place.
    if not isinstance(current, list):
        return []
    _charge(len(current))
    return list(current)


class _Budget:
    def __init__(self) -> None:
        self.left = MAX_ELEMENT_VISITS


_BUDGET: ContextVar[_Budget | None] = ContextVar("scim_patch_budget", default=None)


def _charge(visits: int) -> None:
    """Count the elements an operation walks; a PATCH over the budget is refused, not run for minutes."""
    budget = _BUDGET.get()
    if budget is None:
        return
    budget.left -= visits
    if budget.left < 0:
        raise ScimError(
            f"this PATCH walks more than {MAX_ELEMENT_VISITS} values of multi-valued attributes; "
            "send its operations in several requests",
            status=413,
        )


def _identity(attribute: Attribute, element: Any) -> tuple[str, str]:
    """Elements with the same ``value`` are one element (a member, an address), whatever else they carry."""
    if isinstance(element, dict):
        found = element["value"] if "value" in element else _get(element, "value")
        if isinstance(found, str):
            sub = attribute.sub("value")
            return ("value", found if sub is not None and sub.case_exact else found.casefold())
        if found is not None:
            return ("json", json.dumps(found, sort_keys=True, default=str))
        return ("element", json.dumps(element, sort_keys=True, default=str))
    return ("simple", json.dumps(element, default=str))


def _merged(attribute: Attribute, existing: list[Any], incoming: list[Any]) -> list[Any]:
    """``existing`` followed by ``incoming``; an element already present is updated in place, not repeated."""
    _charge(len(incoming))
    result = list(existing)
    index = {_identity(attribute, e): i for i, e in enumerate(result)}
    for element in incoming:
        key = _identity(attribute, element)
        if key in index and isinstance(element, dict) and isinstance(result[index[key]], dict):
            updated = dict(result[index[key]])
            for name, item in element.items():
                if name != "value":  # the same value, perhaps in other case: the stored spelling stays
                    _set(updated, name, item)
            result[index[key]] = updated
        elif key not in index:
            index[key] = len(result)
            result.append(element)
    return result


def _store_many(
    container: dict[str, Any], attribute: Attribute, elements: list[Any], written: set[tuple[str, str]] | None = None
) -> None:
    if attribute.sub("primary") is not None:
        # RFC 7643 §2.4: one primary at most; one this operation wrote wins, else the last.
        primaries = [i for i, e in enumerate(elements) if isinstance(e, dict) and _get(e, "primary") is True]
        fresh = [i for i in primaries if written and _identity(attribute, elements[i]) in written]
        keep = (fresh or primaries)[-1:]
        for i in primaries:
            if i not in keep:
                elements[i] = {k: v for k, v in elements[i].items() if k.lower() != "primary"} | {"primary": False}
    if elements:
        _set(container, attribute.name, elements)
    else:
        _pop(container, attribute.name)


def _store_complex(container: dict[str, Any], attribute: Attribute, value: dict[str, Any]) -> None:
    if value:
        _set(container, attribute.name, value)
    else:
        _pop(container, attribute.name)


def _check_immutable(attribute: Attribute, current: Any, value: Any) -> None:
    if attribute.mutability == "immutable" and current is not None and not _same(current, value):
        raise ScimError(f"{attribute.name} is immutable", scim_type="mutability")


def _same(current: Any, value: Any) -> bool:
    try:
        return bool(current == value)
    except RecursionError:  # pragma: no cover - a pathological nesting is not the same value
        return False
