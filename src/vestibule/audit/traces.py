"""Login traces for the people who fix sign-ins: where a refusal is fixed, and who may open a trace.

The failure page of an SSO sign-in shows the trace's reference to whoever
hit it, often the person refused. Only an ``sso-admin`` of the trace's account
may follow it into the console, so :func:`openable_by` decides that from the
session, with the same standing rules as every console page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vestibule.audit.models import LoginTrace
from vestibule.authority.principal import SSO_ADMIN, session_principal

#: Whose side a step's ``fix_in`` names, in words an administrator reads.
FIX_SIDES = {
    "identity_provider": "In the identity provider's configuration",
    "vestibule": "In this account's settings",
    "identity_provider_or_vestibule": "In the identity provider or in this account's settings",
    "user": "Nobody's configuration: the person signing in starts again",
}


@dataclass(frozen=True)
class Fix:
    """What to do about a refusal: a hint, and the console page (URL name) where it is done."""

    hint: str
    page: str = "console:connections"


# Plain-language advice per reason code (a family by its prefix and a dot).
_FIXES: dict[str, Fix] = {
    "sso.rate_limited": Fix("Too many sign-ins came from one address. Wait a few minutes; nothing needs changing."),
    "sso.connection_disabled": Fix("The connection is disabled. Enable it on its card if people should sign in."),
    "sso.connection_misconfigured": Fix(
        "The connection's settings are incomplete or the provider cannot be used as configured. "
        "Compare its SAML settings (entity ID, sign-in URL, certificate) or OIDC issuer with the provider's."
    ),
    "sso.assertion_invalid": Fix(
        "The SAML response failed validation. Compare the provider's signing certificate, entity ID and "
        "audience with the connection's settings, and check both clocks."
    ),
    "sso.id_token_invalid": Fix(
        "The ID token failed validation. Check the issuer, client ID and the provider's signing keys."
    ),
    "sso.state_invalid": Fix("The sign-in was reused, expired or started in another browser. The person starts again."),
    "sso.provider_error": Fix("The provider answered with an error. Read the received value, then its own logs."),
    "sso.provider_unavailable": Fix(
        "The provider's discovery, keys or userinfo could not be fetched. Check the issuer URL."
    ),
    "sso.tenant_mismatch": Fix(
        "The login came from another organization at the provider than the one this connection is bound to."
    ),
    "sso.claim_missing.": Fix(
        "The provider did not send an attribute Vestibule needs. Add it to the attribute statements "
        "(claims) of the application at the provider."
    ),
    "sso.email_invalid": Fix("The provider sent an email address that is not valid. Fix the user's email there."),
    "sso.email_unverified": Fix("The provider says the email address is not verified. Verify it at the provider."),
    "sso.claim_invalid.": Fix("The provider sent a name or ID with control characters. Fix the user's profile there."),
    "sso.email_domain_not_owned": Fix(
        "The email's domain is not one this connection serves. Add the domain to the connection "
        "(it must be claimed or shared with this account), or sign the person in through their own organization."
    ),
    "sso.provisioning_disabled": Fix(
        "The person has no user here and auto-provisioning is off. Invite them, or turn auto-provisioning on.",
        "console:users",
    ),
    "sso.external_id_conflict": Fix(
        "The email's user is linked to a different subject at this provider. Correct the user's external ID.",
        "console:users",
    ),
    "sso.email_change_refused": Fix(
        "This provider may not change the user's email. Change it in the user's profile.", "console:users"
    ),
    "sso.user_disabled": Fix("The user is deactivated. Reactivate them if they should sign in.", "console:users"),
    "sso.pending_approval": Fix("The new user waits for approval. Approve or refuse them.", "console:pending"),
    "sso.role_mapping_missing": Fix(
        "SSO authorization is on but the provider sent no role_mapping. Add the role_mapping attribute at the "
        "provider, or turn SSO authorization off.",
        "console:mapping-roles",
    ),
    "sso.role_mapping_unmatched": Fix(
        "No mapping role has the name the provider sent. Add a mapping role with that name, or fix the value "
        "the provider sends.",
        "console:mapping-roles",
    ),
    "sso.roles_unmatched": Fix("None of the roles the provider sent exist. Fix the roles claim at the provider."),
    "sso.roles_requirement_not_met": Fix("A role the provider sent needs a partner role. Send both."),
    "sso.connect_not_allowed": Fix("Connecting an organization needs an sso-admin and a provider naming its tenant."),
    "sso.connect_rebind_unconfirmed": Fix("The connection is bound to another organization; confirm replacing it."),
}


def fix_for(code: str) -> Fix | None:
    """The advice for a reason code (family members share theirs), or None for one without advice."""
    if code in _FIXES:
        return _FIXES[code]
    # A family (sso.claim_missing.<claim>) is keyed by its prefix with the dot, as the reason registry's tests expect.
    prefix, _, _ = code.rpartition(".")
    return _FIXES.get(f"{prefix}.")


def openable_by(user: Any, session: Any, trace_id: str) -> str | None:
    """The slug of the trace's account when this signed-in person may open the trace there, else None.

    Only an ``sso-admin`` of the account (the operator included): the failure
    page is seen by the person refused, who must not read the admin's detail.
    """
    if user is None or session is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    trace = LoginTrace.objects.filter(pk=trace_id).select_related("account").first()
    if trace is None or trace.account is None:
        return None
    acting = session_principal(user, session)
    if not acting.is_member_of(trace.account) or SSO_ADMIN not in acting.roles_in(trace.account):
        return None
    return str(trace.account.slug)
