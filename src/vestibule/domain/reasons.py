"""Why a sign-in was refused: the one registry of reason codes (DESIGN "Login", step 3).

Every refusal of an SSO sign-in has a stable reason code. The code is written
to the audit log and the login trace, shown on the failure page, and decides
the HTTP status of that page; nothing else in Vestibule keeps its own table
of them. A reason says at which pipeline step it is reported, its status,
what the person signing in is told by default, and whose configuration most
likely needs the fix (:class:`FixIn`, the one vocabulary shared by the
pipeline, the protocol errors of ``vestibule.saml``/``vestibule.oidc``, the
trace and the failure page).

    code                             step(s)                  status  meaning
    sso.rate_limited                 start                    429     too many sign-ins started from one address
    sso.connection_disabled          start                    403     the connection is off
    sso.connection_misconfigured     start, validate, connect 403     settings incomplete / provider unusable at start (422 at connect)
    sso.assertion_invalid            validate                 400     the SAML response failed validation (detail: saml.*)
    sso.id_token_invalid             validate                 400     the OIDC ID token failed validation (detail: oidc.id_token.*)
    sso.state_invalid                state, validate          400     OIDC state unknown, used, expired or from another browser
    sso.provider_error               validate                 400     the provider answered with an error (callback, token endpoint)
    sso.provider_unavailable         validate, connect        400     discovery, JWKS or userinfo could not be fetched (502 at connect)
    sso.tenant_mismatch              validate                 403     the login came from another external organization
    sso.claim_missing.<claim>        claims                   403     a required claim is absent
    sso.email_invalid                claims                   403     the asserted email is not canonical / valid
    sso.email_unverified             claims                   403     the provider says it has not verified the email
    sso.claim_invalid.<claim>        claims                   403     name or external ID holds control characters
    sso.email_domain_not_owned       domain                   403     email domain not served by this connection
    sso.provisioning_disabled        user                     403     unknown user (or no member) and auto-provision is off
    sso.external_id_conflict         user                     403     the email's user is linked to another subject here
    sso.email_change_refused         user                     403     the provider may not change this user's email
    sso.user_disabled                user                     403     the user is deactivated
    sso.pending_approval             approval                 403     provisioned user waits for an admin
    sso.role_mapping_missing         roles                    403     SSO authorization needs role_mapping
    sso.role_mapping_unmatched       roles                    403     no mapping role has that name
    sso.roles_unmatched              roles                    403     roles claim values are all unknown
    sso.roles_requirement_not_met    roles                    403     a role lacks its required partner
    sso.connect_not_allowed          connect                  403     "connect organization" needs an sso-admin and a provider naming its tenant
    sso.connect_rebind_unconfirmed   connect                  403     already bound to another tenant; replacing it was not confirmed

Refusals caused by the protocol message are 400, policy refusals 403. A code
ending in ``.<claim>`` is a family: ``sso.claim_missing.email``,
``sso.claim_missing.name`` … share one entry.

Protocol errors name their reason with a ``reason`` class attribute (see
``vestibule.protocol_errors``), so no view translates them by hand.

The ``sso.*`` audit events that record a success or a side effect rather than
a refusal are listed in :data:`EVENTS`; a test checks that every ``"sso.…"``
literal in the source is one or the other.

Plain Python, no Django.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["EVENTS", "REASONS", "FixIn", "Reason", "UnknownReason", "reason"]


class FixIn(enum.StrEnum):
    """Whose configuration or action most likely fixes a refusal (shown to admins in the trace).

    The protocol packages used to say ``service_provider`` for our side; in
    Vestibule the service provider *is* Vestibule, so that is :attr:`VESTIBULE`.
    """

    #: The identity provider's configuration (its app, attribute release, keys, clock).
    IDENTITY_PROVIDER = "identity_provider"
    #: Vestibule's configuration: the connection, its account's users, roles and policies.
    VESTIBULE = "vestibule"
    #: Either side: e.g. a role mapping the provider sends that Vestibule does not define.
    IDENTITY_PROVIDER_OR_VESTIBULE = "identity_provider_or_vestibule"
    #: Nobody's configuration: the person signing in starts again, or confirms what they meant.
    USER = "user"


class UnknownReason(LookupError):
    """A reason code that is not in :data:`REASONS`: a programming error, caught by the registry tests."""


DEFAULT_TITLE = "We could not sign you in"
PROTOCOL_MESSAGE = "The sign-in response from your identity provider was not valid."


@dataclass(frozen=True)
class Reason:
    """One reason code and everything a caller needs to report it."""

    code: str
    #: The steps it may be reported at; the first is the default.
    steps: tuple[str, ...]
    #: The failure page's HTTP status.
    status: int
    #: What the person signing in reads unless the raising code says more.
    message: str
    fix_in: FixIn
    #: For admins and the table above.
    meaning: str
    #: The code is a prefix: ``<code>.<claim>``.
    family: bool = False
    #: The failure page's heading.
    title: str = DEFAULT_TITLE
    #: Statuses that differ at one step (an admin flow's upstream failure is a 502, not a 400).
    status_at: Mapping[str, int] = field(default_factory=dict)

    @property
    def step(self) -> str:
        return self.steps[0]

    def status_for(self, step: str) -> int:
        return self.status_at.get(step, self.status)


_ALL: tuple[Reason, ...] = (
    Reason(
        "sso.rate_limited", ("start",), 429,
        "Too many sign-ins were started from your network. Wait a few minutes and try again.",
        FixIn.USER, "too many sign-ins started from one address",
        title="Too many sign-in attempts",
    ),
    Reason(
        "sso.connection_disabled", ("start",), 403,
        "Single sign-on through this provider is turned off. Ask your administrator, or sign in with a password if you have one.",
        FixIn.VESTIBULE, "the connection is off",
    ),
    Reason(
        "sso.connection_misconfigured", ("start", "validate", "connect"), 403,
        "This sign-in is not fully set up yet. Ask your administrator.",
        FixIn.VESTIBULE, "settings incomplete, or the provider is unusable at start",
        # Connecting an organization is an admin's own action on the connection's settings.
        status_at={"connect": 422},
    ),
    Reason(
        "sso.assertion_invalid", ("validate",), 400, PROTOCOL_MESSAGE,
        FixIn.IDENTITY_PROVIDER, "the SAML response failed validation (detail: saml.*)",
    ),
    Reason(
        "sso.id_token_invalid", ("validate",), 400, PROTOCOL_MESSAGE,
        FixIn.IDENTITY_PROVIDER, "the OIDC ID token failed validation (detail: oidc.id_token.*)",
    ),
    Reason(
        "sso.state_invalid", ("state", "validate"), 400,
        "This sign-in link was already used, has expired, or was started in another browser. Start again.",
        FixIn.USER, "OIDC state unknown, used, expired or from another browser",
    ),
    Reason(
        "sso.provider_error", ("validate",), 400, PROTOCOL_MESSAGE,
        FixIn.IDENTITY_PROVIDER, "the provider answered with an error (callback, token endpoint)",
    ),
    Reason(
        "sso.provider_unavailable", ("validate", "connect"), 400, PROTOCOL_MESSAGE,
        FixIn.IDENTITY_PROVIDER, "discovery, JWKS or userinfo could not be fetched",
        # Outside a sign-in (connect organization) nothing was received: the upstream is down.
        status_at={"connect": 502},
    ),
    Reason(
        "sso.tenant_mismatch", ("validate",), 403, PROTOCOL_MESSAGE,
        FixIn.IDENTITY_PROVIDER, "the login came from another external organization",
    ),
    Reason(
        "sso.claim_missing", ("claims",), 403,
        "Your identity provider did not send all the information Vestibule needs about you.",
        FixIn.IDENTITY_PROVIDER, "a required claim is absent", family=True,
    ),
    Reason(
        "sso.email_invalid", ("claims",), 403,
        "Your identity provider sent an email address Vestibule cannot accept.",
        FixIn.IDENTITY_PROVIDER, "the asserted email is not canonical / valid",
    ),
    Reason(
        "sso.email_unverified", ("claims",), 403,
        "Your identity provider says your email address is not verified, so Vestibule cannot sign you in with it. "
        "Verify the address with your identity provider (or ask its administrator to), then sign in again.",
        FixIn.IDENTITY_PROVIDER, "the provider says it has not verified the email",
    ),
    Reason(
        "sso.claim_invalid", ("claims",), 403,
        "Your identity provider sent a value Vestibule cannot accept.",
        FixIn.IDENTITY_PROVIDER, "name or external ID holds control characters", family=True,
    ),
    Reason(
        "sso.email_domain_not_owned", ("domain",), 403,
        "Your email domain is not one this sign-in serves. Use your organization's own sign-in.",
        FixIn.IDENTITY_PROVIDER, "email domain not served by this connection",
    ),
    Reason(
        "sso.provisioning_disabled", ("user",), 403,
        "You have no user in Vestibule yet, and this organization does not create users automatically. "
        "Ask your administrator to invite you.",
        FixIn.VESTIBULE, "unknown user (or not a member) and auto-provisioning is off",
    ),
    Reason(
        "sso.external_id_conflict", ("user",), 403,
        "Your email address is already linked to a different user at your identity provider. Ask your administrator.",
        FixIn.IDENTITY_PROVIDER, "the email's user is linked to another subject at this connection",
    ),
    Reason(
        "sso.email_change_refused", ("user",), 403,
        "Your identity provider sent a different email address for you than the one you have here. Ask your administrator.",
        FixIn.IDENTITY_PROVIDER, "only the user's home organization's provider may change the email, within its domains",
    ),
    Reason(
        "sso.user_disabled", ("user",), 403,
        "Your user is deactivated in Vestibule. Ask your administrator.",
        FixIn.VESTIBULE, "the user is deactivated",
    ),
    Reason(
        "sso.pending_approval", ("approval",), 403,
        "Your account was created and is waiting for approval by an administrator of your organization.",
        FixIn.VESTIBULE, "provisioned user waits for an admin", title="Waiting for approval",
    ),
    Reason(
        "sso.role_mapping_missing", ("roles",), 403,
        "Your identity provider did not say which role mapping applies to you.",
        FixIn.IDENTITY_PROVIDER, "SSO authorization needs a role_mapping claim",
    ),
    Reason(
        "sso.role_mapping_unmatched", ("roles",), 403,
        "No role is set up in Vestibule for the role mapping your identity provider sent.",
        FixIn.IDENTITY_PROVIDER_OR_VESTIBULE, "no mapping role has that name (or it grants a retired role)",
    ),
    Reason(
        "sso.roles_unmatched", ("roles",), 403,
        "None of the roles your identity provider sent exist in Vestibule.",
        FixIn.IDENTITY_PROVIDER, "roles claim values are all unknown",
    ),
    Reason(
        "sso.roles_requirement_not_met", ("roles",), 403,
        "The roles your identity provider sent are incomplete; ask your administrator.",
        FixIn.IDENTITY_PROVIDER, "a role lacks its required partner",
    ),
    Reason(
        "sso.connect_not_allowed", ("connect",), 403,
        "Connecting an organization needs an sso-admin of the account, and a provider that names its tenant.",
        FixIn.VESTIBULE, '"connect organization" needs an sso-admin and a provider naming its tenant',
    ),
    Reason(
        "sso.connect_rebind_unconfirmed", ("connect",), 403,
        "This connection is already bound to another external organization. Nothing was changed.",
        FixIn.USER, "already bound to another tenant; replacing it was not confirmed",
    ),
)  # fmt: skip

#: Every reason by code (a family by its prefix, e.g. ``sso.claim_missing``).
REASONS: Mapping[str, Reason] = MappingProxyType({r.code: r for r in _ALL})

#: The ``sso.*`` audit event codes that are not refusals.
EVENTS: frozenset[str] = frozenset({
    "sso.login_succeeded",
    "sso.identity_linked",
    "sso.user_provisioned",
    "sso.member_provisioned",
    "sso.user_upgraded",
    "sso.email_changed",
    "sso.role_dropped",
})  # fmt: skip


def reason(code: str) -> Reason:
    """The registry entry for ``code``; a family member (``sso.claim_missing.email``) resolves to its family.

    Raises :class:`UnknownReason` for anything else, so a new refusal cannot
    ship without its status, message and owner.
    """
    found = REASONS.get(code)
    if found is not None and not found.family:
        return found
    prefix, _, member = code.rpartition(".")
    family = REASONS.get(prefix)
    if family is not None and family.family and member:
        return family
    raise UnknownReason(f"{code!r} is not a reason code in vestibule.domain.reasons")
