"""The role catalog's rules (DESIGN "Roles"): implication, requirements, default, self-validation."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vestibule.domain.roles import (
    DEFAULT_CATALOG,
    CatalogInvalid,
    RequirementNotMet,
    Role,
    RoleCatalog,
    UnknownRole,
)

C = DEFAULT_CATALOG
SEED_ROLES = {
    "administrator",
    "analyst",
    "customer-support",
    "system-manager",
    "system-support",
    "user-manager",
    "sso-admin",
    "pii-viewer",
    "report-manager",
    "report-viewer",
}
NEEDS_ANALYST_OR_SUPPORT = ("pii-viewer", "report-manager", "report-viewer")


def test_default_catalog_holds_the_seed_roles_and_sso_admin() -> None:
    assert C.names == SEED_ROLES


def test_administrator_implies_every_role() -> None:
    assert C.effective(["administrator"]) == SEED_ROLES


def test_administrator_alone_is_valid() -> None:
    assert C.validate(["administrator"]) == {"administrator"}


def test_plain_roles_imply_only_themselves() -> None:
    for name in SEED_ROLES - {"administrator"}:
        assert C.effective([name]) == {name}


@pytest.mark.parametrize("role", NEEDS_ANALYST_OR_SUPPORT)
def test_dependent_role_alone_is_refused_naming_the_requirement(role: str) -> None:
    with pytest.raises(RequirementNotMet) as info:
        C.validate([role])
    assert info.value.role == role
    assert set(info.value.requires_one_of) == {"analyst", "customer-support"}
    assert info.value.code == "roles.requirement_not_met"
    assert "analyst" in str(info.value) and "customer-support" in str(info.value)


@pytest.mark.parametrize("role", NEEDS_ANALYST_OR_SUPPORT)
@pytest.mark.parametrize("base", ["analyst", "customer-support", "administrator"])
def test_dependent_role_with_analyst_or_support_is_accepted(role: str, base: str) -> None:
    assert C.validate([role, base]) == {role, base}


def test_unrelated_role_does_not_satisfy_a_requirement() -> None:
    with pytest.raises(RequirementNotMet):
        C.validate(["pii-viewer", "system-manager", "user-manager"])


def test_unmet_requirements_lists_every_problem_sorted() -> None:
    problems = C.unmet_requirements(["report-viewer", "pii-viewer", "sso-admin"])
    assert [p.role for p in problems] == ["pii-viewer", "report-viewer"]


def test_default_role_is_analyst_and_stands_alone() -> None:
    assert C.default_role == "analyst"
    assert C.validate([C.default_role]) == {"analyst"}


def test_empty_set_is_valid() -> None:
    assert C.validate([]) == frozenset()
    assert C.effective([]) == frozenset()


@pytest.mark.parametrize("call", ["validate", "effective", "require_known", "drop_unmet", "unmet_requirements"])
def test_unknown_role_is_refused_by_every_entry_point(call: str) -> None:
    with pytest.raises(UnknownRole) as info:
        getattr(C, call)(["analyst", "superuser"])
    assert info.value.role == "superuser"
    assert info.value.code == "roles.unknown"


def test_unknown_role_reported_is_the_first_in_sorted_order() -> None:
    with pytest.raises(UnknownRole) as info:
        C.require_known(["zeta", "alpha", "analyst"])
    assert info.value.role == "alpha"


def test_role_names_are_case_sensitive() -> None:
    with pytest.raises(UnknownRole):
        C.validate(["Analyst"])


def test_drop_unmet_keeps_valid_roles_and_reports_dropped() -> None:
    kept, dropped = C.drop_unmet(["pii-viewer", "report-viewer", "system-manager"])
    assert kept == {"system-manager"}
    assert sorted(d.role for d in dropped) == ["pii-viewer", "report-viewer"]


def test_drop_unmet_on_satisfied_set_drops_nothing() -> None:
    kept, dropped = C.drop_unmet(["pii-viewer", "customer-support"])
    assert kept == {"pii-viewer", "customer-support"}
    assert dropped == []


def test_drop_unmet_drops_the_granted_role_that_brings_a_failing_implication() -> None:
    catalog = RoleCatalog(
        roles={
            "base": Role("base"),
            "needy": Role("needy", requires_one_of=("base",)),
            "bundle": Role("bundle", implies=("needy",)),
            "other": Role("other"),
        },
        default_role="other",
    )
    kept, dropped = catalog.drop_unmet(["bundle", "other"])
    assert kept == {"other"}
    assert [d.role for d in dropped] == ["bundle"]
    # With the requirement met, the bundle stays.
    assert catalog.drop_unmet(["bundle", "base"]) == ({"bundle", "base"}, [])


# Catalog self-validation ----------------------------------------------------


def test_catalog_refuses_implication_of_unknown_role() -> None:
    with pytest.raises(CatalogInvalid, match="ghost"):
        RoleCatalog(roles={"a": Role("a", implies=("ghost",))}, default_role="a")


def test_catalog_refuses_requirement_of_unknown_role() -> None:
    with pytest.raises(CatalogInvalid, match="ghost"):
        RoleCatalog(roles={"a": Role("a"), "b": Role("b", requires_one_of=("ghost",))}, default_role="a")


def test_catalog_refuses_default_outside_the_catalog() -> None:
    with pytest.raises(CatalogInvalid, match="nobody"):
        RoleCatalog(roles={"a": Role("a")}, default_role="nobody")


def test_catalog_refuses_default_that_cannot_stand_alone() -> None:
    with pytest.raises(RequirementNotMet):
        RoleCatalog(
            roles={"base": Role("base"), "needy": Role("needy", requires_one_of=("base",))},
            default_role="needy",
        )


def test_catalog_from_dict_refuses_duplicate_role() -> None:
    with pytest.raises(CatalogInvalid, match="twice"):
        RoleCatalog.from_dict({"default_role": "a", "roles": [{"name": "a"}, {"name": "a"}]})


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '"x"',
        "{}",
        '{"roles": []}',
        '{"default_role": "a"}',
        '{"default_role": "a", "roles": [{}]}',
        '{"default_role": "a", "roles": ["a"]}',
        '{"default_role": "a", "roles": 5}',
        '{"default_role": "n", "roles": [{"name": "b"}, {"name": "n", "requires_one_of": ["b"]}]}',
    ],
)
def test_catalog_from_json_refuses_malformed_input(text: str) -> None:
    with pytest.raises(CatalogInvalid):
        RoleCatalog.from_json(text)


def test_catalog_round_trips_through_json() -> None:
    again = RoleCatalog.from_json(json.dumps(C.to_dict()))
    assert again.names == C.names
    assert again.default_role == C.default_role
    for name in C.names:
        assert again.effective([name]) == C.effective([name])
        assert again.roles[name].requires_one_of == C.roles[name].requires_one_of


def test_implication_cycles_terminate() -> None:
    catalog = RoleCatalog(
        roles={"a": Role("a", implies=("b",)), "b": Role("b", implies=("a",))},
        default_role="a",
    )
    assert catalog.effective(["a"]) == {"a", "b"}


# Properties -------------------------------------------------------------------

role_sets = st.lists(st.sampled_from(sorted(SEED_ROLES)), max_size=12)


@settings(max_examples=200, deadline=None)
@given(role_sets)
def test_closure_is_idempotent(roles: list[str]) -> None:
    once = C.effective(roles)
    assert C.effective(once) == once
    assert set(roles) <= once


@settings(max_examples=200, deadline=None)
@given(role_sets, role_sets)
def test_closure_is_monotone(a: list[str], b: list[str]) -> None:
    assert C.effective(a) <= C.effective(a + b)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(sorted(SEED_ROLES)), max_size=6, unique=True), st.randoms(use_true_random=False))
def test_requirement_checks_and_drop_unmet_are_order_independent(roles: list[str], rnd: object) -> None:
    def outcome(order: list[str]) -> tuple[object, ...]:
        try:
            C.validate(order)
            valid = True
        except RequirementNotMet as exc:
            valid = exc.role  # type: ignore[assignment]
        kept, dropped = C.drop_unmet(order)
        return (
            valid,
            [p.role for p in C.unmet_requirements(order)],
            kept,
            sorted((d.role, d.requires_one_of) for d in dropped),
        )

    expected = outcome(roles)
    permutations = list(itertools.permutations(roles)) if len(roles) <= 4 else []
    shuffled = list(roles)
    for _ in range(5):
        rnd.shuffle(shuffled)  # type: ignore[attr-defined]
        permutations.append(tuple(shuffled))
    for order in permutations:
        assert outcome(list(order)) == expected


@settings(max_examples=200, deadline=None)
@given(role_sets)
def test_drop_unmet_result_always_validates(roles: list[str]) -> None:
    kept, dropped = C.drop_unmet(roles)
    assert C.validate(kept) == kept
    assert kept <= set(roles)
    assert kept | {d.role for d in dropped} == set(roles)
    assert not kept & {d.role for d in dropped}


@st.composite
def catalogs(draw: st.DrawFn) -> RoleCatalog:
    """Random consistent catalogs: implications and requirements over a small name set."""
    names = [f"r{i}" for i in range(draw(st.integers(2, 7)))]
    roles = {}
    for name in names:
        implies = tuple(draw(st.lists(st.sampled_from(names), max_size=3, unique=True)))
        requires = tuple(draw(st.lists(st.sampled_from(names), max_size=2, unique=True)))
        roles[name] = Role(name, implies=implies, requires_one_of=requires)
    # The catalog insists its default can stand alone; pick one that does, or a fresh role.
    roles["base"] = Role("base")
    return RoleCatalog(roles=roles, default_role="base")


@settings(max_examples=150, deadline=None)
@given(catalogs(), st.data())
def test_properties_hold_for_arbitrary_catalogs(catalog: RoleCatalog, data: st.DataObject) -> None:
    roles = data.draw(st.lists(st.sampled_from(sorted(catalog.names)), max_size=8))
    extra = data.draw(st.lists(st.sampled_from(sorted(catalog.names)), max_size=4))
    closure = catalog.effective(roles)
    assert catalog.effective(closure) == closure
    assert closure <= catalog.effective(roles + extra)
    kept, _ = catalog.drop_unmet(roles)
    assert catalog.validate(kept) == kept
    assert catalog.drop_unmet(list(reversed(roles)))[0] == kept
