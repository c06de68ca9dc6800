"""The PATCH and filter messages Entra ID and Okta send, in the shapes their documentation shows.

Entra: the request examples of Microsoft's "Develop and plan provisioning for a
SCIM endpoint" tutorial, and both columns (without and with the
``aadOptscim062020`` flag) of "Known issues and resolutions with SCIM 2.0
protocol compliance". Okta: the request examples of "Okta and SCIM Version 2.0".
Identifiers are the documents' placeholders; each test checks the state the
message leaves, not only that it was accepted.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from vestibule.scim.errors import ScimError
from vestibule.scim.filters import Compare, parse_filter
from vestibule.scim.patch import ENTERPRISE_USER_URN, GROUP_SCHEMA, PATCH_OP_URN, USER_SCHEMA, apply_patch, parse_patch

USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"


def entra_user() -> dict[str, Any]:
    # The shape of Entra's "Create User" request, as the service stores and returns it.
    return {
        "schemas": [USER_URN, ENTERPRISE_USER_URN],
        "id": "48af03ac28ad4fb88478",
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
        "active": True,
        "emails": [
            {"primary": True, "type": "work", "value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"}
        ],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "roles": [],
    }


def entra_group() -> dict[str, Any]:
    return {
        "schemas": [GROUP_URN],
        "id": "927fa2c08dcb4a7fae9e",
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": "displayName",
        "members": [{"value": "a2c4c9e5-6b24-4d0e-a9d8-6e4b7a1e6b60"}, {"value": "f648f8d5ea4e4cd38e9c"}],
        "meta": {"resourceType": "Group"},
    }


def okta_user() -> dict[str, Any]:
    # The shape of Okta's "Create Users" request (password and groups left out: not stored).
    return {
        "schemas": [USER_URN],
        "id": "23a35c27-23d3-4c03-b4c5-6443c09e7173",
        "userName": "test.user@okta.local",
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": True, "value": "test.user@okta.local", "type": "work"}],
        "displayName": "Test User",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "active": True,
        "meta": {"resourceType": "User"},
    }


def okta_group() -> dict[str, Any]:
    return {
        "schemas": [GROUP_URN],
        "id": "abf4dd94-a4c0-4f67-89c9-76b03340cb9b",
        "displayName": "Test SCIMv2",
        "members": [{"value": "89bb1940-b905-4575-9e7f-6f887cfb368e", "display": "test.user@okta.local"}],
        "meta": {"resourceType": "Group"},
    }


def apply(resource: dict[str, Any], body: dict[str, Any], schema: Any = USER_SCHEMA) -> dict[str, Any]:
    before = copy.deepcopy(resource)
    result = apply_patch(resource, parse_patch(body), schema)
    assert resource == before
    return result


# --- Entra ID ----------------------------------------------------------------------------------------------


def test_filter_entra_get_user_by_query() -> None:
    assert parse_filter('userName eq "Test_User_dfeef4c5-5681-4387-b016-bdf221e82081"') == Compare(
        "username", "eq", "Test_User_dfeef4c5-5681-4387-b016-bdf221e82081"
    )


def test_filter_entra_get_group_by_display_name() -> None:
    assert parse_filter('displayName eq "displayName"') == Compare("displayname", "eq", "displayName")


def test_patch_entra_string_boolean_false_deactivates() -> None:
    # Without aadOptscim062020: capitalised op, the boolean as a string.
    body = {"schemas": [PATCH_OP_URN], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]}
    assert apply(entra_user(), body)["active"] is False


def test_patch_entra_string_boolean_true_reactivates() -> None:
    body = {"schemas": [PATCH_OP_URN], "Operations": [{"op": "Replace", "path": "active", "value": "True"}]}
    assert apply(entra_user() | {"active": False}, body)["active"] is True


def test_patch_entra_disable_user_with_flag() -> None:
    body = {"Operations": [{"op": "replace", "path": "active", "value": False}], "schemas": [PATCH_OP_URN]}
    assert apply(entra_user(), body)["active"] is False


def test_patch_entra_update_multi_valued_properties() -> None:
    body = {
        "schemas": [PATCH_OP_URN],
        "Operations": [
            {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "updatedEmail@microsoft.com"},
            {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
        ],
    }
    result = apply(entra_user(), body)
    assert result["emails"] == [{"primary": True, "type": "work", "value": "updatedEmail@microsoft.com"}]
    assert result["name"]["familyName"] == "updatedFamilyName"
    assert result["name"]["givenName"] == "givenName"


def test_patch_entra_update_single_valued_property() -> None:
    body = {
        "schemas": [PATCH_OP_URN],
        "Operations": [
            {"op": "Replace", "path": "userName", "value": "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"}
        ],
    }
    assert apply(entra_user(), body)["userName"] == "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"


def test_patch_entra_add_single_value_attribute_both_forms() -> None:
    without_flag = {"schemas": [PATCH_OP_URN], "Operations": [{"op": "Add", "path": "nickName", "value": "Babs"}]}
    with_flag = {"schemas": [PATCH_OP_URN], "Operations": [{"op": "add", "value": {"nickName": "Babs"}}]}
    assert apply(entra_user(), without_flag) == apply(entra_user(), with_flag)
    assert apply(entra_user(), with_flag)["nickName"] == "Babs"


def test_patch_entra_pathless_replace_with_path_keys() -> None:
    # With aadOptscim062020, the multi-attribute replace: one value object whose keys are paths.
    body = {
        "schemas": [PATCH_OP_URN],
        "Operations": [
            {
                "op": "replace",
                "value": {
                    "displayName": "Pvlo",
                    'emails[type eq "work"].value': "TestBcwqnm@test.microsoft.com",
                    "name.givenName": "Gtfd",
                    "name.familyName": "Pkqf",
                    "externalId": "Eqpj",
                    f"{ENTERPRISE_USER_URN}:employeeNumber": "Eqpj",
                },
            }
        ],
    }
    result = apply(entra_user(), body)
    assert result["displayName"] == "Pvlo"
    assert result["emails"] == [{"primary": True, "type": "work", "value": "TestBcwqnm@test.microsoft.com"}]
    assert result["name"] == {"formatted": "givenName familyName", "familyName": "Pkqf", "givenName": "Gtfd"}
    assert result["externalId"] == "Eqpj"
    assert result[ENTERPRISE_USER_URN] == {"employeeNumber": "Eqpj"}


def test_patch_entra_replace_multiple_attributes_without_flag_matches_with_flag() -> None:
    without_flag = {
        "schemas": [PATCH_OP_URN],
        "Operations": [
            {"op": "Replace", "path": "displayName", "value": "Pvlo"},
            {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "TestBcwqnm@test.microsoft.com"},
            {"op": "Replace", "path": "name.givenName", "value": "Gtfd"},
            {"op": "Replace", "path": "name.familyName", "value": "Pkqf"},
            {"op": "Replace", "path": "externalId", "value": "Eqpj"},
            {"op": "Replace", "path": f"{ENTERPRISE_USER_URN}:employeeNumber", "value": "Eqpj"},
        ],
    }
    with_flag = {
        "schemas": [PATCH_OP_URN],
        "Operations": [
            {
                "op": "replace",
                "value": {
                    "displayName": "Pvlo",
                    'emails[type eq "work"].value': "TestBcwqnm@test.microsoft.com",
                    "name.givenName": "Gtfd",
                    "name.familyName": "Pkqf",
                    "externalId": "Eqpj",
                    f"{ENTERPRISE_USER_URN}:employeeNumber": "Eqpj",
                },
            }
        ],
    }
    assert apply(entra_user(), without_flag) == apply(entra_user(), with_flag)


def test_patch_entra_manager_by_id() -> None:
    body = {
        "schemas": [PATCH_OP_URN],
        "Operations": [
            {"op": "Add", "path": f"{ENTERPRISE_USER_URN}:manager", "value": "2819c223-7f76-453a-919d-ab1234567891"}
        ],
    }
    assert apply(entra_user(), body)[ENTERPRISE_USER_URN] == {
        "manager": {"value": "2819c223-7f76-453a-919d-ab1234567891"}
    }


def test_patch_entra_add_members() -> None:
    body = {
        "schemas": [PATCH_OP_URN],
        "Operations": [{"op": "Add", "path": "members", "value": [{"$ref": None, "value": "6b06d0f5-2a5f-4df1-b9a1"}]}],
    }
    result = apply(entra_group(), body, GROUP_SCHEMA)
    assert [m["value"] for m in result["members"]] == [
        "a2c4c9e5-6b24-4d0e-a9d8-6e4b7a1e6b60",
        "f648f8d5ea4e4cd38e9c",
        "6b06d0f5-2a5f-4df1-b9a1",
    ]


def test_patch_entra_remove_members_with_value_array() -> None:
    body = {
        "schemas": [PATCH_OP_URN],
        "Operations": [
            {
                "op": "Remove",
                "path": "members",
                "value": [{"$ref": None, "value": "a2c4c9e5-6b24-4d0e-a9d8-6e4b7a1e6b60"}],
            }
        ],
    }
    assert apply(entra_group(), body, GROUP_SCHEMA)["members"] == [{"value": "f648f8d5ea4e4cd38e9c"}]


def test_patch_entra_remove_member_with_flag() -> None:
    body = {
        "schemas": [PATCH_OP_URN],
        "Operations": [{"op": "remove", "path": 'members[value eq "a2c4c9e5-6b24-4d0e-a9d8-6e4b7a1e6b60"]'}],
    }
    assert apply(entra_group(), body, GROUP_SCHEMA)["members"] == [{"value": "f648f8d5ea4e4cd38e9c"}]


def test_patch_entra_remove_last_members_leaves_no_members() -> None:
    body = {
        "schemas": [PATCH_OP_URN],
        "Operations": [
            {
                "op": "Remove",
                "path": "members",
                "value": [{"value": "a2c4c9e5-6b24-4d0e-a9d8-6e4b7a1e6b60"}, {"value": "f648f8d5ea4e4cd38e9c"}],
            }
        ],
    }
    assert "members" not in apply(entra_group(), body, GROUP_SCHEMA)


def test_patch_entra_update_group_display_name() -> None:
    body = {
        "schemas": [PATCH_OP_URN],
        "Operations": [
            {"op": "Replace", "path": "displayName", "value": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"}
        ],
    }
    result = apply(entra_group(), body, GROUP_SCHEMA)
    assert result["displayName"] == "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"
    assert result["members"] == entra_group()["members"]


# --- Okta ---------------------------------------------------------------------------------------------------


def test_filter_okta_retrieve_user() -> None:
    assert parse_filter('userName eq "test.user@okta.local"') == Compare("username", "eq", "test.user@okta.local")


def test_patch_okta_pathless_replace_active_false_deactivates() -> None:
    body = {"schemas": [PATCH_OP_URN], "Operations": [{"op": "replace", "value": {"active": False}}]}
    result = apply(okta_user(), body)
    assert result["active"] is False
    assert result == okta_user() | {"active": False}


def test_patch_okta_pathless_replace_active_true_reactivates() -> None:
    body = {"schemas": [PATCH_OP_URN], "Operations": [{"op": "replace", "value": {"active": True}}]}
    assert apply(okta_user() | {"active": False}, body)["active"] is True


def test_patch_okta_rename_group_restating_id() -> None:
    body = {
        "schemas": [PATCH_OP_URN],
        "Operations": [
            {
                "op": "replace",
                "value": {"id": "abf4dd94-a4c0-4f67-89c9-76b03340cb9b", "displayName": "Test SCIMv2 renamed"},
            }
        ],
    }
    result = apply(okta_group(), body, GROUP_SCHEMA)
    assert result["displayName"] == "Test SCIMv2 renamed"
    assert result["id"] == "abf4dd94-a4c0-4f67-89c9-76b03340cb9b"


def test_patch_okta_rename_group_with_another_id_is_refused() -> None:
    body = {"schemas": [PATCH_OP_URN], "Operations": [{"op": "replace", "value": {"id": "other", "displayName": "x"}}]}
    group = okta_group()
    with pytest.raises(ScimError) as caught:
        apply(group, body, GROUP_SCHEMA)
    assert caught.value.scim_type == "mutability"
    assert group == okta_group()


def test_patch_okta_add_members() -> None:
    body = {
        "schemas": [PATCH_OP_URN],
        "Operations": [
            {
                "op": "add",
                "path": "members",
                "value": [{"value": "23a35c27-23d3-4c03-b4c5-6443c09e7173", "display": "test.user@okta.local"}],
            }
        ],
    }
    result = apply(okta_group(), body, GROUP_SCHEMA)
    assert [m["value"] for m in result["members"]] == [
        "89bb1940-b905-4575-9e7f-6f887cfb368e",
        "23a35c27-23d3-4c03-b4c5-6443c09e7173",
    ]


def test_patch_okta_remove_member_by_filter() -> None:
    body = {
        "schemas": [PATCH_OP_URN],
        "Operations": [{"op": "remove", "path": 'members[value eq "89bb1940-b905-4575-9e7f-6f887cfb368e"]'}],
    }
    assert "members" not in apply(okta_group(), body, GROUP_SCHEMA)


def test_patch_okta_replace_members() -> None:
    body = {
        "schemas": [PATCH_OP_URN],
        "Operations": [
            {
                "op": "replace",
                "path": "members",
                "value": [{"value": "23a35c27-23d3-4c03-b4c5-6443c09e7173", "display": "test.user@okta.local"}],
            }
        ],
    }
    result = apply(okta_group(), body, GROUP_SCHEMA)
    assert result["members"] == [{"value": "23a35c27-23d3-4c03-b4c5-6443c09e7173", "display": "test.user@okta.local"}]


def test_patch_entra_default_attribute_mapping_applies_cleanly() -> None:
    # Entra's default user mapping also writes attributes Vestibule does not keep; they must not fail the PATCH.
    body = {
        "schemas": [PATCH_OP_URN],
        "Operations": [
            {"op": "Add", "path": "title", "value": "Engineer"},
            {"op": "Add", "path": "preferredLanguage", "value": "en-GB"},
            {"op": "Add", "path": 'addresses[type eq "work"].streetAddress', "value": "1 Main St"},
            {"op": "Add", "path": 'addresses[type eq "work"].locality', "value": "Leeds"},
            {"op": "Add", "path": 'phoneNumbers[type eq "mobile"].value', "value": "+44 7700 900000"},
            {"op": "Add", "path": f"{ENTERPRISE_USER_URN}:department", "value": "R&D"},
            {
                "op": "Add",
                "path": "roles",
                "value": [{"primary": "True", "type": "WindowsAzureActiveDirectoryRole", "value": "Admin"}],
            },
        ],
    }
    result = apply(entra_user(), body)
    assert result["addresses"] == [{"type": "work", "streetAddress": "1 Main St", "locality": "Leeds"}]
    assert result["phoneNumbers"] == [{"type": "mobile", "value": "+44 7700 900000"}]
    assert result["roles"] == [{"primary": True, "type": "WindowsAzureActiveDirectoryRole", "value": "Admin"}]
    assert result["userName"] == entra_user()["userName"]
    assert result["active"] is True
