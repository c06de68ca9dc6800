"""``decide_roles``: the SSO authorization decision, as examples from the seeds and as properties.

Claims go through ``extract_identity`` as a protocol layer would hand them
over (SAML attribute values as lists, OIDC claims as JSON), so claim shapes
(one string, a list) are covered together with the decision.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.domain.strategies import catalogs, shuffled_with_duplicates
from vestibule.domain.claims import ClaimMapping
from vestibule.domain.pipeline import LoginFailure, MappingRoleGrants, RoleDecision, decide_roles, extract_identity
from vestibule.domain.roles import DEFAULT_CATALOG, RoleCatalog

PROPS = settings(max_examples=40, deadline=None)

MAPPING = ClaimMapping()
ROLES_CLAIM = ClaimMapping.from_dict({"role_source": "roles_claim", "roles": "gr4vy_roles"})
DROP = ClaimMapping.from_dict({"role_source": "roles_claim", "roles": "gr4vy_roles", "requirement_policy": "drop"})

FINANCE = MappingRoleGrants(
    "Finance", frozenset({"analyst", "report-viewer"}), {"production": frozenset({"report-manager"})}
)
OPERATIONS = MappingRoleGrants(
    "Operations", frozenset({"customer-support"}), {"sandbox": frozenset({"system-support"})}
)


def decide(
    mapping: ClaimMapping, catalog: RoleCatalog = DEFAULT_CATALOG, mapping_roles=(), **claims: Any
) -> RoleDecision:
    identity = extract_identity({"email": "a@acme.com", "name": "A", **claims}, "a@acme.com", mapping)
    return decide_roles(identity, mapping, catalog, mapping_roles)


def refusal(
    mapping: ClaimMapping, catalog: RoleCatalog = DEFAULT_CATALOG, mapping_roles=(), **claims: Any
) -> LoginFailure:
    with pytest.raises(LoginFailure) as exc:
        decide(mapping, catalog, mapping_roles, **claims)
    assert exc.value.step == "roles"
    return exc.value


# Seed 002: mapping roles ------------------------------------------------------


def test_role_mapping_selects_mapping_role():
    decision = decide(MAPPING, mapping_roles=[FINANCE, OPERATIONS], role_mapping=["Finance"])
    assert decision.account_roles == {"analyst", "report-viewer"}
    assert decision.project_roles == {"production": {"report-manager"}}
    assert list(decision.matched_mapping_roles) == ["Finance"]


def test_role_mapping_as_one_string():
    assert decide(MAPPING, mapping_roles=[FINANCE], role_mapping="Finance").account_roles == {
        "analyst",
        "report-viewer",
    }


def test_several_role_mapping_values_give_the_union():
    decision = decide(MAPPING, mapping_roles=[FINANCE, OPERATIONS], role_mapping=["Operations", "Other", "Finance"])
    assert decision.account_roles == {"analyst", "report-viewer", "customer-support"}
    assert decision.project_roles == {"production": {"report-manager"}, "sandbox": {"system-support"}}
    assert list(decision.ignored_values) == ["Other"]


@pytest.mark.parametrize("claims", [{}, {"role_mapping": []}, {"role_mapping": [""]}])
def test_missing_role_mapping_is_refused(claims):
    assert refusal(MAPPING, mapping_roles=[FINANCE], **claims).code == "sso.role_mapping_missing"


def test_unmatched_role_mapping_is_refused_and_says_what_would_match():
    failure = refusal(MAPPING, mapping_roles=[FINANCE, OPERATIONS], role_mapping=["finance"])
    assert failure.code == "sso.role_mapping_unmatched"
    # Matching is exact: "finance" is not "Finance" (an IdP value is not guessed into another).
    assert failure.received == "finance" and "Finance" in failure.expected and "Operations" in failure.expected


def test_no_mapping_roles_at_all_is_unmatched():
    assert refusal(MAPPING, role_mapping=["Finance"]).code == "sso.role_mapping_unmatched"


def test_mapping_role_granting_a_removed_role_is_refused():
    stale = MappingRoleGrants("Finance", frozenset({"analyst", "retired-role"}), {})
    failure = refusal(MAPPING, mapping_roles=[stale], role_mapping="Finance")
    assert (
        failure.code == "sso.role_mapping_unmatched"
        and failure.fix_in == "vestibule"
        and failure.received == "retired-role"
    )


def test_project_requirement_is_met_by_account_roles():
    """report-manager in a project is fine when the account scope grants analyst (account roles apply there)."""
    decision = decide(MAPPING, mapping_roles=[FINANCE], role_mapping="Finance")
    assert decision.dropped == ()
    lonely = MappingRoleGrants("Reports", frozenset({"system-support"}), {"production": frozenset({"report-manager"})})
    assert refusal(MAPPING, mapping_roles=[lonely], role_mapping="Reports").code == "sso.roles_requirement_not_met"


# Seed 004: a roles claim --------------------------------------------------------


def test_administrator_is_kept_as_granted_and_implies_all():
    decision = decide(ROLES_CLAIM, gr4vy_roles=["administrator", "pii-viewer"])
    assert decision.account_roles == {"administrator", "pii-viewer"}
    assert DEFAULT_CATALOG.effective(decision.account_roles) == DEFAULT_CATALOG.names


@pytest.mark.parametrize("claims", [{}, {"gr4vy_roles": []}])
def test_no_roles_gives_the_default(claims):
    assert decide(ROLES_CLAIM, **claims).account_roles == {"analyst"}


def test_single_string_roles_claim():
    assert decide(ROLES_CLAIM, gr4vy_roles="analyst").account_roles == {"analyst"}
    assert decide(ROLES_CLAIM, gr4vy_roles="user-manager").account_roles == {"user-manager"}


def test_dependent_role_alone_is_refused_by_default():
    failure = refusal(ROLES_CLAIM, gr4vy_roles=["pii-viewer"])
    assert failure.code == "sso.roles_requirement_not_met"
    assert "pii-viewer" in failure.expected and "analyst" in failure.expected


def test_dependent_role_alone_is_dropped_with_drop_policy():
    decision = decide(DROP, gr4vy_roles=["pii-viewer", "report-viewer", "system-manager"])
    assert decision.account_roles == {"system-manager"}
    assert sorted(decision.dropped) == ["pii-viewer (account)", "report-viewer (account)"]


def test_everything_dropped_falls_back_to_the_default():
    decision = decide(DROP, gr4vy_roles=["pii-viewer"])
    assert decision.account_roles == {"analyst"} and list(decision.dropped) == ["pii-viewer (account)"]


def test_only_unknown_values_are_refused():
    assert refusal(ROLES_CLAIM, gr4vy_roles=["root"]).code == "sso.roles_unmatched"


def test_role_values_translate_before_the_rules():
    mapping = ClaimMapping.from_dict(
        {
            "role_source": "roles_claim",
            "roles": "groups",
            "role_values": {"Acme Analysts": "analyst", "Acme PII": "pii-viewer"},
        }
    )
    assert decide(mapping, groups=["Acme Analysts", "Acme PII", "Everyone"]).account_roles == {"analyst", "pii-viewer"}
    assert refusal(mapping, groups=["Acme PII"]).code == "sso.roles_requirement_not_met"


def test_nested_roles_claim_path():
    mapping = ClaimMapping.from_dict({"role_source": "roles_claim", "roles": "realm_access.roles"})
    assert decide(mapping, realm_access={"roles": ["customer-support", "pii-viewer"]}).account_roles == {
        "customer-support",
        "pii-viewer",
    }


# Properties: claim order and repetition never matter ------------------------------


def outcome(
    mapping: ClaimMapping, catalog: RoleCatalog, mapping_roles: list[MappingRoleGrants], claim: str, values: list[str]
) -> Any:
    try:
        decision = decide(mapping, catalog, mapping_roles, **{claim: values})
    except LoginFailure as failure:
        # ``received`` echoes the provider's values as sent; the decision is the code and the rule named.
        return ("refused", failure.code, failure.expected)
    return (
        decision.account_roles,
        dict(decision.project_roles),
        sorted(decision.dropped),
        sorted(set(decision.matched_mapping_roles)),
    )


@st.composite
def mapping_role_sets(draw: st.DrawFn, catalog: RoleCatalog) -> list[MappingRoleGrants]:
    names = sorted(catalog.roles)
    roles = st.frozensets(st.sampled_from(names), max_size=3)
    result = []
    for index in range(draw(st.integers(0, 4))):
        projects = draw(st.dictionaries(st.sampled_from(["production", "sandbox", "eu"]), roles, max_size=2))
        result.append(MappingRoleGrants(f"m{index}", draw(roles), projects))
    return result


@PROPS
@given(st.data(), st.sampled_from(["refuse", "drop"]))
def test_decide_roles_ignores_order_of_role_mapping_values(data, policy):
    catalog = data.draw(catalogs)
    mapping_roles = data.draw(mapping_role_sets(catalog))
    mapping = ClaimMapping.from_dict({"requirement_policy": policy})
    pool = [m.name for m in mapping_roles] + ["unknown", "also-unknown"]
    values = data.draw(st.lists(st.sampled_from(pool), max_size=6))
    again = shuffled_with_duplicates(data.draw, values)
    assert outcome(mapping, catalog, mapping_roles, "role_mapping", again) == outcome(
        mapping, catalog, mapping_roles, "role_mapping", values
    )


@PROPS
@given(st.data(), st.sampled_from(["refuse", "drop"]))
def test_decide_roles_ignores_order_of_roles_claim_values(data, policy):
    catalog = data.draw(catalogs)
    names = sorted(catalog.roles)
    translations = data.draw(st.dictionaries(st.sampled_from(["G1", "G2", "G3"]), st.sampled_from(names), max_size=3))
    mapping = ClaimMapping.from_dict(
        {"role_source": "roles_claim", "roles": "roles", "requirement_policy": policy, "role_values": translations}
    )
    values = data.draw(st.lists(st.sampled_from([*names, "G1", "G2", "G3", "stranger"]), max_size=6))
    again = shuffled_with_duplicates(data.draw, values)
    assert outcome(mapping, catalog, [], "roles", again) == outcome(mapping, catalog, [], "roles", values)


@PROPS
@given(st.data())
def test_drop_policy_decisions_always_satisfy_the_catalog(data):
    """Whatever the provider sends, a decision taken under "drop" obeys every rule in every scope."""
    catalog = data.draw(catalogs)
    names = sorted(catalog.roles)
    mapping_roles = data.draw(mapping_role_sets(catalog))
    for mapping, claim, pool in (
        (
            ClaimMapping.from_dict({"role_source": "roles_claim", "roles": "roles", "requirement_policy": "drop"}),
            "roles",
            names,
        ),
        (
            ClaimMapping.from_dict({"requirement_policy": "drop"}),
            "role_mapping",
            [m.name for m in mapping_roles] or ["x"],
        ),
    ):
        values = data.draw(st.lists(st.sampled_from(pool), max_size=6))
        try:
            decision = decide(mapping, catalog, mapping_roles, **{claim: values})
        except LoginFailure as failure:
            # Under "drop" only a missing or unmatched claim refuses, never a requirement.
            assert failure.code != "sso.roles_requirement_not_met"
            continue
        catalog.validate(decision.account_roles)
        for roles in decision.project_roles.values():
            catalog.validate(roles | decision.account_roles)
        dropped = {d.split(" (")[0] for d in decision.dropped if d.endswith("(account)")}
        assert not dropped & decision.account_roles


def test_first_refusal_does_not_depend_on_claim_order():
    """Two mapping roles each opening a project with an unmet requirement: the same one is reported either way."""
    a = MappingRoleGrants("A", frozenset(), {"sandbox": frozenset({"pii-viewer"})})
    b = MappingRoleGrants("B", frozenset(), {"production": frozenset({"report-viewer"})})
    first = refusal(MAPPING, mapping_roles=[a, b], role_mapping=["A", "B"])
    second = refusal(MAPPING, mapping_roles=[a, b], role_mapping=["B", "A"])
    assert first.code == second.code == "sso.roles_requirement_not_met"
    assert first.expected == second.expected and "production" in first.expected


@pytest.mark.parametrize("claim", ["name", "external_id"])
def test_rejects_control_characters_in_name_and_subject(claim: str) -> None:
    """A NUL or newline in a display name or subject would corrupt storage and log lines."""
    from vestibule.domain.claims import ClaimMapping
    from vestibule.domain.pipeline import LoginFailure, extract_identity

    claims = {"email": "bob@acme.com", "name": "Bob"}
    subject = "bob@acme.com"
    if claim == "name":
        claims["name"] = "Bob\x00Admin"
    else:
        subject = "bob\nadmin"
    with pytest.raises(LoginFailure) as exc:
        extract_identity(claims, subject, ClaimMapping())
    assert exc.value.code == f"sso.claim_invalid.{claim}"
