"""Tenant binding: Entra issuer templates, Google hd, generic claim, learn mode."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from vestibule.oidc import ProviderMetadata, StaticKeys, TenantBinding, setup_url, validate_id_token
from vestibule.oidc.errors import OidcError
from vestibule.oidc.tenancy import check_metadata_issuer

from . import fake_issuer as fi

ENTRA_TEMPLATE = "https://login.microsoftonline.com/{tenantid}/v2.0"
TID_A = "9f5a0c1e-0000-4000-8000-00000000000a"
TID_B = "9f5a0c1e-0000-4000-8000-00000000000b"


def entra_meta() -> ProviderMetadata:
    base = fi.metadata()
    return ProviderMetadata(ENTRA_TEMPLATE, base.authorization_endpoint, base.token_endpoint, base.jwks_uri)


def entra_config(tenant: str | None = TID_A, segment: str = "organizations") -> Any:
    binding = TenantBinding(kind="entra", tenant_id=tenant)
    return fi.config(issuer=f"https://login.microsoftonline.com/{segment}/v2.0", tenant_binding=binding)


def run(cfg: Any, meta: ProviderMetadata, learn: bool = False, **claims: Any) -> dict[str, Any]:
    return validate_id_token(
        fi.mint(fi.claims(**claims)),
        config=cfg,
        metadata=meta,
        keys=StaticKeys(list(fi.keys().values())),
        nonce=fi.NONCE,
        now=fi.NOW,
        learn_tenant=learn,
    )


def code_of(*args: Any, **kwargs: Any) -> str:
    with pytest.raises(OidcError) as info:
        run(*args, **kwargs)
    return info.value.code


def test_entra_template_accepts_bound_tenant() -> None:
    iss = f"https://login.microsoftonline.com/{TID_A}/v2.0"
    assert run(entra_config(), entra_meta(), iss=iss, tid=TID_A)["tid"] == TID_A


def test_entra_template_refuses_other_tenant() -> None:
    iss = f"https://login.microsoftonline.com/{TID_B}/v2.0"
    assert code_of(entra_config(), entra_meta(), iss=iss, tid=TID_B) == "oidc.tenant_mismatch"


def test_entra_iss_must_match_its_own_tid() -> None:
    """A token whose iss names tenant B but tid claims A: issuer_mismatch."""
    iss = f"https://login.microsoftonline.com/{TID_B}/v2.0"
    assert code_of(entra_config(), entra_meta(), iss=iss, tid=TID_A) == "oidc.id_token.issuer_mismatch"


def test_entra_tid_cannot_inject_path() -> None:
    iss = "https://login.microsoftonline.com/x/../evil/v2.0"
    assert code_of(entra_config(), entra_meta(), iss=iss, tid="x/../evil") == "oidc.id_token.issuer_mismatch"


def test_unbound_multi_tenant_refuses_unless_learning() -> None:
    iss = f"https://login.microsoftonline.com/{TID_B}/v2.0"
    cfg = fi.config(issuer="https://login.microsoftonline.com/common/v2.0")
    assert code_of(cfg, entra_meta(), iss=iss, tid=TID_B) == "oidc.tenant_mismatch"
    assert code_of(entra_config(tenant=None), entra_meta(), iss=iss, tid=TID_B) == "oidc.tenant_mismatch"
    assert run(entra_config(tenant=None), entra_meta(), learn=True, iss=iss, tid=TID_B)["tid"] == TID_B


def test_google_hd_binding() -> None:
    cfg = fi.config(tenant_binding=TenantBinding(kind="google_hd", tenant_id="example.com"))
    assert run(cfg, fi.metadata(), hd="example.com")["hd"] == "example.com"
    assert code_of(cfg, fi.metadata(), hd="evil.com") == "oidc.tenant_mismatch"
    assert code_of(cfg, fi.metadata()) == "oidc.tenant_mismatch"  # consumer account: no hd


def test_metadata_issuer_template_only_for_multi_tenant_segments() -> None:
    check_metadata_issuer(entra_config(segment="common"), ENTRA_TEMPLATE)
    with pytest.raises(OidcError) as info:
        check_metadata_issuer(entra_config(segment=TID_A), ENTRA_TEMPLATE)
    assert info.value.code == "oidc.discovery_failed"
    with pytest.raises(OidcError):
        check_metadata_issuer(fi.config(tenant_binding=TenantBinding(kind="google_hd")), ENTRA_TEMPLATE)


def test_setup_url_is_entra_admin_consent() -> None:
    url = setup_url(entra_config(tenant=None), entra_meta(), "https://sp.example/cb")
    assert url is not None
    parts = urlsplit(url)
    assert parts.netloc == "login.microsoftonline.com" and parts.path == "/organizations/v2.0/adminconsent"
    query = parse_qs(parts.query)
    assert query["client_id"] == [fi.CLIENT_ID] and query["redirect_uri"] == ["https://sp.example/cb"]
    assert query["scope"] == ["openid email profile"]
    bound = setup_url(entra_config(), entra_meta(), "https://sp.example/cb")
    assert bound is not None and f"/{TID_A}/v2.0/adminconsent" in bound
    assert setup_url(fi.config(), fi.metadata(), "https://sp.example/cb") is None
