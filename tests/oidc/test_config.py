"""OidcClientConfig: strict validation, secure defaults, redaction."""

from __future__ import annotations

from typing import Any

import pytest

from vestibule.oidc import OidcClientConfig, OidcConfigError, TenantBinding
from vestibule.oidc.config import DEFAULT_ALLOWED_ALGS

from . import fake_issuer as fi

BASE = {"issuer": fi.ISSUER, "client_id": "c", "client_secret": "s"}


def test_secure_defaults() -> None:
    cfg = OidcClientConfig.from_dict(BASE)
    assert cfg.token_endpoint_auth_method == "client_secret_basic"
    assert cfg.scopes == ("openid", "email", "profile")
    assert cfg.allowed_algs == DEFAULT_ALLOWED_ALGS
    assert not any(a == "none" or a.startswith("HS") for a in cfg.allowed_algs)
    assert cfg.clock_skew_seconds == 120
    assert cfg.use_userinfo is False and cfg.tenant_binding is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"unexpected": 1}, "unexpected"),
        ({"issuer": "http://idp.example"}, "issuer"),
        ({"issuer": "https://idp.example?x=1"}, "issuer"),
        ({"client_id": ""}, "client_id"),
        ({"client_secret": None}, "client_secret"),
        ({"scopes": ["email"]}, "scopes"),
        ({"scopes": "openid"}, "scopes"),
        ({"allowed_algs": ["HS256"]}, "allowed_algs"),
        ({"allowed_algs": ["none"]}, "allowed_algs"),
        ({"allowed_algs": []}, "allowed_algs"),
        ({"clock_skew_seconds": 601}, "clock_skew_seconds"),
        ({"clock_skew_seconds": -1}, "clock_skew_seconds"),
        ({"token_endpoint_auth_method": "none"}, "token_endpoint_auth_method"),
        ({"token_endpoint_auth_method": "private_key_jwt", "private_key_id": "k"}, "private_key"),
        (
            {"token_endpoint_auth_method": "private_key_jwt", "private_key": "junk", "private_key_id": "k"},
            "private_key",
        ),
        ({"tenant_binding": {"kind": "nope"}}, "tenant_binding.kind"),
        ({"tenant_binding": {"kind": "claim", "tenant_id": "t"}}, "tenant_binding.claim"),
        ({"tenant_binding": {"kind": "entra", "extra": 1}}, "tenant_binding.extra"),
        ({"use_userinfo": "yes"}, "use_userinfo"),
    ],
)
def test_rejects_bad_settings_naming_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(OidcConfigError) as info:
        OidcClientConfig.from_dict({**BASE, **change})
    assert info.value.field == field
    assert info.value.code == "oidc.config_invalid"


def test_loopback_http_issuer_allowed_for_tests() -> None:
    assert OidcClientConfig.from_dict({**BASE, "issuer": "http://127.0.0.1:5555"}).issuer.startswith("http://")


def test_private_key_jwt_from_jwk_object_round_trip() -> None:
    key = fi.keys()["RS256"].as_dict(private=True)
    cfg = OidcClientConfig.from_dict(
        {
            "issuer": fi.ISSUER,
            "client_id": "c",
            "token_endpoint_auth_method": "private_key_jwt",
            "private_key": key,
            "private_key_id": "rsa-1",
        }
    )
    again = OidcClientConfig.from_dict(cfg.to_dict())
    assert again == cfg


def test_tenant_binding_round_trip() -> None:
    cfg = OidcClientConfig.from_dict({**BASE, "tenant_binding": {"kind": "google_hd", "tenant_id": "example.com"}})
    assert cfg.tenant_binding == TenantBinding(kind="google_hd", tenant_id="example.com")
    assert OidcClientConfig.from_dict(cfg.to_dict()) == cfg


def test_to_dict_redact_omits_secret() -> None:
    out = OidcClientConfig.from_dict({**BASE, "client_secret": "hunter2-secret"}).to_dict(redact=True)
    assert "client_secret" not in out and "private_key" not in out
    assert out["client_secret_set"] is True
    assert "hunter2-secret" not in repr(out)
