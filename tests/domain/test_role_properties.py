"""Property-based tests of the catalog rule engine (``vestibule.domain.roles``).

Run against the seed catalog and against generated catalogs with arbitrary
implication graphs (cycles included) and requirements, so the laws hold for
any catalog a deployment configures, not just the default one.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.domain.strategies import catalogs, role_lists, shuffled_with_duplicates
from vestibule.domain.roles import DEFAULT_CATALOG, RequirementNotMet, RoleCatalog, RoleRuleError, UnknownRole

# Generated catalogs are tiny, so many examples stay fast; no deadline on slow CI machines.
PROPS = settings(max_examples=40, deadline=None)


def problems(catalog: RoleCatalog, roles: list[str]) -> list[tuple[str, tuple[str, ...]]]:
    return [(p.role, p.requires_one_of) for p in catalog.unmet_requirements(roles)]


def validate_outcome(catalog: RoleCatalog, roles: list[str]) -> Any:
    try:
        return ("ok", catalog.validate(roles))
    except RoleRuleError as exc:
        return (type(exc).__name__, exc.role, exc.message)


def drop_outcome(catalog: RoleCatalog, roles: list[str]) -> Any:
    kept, dropped = catalog.drop_unmet(roles)
    return kept, [(d.role, d.requires_one_of) for d in dropped]


# Implication ----------------------------------------------------------------


@PROPS
@given(st.data())
def test_effective_is_idempotent(data):
    catalog = data.draw(catalogs)
    roles = data.draw(role_lists(catalog))
    once = catalog.effective(roles)
    assert catalog.effective(once) == once


@PROPS
@given(st.data())
def test_effective_is_extensive_and_monotone(data):
    catalog = data.draw(catalogs)
    small = data.draw(role_lists(catalog))
    more = data.draw(role_lists(catalog))
    assert set(small) <= catalog.effective(small)
    assert catalog.effective(small) <= catalog.effective(small + more)


@PROPS
@given(st.data())
def test_effective_distributes_over_union(data):
    """The closure of a union is the union of closures: roles from two sources never interact."""
    catalog = data.draw(catalogs)
    a, b = data.draw(role_lists(catalog)), data.draw(role_lists(catalog))
    assert catalog.effective(a + b) == catalog.effective(a) | catalog.effective(b)


@PROPS
@given(st.data())
def test_effective_is_order_independent(data):
    catalog = data.draw(catalogs)
    roles = data.draw(role_lists(catalog))
    assert catalog.effective(shuffled_with_duplicates(data.draw, roles)) == catalog.effective(roles)


@PROPS
@given(role_lists(DEFAULT_CATALOG))
def test_administrator_implies_every_role(roles):
    assert DEFAULT_CATALOG.effective([*roles, "administrator"]) == DEFAULT_CATALOG.names


# Requirements ---------------------------------------------------------------


@PROPS
@given(st.data())
def test_unmet_requirements_are_order_and_duplicate_independent(data):
    catalog = data.draw(catalogs)
    roles = data.draw(role_lists(catalog))
    assert problems(catalog, shuffled_with_duplicates(data.draw, roles)) == problems(catalog, roles)


@PROPS
@given(st.data())
def test_validate_is_order_and_duplicate_independent(data):
    catalog = data.draw(catalogs)
    roles = data.draw(role_lists(catalog))
    assert validate_outcome(catalog, shuffled_with_duplicates(data.draw, roles)) == validate_outcome(catalog, roles)


@PROPS
@given(st.data())
def test_validate_accepts_exactly_the_sets_without_unmet_requirements(data):
    catalog = data.draw(catalogs)
    roles = data.draw(role_lists(catalog))
    unmet = catalog.unmet_requirements(roles)
    if unmet:
        with pytest.raises(RequirementNotMet) as exc:
            catalog.validate(roles)
        assert exc.value.role == unmet[0].role
    else:
        assert catalog.validate(roles) == frozenset(roles)


@PROPS
@given(st.data())
def test_unmet_requirements_name_roles_of_the_effective_set(data):
    catalog = data.draw(catalogs)
    roles = data.draw(role_lists(catalog))
    effective = catalog.effective(roles)
    for role, needs in problems(catalog, roles):
        assert role in effective and needs and not effective & set(needs)


@PROPS
@given(st.data())
def test_drop_unmet_is_order_and_duplicate_independent(data):
    catalog = data.draw(catalogs)
    roles = data.draw(role_lists(catalog))
    assert drop_outcome(catalog, shuffled_with_duplicates(data.draw, roles)) == drop_outcome(catalog, roles)


@PROPS
@given(st.data())
def test_drop_unmet_output_always_validates(data):
    catalog = data.draw(catalogs)
    roles = data.draw(role_lists(catalog))
    kept, dropped = catalog.drop_unmet(roles)
    assert catalog.validate(kept) == kept
    assert kept <= set(roles)
    # Every removed role is reported once, and nothing reported is kept.
    assert sorted(d.role for d in dropped) == sorted(set(roles) - kept)


@PROPS
@given(st.data())
def test_drop_unmet_keeps_a_valid_set_whole(data):
    catalog = data.draw(catalogs)
    roles = data.draw(role_lists(catalog))
    if not catalog.unmet_requirements(roles):
        assert catalog.drop_unmet(roles) == (frozenset(roles), [])


@PROPS
@given(st.data())
def test_unknown_role_is_refused_wherever_it_appears(data):
    catalog = data.draw(catalogs)
    roles = data.draw(role_lists(catalog))
    position = data.draw(st.integers(0, len(roles)))
    poisoned = [*roles[:position], "no-such-role", *roles[position:]]
    for check in (catalog.effective, catalog.validate, catalog.unmet_requirements, catalog.drop_unmet):
        with pytest.raises(UnknownRole) as exc:
            check(poisoned)
        assert exc.value.role == "no-such-role"


# The seed's rules, as examples -------------------------------------------------


@pytest.mark.parametrize("dependent", ["pii-viewer", "report-manager", "report-viewer"])
def test_seed_dependent_roles_need_analyst_or_customer_support(dependent):
    with pytest.raises(RequirementNotMet) as exc:
        DEFAULT_CATALOG.validate([dependent])
    assert exc.value.requires_one_of == ("analyst", "customer-support")
    for partner in ("analyst", "customer-support", "administrator"):
        DEFAULT_CATALOG.validate([dependent, partner])
    assert DEFAULT_CATALOG.drop_unmet([dependent, "system-support"])[0] == {"system-support"}
