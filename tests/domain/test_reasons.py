"""The reason registry (``vestibule.domain.reasons``) and the storable-text rule (``vestibule.domain.text``).

The registry is only useful if it is complete: a refusal raised with a code
it does not know would reach a person with no status, message or owner. So
the source itself is read for every ``"sso.…"`` literal, and each must be a
registered reason or a named non-refusal event.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import vestibule
from vestibule.domain import reasons
from vestibule.domain.pipeline import LoginFailure
from vestibule.domain.reasons import EVENTS, REASONS, FixIn, Reason, UnknownReason, reason
from vestibule.domain.text import REPLACEMENT, is_storable, storable
from vestibule.oidc import errors as oidc_errors
from vestibule.protocol_errors import ProtocolError
from vestibule.saml import errors as saml_errors

SRC = Path(vestibule.__file__).parent
# A quoted code, or the constant head of an f-string such as f"sso.claim_invalid.{claim}".
CODE = re.compile(r"""(?<=["'])sso\.[a-z0-9_]+(?:\.[a-z0-9_]+)*\.?(?=["'{])""")


def _literals() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        if path == Path(reasons.__file__):
            continue
        for code in CODE.findall(path.read_text()):
            found.setdefault(code, []).append(str(path.relative_to(SRC)))
    return found


def test_the_source_raises_codes() -> None:
    """The scan itself works: it sees codes raised in the views, the pipeline and f-string families."""
    found = _literals()
    assert {"sso.state_invalid", "sso.connect_rebind_unconfirmed", "sso.email_unverified", "sso.claim_invalid."} <= set(
        found
    )


def test_every_sso_code_in_the_source_is_registered() -> None:
    unknown = []
    for code, where in _literals().items():
        if code in EVENTS:
            continue
        if code.endswith("."):
            entry = REASONS.get(code[:-1])
            if entry is None or not entry.family:
                unknown.append(f"{code}<claim> ({', '.join(where)})")
            continue
        try:
            reason(code)
        except UnknownReason:
            unknown.append(f"{code} ({', '.join(where)})")
    assert unknown == [], "add these to vestibule.domain.reasons (a reason) or its EVENTS"


def test_events_are_not_reasons() -> None:
    assert not EVENTS & set(REASONS)
    assert all(code.startswith("sso.") for code in EVENTS)


@pytest.mark.parametrize("entry", list(REASONS.values()), ids=list(REASONS))
def test_every_reason_is_complete(entry: Reason) -> None:
    assert entry.code.startswith("sso.")
    assert 400 <= entry.status < 600
    assert all(step in entry.steps and 400 <= status < 600 for step, status in entry.status_at.items())
    assert entry.steps and all(step.isidentifier() for step in entry.steps)
    assert entry.message.strip() and entry.message.endswith(".")
    assert entry.title.strip() and entry.meaning.strip()
    assert isinstance(entry.fix_in, FixIn)
    # The table in the module docstring is the admin's documentation.
    assert entry.code in (reasons.__doc__ or "")


def test_protocol_refusals_are_400_and_policy_refusals_403() -> None:
    assert {code for code, entry in REASONS.items() if entry.status == 400} == {
        "sso.assertion_invalid", "sso.id_token_invalid", "sso.state_invalid", "sso.provider_error", "sso.provider_unavailable",
    }  # fmt: skip
    assert REASONS["sso.rate_limited"].status == 429
    assert REASONS["sso.provider_unavailable"].status_for("connect") == 502
    assert REASONS["sso.connection_misconfigured"].status_for("connect") == 422
    assert REASONS["sso.connection_misconfigured"].status_for("start") == 403


def test_families_resolve_their_members_only() -> None:
    assert reason("sso.claim_missing.email") is REASONS["sso.claim_missing"]
    assert reason("sso.claim_invalid.external_id") is REASONS["sso.claim_invalid"]
    for code in (
        "sso.claim_missing",
        "sso.claim_missing.",
        "sso.nope",
        "sso.user_disabled.x",
        "claim_missing.email",
        "",
    ):
        with pytest.raises(UnknownReason):
            reason(code)


# LoginFailure takes what it does not say from the registry -----------------------------


def test_login_failure_defaults_come_from_the_registry() -> None:
    failure = LoginFailure("sso.provisioning_disabled", expected="a member", received="nobody")
    entry = REASONS["sso.provisioning_disabled"]
    assert (failure.step, failure.message, failure.fix_in, failure.status) == (
        entry.step,
        entry.message,
        entry.fix_in,
        403,
    )
    assert (failure.expected, failure.received) == ("a member", "nobody")
    assert LoginFailure("sso.pending_approval").title == "Waiting for approval"


def test_login_failure_keeps_the_positional_form_and_explicit_values() -> None:
    failure = LoginFailure(
        "sso.role_mapping_unmatched", "roles", "A mapping role grants a role that no longer exists.",
        expected="roles from the catalog", received="retired", fix_in="vestibule", detail_code="x.y",
    )  # fmt: skip
    assert failure.message == "A mapping role grants a role that no longer exists."
    assert failure.fix_in is FixIn.VESTIBULE and failure.fix_in == "vestibule"
    assert failure.detail_code == "x.y" and str(failure).startswith("sso.role_mapping_unmatched: ")
    assert LoginFailure("sso.provider_unavailable", "connect").status == 502


def test_login_failure_refuses_what_the_registry_does_not_know() -> None:
    with pytest.raises(UnknownReason):
        LoginFailure("sso.made_up", "user", "Nobody wrote this page.")
    with pytest.raises(ValueError, match="step"):
        LoginFailure("sso.user_disabled", "claims")
    with pytest.raises(ValueError):
        LoginFailure("sso.user_disabled", fix_in="service_provider")


# One fix_in vocabulary; protocol errors declare their reason ---------------------------


def _subclasses(base: type[ProtocolError]) -> list[type[ProtocolError]]:
    found = []
    for sub in base.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


PROTOCOL_ERRORS = sorted(
    {saml_errors.SamlError, oidc_errors.OidcError, *_subclasses(ProtocolError)}, key=lambda c: c.code + c.__name__
)


@pytest.mark.parametrize("error", PROTOCOL_ERRORS, ids=lambda c: c.__name__)
def test_every_protocol_error_declares_a_registered_reason(error: type[ProtocolError]) -> None:
    assert reason(error.reason).code == error.reason
    assert isinstance(error.default_fix_in, FixIn)


def test_the_protocol_packages_define_every_error_checked_here() -> None:
    assert set(saml_errors.ALL_ERRORS) <= set(PROTOCOL_ERRORS)
    oidc_classes = {c for _, c in inspect.getmembers(oidc_errors, inspect.isclass) if issubclass(c, ProtocolError)}
    assert oidc_classes - {ProtocolError} <= set(PROTOCOL_ERRORS)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (saml_errors.AudienceMismatchError, "sso.assertion_invalid"),
        (saml_errors.ReplayedError, "sso.assertion_invalid"),
        (saml_errors.SamlSettingsError, "sso.connection_misconfigured"),
        (oidc_errors.TokenExpired, "sso.id_token_invalid"),
        (oidc_errors.OidcError, "sso.id_token_invalid"),
        (oidc_errors.JwksUnavailableError, "sso.provider_unavailable"),
        (oidc_errors.DiscoveryError, "sso.provider_unavailable"),
        (oidc_errors.UserinfoError, "sso.provider_unavailable"),
        (oidc_errors.UserinfoSubjectMismatch, "sso.provider_error"),
        (oidc_errors.TokenEndpointError, "sso.provider_error"),
        (oidc_errors.ProviderErrorResponse, "sso.provider_error"),
        (oidc_errors.StateInvalid, "sso.state_invalid"),
        (oidc_errors.CallbackInvalid, "sso.state_invalid"),
        (oidc_errors.TenantMismatch, "sso.tenant_mismatch"),
    ],
    ids=lambda v: getattr(v, "__name__", v),
)
def test_protocol_error_maps_to_its_reason(error: type[ProtocolError], code: str) -> None:
    assert error.reason == code


def test_protocol_errors_speak_the_one_vocabulary() -> None:
    exc = oidc_errors.StateInvalid()
    assert exc.fix_in is FixIn.VESTIBULE and exc.to_dict()["fix_in"] == "vestibule"
    assert saml_errors.AudienceMismatchError(fix_in=FixIn.USER).fix_in is FixIn.USER
    with pytest.raises(ValueError):
        saml_errors.ResponseError(fix_in="service_provider")  # type: ignore[arg-type]


# Storable text ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("a\x00b", f"a{REPLACEMENT}b"),
        ("\x1b[31mred", f"{REPLACEMENT}[31mred"),
        ("bell\x07 del\x7f c1\x85", f"bell{REPLACEMENT} del{REPLACEMENT} c1{REPLACEMENT}"),
        ("lone \ud800 surrogate", f"lone {REPLACEMENT} surrogate"),
        ("tab\tnew\nline\r\n", "tab\tnew\nline\r\n"),
        ("Zoë 🙂 \u200b\u202e", "Zoë 🙂 \u200b\u202e"),
        ("", ""),
    ],
)
def test_storable_replaces_nul_and_controls(raw: str, stored: str) -> None:
    assert storable(raw) == stored
    assert is_storable(raw) is (raw == stored)


def test_storable_goes_through_containers_and_leaves_other_values() -> None:
    value = {"roles": ["a\x00", "b"], "pair": ("\x01", 2), "n": 3, "none": None, "flag": True, "nested": {"k": "\x00"}}
    assert storable(value) == {
        "roles": [f"a{REPLACEMENT}", "b"], "pair": (REPLACEMENT, 2), "n": 3, "none": None, "flag": True,
        "nested": {"k": REPLACEMENT},
    }  # fmt: skip
    assert not is_storable(value) and is_storable(storable(value))
    assert not is_storable(["ok", ("\x00",)])


@given(st.text())
def test_storable_is_idempotent_and_agrees_with_is_storable(text: str) -> None:
    cleaned = storable(text)
    assert is_storable(cleaned) and storable(cleaned) == cleaned
    assert len(cleaned) == len(text)
    assert is_storable(text) is (cleaned == text)
    assert "\x00" not in cleaned
