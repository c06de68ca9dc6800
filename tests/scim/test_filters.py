"""The filter grammar of RFC 7644 §3.4.2.2: what parses to what, and each refusal with its scimType."""

from __future__ import annotations

import time

import pytest

from vestibule.scim.errors import ScimError
from vestibule.scim.filters import (
    MAX_COMPARISONS,
    MAX_DEPTH,
    MAX_FILTER_LENGTH,
    And,
    Compare,
    Not,
    Or,
    Present,
    attributes,
    compile_filter,
    matches,
    parse_filter,
    parse_path,
    render_filter,
)


def refused(text: str) -> ScimError:
    with pytest.raises(ScimError) as caught:
        parse_filter(text)
    assert caught.value.status == 400
    assert caught.value.scim_type == "invalidFilter"
    return caught.value


# --- what the real clients send ---------------------------------------------------------------


def test_filter_entra_username_eq_before_create() -> None:
    # Entra looks the user up before creating them.
    assert parse_filter('userName eq "Test_User_dfeef4c5-5681-4387-b016-bdf221e82081"') == Compare(
        "username", "eq", "Test_User_dfeef4c5-5681-4387-b016-bdf221e82081"
    )


def test_filter_entra_group_display_name() -> None:
    assert parse_filter('displayName eq "displayName"') == Compare("displayname", "eq", "displayName")


def test_filter_okta_username_with_at_sign() -> None:
    assert parse_filter('userName eq "test.user@okta.local"') == Compare("username", "eq", "test.user@okta.local")


def test_filter_rfc_examples_parse() -> None:
    # The examples of RFC 7644 §3.4.2.2, after the table of operators.
    examples = [
        'userName Eq "john"',
        'name.familyName co "O\'Malley"',
        'userName sw "J"',
        'urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"',
        "title pr",
        'meta.lastModified gt "2011-05-13T04:42:34Z"',
        'meta.lastModified ge "2011-05-13T04:42:34Z"',
        'meta.lastModified lt "2011-05-13T04:42:34Z"',
        'meta.lastModified le "2011-05-13T04:42:34Z"',
        'title pr and userType eq "Employee"',
        'title pr or userType eq "Intern"',
        'schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"',
        'userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")',
        'userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")',
        'userType eq "Employee" and emails[type eq "work"]',
    ]
    for text in examples:
        parse_filter(text)


# --- attribute paths ----------------------------------------------------------------------------


def test_filter_attribute_names_are_lower_cased() -> None:
    assert attributes(parse_filter('NAME.FamilyName eq "x" or ExternalId eq "y"')) == {"name.familyname", "externalid"}


def test_filter_core_schema_urn_prefix_is_stripped() -> None:
    assert parse_filter('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a"') == Compare("username", "eq", "a")
    assert parse_filter('URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:GROUP:displayName eq "a"') == Compare(
        "displayname", "eq", "a"
    )


def test_filter_extension_attribute_keeps_its_urn() -> None:
    # An allow-list of core names must never mistake an extension attribute for one of them.
    parsed = parse_filter('urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "7"')
    assert parsed == Compare("urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:employeenumber", "eq", "7")


def test_filter_extension_sub_attribute() -> None:
    parsed = parse_filter('urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "m"')
    assert isinstance(parsed, Compare)
    assert parsed.attribute.endswith(":user:manager.value")


def test_filter_refuses_bad_attribute_names() -> None:
    for text in ['1abc eq "x"', 'a..b eq "x"', 'a.b.c eq "x"', 'a. eq "x"', 'urn:x eq "y"', '_a eq "x"']:
        refused(text)


def test_filter_refuses_non_ascii_attribute() -> None:
    assert "unexpected character" in refused('usérName eq "x"').detail


# --- operators and values --------------------------------------------------------------------


@pytest.mark.parametrize("op", ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"])
def test_filter_every_comparison_operator_case_insensitive(op: str) -> None:
    assert parse_filter(f'title {op.upper()} "x"') == Compare("title", op, "x")


def test_filter_present_operator() -> None:
    assert parse_filter("title PR") == Present("title")


def test_filter_literals_true_false_null_any_case() -> None:
    assert parse_filter("active eq TRUE") == Compare("active", "eq", True)
    assert parse_filter("active eq false") == Compare("active", "eq", False)
    assert parse_filter("nickName eq Null") == Compare("nickname", "eq", None)


def test_filter_numbers_follow_json() -> None:
    assert parse_filter("x eq 42") == Compare("x", "eq", 42)
    assert parse_filter("x eq -0") == Compare("x", "eq", 0)
    assert parse_filter("x gt 1.5") == Compare("x", "gt", 1.5)
    assert parse_filter("x lt 2E3") == Compare("x", "lt", 2000.0)
    assert parse_filter("x lt 2e-1") == Compare("x", "lt", 0.2)
    for bad in ["x eq 01", "x eq 1.", "x eq .5", "x eq 1e", "x eq -", "x eq +1", "x eq 0x10"]:
        refused(bad)


def test_filter_refuses_overlong_and_infinite_numbers() -> None:
    assert "longer than" in refused("x eq " + "9" * 100).detail
    assert "out of range" in refused("x eq 1e999").detail


def test_filter_json_string_escapes() -> None:
    parsed = parse_filter(r'displayName eq "a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00"')
    assert parsed == Compare("displayname", "eq", 'a"b\\c/d\b\f\n\r\té\U0001f600')


def test_filter_refuses_invalid_escapes() -> None:
    for text in [r'a eq "\x41"', r'a eq "\u12"', r'a eq "\u12G4"', r'a eq "\ud83d"', r'a eq "\ude00"', 'a eq "\\']:
        refused(text)


def test_filter_refuses_nul_in_string() -> None:
    # PostgreSQL refuses NUL in text even as a query parameter: a 400 here, never a 500 there.
    assert "NUL" in refused(r'userName eq "a\u0000b"').detail
    refused('userName eq "a\x00b"')


def test_filter_refuses_raw_control_character_in_string() -> None:
    refused('userName eq "a\nb"')


def test_filter_refuses_unterminated_string() -> None:
    assert "not closed" in refused('userName eq "bjensen').detail


def test_filter_refuses_ordering_with_boolean_or_null() -> None:
    # RFC 7644 §3.4.2.2: gt/ge/lt/le on a boolean is a 400 invalidFilter.
    refused("active gt true")
    refused("x le null")


def test_filter_refuses_substring_operators_without_string() -> None:
    refused("x co 1")
    refused("x sw true")


def test_filter_refuses_unknown_operator() -> None:
    assert "expected an operator" in refused('userName like "x"').detail


def test_filter_refuses_missing_value() -> None:
    refused("userName eq")
    refused("userName eq and")


# --- logic ---------------------------------------------------------------------------------------


def test_filter_precedence_and_binds_tighter_than_or() -> None:
    a, b, c = (Present(name) for name in "abc")
    assert parse_filter("a pr or b pr and c pr") == Or(a, And(b, c))
    assert parse_filter("a pr and b pr or c pr") == Or(And(a, b), c)


def test_filter_precedence_not_binds_tighter_than_and() -> None:
    a, b = Present("a"), Present("b")
    assert parse_filter("not (a pr) and b pr") == And(Not(a), b)


def test_filter_parentheses_override_precedence() -> None:
    a, b, c = (Present(name) for name in "abc")
    assert parse_filter("(a pr or b pr) and c pr") == And(Or(a, b), c)


def test_filter_chains_are_left_associative() -> None:
    a, b, c = (Present(name) for name in "abc")
    assert parse_filter("a pr and b pr and c pr") == And(And(a, b), c)


def test_filter_keywords_case_insensitive() -> None:
    assert parse_filter("NOT (a PR) AND b pr OR c pr") == Or(And(Not(Present("a")), Present("b")), Present("c"))


def test_filter_not_without_space_before_parenthesis() -> None:
    assert parse_filter("not(a pr)") == Not(Present("a"))


def test_filter_refuses_not_without_parentheses() -> None:
    refused('not userName eq "x"')


def test_filter_refuses_unbalanced_parentheses() -> None:
    for text in ["(a pr", "a pr)", "((a pr)", "(a pr))", "()", "not (a pr"]:
        refused(text)


def test_filter_refuses_trailing_and_dangling_logic() -> None:
    for text in ["a pr and", "or a pr", "a pr b pr", "a pr and or b pr"]:
        refused(text)


def test_filter_refuses_empty() -> None:
    refused("")
    refused("   ")


# --- value filters -------------------------------------------------------------------------------


def test_filter_value_filter_single_condition_is_the_dotted_path() -> None:
    assert parse_filter('emails[type eq "work"]') == Compare("emails.type", "eq", "work")
    assert parse_filter("emails[primary eq true]") == Compare("emails.primary", "eq", True)
    assert parse_filter("emails[value pr]") == Present("emails.value")


def test_filter_value_filter_with_several_conditions_is_refused_by_default() -> None:
    error = refused('emails[type eq "work" and primary eq true]')
    assert "not supported" in error.detail
    # Entra's form, a value filter followed by a comparison of a sub-attribute.
    refused('emails[type eq "work"].value eq "a@example.com"')


def test_filter_value_filter_flattened_on_request() -> None:
    parsed = parse_filter('emails[type eq "work"].value eq "a@example.com"', flatten_value_filters=True)
    assert parsed == And(Compare("emails.type", "eq", "work"), Compare("emails.value", "eq", "a@example.com"))
    parsed = parse_filter('emails[type eq "work" and not (primary eq false)]', flatten_value_filters=True)
    assert parsed == And(Compare("emails.type", "eq", "work"), Not(Compare("emails.primary", "eq", False)))


def test_filter_refuses_nested_value_filters() -> None:
    assert "cannot nest" in refused('emails[type[value eq "x"] pr]').detail


def test_filter_refuses_value_filter_on_sub_attribute() -> None:
    refused('name.givenName[value eq "x"]')


def test_filter_refuses_paths_inside_value_filter() -> None:
    refused('emails[name.givenName eq "x"]')


def test_filter_refuses_unclosed_value_filter() -> None:
    refused('emails[type eq "work"')
    refused('emails type eq "work"]')


# --- bounds --------------------------------------------------------------------------------------


def test_filter_refuses_overlong_text() -> None:
    text = 'userName eq "' + "a" * MAX_FILTER_LENGTH + '"'
    assert "longer than" in refused(text).detail


def test_filter_refuses_deep_nesting_without_recursion_error() -> None:
    refused("(" * (MAX_DEPTH + 1) + "a pr" + ")" * (MAX_DEPTH + 1))
    refused("not (" * (MAX_DEPTH + 1) + "a pr" + ")" * (MAX_DEPTH + 1))
    refused("(" * 10_000 + "a pr" + ")" * 10_000)


def test_filter_accepts_nesting_at_the_limit() -> None:
    assert parse_filter("(" * MAX_DEPTH + "a pr" + ")" * MAX_DEPTH) == Present("a")


def test_filter_refuses_too_many_comparisons() -> None:
    parse_filter(" or ".join(["a pr"] * MAX_COMPARISONS))
    assert "comparisons" in refused(" or ".join(["a pr"] * (MAX_COMPARISONS + 1))).detail


def test_filter_parsing_is_linear_in_the_worst_inputs() -> None:
    # Inputs that make backtracking parsers explode: each must be refused or parsed at once.
    worst = [
        '"' * MAX_FILTER_LENGTH,
        "\\" * MAX_FILTER_LENGTH,
        'a eq "' + "\\u" * (MAX_FILTER_LENGTH // 2 - 4),
        "a" * MAX_FILTER_LENGTH,
        "(" * (MAX_FILTER_LENGTH // 2) + ")" * (MAX_FILTER_LENGTH // 2),
        "[" * MAX_FILTER_LENGTH,
        "1" * MAX_FILTER_LENGTH,
        "a pr and " * (MAX_FILTER_LENGTH // 9),
    ]
    for text in worst:
        # CPU time of this process, the best of three runs: a busy neighbour stretches the wall clock and a
        # GC pause one run, while a backtracking parser would burn the CPU every time (each takes ~3 ms here).
        timings = []
        for _ in range(3):
            started = time.process_time()
            with pytest.raises(ScimError):
                parse_filter(text)
            timings.append(time.process_time() - started)
        assert min(timings) < 0.5


def test_filter_detail_names_the_position() -> None:
    assert "position 9" in refused('userName xx "a"').detail


def test_filter_error_detail_is_bounded_and_printable() -> None:
    error = refused("a" * 4000 + "\x07")
    assert len(error.detail) <= 512
    assert error.detail.isprintable()


def test_filter_refuses_non_string() -> None:
    with pytest.raises(ScimError):
        parse_filter(None)  # type: ignore[arg-type]


# --- reading a tree ------------------------------------------------------------------------------


def test_attributes_lists_every_attribute_mentioned() -> None:
    parsed = parse_filter('userName eq "a" and (not (emails.value co "b") or externalId pr)')
    assert attributes(parsed) == {"username", "emails.value", "externalid"}


def test_render_filter_round_trips_precedence() -> None:
    for text in [
        "a pr or b pr and c pr",
        "(a pr or b pr) and c pr",
        "a pr and (b pr and c pr)",
        "a pr or (b pr or c pr)",
        'not (a eq "x\\"y") and b ne 1.5',
        "a eq null or b eq true",
    ]:
        parsed = parse_filter(text)
        assert parse_filter(render_filter(parsed)) == parsed


def test_matches_compares_strings_case_insensitively_unless_case_exact() -> None:
    element = {"Value": "Ada@Example.com", "type": "work", "primary": True}
    assert matches(parse_filter('value eq "ada@example.com"'), element)
    assert not matches(parse_filter('value eq "ada@example.com"'), element, case_exact=frozenset({"value"}))
    assert matches(parse_filter('type eq "work" and primary eq true'), element)
    assert not matches(parse_filter("primary eq 1"), element)  # a boolean never equals a number
    assert matches(parse_filter('value ew "example.com" and not (type eq "home")'), element)
    assert matches(parse_filter("display pr or type pr"), element)


# --- PATCH paths -----------------------------------------------------------------------------------


def test_parse_path_forms() -> None:
    simple = parse_path("userName")
    assert (simple.attribute.name, simple.attribute.sub, simple.filter, simple.sub) == ("username", None, None, None)
    dotted = parse_path("name.givenName")
    assert (dotted.attribute.name, dotted.attribute.sub) == ("name", "givenname")
    selected = parse_path('emails[type eq "work"].value')
    assert selected.filter == Compare("type", "eq", "work")
    assert selected.sub == "value"
    members = parse_path('members[value eq "2819c223"]')
    assert members.filter == Compare("value", "eq", "2819c223")
    assert members.sub is None
    extension = parse_path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department")
    assert extension.attribute.urn == "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user"


def test_parse_path_refusals_are_invalid_path() -> None:
    for text in [
        "",
        "emails[",
        'emails[type eq "work"',
        'emails[type eq "work"].',
        "a b",
        "name.givenName[x pr]",
        "1a",
    ]:
        with pytest.raises(ScimError) as caught:
            parse_path(text)
        assert caught.value.scim_type == "invalidPath"


def test_filter_refuses_raw_lone_surrogates() -> None:
    # A JSON body (POST .search) can carry them; no database can store or compare them.
    refused('userName eq "a\ud800"')
    refused("user\udc00Name pr")


def test_compile_filter_orders_numbers_and_never_mixes_types() -> None:
    element = {"weight": 5, "flag": True, "name": "m"}
    assert compile_filter(parse_filter("weight gt 4.5"))(element)
    assert not compile_filter(parse_filter("weight lt 5"))(element)
    assert compile_filter(parse_filter("weight le 5"))(element)
    assert not compile_filter(parse_filter("flag gt 0"))(element)  # a boolean is not a number
    assert not compile_filter(parse_filter("flag eq 1"))(element)
    assert not compile_filter(parse_filter('weight eq "5"'))(element)
    assert compile_filter(parse_filter('weight ne "5"'))(element)
    assert compile_filter(parse_filter('absent ne "x"'))(element)
    assert not compile_filter(parse_filter("absent pr"))(element)
    assert compile_filter(parse_filter("absent eq null"))(element)
