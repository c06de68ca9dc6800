"""The SCIM Error message (RFC 7644 §3.12)."""

from __future__ import annotations

import pytest
from scim2_models import Error

from vestibule.scim.errors import ERROR_URN, ScimError


def test_error_body_is_the_rfc_message() -> None:
    body = ScimError("unexpected character '!' at position 3", scim_type="invalidFilter").body()
    assert body == {
        "schemas": [ERROR_URN],
        "status": "400",
        "scimType": "invalidFilter",
        "detail": "unexpected character '!' at position 3",
    }


def test_error_body_validates_as_scim2_models_error() -> None:
    body = ScimError("too big", status=413).body()
    parsed = Error.model_validate(body)
    assert (parsed.status, parsed.scim_type, parsed.detail) == (413, None, "too big")
    assert "scimType" not in body


def test_error_detail_from_hostile_input_is_bounded_and_printable() -> None:
    error = ScimError("bad value " + "\x1b[31m" + "x" * 10_000)
    assert len(error.detail) <= 512
    assert error.detail.isprintable()


def test_error_refuses_unknown_scim_type_and_non_error_status() -> None:
    with pytest.raises(ValueError):
        ScimError("x", scim_type="invalidfilter")
    with pytest.raises(ValueError):
        ScimError("x", status=200)
