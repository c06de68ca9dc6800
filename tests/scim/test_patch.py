"""PATCH (RFC 7644 §3.5.2): the message, each operation's semantics, every refusal and atomicity."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from vestibule.scim.errors import ScimError
from vestibule.scim.patch import (
    ENTERPRISE_USER_URN,
    GROUP_SCHEMA,
    MAX_ELEMENT_VISITS,
    MAX_OPERATIONS,
    PATCH_OP_URN,
    USER_SCHEMA,
    PatchOperation,
    apply_patch,
    parse_patch,
)

USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"


def ada() -> dict[str, Any]:
    return {
        "schemas": [USER_URN],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "ada-1",
        "userName": "ada@example.com",
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "displayName": "Ada Lovelace",
        "emails": [{"value": "ada@example.com", "type": "work", "primary": True}],
        "active": True,
        "meta": {"resourceType": "User", "created": "2026-01-01T00:00:00Z"},
    }


def engineers() -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
        "displayName": "Engineers",
        "members": [{"value": "u1", "display": "One"}, {"value": "u2"}],
        "meta": {"resourceType": "Group"},
    }


def message(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP_URN], "Operations": list(operations)}


def patched(resource: dict[str, Any], *operations: dict[str, Any], schema: Any = USER_SCHEMA) -> dict[str, Any]:
    before = copy.deepcopy(resource)
    result = apply_patch(resource, parse_patch(message(*operations)), schema)
    assert resource == before, "apply_patch mutated its input"
    return result


def refusal(resource: dict[str, Any], *operations: dict[str, Any], schema: Any = USER_SCHEMA) -> ScimError:
    before = copy.deepcopy(resource)
    with pytest.raises(ScimError) as caught:
        apply_patch(resource, parse_patch(message(*operations)), schema)
    assert resource == before, "a refused PATCH mutated its input"
    return caught.value


def parse_refusal(body: object) -> ScimError:
    with pytest.raises(ScimError) as caught:
        parse_patch(body)
    return caught.value


# --- the message --------------------------------------------------------------------------------


def test_parse_patch_returns_lower_case_ops_and_paths_as_sent() -> None:
    ops = parse_patch(
        message({"op": "Replace", "path": "name.GivenName", "value": "A"}, {"op": "REMOVE", "path": "title"})
    )
    assert ops == [PatchOperation("replace", "name.GivenName", "A"), PatchOperation("remove", "title", None)]


def test_parse_patch_refuses_missing_schema() -> None:
    error = parse_refusal({"Operations": [{"op": "add", "path": "title", "value": "x"}]})
    assert (error.status, error.scim_type) == (400, "invalidSyntax")
    assert parse_refusal({"schemas": [USER_URN], "Operations": []}).scim_type == "invalidSyntax"


def test_parse_patch_refuses_non_object_body() -> None:
    for body in [None, [], "x", 1]:
        assert parse_refusal(body).scim_type == "invalidSyntax"


def test_parse_patch_refuses_empty_or_missing_operations() -> None:
    for operations in [[], None, {}, "add"]:
        assert parse_refusal({"schemas": [PATCH_OP_URN], "Operations": operations}).scim_type == "invalidSyntax"


def test_parse_patch_refuses_unknown_op() -> None:
    error = parse_refusal(message({"op": "merge", "path": "title", "value": "x"}))
    assert error.scim_type == "invalidSyntax"
    assert "operation 0" in error.detail


def test_parse_patch_refuses_operation_that_is_not_an_object() -> None:
    assert parse_refusal(message("add")).scim_type == "invalidSyntax"  # type: ignore[arg-type]


def test_parse_patch_refuses_add_without_value() -> None:
    assert parse_refusal(message({"op": "add", "path": "title"})).scim_type == "invalidSyntax"


def test_parse_patch_refuses_malformed_path() -> None:
    for path in ['emails[type eq "work"', "", 7]:
        assert parse_refusal(message({"op": "replace", "path": path, "value": "x"})).scim_type == "invalidPath"


def test_parse_patch_bounds_the_number_of_operations() -> None:
    parse_patch(message(*[{"op": "add", "path": "title", "value": "x"}] * MAX_OPERATIONS))
    error = parse_refusal(message(*[{"op": "add", "path": "title", "value": "x"}] * (MAX_OPERATIONS + 1)))
    assert error.status == 413


def test_parse_patch_structural_names_case_insensitive() -> None:
    ops = parse_patch({"SCHEMAS": [PATCH_OP_URN.upper()], "operations": [{"OP": "add", "Path": "title", "Value": "x"}]})
    assert ops == [PatchOperation("add", "title", "x")]


# --- add ---------------------------------------------------------------------------------------------


def test_patch_add_simple_attribute() -> None:
    assert patched(ada(), {"op": "add", "path": "title", "value": "Countess"})["title"] == "Countess"


def test_patch_add_to_multi_valued_appends_without_duplicates() -> None:
    result = patched(
        ada(),
        {"op": "add", "path": "emails", "value": [{"value": "ada@home.example", "type": "home"}]},
        {"op": "add", "path": "emails", "value": [{"value": "ADA@home.example", "type": "home"}]},
    )
    assert [e["value"] for e in result["emails"]] == ["ada@example.com", "ada@home.example"]


def test_patch_add_members_skips_existing_member() -> None:
    result = patched(
        engineers(), {"op": "add", "path": "members", "value": [{"value": "u2"}, {"value": "u3"}]}, schema=GROUP_SCHEMA
    )
    assert [m["value"] for m in result["members"]] == ["u1", "u2", "u3"]


def test_patch_add_single_object_to_multi_valued() -> None:
    result = patched(engineers(), {"op": "add", "path": "members", "value": {"value": "u3"}}, schema=GROUP_SCHEMA)
    assert [m["value"] for m in result["members"]] == ["u1", "u2", "u3"]


def test_patch_add_complex_merges_sub_attributes() -> None:
    result = patched(ada(), {"op": "add", "path": "name", "value": {"formatted": "Ada King"}})
    assert result["name"] == {"givenName": "Ada", "familyName": "Lovelace", "formatted": "Ada King"}


def test_patch_add_pathless_object() -> None:
    result = patched(ada(), {"op": "add", "value": {"nickName": "Babs", "name.middleName": "A."}})
    assert result["nickName"] == "Babs"
    assert result["name"]["middleName"] == "A."


def test_patch_add_new_primary_email_demotes_the_old_one() -> None:
    result = patched(ada(), {"op": "add", "path": "emails", "value": [{"value": "b@example.com", "primary": True}]})
    assert [(e["value"], e["primary"]) for e in result["emails"]] == [
        ("ada@example.com", False),
        ("b@example.com", True),
    ]


# --- replace -----------------------------------------------------------------------------------------


def test_patch_replace_keys_take_the_schema_spelling() -> None:
    result = patched(ada(), {"op": "replace", "path": "DISPLAYNAME", "value": "Countess"})
    assert result["displayName"] == "Countess"
    assert "DISPLAYNAME" not in result


def test_patch_replace_overwrites_a_key_sent_in_other_case() -> None:
    resource = ada() | {"nickname": "old"}
    result = patched(resource, {"op": "replace", "path": "nickName", "value": "new"})
    assert result["nickName"] == "new"
    assert "nickname" not in result


def test_patch_replace_sub_attribute() -> None:
    assert patched(ada(), {"op": "replace", "path": "name.familyName", "value": "King"})["name"] == {
        "givenName": "Ada",
        "familyName": "King",
    }


def test_patch_replace_multi_valued_replaces_all() -> None:
    result = patched(engineers(), {"op": "replace", "path": "members", "value": [{"value": "u9"}]}, schema=GROUP_SCHEMA)
    assert result["members"] == [{"value": "u9"}]


def test_patch_replace_filtered_sub_attribute() -> None:
    result = patched(ada(), {"op": "replace", "path": 'emails[type eq "work"].value', "value": "new@example.com"})
    assert result["emails"] == [{"value": "new@example.com", "type": "work", "primary": True}]


def test_patch_replace_filtered_element_keeps_its_identity() -> None:
    result = patched(
        engineers(),
        {"op": "replace", "path": 'members[value eq "u1"]', "value": {"display": "Uno"}},
        schema=GROUP_SCHEMA,
    )
    assert result["members"][0] == {"value": "u1", "display": "Uno"}


def test_patch_replace_filtered_path_creates_the_described_element() -> None:
    # Entra replaces emails[type eq "work"].value on a user who has no work email yet.
    resource = ada()
    resource["emails"] = [{"value": "ada@home.example", "type": "home"}]
    result = patched(resource, {"op": "replace", "path": 'emails[type eq "work"].value', "value": "w@example.com"})
    assert result["emails"] == [
        {"value": "ada@home.example", "type": "home"},
        {"type": "work", "value": "w@example.com"},
    ]


def test_patch_replace_filter_matching_nothing_is_no_target() -> None:
    error = refusal(ada(), {"op": "replace", "path": 'emails[type ne "work"].value', "value": "x@example.com"})
    assert error.scim_type == "noTarget"


def test_patch_replace_null_unassigns() -> None:
    assert "displayName" not in patched(ada(), {"op": "replace", "path": "displayName", "value": None})


def test_patch_replace_enterprise_attribute_by_urn_path() -> None:
    result = patched(ada(), {"op": "replace", "path": f"{ENTERPRISE_USER_URN}:department", "value": "Analytics"})
    assert result[ENTERPRISE_USER_URN] == {"department": "Analytics"}


def test_patch_replace_enterprise_extension_object() -> None:
    result = patched(ada(), {"op": "replace", "path": ENTERPRISE_USER_URN, "value": {"costCenter": "42"}})
    assert result[ENTERPRISE_USER_URN] == {"costCenter": "42"}


def test_patch_pathless_value_with_extension_object() -> None:
    result = patched(
        ada(), {"op": "replace", "value": {ENTERPRISE_USER_URN: {"division": "R&D"}, "schemas": [USER_URN]}}
    )
    assert result[ENTERPRISE_USER_URN] == {"division": "R&D"}
    assert result["schemas"] == [USER_URN, ENTERPRISE_USER_URN]


def test_patch_boolean_strings_any_case() -> None:
    for sent, stored in [("False", False), ("TRUE", True), ("false", False), (" True ", True)]:
        assert patched(ada(), {"op": "replace", "path": "active", "value": sent})["active"] is stored


def test_patch_manager_as_bare_id() -> None:
    result = patched(ada(), {"op": "add", "path": f"{ENTERPRISE_USER_URN}:manager", "value": "boss-id"})
    assert result[ENTERPRISE_USER_URN] == {"manager": {"value": "boss-id"}}


# --- remove --------------------------------------------------------------------------------------------


def test_patch_remove_simple_attribute() -> None:
    assert "displayName" not in patched(ada(), {"op": "remove", "path": "displayName"})


def test_patch_remove_sub_attribute() -> None:
    assert patched(ada(), {"op": "remove", "path": "name.givenName"})["name"] == {"familyName": "Lovelace"}


def test_patch_remove_last_sub_attribute_drops_the_complex() -> None:
    result = patched(ada(), {"op": "remove", "path": "name.givenName"}, {"op": "remove", "path": "name.familyName"})
    assert "name" not in result


def test_patch_remove_filtered_member() -> None:
    result = patched(engineers(), {"op": "remove", "path": 'members[value eq "u1"]'}, schema=GROUP_SCHEMA)
    assert result["members"] == [{"value": "u2"}]


def test_patch_remove_member_is_case_exact() -> None:
    # members.value is caseExact (RFC 7643 §4.2): "U1" is not "u1".
    result = patched(engineers(), {"op": "remove", "path": 'members[value eq "U1"]'}, schema=GROUP_SCHEMA)
    assert [m["value"] for m in result["members"]] == ["u1", "u2"]


def test_patch_remove_absent_member_is_idempotent() -> None:
    result = patched(engineers(), {"op": "remove", "path": 'members[value eq "nobody"]'}, schema=GROUP_SCHEMA)
    assert result == engineers()


def test_patch_remove_all_members() -> None:
    assert "members" not in patched(engineers(), {"op": "remove", "path": "members"}, schema=GROUP_SCHEMA)


def test_patch_remove_filtered_sub_attribute() -> None:
    result = patched(ada(), {"op": "remove", "path": 'emails[type eq "work"].primary'})
    assert result["emails"] == [{"value": "ada@example.com", "type": "work"}]


def test_patch_remove_enterprise_attribute_drops_empty_extension() -> None:
    resource = ada() | {ENTERPRISE_USER_URN: {"department": "X"}}
    assert ENTERPRISE_USER_URN not in patched(resource, {"op": "remove", "path": f"{ENTERPRISE_USER_URN}:department"})


def test_patch_remove_from_absent_extension_is_a_no_op() -> None:
    assert patched(ada(), {"op": "remove", "path": f"{ENTERPRISE_USER_URN}:department"}) == ada()


# --- refusals ----------------------------------------------------------------------------------------------


def test_patch_remove_without_path_is_no_target() -> None:
    error = refusal(ada(), {"op": "remove"})
    assert (error.status, error.scim_type) == (400, "noTarget")


def test_patch_refuses_write_to_read_only_id() -> None:
    error = refusal(ada(), {"op": "replace", "path": "id", "value": "someone-else"})
    assert (error.status, error.scim_type) == (400, "mutability")


def test_patch_refuses_write_to_meta() -> None:
    assert (
        refusal(ada(), {"op": "replace", "path": "meta.created", "value": "2000-01-01T00:00:00Z"}).scim_type
        == "mutability"
    )
    assert refusal(ada(), {"op": "add", "value": {"meta": {"resourceType": "Group"}}}).scim_type == "mutability"


def test_patch_refuses_remove_of_read_only() -> None:
    assert refusal(ada(), {"op": "remove", "path": "id"}).scim_type == "mutability"


def test_patch_refuses_write_to_user_groups() -> None:
    # groups is readOnly on a User (RFC 7643 §4.1.2): membership changes go through /Groups.
    error = refusal(ada(), {"op": "add", "path": "groups", "value": [{"value": "admins"}]})
    assert error.scim_type == "mutability"


def test_patch_refuses_removing_required_username() -> None:
    assert refusal(ada(), {"op": "remove", "path": "userName"}).scim_type == "mutability"
    assert refusal(ada(), {"op": "replace", "path": "userName", "value": None}).scim_type == "invalidValue"


def test_patch_refuses_unknown_attribute() -> None:
    error = refusal(ada(), {"op": "replace", "path": "favouriteColour", "value": "blue"})
    assert (error.scim_type, "favouritecolour" in error.detail) == ("invalidPath", True)


def test_patch_refuses_unknown_sub_attribute() -> None:
    assert refusal(ada(), {"op": "replace", "path": "name.nickname", "value": "x"}).scim_type == "invalidPath"
    assert refusal(ada(), {"op": "add", "path": "emails", "value": [{"value": "a@b.c", "colour": "x"}]}).scim_type == (
        "invalidPath"
    )


def test_patch_refuses_unknown_extension() -> None:
    error = refusal(ada(), {"op": "replace", "path": "urn:example:scim:ext:1.0:Thing:colour", "value": "x"})
    assert error.scim_type == "invalidPath"


def test_patch_refuses_filter_on_single_valued() -> None:
    assert refusal(ada(), {"op": "replace", "path": 'name[givenName eq "Ada"]', "value": {}}).scim_type == "invalidPath"


def test_patch_refuses_sub_attribute_of_simple() -> None:
    assert refusal(ada(), {"op": "replace", "path": "active.value", "value": True}).scim_type == "invalidPath"


def test_patch_refuses_wrong_value_types() -> None:
    for op in [
        {"op": "replace", "path": "active", "value": 1},
        {"op": "replace", "path": "active", "value": "yes"},
        {"op": "replace", "path": "userName", "value": 42},
        {"op": "replace", "path": "name", "value": "Ada"},
        {"op": "replace", "path": "emails", "value": ["ada@example.com"]},
        {"op": "replace", "path": "emails", "value": [{"primary": "maybe"}]},
        {"op": "add", "value": ["not", "an", "object"]},
        {"op": "replace", "path": ENTERPRISE_USER_URN, "value": "x"},
    ]:
        assert refusal(ada(), op).scim_type == "invalidValue", op


def test_patch_refuses_nul_in_string_value() -> None:
    assert refusal(ada(), {"op": "replace", "path": "displayName", "value": "a\x00b"}).scim_type == "invalidValue"


def test_patch_refuses_control_characters_and_lone_surrogates() -> None:
    for text in ["\x1b[31mred", "a\ud800b"]:
        assert refusal(ada(), {"op": "replace", "path": "name.givenName", "value": text}).scim_type == "invalidValue"


def test_patch_null_sub_attribute_in_complex_value_unassigns_it() -> None:
    result = patched(ada(), {"op": "replace", "path": "name", "value": {"givenName": None, "formatted": "Lovelace"}})
    assert result["name"] == {"familyName": "Lovelace", "formatted": "Lovelace"}


def test_patch_schemas_list_follows_the_extensions_present() -> None:
    added = patched(ada(), {"op": "add", "path": f"{ENTERPRISE_USER_URN}:department", "value": "X"})
    assert added["schemas"] == [USER_URN, ENTERPRISE_USER_URN]
    removed = patched(added, {"op": "remove", "path": f"{ENTERPRISE_USER_URN}:department"})
    assert removed["schemas"] == [USER_URN]
    listed = ada() | {"schemas": [USER_URN, ENTERPRISE_USER_URN]}
    assert patched(listed, {"op": "replace", "path": "title", "value": "x"})["schemas"] == [
        USER_URN,
        ENTERPRISE_USER_URN,
    ]


def test_patch_read_only_restated_unchanged_is_accepted() -> None:
    resource = ada()
    assert (
        patched(resource, {"op": "replace", "value": {"id": resource["id"], "displayName": "A"}})["displayName"] == "A"
    )


def test_patch_refuses_changing_immutable_member_value() -> None:
    error = refusal(
        engineers(), {"op": "replace", "path": 'members[value eq "u1"].value', "value": "u7"}, schema=GROUP_SCHEMA
    )
    assert error.scim_type == "mutability"


# --- atomicity ---------------------------------------------------------------------------------------------


def test_patch_failing_operation_leaves_input_untouched() -> None:
    resource = ada()
    before = copy.deepcopy(resource)
    operations = parse_patch(
        message(
            {"op": "replace", "path": "active", "value": False},
            {"op": "replace", "path": "name.givenName", "value": "Eve"},
            {"op": "replace", "path": "id", "value": "hijacked"},
        )
    )
    with pytest.raises(ScimError):
        apply_patch(resource, operations, USER_SCHEMA)
    assert resource == before
    assert resource["active"] is True
    assert resource["name"]["givenName"] == "Ada"


def test_patch_result_shares_no_mutable_state_with_input() -> None:
    resource = ada()
    result = patched(resource, {"op": "replace", "path": "title", "value": "x"})
    result["emails"][0]["value"] = "changed@example.com"
    result["name"]["givenName"] = "Changed"
    assert resource == ada()


def test_patch_operations_apply_in_order() -> None:
    result = patched(
        ada(),
        {"op": "replace", "path": "title", "value": "first"},
        {"op": "remove", "path": "title"},
        {"op": "add", "path": "title", "value": "last"},
    )
    assert result["title"] == "last"


# --- cost ---------------------------------------------------------------------------------------------------


# The bounds are on this process's CPU time, not the wall clock: the suite runs beside other work (a
# second xdist worker, a busy CI machine), which stretches wall time, never the CPU a walk costs. A
# quadratic walk of these groups costs minutes of CPU; the linear one about a tenth of a second.


def big_group(size: int) -> dict[str, Any]:
    return {
        "id": "g",
        "displayName": "All",
        "members": [{"value": f"id-{i}", "display": f"P {i}"} for i in range(size)],
    }


def test_patch_okta_batch_of_member_removals_walks_the_group_once() -> None:
    group = big_group(50_000)
    operations = [{"op": "remove", "path": f'members[value eq "id-{i}"]'} for i in range(MAX_OPERATIONS)]
    started = time.process_time()
    result = patched(group, *operations, schema=GROUP_SCHEMA)
    assert time.process_time() - started < 2
    assert len(result["members"]) == 50_000 - MAX_OPERATIONS
    assert result["members"][0] == {"value": f"id-{MAX_OPERATIONS}", "display": f"P {MAX_OPERATIONS}"}


def test_patch_batch_of_member_additions_walks_the_group_once() -> None:
    operations = [
        {"op": "add", "path": "members", "value": [{"value": f"new-{i}"}, {"value": "id-0"}]}
        for i in range(MAX_OPERATIONS)
    ]
    started = time.process_time()
    result = patched(big_group(50_000), *operations, schema=GROUP_SCHEMA)
    assert time.process_time() - started < 2
    assert len(result["members"]) == 50_000 + MAX_OPERATIONS


def test_patch_refuses_operations_walking_too_many_values_with_413() -> None:
    # Alternating operations cannot be merged: each walks the whole group, and the budget stops them.
    group = big_group(20_000)
    operations = [
        {"op": "add" if i % 2 else "remove", "path": "members", "value": [{"value": f"id-{i}"}]} for i in range(400)
    ]
    started = time.process_time()
    error = refusal(group, *operations, schema=GROUP_SCHEMA)
    assert time.process_time() - started < 3
    assert error.status == 413
    assert f"{MAX_ELEMENT_VISITS}" in error.detail
