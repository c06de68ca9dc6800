"""Properties over hostile and generated input: the parsers refuse with ScimError or succeed, nothing else."""

from __future__ import annotations

import copy
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vestibule.scim.errors import ScimError
from vestibule.scim.filters import (
    MAX_DEPTH,
    And,
    Compare,
    Filter,
    Not,
    Or,
    Present,
    attributes,
    parse_filter,
    parse_path,
    render_filter,
)
from vestibule.scim.patch import ENTERPRISE_USER_URN, GROUP_SCHEMA, PATCH_OP_URN, USER_SCHEMA, apply_patch, parse_patch

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Fragments that combine into near-filters, which reach deeper into the parser than random text does.
FRAGMENTS = [
    "(", ")", "[", "]", ".", " ", "not", "and", "or", "pr", "eq", "gt", "co", "userName", "emails", "value",
    '"x"', '"', "\\", "\\u", "d83d", "true", "null", "1", "-", "1e5", "urn:ietf:params:scim:schemas:core:2.0:User:",
]  # fmt: skip


@FAST
@given(st.text(max_size=300))
def test_parse_filter_arbitrary_text_raises_only_scim_error(text: str) -> None:
    try:
        parse_filter(text)
    except ScimError as error:
        assert error.scim_type == "invalidFilter"
        assert error.status == 400


@FAST
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join))
def test_parse_filter_fragment_soup_raises_only_scim_error(text: str) -> None:
    try:
        parsed = parse_filter(text)
    except ScimError as error:
        assert error.scim_type == "invalidFilter"
    else:
        assert parse_filter(render_filter(parsed)) == parsed


NESTINGS = {"(": (")", 1), "not (": (")", 1), "((": ("))", 2), "emails[": ("]", MAX_DEPTH)}


@FAST
@given(st.integers(min_value=0, max_value=10_000), st.sampled_from(sorted(NESTINGS)))
def test_parse_filter_any_nesting_depth_never_recursion_error(depth: int, opener: str) -> None:
    closer, levels = NESTINGS[opener]
    text = opener * depth + 'value eq "x"' + closer * depth
    # Brackets do not nest at all; parentheses up to MAX_DEPTH levels.
    allowed = depth <= 1 if opener == "emails[" else depth * levels <= MAX_DEPTH
    try:
        parse_filter(text)
    except ScimError as error:
        assert not allowed, error.detail
    else:
        assert allowed


@FAST
@given(st.text(min_size=1, max_size=30))
def test_parse_filter_huge_text_refused_quickly(unit: str) -> None:
    text = unit * (5000 // len(unit) + 1)
    try:
        parse_filter(text)
    except ScimError as error:
        assert "longer than" in error.detail
    else:
        raise AssertionError("a filter over MAX_FILTER_LENGTH was accepted")


@FAST
@given(st.text(max_size=200))
def test_parse_path_arbitrary_text_raises_only_scim_error(text: str) -> None:
    try:
        parse_path(text)
    except ScimError as error:
        assert error.scim_type == "invalidPath"


# --- round trip --------------------------------------------------------------------------------------

NAMES = st.sampled_from(
    [
        "username",
        "emails.value",
        "name.familyname",
        "meta.lastmodified",
        "members.$ref",
        "not",
        "and",
        "or",
        "pr",
        "eq",
        "true",
        "null",
        "x-y_z9",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:department",
    ]
)
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)
NUMBERS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False).filter(math.isfinite),
)


@st.composite
def comparisons(draw: st.DrawFn) -> Filter:
    attribute = draw(NAMES)
    kind = draw(st.sampled_from(["pr", "text", "number", "literal"]))
    if kind == "pr":
        return Present(attribute)
    if kind == "text":
        return Compare(
            attribute, draw(st.sampled_from(["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"])), draw(TEXT)
        )
    if kind == "number":
        return Compare(attribute, draw(st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le"])), draw(NUMBERS))
    return Compare(attribute, draw(st.sampled_from(["eq", "ne"])), draw(st.sampled_from([True, False, None])))


FILTERS = st.recursive(
    comparisons(),
    lambda children: st.one_of(
        st.builds(And, children, children), st.builds(Or, children, children), st.builds(Not, children)
    ),
    max_leaves=12,
)


def _depth(f: Filter) -> int:
    if isinstance(f, Not):
        return 1 + _depth(f.inner)
    if isinstance(f, And | Or):
        return 1 + max(_depth(f.left), _depth(f.right))
    return 0


@FAST
@given(FILTERS)
def test_rendered_filter_round_trips(f: Filter) -> None:
    if _depth(f) > MAX_DEPTH:
        return
    assert parse_filter(render_filter(f)) == f
    assert attributes(parse_filter(render_filter(f))) == attributes(f)


# --- PATCH ------------------------------------------------------------------------------------------------

PATHS = st.sampled_from(
    [
        None,
        "active",
        "userName",
        "displayName",
        "title",
        "name",
        "name.givenName",
        "emails",
        'emails[type eq "work"]',
        'emails[type eq "work"].value',
        'emails[value co "@"].primary',
        "emails.value",
        "id",
        "meta",
        "meta.created",
        "groups",
        "members",
        'members[value eq "u1"]',
        "nope",
        f"{ENTERPRISE_USER_URN}:department",
        f"{ENTERPRISE_USER_URN}:manager",
        ENTERPRISE_USER_URN,
        "urn:example:other:1.0:User:x",
    ]
)
JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(), TEXT, st.sampled_from(["True", "False", "u1", "work"]))
JSON = st.recursive(
    JSON_LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(
            st.sampled_from(["value", "type", "primary", "display", "givenName", "active", "id", "name.givenName"]),
            children,
            max_size=3,
        ),
    ),
    max_leaves=8,
)
OPERATIONS = st.lists(
    st.fixed_dictionaries(
        {"op": st.sampled_from(["add", "Replace", "remove", "REMOVE"]), "value": JSON}, optional={"path": PATHS}
    ),
    min_size=1,
    max_size=5,
)


def _user() -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "u-1",
        "userName": "ada@example.com",
        "name": {"givenName": "Ada"},
        "emails": [{"value": "ada@example.com", "type": "work", "primary": True}],
        "active": True,
        "meta": {"resourceType": "User"},
    }


def _group() -> dict[str, Any]:
    return {"id": "g-1", "displayName": "G", "members": [{"value": "u1"}, {"value": "u2"}]}


@FAST
@given(OPERATIONS, st.booleans())
def test_apply_patch_never_mutates_input_and_raises_only_scim_error(
    operations: list[dict[str, Any]], group: bool
) -> None:
    resource, schema = (_group(), GROUP_SCHEMA) if group else (_user(), USER_SCHEMA)
    before = copy.deepcopy(resource)
    try:
        result = apply_patch(resource, parse_patch({"schemas": [PATCH_OP_URN], "Operations": operations}), schema)
    except ScimError as error:
        assert error.status in (400, 413)
    else:
        # The read-only attributes survive every accepted PATCH.
        assert result["id"] == before["id"]
        assert result.get("meta") == before.get("meta")
        if not group:
            assert isinstance(result.get("active", True), bool)
            assert isinstance(result.get("userName"), str)
    assert resource == before


@FAST
@given(JSON)
def test_parse_patch_arbitrary_json_raises_only_scim_error(body: Any) -> None:
    try:
        parse_patch(body)
    except ScimError as error:
        assert error.scim_type in {"invalidSyntax", "invalidPath"}


MEMBER_OPERATIONS = st.lists(
    st.one_of(
        st.builds(
            lambda op, ids: {"op": op, "path": "members", "value": [{"value": i} for i in ids]},
            st.sampled_from(["add", "Add", "remove", "Remove"]),
            st.lists(st.sampled_from(["u1", "u2", "u3", "U1", "u4"]), max_size=3),
        ),
        st.builds(lambda i: {"op": "remove", "path": f'members[value eq "{i}"]'}, st.sampled_from(["u1", "u3", "U2"])),
        st.builds(
            lambda i: {"op": "add", "path": "members", "value": {"value": i, "display": i.upper()}},
            st.sampled_from(["u2", "u5"]),
        ),
        st.just({"op": "replace", "path": "displayName", "value": "H"}),
        st.just({"op": "remove", "path": 'members[display eq "U5"]'}),
    ),
    min_size=1,
    max_size=8,
)


@FAST
@given(MEMBER_OPERATIONS)
def test_patch_batched_operations_equal_one_by_one(operations: list[dict[str, Any]]) -> None:
    # apply_patch merges runs of membership operations; the result must be that of applying each in turn.
    at_once = apply_patch(_group(), parse_patch({"schemas": [PATCH_OP_URN], "Operations": operations}), GROUP_SCHEMA)
    one_by_one = _group()
    for operation in operations:
        one_by_one = apply_patch(
            one_by_one, parse_patch({"schemas": [PATCH_OP_URN], "Operations": [operation]}), GROUP_SCHEMA
        )
    assert at_once == one_by_one
