"""Multi-tenant issuers and tenant binding.

A multi-tenant provider serves many customer organizations from one client
registration, so a valid signature proves only "some tenant of this
provider". The connection is therefore bound to one tenant and every ID token
is checked against it:

* Microsoft Entra ``common``/``organizations``: discovery publishes the issuer
  *template* ``https://login.microsoftonline.com/{tenantid}/v2.0``; the ID
  token's ``iss`` must equal the template with its own ``tid`` claim
  substituted, and ``tid`` must equal the bound tenant (Microsoft identity
  platform, "Validate tokens" / multi-tenant apps; OIDC Core §3.1.3.7 step 2
  allows issuer-specific validation here).
* Google Workspace: the ``hd`` (hosted domain) claim must equal the bound
  domain.
* ``claim``: a named claim must equal ``tenant_id`` (generic providers; the
  interop tests emulate Entra this way).

A connection bound to no tenant refuses every login, except a "connect
organization" login (``learn_tenant=True``), which returns the tenant it
observed so the web layer can record the binding.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from .config import OidcClientConfig
from .errors import DiscoveryError, FixIn, IssuerMismatch, TenantMismatch

if TYPE_CHECKING:
    from .discovery import ProviderMetadata

__all__ = ["check_metadata_issuer", "expected_issuer", "validate_tenant", "setup_url", "TEMPLATE_MARKER"]

TEMPLATE_MARKER = "{tenantid}"
#: Entra's multi-tenant authority segments, which publish a templated issuer.
_ENTRA_MULTI_SEGMENTS = ("common", "organizations", "consumers")
#: Tenant ids are GUIDs or domain names; nothing that could change the URL shape.
_TENANT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def check_metadata_issuer(config: OidcClientConfig, metadata_issuer: str) -> None:
    """OIDC Discovery §4.3: the published issuer must be the configured one.

    The one exception is an Entra multi-tenant authority whose document
    publishes the ``{tenantid}`` template; then the configured issuer must be
    that template with ``common``/``organizations``/``consumers`` in place.
    """
    if metadata_issuer == config.issuer:
        return
    binding = config.tenant_binding
    entra_template = metadata_issuer.count(TEMPLATE_MARKER) == 1 and (binding is None or binding.kind == "entra")
    if entra_template and any(
        metadata_issuer.replace(TEMPLATE_MARKER, seg) == config.issuer for seg in _ENTRA_MULTI_SEGMENTS
    ):
        return
    # The document's value is not echoed: the admin chose where it was fetched from.
    raise DiscoveryError(
        "The discovery document names another issuer than the connection.",
        expected=config.issuer,
        received="issuer differs from the configured one",
    )


def _tenant_value(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if isinstance(value, str) and _TENANT_ID.match(value):
        return value
    return None


def expected_issuer(metadata: ProviderMetadata, claims: Mapping[str, Any]) -> str:
    """The ``iss`` an ID token must carry, substituting ``tid`` into a template."""
    if not metadata.is_issuer_template:
        return metadata.issuer
    tid = _tenant_value(claims, "tid")
    if tid is None:
        raise IssuerMismatch(
            "The provider's issuer is a tenant template but the ID token has no usable tid.",
            expected=metadata.issuer,
            received=claims.get("iss"),
        )
    return metadata.issuer.replace(TEMPLATE_MARKER, tid)


def _same_tenant(kind: str, observed: str, bound: str) -> bool:
    if kind in ("entra", "google_hd"):
        # GUIDs and DNS names are case-insensitive.
        observed, bound = observed.lower(), bound.lower()
    return hmac.compare_digest(observed.encode(), bound.encode())


def validate_tenant(
    claims: Mapping[str, Any],
    *,
    config: OidcClientConfig,
    metadata: ProviderMetadata,
    learn_tenant: bool = False,
) -> str | None:
    """Check the ID token's tenant against the binding; return the observed tenant.

    Raises :class:`TenantMismatch` unless the tenant is the bound one, or
    ``learn_tenant`` is set ("connect organization") and a tenant is present.
    Returns ``None`` for single-tenant connections without a binding.
    """
    binding = config.tenant_binding
    if binding is None:
        if not metadata.is_issuer_template:
            return None
        observed = _tenant_value(claims, "tid")
        if learn_tenant and observed is not None:
            return observed
        raise TenantMismatch(
            "This multi-tenant connection is not bound to an organization yet; connect one first.",
            received=observed,
            fix_in=FixIn.VESTIBULE,
        )
    observed = _tenant_value(claims, binding.claim_name)
    if observed is None:
        raise TenantMismatch(
            f"The ID token carries no usable {binding.claim_name!r} claim.",
            expected=binding.tenant_id,
            received=claims.get(binding.claim_name),
        )
    if binding.tenant_id is None:
        if learn_tenant:
            return observed
        raise TenantMismatch(
            "This connection is not bound to an organization yet; connect one first.",
            received=observed,
            fix_in=FixIn.VESTIBULE,
        )
    if not _same_tenant(binding.kind, observed, binding.tenant_id):
        raise TenantMismatch(expected=binding.tenant_id, received=observed)
    return observed


def setup_url(
    config: OidcClientConfig,
    metadata: ProviderMetadata,
    redirect_uri: str,
    *,
    state: str | None = None,
) -> str | None:
    """The URL a provider-side admin visits before "connect organization".

    For Entra it is the v2 admin-consent endpoint of the bound tenant (or
    ``organizations`` when none is bound yet). Other providers have no such
    step: ``None`` (the web layer shows the sign-in link instead).
    """
    binding = config.tenant_binding
    is_entra = metadata.is_issuer_template or (binding is not None and binding.kind == "entra")
    if not is_entra:
        return None
    parts = urlsplit(config.issuer)
    tenant = binding.tenant_id if binding is not None and binding.tenant_id else "organizations"
    params = {"client_id": config.client_id, "redirect_uri": redirect_uri, "scope": " ".join(config.scopes)}
    if state is not None:
        params["state"] = state
    return f"{parts.scheme}://{parts.netloc}/{tenant}/v2.0/adminconsent?{urlencode(params)}"
