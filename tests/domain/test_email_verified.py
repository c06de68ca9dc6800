"""``email_verified``: an email the provider says it has not verified never signs anyone in.

Attack: at a provider with self-service profiles, an attacker types the
victim's address as their own email; the provider sends it with
``email_verified: false``. Vestibule finds users by email, so without this
check the attacker would be linked to, or provisioned as, the victim.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vestibule.domain.reasons as reasons
from vestibule.domain.claims import ClaimMapping, ClaimMappingError, says_no
from vestibule.domain.pipeline import LoginFailure, extract_identity

VICTIM = {"email": "victim@acme.com", "name": "Mallory"}


DEFAULT_MAPPING = ClaimMapping()


def refused(claims: dict[str, Any], mapping: ClaimMapping = DEFAULT_MAPPING) -> LoginFailure:
    with pytest.raises(LoginFailure) as exc:
        extract_identity(claims, "attacker-subject", mapping)
    return exc.value


@pytest.mark.parametrize(
    "flag", [False, "false", "False", "FALSE", "0", 0, " false ", ["false"], ("false",), [True, False]]
)
def test_unverified_email_of_the_victim_is_refused(flag: Any) -> None:
    failure = refused({**VICTIM, "email_verified": flag})
    assert (failure.code, failure.step, failure.fix_in) == ("sso.email_unverified", "claims", "identity_provider")
    assert "not verified" in failure.message and "then sign in again" in failure.message
    assert (
        failure.expected is not None
        and "email_verified" in failure.expected
        and "trust_unverified_email" in failure.expected
    )
    assert failure.received == f"email_verified={flag!r}"


@pytest.mark.parametrize("flag", [True, "true", "True", "1", 1, ["true"], ("true",)])
def test_verified_email_is_accepted(flag: Any) -> None:
    assert extract_identity({**VICTIM, "email_verified": flag}, "s", ClaimMapping()).email == "victim@acme.com"


@pytest.mark.parametrize("claims", [VICTIM, {**VICTIM, "email_verified": None}], ids=["absent", "null"])
def test_absent_flag_is_accepted_as_saml_idps_never_send_it(claims: dict[str, Any]) -> None:
    assert extract_identity(claims, "s", ClaimMapping()).email == "victim@acme.com"


def test_trust_unverified_email_lets_the_connection_accept_it() -> None:
    mapping = ClaimMapping.from_dict({"trust_unverified_email": True})
    assert extract_identity({**VICTIM, "email_verified": False}, "s", mapping).email == "victim@acme.com"


def test_the_flag_claim_name_is_configurable_and_may_be_nested() -> None:
    mapping = ClaimMapping.from_dict({"email_verified": "profile.mail_confirmed"})
    failure = refused({**VICTIM, "profile": {"mail_confirmed": "0"}}, mapping)
    assert failure.code == "sso.email_unverified" and failure.received == "profile.mail_confirmed='0'"
    # The default name is no longer consulted once another one is configured.
    assert extract_identity(
        {**VICTIM, "email_verified": False, "profile": {"mail_confirmed": True}}, "s", mapping
    ).email


def test_missing_email_is_reported_before_the_flag() -> None:
    assert refused({"name": "A", "email_verified": False}).code == "sso.claim_missing.email"


def test_mapping_defaults_and_round_trip() -> None:
    mapping = ClaimMapping()
    assert (mapping.email_verified, mapping.trust_unverified_email) == ("email_verified", False)
    custom = ClaimMapping.from_dict({"email_verified": "verified", "trust_unverified_email": True})
    data = custom.to_dict()
    assert (data["email_verified"], data["trust_unverified_email"]) == ("verified", True)
    assert ClaimMapping.from_dict(data) == custom
    # A mapping stored before the setting existed reads as the safe default.
    assert ClaimMapping.from_dict({"email": "mail"}).trust_unverified_email is False


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"email_verified": ""}, "claims.email_verified"),
        ({"email_verified": 1}, "claims.email_verified"),
        ({"email_verified": "x" * 301}, "claims.email_verified"),
        ({"trust_unverified_email": "true"}, "claims.trust_unverified_email"),
        ({"trust_unverified_email": 1}, "claims.trust_unverified_email"),
        ({"trust_unverified_email": None}, "claims.trust_unverified_email"),
    ],
)
def test_invalid_settings_are_refused_with_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ClaimMappingError) as exc:
        ClaimMapping.from_dict(data)
    assert exc.value.field == field


def test_empty_flag_name_points_at_the_explicit_trust_setting() -> None:
    with pytest.raises(ClaimMappingError) as exc:
        ClaimMapping.from_dict({"email_verified": ""})
    assert "trust_unverified_email" in exc.value.message


def test_reason_code_is_in_the_table() -> None:
    assert "sso.email_unverified" in (reasons.__doc__ or "")
    assert reasons.reason("sso.email_unverified").step == "claims"


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.text(max_size=8),
        st.lists(st.one_of(st.booleans(), st.text(max_size=5)), max_size=3),
    )
)
def test_refused_exactly_when_the_flag_says_no(flag: Any) -> None:
    claims = {**VICTIM, "email_verified": flag}
    items = flag if isinstance(flag, list) else [flag]
    no = any(
        i is False or (type(i) is int and i == 0) or (isinstance(i, str) and i.strip().lower() in ("false", "0"))
        for i in items
    )
    assert says_no(flag) is no
    if no:
        assert refused(claims).code == "sso.email_unverified"
        assert extract_identity(claims, "s", ClaimMapping.from_dict({"trust_unverified_email": True})).email
    else:
        assert extract_identity(claims, "s", ClaimMapping()).email == "victim@acme.com"
