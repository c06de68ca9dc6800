"""Creating and changing connections, with every rule of DESIGN "Connection".

Functions raise :class:`ConnectionRuleError` (with the HTTP status that fits
and the field it concerns); the API layer only translates.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from vestibule.accounts.models import Account, Project, ProjectAccess, Source, User
from vestibule.accounts.roles import effective_account_roles, get_catalog
from vestibule.connections.authorization import lockout_warnings, release_managed_roles
from vestibule.connections.keys import ensure_sp_keys, read_secrets, write_secrets
from vestibule.connections.models import (
    Connection,
    ConnectionDomain,
    DomainClaim,
    DomainShare,
    ExternalIdentity,
    IdpMetadataSource,
)
from vestibule.connections.public_mail_domains import is_public_mail_domain
from vestibule.domain.claims import ClaimMapping, ClaimMappingError
from vestibule.domain.emails import InvalidEmail, email_domain, email_key, normalize_domain, normalize_email
from vestibule.oidc import OidcClientConfig, OidcConfigError
from vestibule.outbound import OutboundPolicy, address_problem
from vestibule.saml import SamlError, SamlSettings, SamlSettingsError, default_settings, node_saml, parse_idp_metadata

MAX_DOMAINS = 50
MAX_IGNORED = 1000
OIDC_SECRET_FIELDS = ("client_secret", "private_key")


class ConnectionRuleError(Exception):
    def __init__(self, status: int, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field


def _unprocessable(detail: str, field: str) -> ConnectionRuleError:
    return ConnectionRuleError(422, detail, field)


# Domains -------------------------------------------------------------------


def normalize_domains(domains: Iterable[str], field: str = "domains") -> list[str]:
    result: list[str] = []
    for index, raw in enumerate(domains):
        try:
            domain = normalize_domain(raw)
        except InvalidEmail as exc:
            raise _unprocessable(f"{raw!r} is not a domain: {exc.reason}", f"{field}[{index}]") from None
        if domain in result:
            raise _unprocessable(f"domain {domain} is listed twice", f"{field}[{index}]")
        result.append(domain)
    if not result:
        raise _unprocessable("a connection serves at least one email domain", field)
    if len(result) > MAX_DOMAINS:
        raise _unprocessable(f"a connection serves at most {MAX_DOMAINS} domains", field)
    return result


def refuse_public_mail(domain: str) -> None:
    """Raise a 422 for a public mail domain (normalized): nobody may ever claim one."""
    if is_public_mail_domain(domain):
        raise ConnectionRuleError(
            422,
            f"{domain} is a public mail domain: its addresses belong to the provider's many customers, "
            "not to one organization, so no account can claim it",
            "domain",
        )


def claim_domain(account: Account, domain: str) -> DomainClaim:
    """Claim ``domain`` for ``account`` (the operator directly, or a verified DNS challenge; the caller checks).

    Every claim passes here, so a public mail domain is refused whichever
    path asks. The unique constraint settles concurrent claims: exactly one
    account wins and the other gets a 409, on every database.
    """
    refuse_public_mail(domain)
    existing = DomainClaim.objects.filter(domain=domain).select_related("account").first()
    if existing is not None:
        if existing.account_id == account.pk:
            return existing
        raise ConnectionRuleError(409, f"domain {domain} is already claimed by another account", "domain")
    try:
        with transaction.atomic():
            return DomainClaim.objects.create(domain=domain, account=account)
    except IntegrityError:
        winner = DomainClaim.objects.filter(domain=domain).first()
        if winner is not None and winner.account_id == account.pk:
            return winner
        raise ConnectionRuleError(409, f"domain {domain} is already claimed by another account", "domain") from None


def usable_claim(account: Account, domain: str, *, may_claim: bool) -> DomainClaim:
    """The claim through which ``account`` may serve ``domain``: owned, shared, or newly claimed."""
    claim = DomainClaim.objects.filter(domain=domain).first()
    if claim is not None:
        shared = DomainShare.objects.filter(claim=claim, account=account, status=DomainShare.Status.ACTIVE).exists()
        if claim.account_id == account.pk or shared:
            return claim
        if may_claim:
            raise ConnectionRuleError(
                409, f"domain {domain} is claimed by another account and not shared with '{account.slug}'", "domains"
            )
    if not may_claim:
        # The same answer whether another account holds the domain or nobody does:
        # an account's admins must not learn which domains other tenants hold.
        raise ConnectionRuleError(
            403,
            f"domain {domain} is neither claimed by nor shared with '{account.slug}': prove it "
            f"(POST /api/v1/accounts/{account.slug}/domain-verifications) or ask the operator",
            "domains",
        )
    return claim_domain(account, domain)


# Settings ------------------------------------------------------------------


def validate_claims(claims: dict[str, Any] | None) -> dict[str, Any]:
    try:
        mapping = ClaimMapping.from_dict(claims)
    except ClaimMappingError as exc:
        raise _unprocessable(exc.message, exc.field) from None
    # A translation to a role the catalog lacks would be silently ignored at
    # every login; say so now, while the admin is looking.
    catalog = get_catalog()
    for value, role in sorted(mapping.role_values.items()):
        if role not in catalog.roles:
            raise _unprocessable(
                f"claims.role_values maps '{value}' to '{role}', which is not a role; roles: {', '.join(sorted(catalog.roles))}",
                "claims.role_values",
            )
    return mapping.to_dict()


INCOMPLETE_SAML = (
    "the SAML settings are incomplete: set idp_entity_id, sso_url and certificates (or PUT the IdP metadata)"
)
SAML_REQUIRED = ("idp_entity_id", "sso_url", "certificates")


def validate_saml_settings(
    doc: dict[str, Any] | None, *, require_complete: bool = False, names: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A SAML settings document: complete and valid, or the default incomplete template.

    ``names`` maps a setting to the key the administrator actually wrote (a
    node-saml document's), so an error names what they can find and fix.
    """
    if not doc or doc == default_settings():
        if require_complete:
            raise _unprocessable(INCOMPLETE_SAML, "saml")
        return default_settings()
    try:
        return SamlSettings.from_dict(doc).to_dict()
    except SamlSettingsError as exc:
        field = exc.field.split("[", 1)[0]
        written = (names or {}).get(field, field) + exc.field[len(field) :]
        description = exc.description
        if field in SAML_REQUIRED and not doc.get(field):
            description = f"is required ({INCOMPLETE_SAML.split(': ', 1)[1]})"
            if written == "idpIssuer":
                description += (
                    "; node-saml's issuer is the service provider's own entity ID, not the identity provider's"
                )
        raise _unprocessable(f"saml.{written}: {description}", f"saml.{written}") from None
    except SamlError as exc:
        raise _unprocessable(f"saml: {exc}", "saml") from None


NATIVE_SAML_KEYS = frozenset(default_settings())


def saml_changes(doc: Any) -> tuple[dict[str, Any], list[str], Mapping[str, str]]:
    """The settings a request's ``saml`` object sets, in Vestibule's keys; notes; names for errors.

    Two formats are accepted, told apart by their keys: Vestibule's own
    (``idp_entity_id``, ``sso_url``, ``certificates``, …) and the node-saml /
    passport-saml options object seed 001's system used (``entryPoint``,
    ``idpIssuer``, ``cert``, …), translated by :mod:`vestibule.saml.node_saml`.
    """
    if not isinstance(doc, dict):
        raise _unprocessable("saml must be a JSON object of SAML settings", "saml")
    if node_saml.is_node_saml(doc):
        try:
            translation = node_saml.translate(doc, vestibule_keys=NATIVE_SAML_KEYS)
        except SamlSettingsError as exc:
            raise _unprocessable(f"saml.{exc.field}: {exc.description}", f"saml.{exc.field}") from None
        return translation.settings, list(translation.notes), node_saml.key_names(doc)
    changes = dict(doc)
    if "identifierFormat" in changes:
        # The seed's own spelling of name_id_format, accepted in Vestibule's format too.
        if "name_id_format" in changes:
            raise _unprocessable("saml.identifierFormat: duplicates name_id_format; send one", "saml.identifierFormat")
        changes["name_id_format"] = changes.pop("identifierFormat")
    return changes, [], {}


def merge_saml_settings(
    current: dict[str, Any] | None, doc: Any, *, require_complete: bool = False
) -> tuple[dict[str, Any], list[str]]:
    """``doc`` over the stored settings, like a PATCH of ``oidc``: keys not sent keep their value.

    A key sent as null goes back to its default. The result is validated as
    a whole. Returns the settings to store and notes for the administrator.
    """
    changes, notes, names = saml_changes(doc)
    merged = dict(current or default_settings())
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return validate_saml_settings(merged, require_complete=require_complete, names=names), notes


IDP_FIELDS = ("idp_entity_id", "sso_url", "sso_binding", "certificates", "name_id_format")


def import_idp_metadata(
    connection: Connection, xml: bytes, *, entity_id: str | None = None, save: bool = True
) -> dict[str, Any]:
    """Generate a SAML connection's settings from its IdP's metadata XML, and store them unless ``save`` is off.

    The metadata speaks for the IdP only (entity ID, SSO URL and binding,
    signing certificates, NameID format); this connection's own policy choices
    (signing/encryption wishes, IdP-initiated, skew) are kept. With ``save``
    off the settings are only returned, for review (seed 001: the generated
    settings replace the text area, and the administrator saves them).
    """
    if connection.protocol != Connection.Protocol.SAML:
        raise _unprocessable("this is an OIDC connection; IdP metadata applies to SAML connections", "id")
    try:
        generated = parse_idp_metadata(xml, entity_id=entity_id).to_dict()
    except SamlError as exc:
        raise _unprocessable(f"metadata: {getattr(exc, 'description', str(exc))}", "metadata") from None
    policy = {k: v for k, v in connection.saml_settings.items() if k in generated and k not in IDP_FIELDS}
    settings = validate_saml_settings({**generated, **policy})
    if save:
        connection.saml_settings = settings
        connection.save(update_fields=["saml_settings", "updated_at"])
    return dict(settings)


# IdP metadata URL -------------------------------------------------------------

DEFAULT_METADATA_REFRESH_SECONDS = 12 * 3600
MIN_METADATA_REFRESH_SECONDS = 15 * 60
MAX_METADATA_REFRESH_SECONDS = 7 * 86400
MAX_METADATA_URL = 2000


def validate_metadata_url(value: Any, field: str = "idp_metadata_url") -> str:
    """An IdP metadata URL the guarded outbound client may fetch: https, or a host the operator allow-listed.

    The fetch itself is guarded again (every resolved address is checked
    then); this refuses early, with the field named, what could never work.
    """
    if not isinstance(value, str) or not value.strip():
        raise _unprocessable("the IdP metadata URL must be a non-empty string (null removes it)", field)
    url: str = value.strip()
    if len(url) > MAX_METADATA_URL:
        raise _unprocessable(f"the IdP metadata URL has at most {MAX_METADATA_URL} characters", field)
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise _unprocessable("the IdP metadata URL is not a valid URL", field) from None
    if parts.username is not None or parts.password is not None:
        raise _unprocessable("the IdP metadata URL must not carry credentials", field)
    if parts.fragment:
        raise _unprocessable("the IdP metadata URL must not have a #fragment", field)
    if not host:
        raise _unprocessable("the IdP metadata URL has no host", field)
    policy = OutboundPolicy.from_allow(settings.VESTIBULE_OUTBOUND_ALLOW)
    if parts.scheme == "http":
        if not policy.allows_host(host):
            raise _unprocessable(
                "the IdP metadata URL must be https:// (plain http only to a host listed in VESTIBULE_OUTBOUND_ALLOW)",
                field,
            )
    elif parts.scheme != "https":
        raise _unprocessable("the IdP metadata URL must be an https:// URL", field)
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None and not policy.allows_host(host) and (problem := address_problem(literal)):
        raise _unprocessable(f"the IdP metadata URL points to {problem}, which Vestibule does not fetch", field)
    return url


def validate_refresh_interval(value: Any, field: str = "idp_metadata_refresh_interval") -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _unprocessable("the refresh interval is a number of seconds", field)
    if not MIN_METADATA_REFRESH_SECONDS <= value <= MAX_METADATA_REFRESH_SECONDS:
        raise _unprocessable(
            f"the refresh interval is between {MIN_METADATA_REFRESH_SECONDS} and {MAX_METADATA_REFRESH_SECONDS} "
            "seconds (null: the default, 12 hours)",
            field,
        )
    return value


def refresh_interval(source: IdpMetadataSource) -> dt.timedelta:
    return dt.timedelta(seconds=source.refresh_seconds or DEFAULT_METADATA_REFRESH_SECONDS)


def configure_metadata_source(connection: Connection, changes: Mapping[str, Any]) -> None:
    """Set, change or remove (URL null) a SAML connection's IdP metadata URL and its refresh interval.

    A new or changed URL is due at once: the next refresh pass (or
    ``POST .../saml/idp-metadata/refresh``) reads it. Removing the URL keeps
    the change log.
    """
    if "idp_metadata_url" not in changes and "idp_metadata_refresh_interval" not in changes:
        return
    if connection.protocol != Connection.Protocol.SAML:
        raise _unprocessable("only SAML connections have an IdP metadata URL", "idp_metadata_url")
    source = IdpMetadataSource.objects.filter(connection=connection).first()
    if "idp_metadata_url" in changes and changes["idp_metadata_url"] is None:
        if source is not None:
            source.delete()
        if changes.get("idp_metadata_refresh_interval") is not None:
            raise _unprocessable("a refresh interval needs an IdP metadata URL", "idp_metadata_refresh_interval")
        return
    url = validate_metadata_url(changes["idp_metadata_url"]) if "idp_metadata_url" in changes else None
    if source is None:
        if url is None:
            raise _unprocessable(
                "set idp_metadata_url first (the interval applies to it)", "idp_metadata_refresh_interval"
            )
        source = IdpMetadataSource(connection=connection, url=url)
    if url is not None and url != source.url:
        source.url = url
        source.next_fetch_at = timezone.now()
        source.consecutive_failures, source.last_error = 0, ""
    if "idp_metadata_refresh_interval" in changes:
        source.refresh_seconds = validate_refresh_interval(changes["idp_metadata_refresh_interval"])
    source.save()


def metadata_source_out(connection: Connection) -> dict[str, Any] | None:
    source = IdpMetadataSource.objects.filter(connection=connection).first()
    if source is None:
        return None

    def when(value: dt.datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "url": source.url,
        "refresh_interval": int(refresh_interval(source).total_seconds()),
        "next_fetch_at": when(source.next_fetch_at),
        "last_fetched_at": when(source.last_fetched_at),
        "last_success_at": when(source.last_success_at),
        "consecutive_failures": source.consecutive_failures,
        "last_error": source.last_error or None,
    }


def split_oidc(doc: dict[str, Any], existing_secrets: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate OIDC settings; return (public settings, secrets). Secrets are write-only."""
    secrets = {k: existing_secrets[k] for k in OIDC_SECRET_FIELDS if existing_secrets.get(k)}
    for key in OIDC_SECRET_FIELDS:
        if key in doc:
            if doc[key] in (None, ""):
                secrets.pop(key, None)
            else:
                secrets[key] = doc[key]
    public = {k: v for k, v in doc.items() if k not in OIDC_SECRET_FIELDS}
    try:
        config = OidcClientConfig.from_dict({**public, **secrets})
    except OidcConfigError as exc:
        field = getattr(exc, "field", None) or "oidc"
        raise _unprocessable(f"oidc.{field}: {getattr(exc, 'description', str(exc))}", f"oidc.{field}") from None
    stored = config.to_dict(redact=True)
    for derived in ("client_secret_set", "private_key_set"):
        stored.pop(derived, None)
    if stored.get("tenant_binding") and isinstance(stored["tenant_binding"], dict):
        # The bound tenant lives on the connection (set by "connect organization").
        stored["tenant_binding"] = {k: v for k, v in stored["tenant_binding"].items() if v is not None}
    if isinstance(private := secrets.get("private_key"), dict):
        import json

        secrets["private_key"] = json.dumps(private, sort_keys=True)
    return stored, secrets


def validate_ignored_emails(emails: Iterable[str], domains: Iterable[str]) -> list[str]:
    """Ignored emails must belong to the connection's domains (seed 001)."""
    allowed = set(domains)
    result: list[str] = []
    for index, raw in enumerate(emails):
        try:
            email = normalize_email(raw)
        except InvalidEmail as exc:
            raise _unprocessable(f"{raw!r} is not an email address: {exc.reason}", f"ignored_emails[{index}]") from None
        if email_domain(email) not in allowed:
            raise _unprocessable(
                f"{email} is not in this connection's domains ({', '.join(sorted(allowed))})",
                f"ignored_emails[{index}]",
            )
        if email_key(email) not in {email_key(e) for e in result}:
            result.append(email)
    if len(result) > MAX_IGNORED:
        raise _unprocessable(f"at most {MAX_IGNORED} ignored emails", "ignored_emails")
    return result


def default_ignored_emails(account: Account, domains: list[str]) -> list[str]:
    """Seed 001: a new provider ignores the account administrators of its domains, so they keep password login."""
    admins = []
    for user in User.objects.filter(memberships__account=account).order_by("email_key"):
        if email_domain(user.email) in domains and {"administrator", "sso-admin"} & effective_account_roles(
            user, account
        ):
            admins.append(user.email)
    return admins


def resolve_projects(account: Account, slugs: Iterable[str], field: str = "linked_projects") -> list[Project]:
    projects = []
    for index, slug in enumerate(slugs):
        project = Project.objects.filter(account=account, slug=slug).first()
        if project is None:
            raise _unprocessable(f"account '{account.slug}' has no project '{slug}'", f"{field}[{index}]")
        projects.append(project)
    return projects


# Create / change -----------------------------------------------------------

ALLOW_LOGIN_NEEDS_AUTO_PROVISION = (
    'provisioned_users_can_login ("Allow Login") applies to users created by auto-provisioning, which is off '
    "on this connection: turn auto_provision on in the same request, or leave Allow Login off"
)


def _require_auto_provision_for_allow_login(auto_provision: bool, can_login: bool) -> None:
    """Seed 001: "Allow Login" is a setting of auto-provisioning, offered only while it is on."""
    if can_login and not auto_provision:
        raise ConnectionRuleError(409, ALLOW_LOGIN_NEEDS_AUTO_PROVISION, "provisioned_users_can_login")


@transaction.atomic
def create_connection(
    account: Account, data: dict[str, Any], *, may_claim: bool, warnings: list[str] | None = None
) -> Connection:
    """Create a disabled connection; notes for the administrator (e.g. of a node-saml import) go to ``warnings``."""
    protocol = data["protocol"]
    _require_auto_provision_for_allow_login(
        data.get("auto_provision", False), data.get("provisioned_users_can_login", False)
    )
    domains = normalize_domains(data["domains"])
    claims = [usable_claim(account, d, may_claim=may_claim) for d in domains]
    connection = Connection(
        account=account,
        protocol=protocol,
        name=data["name"],
        auto_provision=data.get("auto_provision", False),
        provisioned_users_can_login=data.get("provisioned_users_can_login", False),
        sso_authorization=data.get("sso_authorization", False),
        claims=validate_claims(data.get("claims")),
    )
    ignored = data.get("ignored_emails")
    connection.ignored_emails = (
        validate_ignored_emails(ignored, domains) if ignored is not None else default_ignored_emails(account, domains)
    )
    if protocol == Connection.Protocol.SAML:
        if data.get("oidc") is not None:
            raise _unprocessable("a SAML connection takes 'saml' settings, not 'oidc'", "oidc")
        if data.get("saml"):
            connection.saml_settings, notes = merge_saml_settings(default_settings(), data["saml"])
            if warnings is not None:
                warnings.extend(notes)
        else:
            connection.saml_settings = default_settings()
        ensure_sp_keys(connection)
    else:
        if data.get("saml") is not None:
            raise _unprocessable("an OIDC connection takes 'oidc' settings, not 'saml'", "saml")
        if not data.get("oidc"):
            raise _unprocessable("an OIDC connection needs 'oidc' settings with issuer and client_id", "oidc")
        public, secrets = split_oidc(data["oidc"], {})
        connection.oidc_settings = public
        write_secrets(connection, secrets)
    connection.save()
    ConnectionDomain.objects.bulk_create(
        ConnectionDomain(connection=connection, domain=c.domain, claim=c) for c in claims
    )
    connection.linked_projects.set(resolve_projects(account, data.get("linked_projects") or []))
    configure_metadata_source(
        connection,
        {k: data[k] for k in ("idp_metadata_url", "idp_metadata_refresh_interval") if data.get(k) is not None},
    )
    return connection


def is_complete(connection: Connection) -> str | None:
    """None when the connection can be enabled, else what is missing."""
    if connection.protocol == Connection.Protocol.SAML:
        try:
            SamlSettings.from_dict(connection.saml_settings)
        except SamlError as exc:
            return f"the SAML settings are incomplete ({exc}); set them or PUT the IdP metadata first"
        return None
    return None


@transaction.atomic
def update_connection(connection: Connection, changes: dict[str, Any]) -> list[str]:
    """Apply a PATCH; returns warnings for the admin (never silently ignored)."""
    warnings: list[str] = []
    domains = connection.domain_list
    auto_provision = changes.get("auto_provision", connection.auto_provision)
    if "provisioned_users_can_login" in changes:
        _require_auto_provision_for_allow_login(auto_provision, changes["provisioned_users_can_login"])
    elif not auto_provision and connection.provisioned_users_can_login:
        # Allow Login belongs to auto-provisioning: it goes off with it, so turning
        # auto-provisioning on again later never lets new people in unapproved.
        changes = {**changes, "provisioned_users_can_login": False}
        warnings.append('auto-provisioning is off, so provisioned_users_can_login ("Allow Login") was turned off too')
    for field in ("name", "auto_provision", "provisioned_users_can_login"):
        if field in changes:
            setattr(connection, field, changes[field])
    if "ignored_emails" in changes:
        connection.ignored_emails = validate_ignored_emails(changes["ignored_emails"] or [], domains)
    if "claims" in changes:
        connection.claims = validate_claims(changes["claims"])
    if "saml" in changes:
        if connection.protocol != Connection.Protocol.SAML:
            raise _unprocessable("this is an OIDC connection; send 'oidc' settings", "saml")
        if changes["saml"] is None:
            # null starts over from the default template (refused while the connection is enabled).
            connection.saml_settings = validate_saml_settings(None, require_complete=connection.enabled)
        else:
            connection.saml_settings, notes = merge_saml_settings(
                connection.saml_settings, changes["saml"], require_complete=connection.enabled
            )
            warnings.extend(notes)
    if "oidc" in changes:
        if connection.protocol != Connection.Protocol.OIDC:
            raise _unprocessable("this is a SAML connection; send 'saml' settings", "oidc")
        secrets = read_secrets(connection)
        merged = {**connection.oidc_settings, **(changes["oidc"] or {})}
        public, oidc_secrets = split_oidc(merged, secrets)
        connection.oidc_settings = public
        write_secrets(connection, {**{k: v for k, v in secrets.items() if k not in OIDC_SECRET_FIELDS}, **oidc_secrets})
    if "sso_authorization" in changes and changes["sso_authorization"] != connection.sso_authorization:
        connection.sso_authorization = changes["sso_authorization"]
        if connection.sso_authorization:
            warnings.extend(lockout_warnings(connection))
        else:
            release_managed_roles(connection)
    if "linked_projects" in changes:
        projects = resolve_projects(connection.account, changes["linked_projects"] or [])
        removed = set(connection.linked_projects.values_list("pk", flat=True)) - {p.pk for p in projects}
        connection.linked_projects.set(projects)
        # Access granted through a removed link goes now, not at the next login.
        ProjectAccess.objects.filter(connection=connection, source=Source.SSO, project_id__in=removed).delete()
    if "external_tenant_id" in changes:
        if connection.protocol != Connection.Protocol.OIDC:
            raise _unprocessable("only OIDC connections are bound to an external organization", "external_tenant_id")
        # Unbinding only: a tenant is set by "connect organization", which verifies it by a real login.
        connection.external_tenant_id = ""
        connection.tenant_verified_at = None
    configure_metadata_source(connection, changes)
    if changes.get("enabled") and not connection.enabled:
        missing = is_complete(connection)
        if missing:
            raise ConnectionRuleError(409, missing, "enabled")
    if "enabled" in changes:
        connection.enabled = changes["enabled"]
    connection.save()
    return warnings


# External user IDs -----------------------------------------------------------

MAX_EXTERNAL_ID = 512


def account_connection(account: Account, connection_id: str, field: str) -> Connection:
    """A connection of ``account`` named by an ID from a request body, else a 404.

    IDOR check: another account's connection is "not found" here, exactly like
    one that does not exist, so IDs of other tenants cannot be probed.
    """
    connection = Connection.objects.for_account(account).by_id(connection_id)
    if connection is None:
        raise ConnectionRuleError(404, f"account '{account.slug}' has no connection {connection_id}", field)
    return connection


def set_external_id(connection: Connection, user: User, external_id: str | None, field: str) -> str | None:
    """Link ``user`` to ``external_id`` at ``connection`` (seed 000 "External user ID"), or unlink with None.

    The caller has checked that its account manages the person's identity.
    The connection must serve the person's email domain (its logins could
    never sign anyone else in, see ``pipeline._require_linked_user_served``),
    and a value already linked to another person at the connection is a 409
    naming it: taking it over would hand that person's sign-in to this one.
    Returns the previous value.
    """
    if external_id is not None:
        if not external_id or external_id != external_id.strip():
            raise _unprocessable(
                "an external user ID is the exact SAML NameID or OIDC sub the provider sends: not empty, "
                "no surrounding whitespace (send null to remove the link)",
                field,
            )
        if len(external_id) > MAX_EXTERNAL_ID:
            raise _unprocessable(f"an external user ID has at most {MAX_EXTERNAL_ID} characters", field)
    domain = email_domain(user.email)
    if domain not in connection.domain_list:
        raise _unprocessable(
            f"connection '{connection.name}' serves {', '.join(connection.domain_list)}, not {domain}: "
            f"it could never sign in {user.email}",
            field,
        )
    current = ExternalIdentity.objects.select_for_update().filter(connection=connection, user=user).first()
    previous = current.external_id if current is not None else None
    if external_id == previous:
        return previous
    if external_id is None:
        assert current is not None
        current.delete()
        return previous
    holder = (
        ExternalIdentity.objects.filter(connection=connection, external_id=external_id).select_related("user").first()
    )
    if holder is not None:
        raise _external_id_taken(connection, external_id, holder.user, field)
    try:
        with transaction.atomic():
            if current is None:
                ExternalIdentity.objects.create(connection=connection, user=user, external_id=external_id)
            else:
                # A new subject: the claims of the old one's last login are not this one's.
                current.external_id, current.last_claims, current.last_login_at = external_id, {}, None
                current.save(update_fields=["external_id", "last_claims", "last_login_at"])
    except IntegrityError:
        # Linked a moment ago by a concurrent request or a first login.
        holder = (
            ExternalIdentity.objects.filter(connection=connection, external_id=external_id)
            .select_related("user")
            .first()
        )
        raise _external_id_taken(connection, external_id, holder.user if holder else None, field) from None
    return previous


def _external_id_taken(connection: Connection, external_id: str, other: User | None, field: str) -> ConnectionRuleError:
    # Name the other person only to an account they are a member of; elsewhere the value alone.
    visible = other is not None and other.memberships.filter(account_id=connection.account_id).exists()
    whom = other.email if visible and other is not None else "another person"
    return ConnectionRuleError(
        409,
        f"external user ID '{external_id}' is already linked to {whom} at connection '{connection.name}'; "
        "remove it there first (one subject signs in one person)",
        field,
    )


# Domain shares ---------------------------------------------------------------


def owned_claim(account: Account, domain: str) -> DomainClaim | None:
    """The account's claim of ``domain`` (normalized); None for another account's, a free one, or no domain at all."""
    try:
        normalized = normalize_domain(domain[:253])
    except InvalidEmail:
        return None
    return DomainClaim.objects.filter(domain=normalized, account=account).select_related("account").first()


def check_offer(claim: DomainClaim, target_slug: str) -> None:
    """Whether ``claim`` may be offered to ``target_slug``: not to its owner, not twice."""
    if target_slug == claim.account.slug:
        raise ConnectionRuleError(422, "an account cannot share a domain with itself", "account")
    if DomainShare.objects.filter(claim=claim, target_slug=target_slug).exists():
        raise ConnectionRuleError(
            409, f"{claim.domain} is already offered to or shared with '{target_slug}'", "account"
        )


def offer_domain(claim: DomainClaim, target_slug: str, *, grant_to: Account | None = None) -> DomainShare:
    """Offer ``claim`` to the account named ``target_slug``, or share it at once with ``grant_to`` (the operator's).

    An offer is stored whether or not an account has that slug, so offering
    reveals nothing about which accounts exist.
    """
    if target_slug == claim.account.slug:
        raise ConnectionRuleError(422, "an account cannot share a domain with itself", "account")
    if DomainShare.objects.filter(claim=claim, target_slug=target_slug).exists():
        raise ConnectionRuleError(
            409, f"{claim.domain} is already offered to or shared with '{target_slug}'", "account"
        )
    with transaction.atomic():
        if grant_to is None:
            return DomainShare.objects.create(claim=claim, target_slug=target_slug)
        return DomainShare.objects.create(
            claim=claim,
            target_slug=grant_to.slug,
            account=grant_to,
            status=DomainShare.Status.ACTIVE,
            accepted_at=timezone.now(),
        )


def pending_offer(account: Account, domain: str) -> DomainShare | None:
    """An offer of ``domain`` to ``account`` still waiting for its answer."""
    try:
        normalized = normalize_domain(domain[:253])
    except InvalidEmail:
        return None
    return (
        DomainShare.objects.filter(
            claim__domain=normalized, target_slug=account.slug, status=DomainShare.Status.OFFERED
        )
        .select_related("claim__account")
        .first()
    )


def accept_offer(account: Account, share: DomainShare) -> None:
    """Accept an offer: the account's connections may serve the domain. 409 when it changed meanwhile."""
    updated = DomainShare.objects.filter(pk=share.pk, status=DomainShare.Status.OFFERED).update(
        account=account, status=DomainShare.Status.ACTIVE, accepted_at=timezone.now()
    )
    if updated != 1:
        raise ConnectionRuleError(409, "the offer changed meanwhile; list the offers again", "domain")
