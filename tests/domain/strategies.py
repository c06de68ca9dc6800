"""Hypothesis strategies for the role catalog rule engine (shared by the property tests)."""

from __future__ import annotations

from hypothesis import strategies as st

from vestibule.domain.roles import DEFAULT_CATALOG, Role, RoleCatalog


@st.composite
def generated_catalogs(draw: st.DrawFn) -> RoleCatalog:
    """Small catalogs with arbitrary implication graphs (cycles included) and requirements.

    ``base`` implies and requires nothing, so it is always a valid default;
    every other shape of rule is fair game.
    """
    names = ["base", *(f"r{i}" for i in range(draw(st.integers(1, 6))))]
    roles = {}
    for name in names:
        if name == "base":
            roles[name] = Role(name)
            continue
        implies = draw(st.lists(st.sampled_from(names), max_size=3, unique=True))
        requires = draw(st.one_of(st.just([]), st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True)))
        roles[name] = Role(name, implies=tuple(implies), requires_one_of=tuple(requires))
    return RoleCatalog(roles=roles, default_role="base")


catalogs = st.one_of(st.just(DEFAULT_CATALOG), generated_catalogs())


def role_lists(catalog: RoleCatalog, max_size: int = 8) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(sorted(catalog.roles)), max_size=max_size)


def shuffled_with_duplicates(draw: st.DrawFn, values: list[str]) -> list[str]:
    """The same set of values in another order, some repeated."""
    extra = draw(st.lists(st.sampled_from(values), max_size=4)) if values else []
    return draw(st.permutations([*values, *extra]))
