"""SAML 2.0 service provider (and a small test IdP) — plain Python, no Django.

Modules follow the spec parts they implement: :mod:`.bindings` (SAML
bindings), :mod:`.response` and :mod:`.assertion` (core §2–§3, profiles
§4.1), :mod:`.metadata` (SAML metadata), :mod:`.dsig` / :mod:`.xmlenc` (XML
Signature / Encryption profiles, core §5–§6), :mod:`.idp` (the IdP side).
"""

from .assertion import VerifiedAssertion
from .bindings import PostForm, build_authn_request, build_authn_request_form
from .errors import SamlError, SamlSettingsError
from .idp import IdentityProvider, build_idp_metadata, build_response, parse_authn_request
from .metadata import build_sp_metadata, parse_idp_metadata
from .replay import InMemoryReplayCache, ReplayCache
from .response import validate_response
from .settings import SamlSettings, default_settings
from .sp import KeyPair, ServiceProvider

__all__ = [
    "IdentityProvider",
    "InMemoryReplayCache",
    "KeyPair",
    "PostForm",
    "ReplayCache",
    "SamlError",
    "SamlSettings",
    "SamlSettingsError",
    "ServiceProvider",
    "VerifiedAssertion",
    "build_authn_request",
    "build_authn_request_form",
    "build_idp_metadata",
    "build_response",
    "build_sp_metadata",
    "default_settings",
    "parse_authn_request",
    "parse_idp_metadata",
    "validate_response",
]
