"""Emails as identities: normalization, collisions, canonical form of asserted addresses.

The unit part is pure; the collision part goes through the admin API into the
real database, where ``email_key`` is the unique column.
"""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vestibule.domain.emails import (
    InvalidEmail,
    email_domain,
    email_key,
    normalize_domain,
    normalize_email,
    require_canonical_email,
)

COMPOSED = "ren\u00e9@example.com"  # é as one code point (NFC)
DECOMPOSED = "rene\u0301@example.com"  # e + combining acute (NFD)


def test_case_variants_share_one_key() -> None:
    assert email_key("Bob@X.com") == email_key("bob@x.com") == email_key("BOB@x.COM") == "bob@x.com"


def test_typed_address_keeps_local_case_for_display_but_lowercases_domain() -> None:
    assert normalize_email("Bob@X.COM") == "Bob@x.com"


def test_nfc_and_nfd_share_one_key() -> None:
    assert COMPOSED != DECOMPOSED
    assert normalize_email(DECOMPOSED) == COMPOSED
    assert email_key(DECOMPOSED) == email_key(COMPOSED)


def test_surrounding_whitespace_is_trimmed_for_typed_input() -> None:
    assert normalize_email("  bob@x.com\t\n") == "bob@x.com"
    assert email_key(" Bob@X.com ") == "bob@x.com"


@pytest.mark.parametrize(
    "asserted",
    [" ceo@acme.com", "ceo@acme.com ", "ceo@acme.com\n", "\tceo@acme.com", DECOMPOSED, "bob@b\u00fccher.de"],
)
def test_require_canonical_email_refuses_what_normalization_would_change(asserted: str) -> None:
    with pytest.raises(InvalidEmail) as info:
        require_canonical_email(asserted)
    assert info.value.value == asserted
    assert info.value.reason


def test_require_canonical_email_accepts_canonical_and_case_variants() -> None:
    assert require_canonical_email("ceo@acme.com") == "ceo@acme.com"
    assert require_canonical_email(COMPOSED) == COMPOSED
    # Case is not identity, so an upper-case domain from a provider is fine.
    assert require_canonical_email("CEO@ACME.COM") == "CEO@acme.com"


def test_sharp_s_is_not_merged_with_ss_in_the_local_part() -> None:
    assert email_key("stra\u00dfe@example.com") != email_key("strasse@example.com")
    assert email_key("STRASSE@example.com") == email_key("strasse@example.com")


def test_sharp_s_is_not_merged_with_ss_in_the_domain() -> None:
    # IDNA 2003 maps ß to ss; IDNA 2008 (what registries use) keeps straße.de a different domain.
    assert normalize_domain("stra\u00dfe.de") != normalize_domain("strasse.de")
    assert email_domain("a@stra\u00dfe.de") != email_domain("a@strasse.de")


def test_unicode_domain_becomes_its_ascii_form() -> None:
    assert email_domain("a@B\u00fccher.DE") == "xn--bcher-kva.de"
    assert email_domain("a@xn--bcher-kva.de") == "xn--bcher-kva.de"
    assert email_key("a@b\u00fccher.de") == email_key("A@XN--BCHER-KVA.DE")


def test_trailing_dot_of_domain_is_dropped() -> None:
    assert normalize_domain("Example.COM.") == "example.com"


@pytest.mark.parametrize(
    "value, reason_fragment",
    [
        ("", "exactly one @"),
        ("no-at-sign", "exactly one @"),
        ("a@@example.com", "exactly one @"),
        ("a@b@example.com", "exactly one @"),
        ("@example.com", "before @"),
        ("a" * 65 + "@example.com", "before @"),
        ("a b@example.com", "before @"),
        ('"quoted"@example.com', "before @"),
        ("a,b@example.com", "before @"),
        ("a<b>@example.com", "before @"),
        ("a\\b@example.com", "before @"),
        ("a\x00b@example.com", "before @"),
        ("a\x07@example.com", "before @"),
        ("a\x7f@example.com", "before @"),
        (".a@example.com", "dot"),
        ("a.@example.com", "dot"),
        ("a..b@example.com", "dot"),
        ("a@", "domain"),
        ("a@localhost", "dotted host name"),
        ("a@-x.com", "dotted host name"),
        ("a@x-.com", "dotted host name"),
        ("a@x..com", "domain"),
        ("a@exa_mple.com", "domain"),
        ("a@[10.0.0.1]", "domain"),
        ("a@10.0.0.1", "IP address"),
        ("a@" + "x" * 64 + ".com", "domain"),
        ("a" * 60 + "@" + ".".join(["b" * 60] * 4) + ".com", "at most 254"),
    ],
)
def test_invalid_addresses_are_refused_with_a_reason(value: str, reason_fragment: str) -> None:
    with pytest.raises(InvalidEmail) as info:
        normalize_email(value)
    assert reason_fragment in info.value.reason
    assert str(info.value) == info.value.reason


def test_non_text_is_refused() -> None:
    with pytest.raises(InvalidEmail, match="must be text"):
        normalize_email(None)  # type: ignore[arg-type]


def test_unicode_domain_whose_ascii_form_is_too_long_is_refused() -> None:
    # 202 characters typed, but the IDNA form is far longer than a domain may be.
    value = "a@" + ".".join(["\u00fc"] * 100) + ".de"
    assert len(value) <= 254
    with pytest.raises(InvalidEmail):
        normalize_email(value)


# Properties -------------------------------------------------------------------

local_chars = st.characters(
    codec="utf-8",
    categories=["Ll", "Lu", "Lo", "Nd", "Mn"],
    exclude_characters='@"(),:;<>[\\]',
)
locals_ = st.text(local_chars, min_size=1, max_size=20).filter(lambda s: not s[0].isspace())
domains = st.sampled_from(["example.com", "Example.COM", "b\u00fccher.de", "xn--bcher-kva.de", "sub.acme.io"])


@settings(max_examples=300, deadline=None)
@given(locals_, domains)
def test_key_is_stable_under_nfd_nfc_whitespace_and_ascii_case(local: str, domain: str) -> None:
    value = f"{local}@{domain}"
    try:
        key = email_key(value)
    except InvalidEmail:
        return
    assert email_key(unicodedata.normalize("NFD", value)) == key
    assert email_key(unicodedata.normalize("NFC", value)) == key
    assert email_key(f"  {value} ") == key
    assert email_key(f"{local}@{domain.upper()}") == key
    # Normalizing twice changes nothing more, and a normalized value is canonical.
    normalized = normalize_email(value)
    assert normalize_email(normalized) == normalized
    assert require_canonical_email(normalized) == normalized
    assert len(normalized) <= 254


# Through the database -----------------------------------------------------------


@pytest.fixture
def acme(make_account):  # type: ignore[no-untyped-def]
    return make_account("acme")


def _create(api, email: str, slug: str = "acme"):  # type: ignore[no-untyped-def]
    return api.post(f"/api/v1/accounts/{slug}/users", {"email": email, "name": "X", "send_invitation": False})


@pytest.mark.parametrize(
    "first, second",
    [
        ("Bob@X.com", "bob@x.com"),
        ("bob@x.com", "BOB@X.COM"),
        (COMPOSED, DECOMPOSED),
        (DECOMPOSED, COMPOSED),
        ("  carol@x.com ", "carol@x.com"),
        ("dan@b\u00fccher.de", "dan@xn--bcher-kva.de"),
    ],
)
def test_second_create_of_a_variant_collides_with_409_naming_email(api, acme, first: str, second: str) -> None:  # type: ignore[no-untyped-def]
    from vestibule.accounts.models import User

    created = _create(api, first)
    assert created.status_code == 201, created.json()
    again = _create(api, second)
    assert again.status_code == 409, again.json()
    assert again.json()["field"] == "email"
    assert User.objects.count() == 1


def test_decomposed_input_is_stored_composed(api, acme) -> None:  # type: ignore[no-untyped-def]
    from vestibule.accounts.models import User

    assert _create(api, DECOMPOSED).status_code == 201
    user = User.objects.get()
    assert user.email == COMPOSED
    assert User.objects.get_by_email(DECOMPOSED) == user


def test_variant_in_another_account_reuses_the_same_user(api, make_account) -> None:  # type: ignore[no-untyped-def]
    from vestibule.accounts.models import User

    make_account("acme")
    make_account("globex")
    first = _create(api, COMPOSED, "acme")
    second = _create(api, DECOMPOSED.upper(), "globex")
    assert first.status_code == 201 and second.status_code == 201, second.json()
    assert first.json()["id"] == second.json()["id"]
    assert User.objects.count() == 1
    assert User.objects.get().memberships.count() == 2


def test_sharp_s_and_ss_are_two_users(api, acme) -> None:  # type: ignore[no-untyped-def]
    assert _create(api, "stra\u00dfe@x.com").status_code == 201
    assert _create(api, "strasse@x.com").status_code == 201


def test_model_save_derives_key_and_unique_constraint_holds(db) -> None:  # type: ignore[no-untyped-def]
    from django.db import IntegrityError, transaction

    from vestibule.accounts.models import User

    User.objects.create_user("Eve@Example.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create_user(" eve@EXAMPLE.com ")


@pytest.mark.parametrize(
    "bad", ["not-an-email", "a@b", " @x.com", "a@x..com", "a@" + ".".join(["\u00fc"] * 100) + ".de"]
)
def test_invalid_email_via_api_is_422_naming_email(api, acme, bad: str) -> None:  # type: ignore[no-untyped-def]
    response = _create(api, bad)
    assert response.status_code == 422, response.content
    assert response.json()["field"] == "email"
    assert "invalid email" in response.json()["detail"]


@pytest.mark.parametrize(
    "spoof",
    [
        "ad\u200bmin@acme.com",
        "admin\u202e@acme.com",
        "ad\u2060min@acme.com",
        "admin\ufeff@acme.com",
        "a\u2028b@acme.com",
    ],
    ids=["zero-width-space", "right-to-left-override", "word-joiner", "bom", "line-separator"],
)
def test_rejects_invisible_characters_that_spoof_another_address(spoof: str) -> None:
    """An address with invisible characters renders like ``admin@acme.com`` but is another identity."""
    with pytest.raises(InvalidEmail, match=r"invisible|forbidden"):
        normalize_email(spoof)
