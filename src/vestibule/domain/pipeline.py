"""The login pipeline's pure decisions (DESIGN "Login", step 3).

The Django layer (``signin.pipeline``) runs the steps in
order against the database; every decision it takes is one of the functions
here, and every refusal is a :class:`LoginFailure` with a stable reason code.
The codes, with their step, HTTP status, default message and whose fix it
is, are the registry in :mod:`vestibule.domain.reasons`; a failure takes what
it does not say from there.
"""

from __future__ import annotations

import enum
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vestibule.domain.claims import ClaimMapping, claim_value, claim_values, says_no
from vestibule.domain.emails import InvalidEmail, email_domain, email_key, require_canonical_email
from vestibule.domain.reasons import FixIn, reason
from vestibule.domain.roles import RoleCatalog, RoleRuleError
from vestibule.domain.text import storable

__all__ = [
    "LoginFailure",
    "AssertedIdentity",
    "Action",
    "RoleDecision",
    "MappingRoleGrants",
    "extract_identity",
    "require_domain",
    "require_served",
    "decide_action",
    "decide_roles",
]


class LoginFailure(Exception):
    """A login refused at a named step, for one of the registered reasons.

    ``message`` is for the person signing in; ``expected``/``received`` and
    ``fix_in`` are for the account's administrators (login trace). ``step``,
    ``message`` and ``fix_in`` default to the reason's entry in
    :mod:`vestibule.domain.reasons`; given explicitly, they are checked
    against it, so an unregistered code or step fails loudly in tests
    instead of reaching a person as a page nobody wrote.
    """

    def __init__(
        self,
        code: str,
        step: str | None = None,
        message: str | None = None,
        *,
        expected: str | None = None,
        received: str | None = None,
        fix_in: FixIn | str | None = None,
        detail_code: str | None = None,
    ) -> None:
        self.reason = reason(code)
        if step is not None and step not in self.reason.steps:
            raise ValueError(f"{code} is not reported at step {step!r} (registered: {', '.join(self.reason.steps)})")
        self.code = code
        self.step = step or self.reason.step
        self.message = message or self.reason.message
        super().__init__(f"{code}: {self.message}")
        self.expected = expected
        self.received = received
        self.fix_in = FixIn(fix_in) if fix_in is not None else self.reason.fix_in
        self.detail_code = detail_code

    @property
    def status(self) -> int:
        """The failure page's HTTP status."""
        return self.reason.status_for(self.step)

    @property
    def title(self) -> str:
        return self.reason.title


@dataclass(frozen=True)
class AssertedIdentity:
    external_id: str
    email: str
    email_key: str
    domain: str
    name: str
    role_mapping: tuple[str, ...] | None
    roles: tuple[str, ...] | None

    def authorization_claims(self) -> dict[str, Any]:
        """The roles-related claims as stored with the identity (made storable for PostgreSQL)."""
        return {
            "role_mapping": storable(list(self.role_mapping or ())),
            "roles": storable(list(self.roles)) if self.roles is not None else None,
        }


def _first(values: tuple[str, ...] | None) -> str | None:
    return values[0] if values else None


def _require_verified_email(claims: Mapping[str, Any], mapping: ClaimMapping) -> None:
    """Refuse an email the provider itself says it has not verified.

    Users are found, linked and provisioned by email, so an unverified address
    would let whoever typed it into their provider profile become its owner.
    An absent flag is fine: SAML IdPs never send one, and many OIDC
    providers only send it for addresses they manage.
    """
    flag = claim_value(claims, mapping.email_verified)
    if mapping.trust_unverified_email or flag is None or not says_no(flag):
        return
    raise LoginFailure(
        "sso.email_unverified",
        "claims",
        "Your identity provider says your email address is not verified, so Vestibule cannot sign you in with it. "
        "Verify the address with your identity provider (or ask its administrator to), then sign in again.",
        expected=f"claim '{mapping.email_verified}' true or absent (or the connection's claims.trust_unverified_email on)",
        received=f"{mapping.email_verified}={flag!r}"[:200],
    )


def extract_identity(claims: Mapping[str, Any], subject: str, mapping: ClaimMapping) -> AssertedIdentity:
    emails = claim_values(claims, mapping.email)
    email = _first(emails)
    if email is None:
        raise LoginFailure(
            "sso.claim_missing.email",
            "claims",
            "Your identity provider did not send your email address.",
            expected=f"a claim named '{mapping.email}'",
            received="claims: " + ", ".join(sorted(map(str, claims))[:30]) if claims else "no claims",
        )
    if emails is not None and len(set(emails)) > 1:
        raise LoginFailure(
            "sso.email_invalid",
            "claims",
            "Your identity provider sent several email addresses.",
            expected="exactly one value",
            received=f"{len(emails)} values",
        )
    try:
        canonical = require_canonical_email(email)
    except InvalidEmail as exc:
        raise LoginFailure(
            "sso.email_invalid",
            "claims",
            "Your identity provider sent an email address Vestibule cannot accept.",
            expected="a canonical email address (no surrounding spaces, NFC, valid syntax)",
            received=f"{email!r}: {exc.reason}",
        ) from None
    _require_verified_email(claims, mapping)
    name = _first(claim_values(claims, mapping.name))
    if not name or not name.strip():
        raise LoginFailure(
            "sso.claim_missing.name",
            "claims",
            "Your identity provider did not send your name.",
            expected=f"a claim named '{mapping.name}'",
            received="claims: " + ", ".join(sorted(map(str, claims))[:30]),
        )
    external_id = subject
    if mapping.external_id:
        external_id = _first(claim_values(claims, mapping.external_id)) or ""
        if not external_id:
            raise LoginFailure(
                "sso.claim_missing.external_id",
                "claims",
                "Your identity provider did not send your user ID.",
                expected=f"a claim named '{mapping.external_id}'",
            )
    if not external_id or len(external_id) > 512:
        raise LoginFailure(
            "sso.claim_missing.external_id",
            "claims",
            "Your identity provider sent no usable user ID.",
            expected="a subject of 1-512 characters",
            received=f"{len(external_id)} characters",
        )
    for claim, value in (("name", name), ("external_id", external_id)):
        if any(unicodedata.category(ch) == "Cc" for ch in value):
            # Control characters (NUL, newlines, escapes) in a display name or
            # subject are never legitimate and break storage and log lines.
            raise LoginFailure(
                f"sso.claim_invalid.{claim}",
                "claims",
                "Your identity provider sent a value Vestibule cannot accept.",
                expected=f"{claim} without control characters",
                received=repr(value)[:120],
            )
    return AssertedIdentity(
        external_id=external_id,
        email=canonical,
        email_key=email_key(canonical),
        domain=email_domain(canonical),
        name=name.strip()[:200],
        role_mapping=claim_values(claims, mapping.role_mapping),
        roles=claim_values(claims, mapping.roles),
    )


def require_domain(identity: AssertedIdentity, connection_domains: Iterable[str]) -> None:
    """The email's domain must be one the connection serves (owned or shared).

    This is the cross-tenant barrier: an identity provider of one account can
    never sign in a user whose domain belongs to another account.
    """
    require_served(identity.domain, connection_domains)


def require_served(domain: str, connection_domains: Iterable[str], *, whose: str = "") -> None:
    """``domain`` must be one of the connection's; ``whose`` names a domain other than the asserted email's.

    Also applied to the *linked* person's current address, so a link made
    while a domain was shared cannot outlive the share.
    """
    domains = sorted(set(connection_domains))
    if domain not in domains:
        raise LoginFailure(
            "sso.email_domain_not_owned",
            "domain",
            "Your email domain is not one this sign-in serves. Use your organization's own sign-in.",
            expected=f"{whose or 'an email'} at " + ", ".join(domains),
            received=f"{whose} at {domain}" if whose else domain,
        )


class Action(enum.Enum):
    AUTH = "auth"  # a user is linked to this subject at this connection
    LINK = "link"  # no link yet; a user with that email exists: link it
    ENROLL = "enroll"  # nobody: create the user (auto-provision)
    DENY = "deny"  # nobody, and auto-provision is off


def decide_action(*, linked: bool, email_match: bool, auto_provision: bool) -> Action:
    if linked:
        return Action.AUTH
    if email_match:
        return Action.LINK
    return Action.ENROLL if auto_provision else Action.DENY


@dataclass(frozen=True)
class MappingRoleGrants:
    """A mapping role as plain data: scope ("account" or a project slug) -> roles."""

    name: str
    account_roles: frozenset[str]
    project_roles: Mapping[str, frozenset[str]]


@dataclass(frozen=True)
class RoleDecision:
    account_roles: frozenset[str]
    project_roles: Mapping[str, frozenset[str]]
    dropped: Sequence[str] = ()
    ignored_values: Sequence[str] = ()
    matched_mapping_roles: Sequence[str] = ()
    notes: Sequence[str] = field(default_factory=tuple)


def _apply_requirements(
    roles: frozenset[str],
    catalog: RoleCatalog,
    mapping: ClaimMapping,
    scope: str,
    context: frozenset[str] = frozenset(),
) -> tuple[frozenset[str], list[str]]:
    problems = catalog.unmet_requirements(roles | context)
    if not problems:
        return roles, []
    if mapping.requirement_policy == "refuse":
        first = problems[0]
        raise LoginFailure(
            "sso.roles_requirement_not_met",
            "roles",
            "The roles your identity provider sent are incomplete; ask your administrator.",
            expected=f"{first.role} together with one of {', '.join(first.requires_one_of)} ({scope})",
            received=", ".join(sorted(roles)) or "none",
        )
    kept, dropped = catalog.drop_unmet(roles | context)
    kept_here = roles & kept
    return kept_here, [f"{d.role} ({scope})" for d in dropped if d.role in roles]


def _present(values: tuple[str, ...] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(v for v in values if v.strip())


def decide_roles(
    identity: AssertedIdentity,
    mapping: ClaimMapping,
    catalog: RoleCatalog,
    mapping_roles: Iterable[MappingRoleGrants],
) -> RoleDecision:
    """Roles for this account from the claims, when SSO authorization is on."""
    if mapping.role_source == "mapping_roles":
        # An IdP maps an empty profile field (no department) to an empty value:
        # that is a claim not defined, not a name to look up.
        values = _present(identity.role_mapping)
        if not values:
            raise LoginFailure(
                "sso.role_mapping_missing",
                "roles",
                "Your identity provider did not say which role mapping applies to you.",
                expected=f"a '{mapping.role_mapping}' claim naming one of this account's mapping roles",
                received="no such claim",
            )
        by_name = {m.name: m for m in mapping_roles}
        matched = [by_name[v] for v in dict.fromkeys(values) if v in by_name]
        if not matched:
            raise LoginFailure(
                "sso.role_mapping_unmatched",
                "roles",
                "No role is set up in Vestibule for the role mapping your identity provider sent.",
                expected="one of: " + (", ".join(sorted(by_name)) or "(no mapping roles defined)"),
                received=", ".join(values),
                fix_in="identity_provider_or_vestibule",
            )
        account_roles: frozenset[str] = frozenset().union(*(m.account_roles for m in matched))
        projects: dict[str, frozenset[str]] = {}
        for m in matched:
            for slug, roles in m.project_roles.items():
                projects[slug] = projects.get(slug, frozenset()) | roles
        ignored = [v for v in values if v not in by_name]
    else:
        values = _present(identity.roles)
        if values is None:
            return RoleDecision(frozenset({catalog.default_role}), {}, notes=("roles claim absent: default role",))
        translated = [mapping.role_values.get(v, v) for v in values]
        known = [r for r in translated if r in catalog.roles]
        ignored = [v for v, r in zip(values, translated, strict=True) if r not in catalog.roles]
        if not known:
            if not values:
                return RoleDecision(frozenset({catalog.default_role}), {}, notes=("roles claim empty: default role",))
            raise LoginFailure(
                "sso.roles_unmatched",
                "roles",
                "None of the roles your identity provider sent exist in Vestibule.",
                expected="roles from: " + ", ".join(sorted(catalog.roles)),
                received=", ".join(values),
            )
        account_roles = frozenset(known)
        projects = {}
        matched = []
    try:
        catalog.require_known(account_roles)
        for roles in projects.values():
            catalog.require_known(roles)
    except RoleRuleError as exc:
        raise LoginFailure(
            "sso.role_mapping_unmatched",
            "roles",
            "A mapping role grants a role that no longer exists.",
            expected="roles from the catalog",
            received=exc.role,
            fix_in="vestibule",
        ) from None
    account_roles, dropped = _apply_requirements(account_roles, catalog, mapping, "account")
    notes: tuple[str, ...] = ()
    if mapping.role_source == "roles_claim" and not account_roles:
        # Every sent role was dropped: the person is left as if the provider had
        # sent none, which seed 004 answers with the default role.
        account_roles = frozenset({catalog.default_role})
        notes = ("every role dropped: default role",)
    project_out: dict[str, frozenset[str]] = {}
    # Sorted, so the first refusal reported and the drop order never depend on claim order.
    for slug, roles in sorted(projects.items()):
        kept, dropped_here = _apply_requirements(roles, catalog, mapping, f"project {slug}", context=account_roles)
        dropped.extend(dropped_here)
        project_out[slug] = kept
    return RoleDecision(
        account_roles=account_roles,
        project_roles=project_out,
        dropped=tuple(dropped),
        ignored_values=tuple(ignored),
        matched_mapping_roles=tuple(m.name for m in matched),
        notes=notes,
    )
