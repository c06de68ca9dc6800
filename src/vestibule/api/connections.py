"""REST endpoints: connections, SAML metadata import and refresh, IdP certificates, SP keys, mapping roles."""

from __future__ import annotations

import json
from typing import Any, Literal

from django.db import models
from django.db.models.signals import pre_delete
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone
from ninja import Router, Status
from pydantic import Field

from vestibule.accounts.models import Account, Project
from vestibule.api.errors import ApiError, Conflict, NotFound, Unprocessable, applying_rules
from vestibule.api.schemas import StrictSchema, changes_without_nulls
from vestibule.api.security import account_for, connection_for, principal, who
from vestibule.audit.events import record
from vestibule.authority.principal import SSO_ADMIN
from vestibule.connections import metadata_refresh, rules
from vestibule.connections.authorization import MappingRoleError, save_mapping_role
from vestibule.connections.certificates import connection_certificates
from vestibule.connections.keys import SpKeyError, read_secrets, rotate_sp_keys, sp_key_status
from vestibule.connections.metadata_refresh import MetadataFetchError
from vestibule.connections.models import Connection, MappingRole, MetadataChange, mapping_roles_losing
from vestibule.connections.rules import ConnectionRuleError
from vestibule.domain.claims import ClaimMapping
from vestibule.oidc import OidcError
from vestibule.outbound import NETWORK_REASONS
from vestibule.signin import adapters, idp_lifecycle

router = Router(tags=["connections"])

MAX_METADATA_BYTES = 512 * 1024


_IDP_METADATA_URL = (
    "SAML only: the IdP's metadata URL (https; plain http only to a host in VESTIBULE_OUTBOUND_ALLOW), re-read "
    "periodically through the guarded outbound client. null removes it"
)
_REFRESH_INTERVAL = "Seconds between two reads of idp_metadata_url (900 to 604800; null: 43200, 12 hours)"


class ConnectionIn(StrictSchema):
    protocol: Literal["saml", "oidc"]
    name: str = Field(min_length=1, max_length=200)
    domains: list[str] = Field(min_length=1, max_length=50)
    saml: dict[str, Any] | None = None
    oidc: dict[str, Any] | None = None
    claims: dict[str, Any] | None = None
    auto_provision: bool = False
    provisioned_users_can_login: bool = False
    ignored_emails: list[str] | None = Field(default=None, max_length=1000)
    sso_authorization: bool = False
    linked_projects: list[str] = Field(default_factory=list, max_length=200)
    idp_metadata_url: str | None = Field(default=None, max_length=2000, description=_IDP_METADATA_URL)
    idp_metadata_refresh_interval: int | None = Field(default=None, description=_REFRESH_INTERVAL)


class ConnectionPatch(StrictSchema):
    # Read-only, listed so that a PATCH of them is told why and what to do instead (seed 001).
    domains: Any = Field(
        default=None, description="Read-only: fixed at creation; create a new connection to serve other domains"
    )
    protocol: Any = Field(default=None, description="Read-only: fixed at creation")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    enabled: bool | None = None
    auto_provision: bool | None = None
    provisioned_users_can_login: bool | None = None
    ignored_emails: list[str] | None = Field(default=None, max_length=1000)
    claims: dict[str, Any] | None = None
    sso_authorization: bool | None = None
    linked_projects: list[str] | None = Field(default=None, max_length=200)
    saml: dict[str, Any] | None = None
    oidc: dict[str, Any] | None = None
    idp_metadata_url: str | None = Field(default=None, max_length=2000, description=_IDP_METADATA_URL)
    idp_metadata_refresh_interval: int | None = Field(default=None, description=_REFRESH_INTERVAL)
    external_tenant_id: None = Field(
        default=None,
        description="Only null: unbinds the external organization. 'Connect organization' binds it again (and replaces a binding only when the sso-admin confirms)",
    )


class SpKeyRotationIn(StrictSchema):
    action: Literal["stage", "promote", "retire", "discard"] = Field(
        description=(
            "stage: generate a next signing and encryption key pair, published in the SP metadata and already "
            "accepted for decryption; promote: the next pair becomes current (AuthnRequests are signed with it) and "
            "the replaced encryption key stays accepted as 'previous'; retire: destroy the previous key (end of the "
            "grace period); discard: drop a staged pair unused"
        )
    )


class GrantIn(StrictSchema):
    scope: str = Field(max_length=60, description="'account' or 'project:<slug>'")
    roles: list[str] = Field(max_length=50)


class MappingRoleIn(StrictSchema):
    name: str = Field(min_length=1, max_length=200)
    grants: list[GrantIn] = Field(min_length=1, max_length=201)


class MappingRolePatch(StrictSchema):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    grants: list[GrantIn] | None = Field(default=None, min_length=1, max_length=201)


def connection_out(connection: Connection) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(connection.pk),
        "account": connection.account.slug,
        "protocol": connection.protocol,
        "name": connection.name,
        "enabled": connection.enabled,
        "domains": connection.domain_list,
        "auto_provision": connection.auto_provision,
        "provisioned_users_can_login": connection.provisioned_users_can_login,
        "ignored_emails": connection.ignored_emails,
        "claims": ClaimMapping.from_dict(connection.claims).to_dict(),
        "sso_authorization": connection.sso_authorization,
        "linked_projects": sorted(connection.linked_projects.values_list("slug", flat=True)),
        "created_at": connection.created_at.isoformat(),
    }
    if connection.protocol == Connection.Protocol.SAML:
        out.update(adapters.sp_urls(connection))
        out["saml"] = connection.saml_settings
        # The pinned IdP signing certificates as the console shows them (the PEMs are in saml.certificates).
        out["idp_certificates"] = [c.to_dict() for c in connection_certificates(connection, timezone.now())]
        source = rules.metadata_source_out(connection)
        if source is not None:
            pending = connection.metadata_changes.filter(status=MetadataChange.Status.PENDING).order_by("-pk").first()
            source["pending_change"] = pending.pk if pending else None
        out["idp_metadata"] = source
    else:
        secrets = read_secrets(connection)
        out["oidc"] = {
            **connection.oidc_settings,
            "client_secret_set": bool(secrets.get("client_secret")),
            "private_key_set": bool(secrets.get("private_key")),
        }
        out["redirect_uri"] = adapters.redirect_uri(connection)
        out["sign_in_url"] = adapters.sp_urls(connection)["sign_in_url"]
        out["connect_url"] = out["sign_in_url"].replace("/sso/start/", "/sso/oidc/").rstrip("/") + "/connect"
        out["external_tenant_id"] = connection.external_tenant_id or None
        out["tenant_verified_at"] = connection.tenant_verified_at.isoformat() if connection.tenant_verified_at else None
    return out


def connection_or_404(request: HttpRequest, connection_id: str) -> Connection:
    # IDOR check: only principals with standing in the connection's account see it; changing it takes sso-admin.
    return connection_for(request, connection_id, SSO_ADMIN)  # type: ignore[no-any-return]


# Connections ---------------------------------------------------------------


@router.get("/accounts/{slug}/connections")
def list_connections(request: HttpRequest, slug: str) -> list[dict[str, Any]]:
    account = account_for(request, slug, SSO_ADMIN)
    return [connection_out(c) for c in Connection.objects.for_account(account).order_by("created_at")]


@router.post("/accounts/{slug}/connections", response={201: dict})
def create_connection(request: HttpRequest, slug: str, payload: ConnectionIn) -> Status[Any]:
    account = account_for(request, slug, SSO_ADMIN)
    may_claim = principal(request).is_operator
    warnings: list[str] = []
    connection = applying_rules(
        lambda: rules.create_connection(account, payload.model_dump(), may_claim=may_claim, warnings=warnings)
    )
    record(
        "connection.created",
        account=account,
        connection=connection,
        **who(request),
        protocol=connection.protocol,
        domains=connection.domain_list,
        warnings=warnings,
    )
    out = connection_out(connection)
    out["warnings"] = warnings
    return Status(201, out)


@router.get("/connections/{connection_id}")
def get_connection(request: HttpRequest, connection_id: str) -> dict[str, Any]:
    return connection_out(connection_or_404(request, connection_id))


@router.patch("/connections/{connection_id}")
def patch_connection(request: HttpRequest, connection_id: str, payload: ConnectionPatch) -> dict[str, Any]:
    connection = connection_or_404(request, connection_id)
    changes = changes_without_nulls(
        payload, "name", "enabled", "auto_provision", "provisioned_users_can_login", "sso_authorization"
    )
    _refuse_fixed_fields(connection, changes)
    warnings = applying_rules(lambda: rules.update_connection(connection, changes))
    record(
        "connection.updated",
        account=connection.account,
        connection=connection,
        **who(request),
        fields=sorted(changes),
        warnings=warnings,
    )
    out = connection_out(connection)
    out["warnings"] = warnings
    return out


def _refuse_fixed_fields(connection: Connection, changes: dict[str, Any]) -> None:
    """Seed 001: a provider's domain is read-only; to change it, remove the provider and create another.

    Sending the values the connection already has is accepted (nothing
    changes), so a client may send back what it read.
    """
    if "domains" in changes:
        sent = changes.pop("domains")
        try:
            same = sorted(rules.normalize_domains(sent)) == connection.domain_list
        except (ConnectionRuleError, TypeError, AttributeError):
            same = False
        if not same:
            raise Unprocessable(
                f"domains are fixed when a connection is created (this one serves {', '.join(connection.domain_list)}): "
                "to serve other domains, create a new connection with them (POST /accounts/<slug>/connections), "
                "then disable or delete this one",
                field="domains",
            )
    if "protocol" in changes and changes.pop("protocol") != connection.protocol:
        raise Unprocessable(
            f"the protocol is fixed when a connection is created (this one is {connection.protocol}): "
            "create a new connection for the other protocol",
            field="protocol",
        )


@router.delete("/connections/{connection_id}", response={204: None})
def delete_connection(request: HttpRequest, connection_id: str) -> Status[None]:
    connection = connection_or_404(request, connection_id)
    record(
        "connection.deleted", account=connection.account, connection=connection, **who(request), name=connection.name
    )
    connection.delete()
    return Status(204, None)


@router.put("/connections/{connection_id}/saml/idp-metadata")
def put_idp_metadata(request: HttpRequest, connection_id: str) -> dict[str, Any]:
    """Generate the SAML settings from the IdP's metadata XML (raw body, or JSON {"metadata", "entity_id"}).

    ``?dry_run=true`` (or ``"dry_run": true`` in the JSON body) generates them
    for review without saving (seed 001: the generated settings replace the
    text area, and the administrator saves them with a PATCH).
    """
    connection = connection_or_404(request, connection_id)
    if connection.protocol != Connection.Protocol.SAML:
        raise Unprocessable("this is an OIDC connection; IdP metadata applies to SAML connections", field="id")
    body = request.body
    if len(body) > MAX_METADATA_BYTES:
        raise ApiError("metadata is larger than 512 KiB", field="body", status=413)
    entity_id = request.GET.get("entity_id") or None
    dry_run = _flag(request.GET.get("dry_run"), "dry_run")
    if request.content_type == "application/json":
        try:
            data = json.loads(body)
            xml = data["metadata"].encode()
            entity_id = data.get("entity_id") or entity_id
        except (ValueError, KeyError, TypeError, AttributeError):
            raise Unprocessable(
                'send the metadata XML as the body, or JSON {"metadata": "<xml>"}', field="metadata"
            ) from None
        if "dry_run" in data:
            if not isinstance(data["dry_run"], bool):
                raise Unprocessable("dry_run must be true or false", field="dry_run")
            dry_run = data["dry_run"]
    else:
        xml = body
    if not xml.strip():
        raise Unprocessable("the body is empty; send the IdP metadata XML", field="metadata")
    settings: dict[str, Any] = applying_rules(
        lambda: rules.import_idp_metadata(connection, xml, entity_id=entity_id, save=not dry_run)
    )
    if not dry_run:
        record(
            "connection.idp_metadata_imported",
            account=connection.account,
            connection=connection,
            **who(request),
            idp_entity_id=settings["idp_entity_id"],
        )
    return settings


# IdP metadata URL: refresh, change log, confirmation ----------------------------


class MetadataDecisionIn(StrictSchema):
    change_id: int = Field(description="The pending change's id (GET .../saml/metadata-changes)")


def _saml_only(request: HttpRequest, connection_id: str) -> Connection:
    connection = connection_or_404(request, connection_id)
    if connection.protocol != Connection.Protocol.SAML:
        raise Unprocessable("IdP metadata applies to SAML connections; this is an OIDC connection", field="id")
    return connection


@router.post("/connections/{connection_id}/saml/idp-metadata/refresh")
def refresh_idp_metadata(request: HttpRequest, connection_id: str) -> dict[str, Any]:
    """Read the connection's IdP metadata URL now (through the guarded outbound client) and apply it.

    ``outcome``: ``unchanged``; ``adopted`` (the change keeps at least one
    trusted signing certificate, e.g. a rollover adding the next one); or
    ``pending`` (it would drop every trusted certificate: held until an
    sso-admin confirms it). A URL that gives no usable metadata is a 502
    (the server failed) or 422 (refused by the outbound guard, or not SAML
    metadata) naming the reason; the connection keeps its settings.
    """
    connection = _saml_only(request, connection_id)
    try:
        result = applying_rules(
            lambda: idp_lifecycle.refresh(connection, trigger="api", actor=who(request), request=request)
        )
    except MetadataFetchError as exc:
        raise ApiError(
            f"the IdP metadata URL gave no usable metadata: {exc.summary}",
            field="idp_metadata_url",
            status=502 if exc.upstream else 422,
        ) from None
    return {
        "outcome": result.outcome,
        "change": metadata_refresh.change_out(result.change) if result.change is not None else None,
        "idp_metadata": rules.metadata_source_out(connection),
    }


@router.get("/connections/{connection_id}/saml/metadata-changes")
def list_metadata_changes(request: HttpRequest, connection_id: str, status: str | None = None) -> list[dict[str, Any]]:
    """The change log of the connection's IdP metadata URL, newest first (at most 200)."""
    connection = _saml_only(request, connection_id)
    changes = connection.metadata_changes.order_by("-pk")
    if status is not None:
        if status not in MetadataChange.Status.values:
            raise Unprocessable(f"status is one of {', '.join(MetadataChange.Status.values)}", field="status")
        changes = changes.filter(status=status)
    return [metadata_refresh.change_out(change) for change in changes[:200]]


@router.post("/connections/{connection_id}/saml/idp-metadata/confirm")
def confirm_idp_metadata(request: HttpRequest, connection_id: str, payload: MetadataDecisionIn) -> dict[str, Any]:
    """Adopt a held change: the connection then trusts exactly the certificates that metadata lists. Audited."""
    connection = _saml_only(request, connection_id)
    change = applying_rules(
        lambda: metadata_refresh.confirm(
            connection, payload.change_id, decided_by=idp_lifecycle.actor_label(who(request)), now=timezone.now()
        )
    )
    record(
        "connection.idp_metadata_confirmed", account=connection.account, connection=connection, **who(request),
        change_id=change.pk, added_certificates=change.added_certificates,
        removed_certificates=change.removed_certificates,
    )  # fmt: skip
    return {"change": metadata_refresh.change_out(change), "saml": connection.saml_settings}


@router.post("/connections/{connection_id}/saml/idp-metadata/discard")
def discard_idp_metadata(request: HttpRequest, connection_id: str, payload: MetadataDecisionIn) -> dict[str, Any]:
    """Refuse a held change; the connection keeps its certificates. Audited."""
    connection = _saml_only(request, connection_id)
    change = applying_rules(
        lambda: metadata_refresh.discard(
            connection, payload.change_id, decided_by=idp_lifecycle.actor_label(who(request)), now=timezone.now()
        )
    )
    record(
        "connection.idp_metadata_discarded", account=connection.account, connection=connection, **who(request),
        change_id=change.pk,
    )  # fmt: skip
    return {"change": metadata_refresh.change_out(change)}


def _flag(value: str | None, field: str) -> bool:
    if value is None or value.lower() in ("", "0", "false", "no"):
        return False
    if value.lower() in ("1", "true", "yes"):
        return True
    raise Unprocessable(f"{field} must be true or false", field=field)


# SP keys (SAML) ------------------------------------------------------------

_SP_KEY_EVENTS = {
    "stage": "connection.sp_keys_staged",
    "promote": "connection.sp_keys_promoted",
    "retire": "connection.sp_keys_retired",
    "discard": "connection.sp_keys_discarded",
}


def _saml_connection(request: HttpRequest, connection_id: str) -> Connection:
    connection = connection_or_404(request, connection_id)
    if connection.protocol != Connection.Protocol.SAML:
        raise Unprocessable("SP keys belong to SAML connections; this is an OIDC connection", field="id")
    return connection


def _fingerprints(status: dict[str, Any]) -> dict[str, Any]:
    """Which certificates are where, by fingerprint, for the audit log (public values only)."""
    out: dict[str, Any] = {}
    for stage in ("current", "next", "previous"):
        for use in ("signing", "encryption"):
            info = (status.get(stage) or {}).get(use)
            if info:
                out[f"{stage}_{use}"] = info["sha256_fingerprint"]
    return out


@router.get("/connections/{connection_id}/sp-keys")
def get_sp_keys(request: HttpRequest, connection_id: str) -> dict[str, Any]:
    """The SP's certificates: current, staged next, and the previous encryption key in its grace period.

    Fingerprints (SHA-256), subjects and not-after dates; private keys never leave Vestibule.
    """
    connection = _saml_connection(request, connection_id)
    return {**sp_key_status(read_secrets(connection)), "metadata_url": adapters.sp_urls(connection)["metadata_url"]}


@router.post("/connections/{connection_id}/sp-keys/rotate")
def rotate_sp_keys_endpoint(request: HttpRequest, connection_id: str, payload: SpKeyRotationIn) -> dict[str, Any]:
    """One step of an SP key rotation: stage, promote, retire (or discard a staged pair). Audited.

    A step that does not apply now (promote with nothing staged, stage while
    the previous key is still in its grace period, ...) is a 409 that says
    what to do first.
    """
    connection = _saml_connection(request, connection_id)
    try:
        status = rotate_sp_keys(connection, payload.action)
    except SpKeyError as exc:
        raise ApiError(exc.detail, field=exc.field, status=exc.status) from None
    record(
        _SP_KEY_EVENTS[payload.action],
        account=connection.account,
        connection=connection,
        **who(request),
        **_fingerprints(status),
    )
    return {**status, "metadata_url": adapters.sp_urls(connection)["metadata_url"]}


@router.get("/connections/{connection_id}/oidc/setup-url")
def oidc_setup_url(request: HttpRequest, connection_id: str) -> dict[str, Any]:
    """The URL for the external organization's administrator (admin consent where the provider has it)."""
    connection = connection_or_404(request, connection_id)
    if connection.protocol != Connection.Protocol.OIDC:
        raise Unprocessable("setup URLs apply to OIDC connections", field="id")
    try:
        url = adapters.relying_party(connection).setup_url(adapters.redirect_uri(connection))
    except OidcError as exc:
        # A destination the outbound guard refuses is this connection's own setting (4xx);
        # a provider that is down or answers nonsense is upstream's (502). Only our reason text.
        refused = exc.outbound_reason is not None and exc.outbound_reason not in NETWORK_REASONS
        detail = f"the provider could not be used: {exc.code}" + (f" ({exc.received})" if exc.received else "")
        raise ApiError(detail, field="oidc", status=422 if refused else 502) from None
    return {"setup_url": url, "connect_url": connection_out(connection)["connect_url"]}


# Mapping roles -------------------------------------------------------------


def mapping_role_out(mapping_role: MappingRole) -> dict[str, Any]:
    return {
        "id": mapping_role.pk,
        "name": mapping_role.name,
        "grants": mapping_role.grants,
        "updated_at": mapping_role.updated_at.isoformat(),
    }


def _save_mapping_role(account: Account, mapping_role: MappingRole | None, **changes: Any) -> MappingRole:
    try:
        return save_mapping_role(account, mapping_role, **changes)
    except MappingRoleError as exc:
        raise (Conflict if exc.conflict else Unprocessable)(exc.detail, field=exc.field) from None


def _mapping_role(account: Account, mapping_role_id: int) -> MappingRole:
    found = (
        MappingRole.objects.filter(account=account, pk=mapping_role_id).prefetch_related("role_grants__project").first()
    )
    if found is None:
        raise NotFound(f"mapping role {mapping_role_id} not found", field="id")
    return found


@router.get("/accounts/{slug}/mapping-roles")
def list_mapping_roles(request: HttpRequest, slug: str) -> list[dict[str, Any]]:
    account = account_for(request, slug, SSO_ADMIN)
    mapping_roles = (
        MappingRole.objects.filter(account=account).prefetch_related("role_grants__project").order_by("name")
    )
    return [mapping_role_out(m) for m in mapping_roles]


@router.post("/accounts/{slug}/mapping-roles", response={201: dict})
def create_mapping_role(request: HttpRequest, slug: str, payload: MappingRoleIn) -> Status[Any]:
    account = account_for(request, slug, SSO_ADMIN)
    grants = [g.model_dump() for g in payload.grants]
    mapping_role = _save_mapping_role(account, None, name=payload.name, grants=grants)
    record("mapping_role.created", account=account, **who(request), name=payload.name)
    return Status(201, mapping_role_out(mapping_role))


@router.get("/accounts/{slug}/mapping-roles/{mapping_role_id}")
def get_mapping_role(request: HttpRequest, slug: str, mapping_role_id: int) -> dict[str, Any]:
    return mapping_role_out(_mapping_role(account_for(request, slug, SSO_ADMIN), mapping_role_id))


@router.patch("/accounts/{slug}/mapping-roles/{mapping_role_id}")
def patch_mapping_role(
    request: HttpRequest, slug: str, mapping_role_id: int, payload: MappingRolePatch
) -> dict[str, Any]:
    """Changes reach every user under the mapping role at their next login (seed 002)."""
    account = account_for(request, slug, SSO_ADMIN)
    mapping_role = _mapping_role(account, mapping_role_id)
    grants = [g.model_dump() for g in payload.grants] if payload.grants is not None else None
    _save_mapping_role(account, mapping_role, name=payload.name, grants=grants)
    record("mapping_role.updated", account=account, **who(request), name=mapping_role.name)
    return mapping_role_out(mapping_role)


@router.delete("/accounts/{slug}/mapping-roles/{mapping_role_id}", response={204: None})
def delete_mapping_role(request: HttpRequest, slug: str, mapping_role_id: int) -> Status[None]:
    account = account_for(request, slug, SSO_ADMIN)
    mapping_role = _mapping_role(account, mapping_role_id)
    mapping_role.delete()
    record("mapping_role.deleted", account=account, **who(request), name=mapping_role.name)
    return Status(204, None)


@receiver(pre_delete, sender=Project, dispatch_uid="api.connections.mapping_role_grants_of_deleted_project")
def _project_deleted(sender: Any, instance: Project, origin: Any = None, **kwargs: Any) -> None:
    """A project is going (``DELETE /accounts/<slug>/projects/<project>``): its mapping-role grants go with it.

    Decision: CASCADE, not PROTECT. The mapping roles keep their other
    scopes; this records ``mapping_role.project_grants_removed`` naming the
    mapping roles that lost grants (and those left granting nothing), next to
    the ``project.deleted`` event that names who deleted it. Runs before the
    cascade, while the grants still exist. Deleting the whole account takes
    its mapping roles too, with nothing left to tell.
    """
    if isinstance(origin, Account) or (isinstance(origin, models.QuerySet) and origin.model is Account):
        return
    affected, emptied = mapping_roles_losing(instance)
    if affected:
        record(
            "mapping_role.project_grants_removed",
            account=instance.account,
            project=instance.slug,
            mapping_roles=affected,
            left_without_grants=emptied,
        )


__all__ = ["router"]
