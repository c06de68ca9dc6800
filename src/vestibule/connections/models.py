"""Connections to identity providers and everything that hangs off them.

Domains: a :class:`DomainClaim` gives one email domain to exactly one account
in the whole deployment (the unique constraint is what settles a race between
two accounts). The owner may :class:`DomainShare` it with other accounts, whose
connections may then serve it too. :class:`ConnectionDomain` lists which
claimed or shared domains a connection serves.

IdP certificate lifecycle: an :class:`IdpMetadataSource` is the URL a SAML
connection re-reads its identity provider's metadata from; every fetch that
would change the IdP fields leaves a :class:`MetadataChange` (adopted, or held
for an sso-admin when it would drop every trusted signing key). A
:class:`CertificateNotice` records that an expiry threshold of one pinned
certificate was announced, so several processes announce it once.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import models
from django.utils import timezone

from vestibule.accounts.models import Account, Project, User


class DomainClaim(models.Model):
    domain = models.CharField(max_length=253, unique=True)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="domain_claims")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.domain


class DomainShare(models.Model):
    """The owner's offer of a domain to another account; in force once that account accepts.

    An offer names the target by slug and is stored whether or not such an
    account exists, so offering reveals nothing about which slugs are taken.
    The operator may grant a share directly (``status`` active at once).
    """

    class Status(models.TextChoices):
        OFFERED = "offered"
        ACTIVE = "active"

    claim = models.ForeignKey(DomainClaim, on_delete=models.CASCADE, related_name="shares")
    target_slug = models.CharField(max_length=50)
    # Set when the target accepts (or the operator grants): the account the domain is shared with.
    account = models.ForeignKey(Account, null=True, blank=True, on_delete=models.CASCADE, related_name="shared_domains")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OFFERED)
    created_at = models.DateTimeField(default=timezone.now)
    accepted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["claim", "target_slug"], name="one_share_per_target")]


class ConnectionQuerySet(models.QuerySet["Connection"]):
    def for_account(self, account: Account) -> ConnectionQuerySet:
        # Every lookup of a connection by an ID from a URL goes through here
        # (or compares ``account_id`` explicitly): the IDOR check.
        return self.filter(account=account)

    def by_id(self, value: str) -> Connection | None:
        """The connection an ID from a request names, or None (also for a string that is no UUID)."""
        try:
            pk = uuid.UUID(str(value))
        except ValueError:
            return None
        return self.select_related("account").filter(pk=pk).first()


class Connection(models.Model):
    class Protocol(models.TextChoices):
        SAML = "saml"
        OIDC = "oidc"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="connections")
    protocol = models.CharField(max_length=4, choices=Protocol.choices)
    name = models.CharField(max_length=200)
    enabled = models.BooleanField(default=False)
    auto_provision = models.BooleanField(default=False)
    provisioned_users_can_login = models.BooleanField(default=False)
    ignored_emails = models.JSONField(default=list, blank=True)
    # Which claim carries what (email, name, external_id, roles, role_mapping) and
    # the roles-claim policy; validated by vestibule.domain.claims.ClaimMapping.
    claims = models.JSONField(default=dict, blank=True)
    sso_authorization = models.BooleanField(default=False)
    linked_projects = models.ManyToManyField(Project, blank=True, related_name="linked_connections")
    # Protocol settings documents; secrets are kept apart, encrypted.
    saml_settings = models.JSONField(default=dict, blank=True)
    oidc_settings = models.JSONField(default=dict, blank=True)
    secrets_encrypted = models.TextField(blank=True)
    # OIDC multi-tenant providers: the external organization this connection is bound to.
    external_tenant_id = models.CharField(max_length=200, blank=True)
    tenant_verified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ConnectionQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.account.slug}/{self.name}"

    @property
    def domain_list(self) -> list[str]:
        return sorted(d.domain for d in self.domains.all())


class ConnectionDomain(models.Model):
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="domains")
    # Denormalized from the claim so routing is one indexed query.
    domain = models.CharField(max_length=253, db_index=True)
    claim = models.ForeignKey(DomainClaim, on_delete=models.CASCADE, related_name="connection_domains")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["connection", "domain"], name="domain_once_per_connection")]


class MappingRole(models.Model):
    """A name compared with the provider's ``role_mapping`` claim (seed 002).

    What it grants is one :class:`MappingRoleGrant` row per (scope, role);
    :attr:`grants` reads them back in the API's shape.
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="mapping_roles")
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "name"], name="mapping_role_name_per_account")]

    @property
    def grants(self) -> list[dict[str, Any]]:
        """``[{"scope": "account" | "project:<slug>", "roles": [sorted]}]``: the account scope first, then projects by slug.

        Reads ``role_grants`` through the prefetch cache when the caller
        prefetched ``role_grants__project`` (the list endpoints do).
        """
        scopes: dict[str, list[str]] = {}
        for grant in self.role_grants.all():
            scope = "account" if grant.project is None else f"project:{grant.project.slug}"
            scopes.setdefault(scope, []).append(grant.role)
        order = sorted(scopes, key=lambda s: (s != "account", s))
        return [{"scope": scope, "roles": sorted(scopes[scope])} for scope in order]


class MappingRoleGrant(models.Model):
    """One role a mapping role grants, at account scope (``project`` null) or in one project.

    Deleting a project deletes its grants (CASCADE): the mapping roles keep
    their other scopes, and ``mapping_role.project_grants_removed`` is
    audited naming them (see :func:`mapping_roles_losing`). A scope is the set
    of rows sharing (mapping_role, project), so "each scope once per mapping
    role" (seed 002) holds by construction; the constraints keep each role
    once per scope. NULL never equals NULL in a unique index, hence the
    separate conditional constraint for the account scope (a partial unique
    index on SQLite and PostgreSQL alike).
    """

    mapping_role = models.ForeignKey(MappingRole, on_delete=models.CASCADE, related_name="role_grants")
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="mapping_role_grants"
    )
    role = models.CharField(max_length=64)  # as accounts.RoleGrant.role

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["mapping_role", "project", "role"],
                condition=models.Q(project__isnull=False),
                name="mapping_role_grant_once_per_project",
            ),
            models.UniqueConstraint(
                fields=["mapping_role", "role"],
                condition=models.Q(project__isnull=True),
                name="mapping_role_grant_once_per_account",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.mapping_role_id}:{self.project_id or 'account'}:{self.role}"


def mapping_roles_losing(project: Project) -> tuple[list[str], list[str]]:
    """Names of the mapping roles that grant roles in ``project``, and of those granting nothing else.

    Asked before the project is deleted (its grants go with it, CASCADE), so
    the deletion can be audited naming them: the REST layer's ``pre_delete``
    receiver (``vestibule.api.connections``) records
    ``mapping_role.project_grants_removed``.
    """
    rows = list(
        MappingRoleGrant.objects.filter(mapping_role__role_grants__project=project)
        .values_list("mapping_role__name", "project_id")
        .distinct()
    )
    affected = sorted({name for name, _ in rows})
    emptied = [
        name for name in affected if all(other_project == project.pk for other, other_project in rows if other == name)
    ]
    return affected, emptied


class ExternalIdentity(models.Model):
    """The protocol subject (SAML NameID, OIDC ``sub``) of a user at one connection."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="identities")
    external_id = models.CharField(max_length=512)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="external_identities")
    # The roles-related claims of the last login, so turning on SSO authorization
    # can warn an admin whose own last login lacked a matching role_mapping.
    last_claims = models.JSONField(default=dict, blank=True)
    last_login_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["connection", "external_id"], name="one_user_per_subject"),
            models.UniqueConstraint(fields=["connection", "user"], name="one_subject_per_user"),
        ]


class PendingLogin(models.Model):
    """Server-side state of a login in flight: SAML RelayState / OIDC state.

    The browser carries only ``key``, an opaque random reference. It is
    consumed exactly once (see ``connections.internal.pending.consume``).
    """

    class Purpose(models.TextChoices):
        LOGIN = "login"
        CONNECT_ORGANIZATION = "connect"

    key = models.CharField(max_length=64, unique=True)
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE)
    purpose = models.CharField(max_length=10, choices=Purpose.choices, default=Purpose.LOGIN)
    request_id = models.CharField(max_length=200, blank=True)
    data = models.JSONField(default=dict, blank=True)
    next_url = models.CharField(max_length=2000, blank=True)
    # Hash of the browser's session binding so a stolen state is useless elsewhere.
    browser_binding = models.CharField(max_length=64, blank=True)
    initiated_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.CASCADE)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    consumed_at = models.DateTimeField(null=True, blank=True)


class ReplayEntry(models.Model):
    """A message identifier already accepted (assertion ID, OIDC ``jti``/code).

    The unique key makes "first writer wins" hold across processes sharing
    the database; expired rows are purged lazily.
    """

    key = models.CharField(max_length=600, unique=True)
    expires_at = models.DateTimeField(db_index=True)

    @classmethod
    def unexpired(cls) -> Any:
        return cls.objects.filter(expires_at__gt=timezone.now())


class DomainVerification(models.Model):
    """An account's challenge to prove, by a DNS TXT record, that it controls a domain.

    Only a :class:`DomainClaim` gives the domain to the account; a verification
    that succeeds creates one. The token is random per challenge, so a record
    published for one account (or an earlier challenge) proves nothing for
    another. At most one challenge per account and domain: starting again
    replaces the token.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        VERIFIED = "verified"
        EXPIRED = "expired"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="domain_verifications")
    domain = models.CharField(max_length=253)
    token = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    verified_at = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "domain"], name="one_verification_per_account_domain"),
        ]

    def __str__(self) -> str:
        return self.domain


class IdpMetadataSource(models.Model):
    """Where a SAML connection re-reads its IdP's metadata, and how that went.

    ``next_fetch_at`` is also the claim of a periodic refresh: a process takes
    a due source by moving it forward with a conditional UPDATE, so only one
    of several workers fetches it (see ``connections.metadata_refresh.claim_due``).
    """

    connection = models.OneToOneField(Connection, on_delete=models.CASCADE, related_name="idp_metadata_source")
    url = models.CharField(max_length=2000)
    # None: the deployment's default interval.
    refresh_seconds = models.PositiveIntegerField(null=True, blank=True)
    next_fetch_at = models.DateTimeField(default=timezone.now, db_index=True)
    last_fetched_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    # Our own words and the outbound guard's stable reason, never the remote side's text.
    last_error = models.CharField(max_length=300, blank=True)

    def __str__(self) -> str:
        return self.url


class MetadataChange(models.Model):
    """One fetched metadata document that differed from the connection's IdP settings.

    ``before`` and ``after`` summarise the IdP fields (certificates by SHA-256
    fingerprint); ``proposed`` keeps the full IdP fields (certificate PEMs) so a
    held change can be adopted later exactly as it was fetched.
    """

    class Status(models.TextChoices):
        ADOPTED = "adopted"  # applied automatically
        PENDING = "pending"  # would drop every trusted signing key: waits for an sso-admin
        CONFIRMED = "confirmed"  # a pending change an sso-admin adopted
        DISCARDED = "discarded"  # a pending change an sso-admin refused
        SUPERSEDED = "superseded"  # a pending change replaced by a later, different fetch

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="metadata_changes")
    status = models.CharField(max_length=10, choices=Status.choices)
    url = models.CharField(max_length=2000)
    trigger = models.CharField(max_length=20)  # "schedule", "api", "cli"
    triggered_by = models.CharField(max_length=300, blank=True)
    before = models.JSONField(default=dict)
    after = models.JSONField(default=dict)
    proposed = models.JSONField(default=dict)
    added_certificates = models.JSONField(default=list)
    removed_certificates = models.JSONField(default=list)
    changed_fields = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.CharField(max_length=300, blank=True)

    class Meta:
        indexes = [models.Index(fields=["connection", "status"], name="metadata_change_status")]


class CertificateNotice(models.Model):
    """An expiry threshold ("30d", "7d", "expired") announced for one pinned IdP certificate.

    The unique constraint is the claim: whichever process inserts the row
    audits the warning; the others find it taken.
    """

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="certificate_notices")
    fingerprint = models.CharField(max_length=95)
    threshold = models.CharField(max_length=10)
    not_after = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "fingerprint", "threshold"], name="certificate_threshold_once"
            ),
        ]


__all__ = [
    "CertificateNotice",
    "Connection",
    "ConnectionDomain",
    "DomainClaim",
    "DomainShare",
    "DomainVerification",
    "ExternalIdentity",
    "IdpMetadataSource",
    "MappingRole",
    "MappingRoleGrant",
    "MetadataChange",
    "mapping_roles_losing",
    "PendingLogin",
    "ReplayEntry",
]
