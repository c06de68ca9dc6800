"""Accounts, projects, users and who may do what where.

A :class:`User` is one person across the deployment (one row per normalized
email): their *identity* (email, name, credentials, login method, external
IDs, global active flag), owned by their home account (the account that owns
their email domain) and the operator. :class:`Membership` puts a user in an
account and carries what that account owns of them: its own active flag and
approval ("Allow Login" is per membership). :class:`Invitation` is an offer to
join an account that the person accepts as themselves. :class:`ProjectAccess`
lets a member into a project; :class:`RoleGrant` gives roles at account scope
(``project`` is null) or project scope. Grants and project access carry their
``source``: ``manual`` ones are edited by administrators, ``sso`` ones are
managed by a connection and replaced at each login through it.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from vestibule.domain.emails import email_key, normalize_email

slug_validator = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$",
    "Use 1-50 lowercase letters, digits and inner hyphens.",
)


class Source(models.TextChoices):
    MANUAL = "manual"
    SSO = "sso"
    # Granted through a group of the account's directory (SCIM) named after a mapping role.
    SCIM = "scim"


class Approval(models.TextChoices):
    APPROVED = "approved"
    PENDING = "pending"


class Account(models.Model):
    slug = models.CharField(max_length=50, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200)
    # Days after which a password must be changed; null means never (seed 003 "password TTL").
    password_ttl_days = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # The account's logo on sign-in pages and in the console (vestibule.console.branding). Its
    # bytes live in AccountLogo, off this row that nearly every request loads; the digest here
    # names the image in its URL, so showing it costs no query. Empty: no logo.
    # db_default too: rows written by code (or a historical migration state) that predates the column.
    logo_digest = models.CharField(max_length=64, blank=True, default="", db_default="")

    def __str__(self) -> str:
        return self.slug

    @property
    def logo_url(self) -> str:
        """Where the logo is served (content-addressed, so cached for good), or ""."""
        return f"/branding/logos/{self.logo_digest}" if self.logo_digest else ""


class AccountLogo(models.Model):
    """An account's logo, checked by vestibule.conf.images (PNG, JPEG or WebP, at most 256 KiB)."""

    account = models.OneToOneField(Account, on_delete=models.CASCADE, primary_key=True, related_name="+")
    digest = models.CharField(max_length=64, db_index=True)
    content_type = models.CharField(max_length=20)
    data = models.BinaryField()
    uploaded_at = models.DateTimeField(default=timezone.now)


class Project(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="projects")
    slug = models.CharField(max_length=50, validators=[slug_validator])
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "slug"], name="project_slug_per_account")]

    def __str__(self) -> str:
        return f"{self.account.slug}/{self.slug}"


class UserManager(BaseUserManager["User"]):
    def get_by_email(self, email: str) -> User:
        return self.get(email_key=email_key(email))

    def create_user(self, email: str, name: str = "", password: str | None = None, **extra: Any) -> User:
        user = self.model(email=normalize_email(email), name=name, **extra)
        user.set_password(password) if password else user.set_unusable_password()
        user.save()
        return user


class User(AbstractBaseUser):
    class LoginMethod(models.TextChoices):
        PASSWORD = "password"
        SSO = "sso"

    email = models.CharField(max_length=254)
    # The identity key: unique across the deployment, derived from ``email``.
    email_key = models.CharField(max_length=254, unique=True, editable=False)
    name = models.CharField(max_length=200, blank=True)
    login_method = models.CharField(max_length=10, choices=LoginMethod.choices, default=LoginMethod.PASSWORD)
    # Global: a deactivated identity signs in nowhere. Set by the home account or the operator.
    is_active = models.BooleanField(default=True)
    # The deployment operator (global administrator) stands above all accounts.
    is_operator = models.BooleanField(default=False)
    password_changed_at = models.DateTimeField(null=True, blank=True)
    # Base32 TOTP secret, encrypted with the deployment key (see login.totp).
    totp_secret_encrypted = models.TextField(blank=True)
    totp_confirmed = models.BooleanField(default=False)
    # A re-enrolment in progress: the confirmed secret above stays in force
    # until this one is confirmed with a code.
    totp_pending_encrypted = models.TextField(blank=True)
    # Last accepted TOTP time step, so one code cannot be used twice.
    totp_last_step = models.BigIntegerField(default=0)
    # Set when an administrator switches the person to password sign-in (seed 000),
    # cleared when one switches them to SSO: /login then offers the password step
    # although their domain routes to a provider, and SSO logins no longer
    # upgrade them (seed 004). The admin's explicit choice outranks the automatic one.
    password_pinned_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # The person's stable, opaque identifier for applications (the OpenID Provider's ``sub``):
    # never the email, which changes, and never the row number, which tells how many people there are.
    subject = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)

    USERNAME_FIELD = "email_key"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["name"]

    objects = UserManager()

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.email = normalize_email(self.email)
        self.email_key = email_key(self.email)
        super().save(*args, **kwargs)

    def set_password(self, raw_password: str | None) -> None:
        super().set_password(raw_password)
        if raw_password is not None:
            self.password_changed_at = timezone.now()

    @property
    def has_totp(self) -> bool:
        return bool(self.totp_secret_encrypted) and self.totp_confirmed

    @property
    def password_pinned(self) -> bool:
        """An administrator chose password sign-in for this person (see ``password_pinned_at``)."""
        return self.password_pinned_at is not None and self.login_method == self.LoginMethod.PASSWORD

    def profile(self) -> dict[str, Any]:
        """The fields every JSON view of a user shares (users API, ``GET /api/v1/session``)."""
        return {
            "id": self.pk,
            "email": self.email,
            "name": self.name,
            "login_method": self.login_method,
            "password_pinned": self.password_pinned,
            "totp_enabled": self.has_totp,
        }

    def purge_credentials(self) -> list[str]:
        """Remove every local secret: password, TOTP and password age (seed 000, 003).

        Returns the fields it changed, for a ``save(update_fields=...)``.
        """
        self.set_unusable_password()
        self.password_changed_at = None
        self.totp_secret_encrypted = ""
        self.totp_confirmed = False
        self.totp_pending_encrypted = ""
        self.totp_last_step = 0
        return [
            "password",
            "password_changed_at",
            "totp_secret_encrypted",
            "totp_confirmed",
            "totp_pending_encrypted",
            "totp_last_step",
        ]

    def __str__(self) -> str:
        return self.email


class MembershipQuerySet(models.QuerySet["Membership"]):
    def in_force(self) -> MembershipQuerySet:
        """Memberships that give access: not deactivated, not waiting for approval."""
        return self.filter(is_active=True, approval=Approval.APPROVED)


class Membership(models.Model):
    """What one account owns of a person: their access there, not their identity."""

    Approval = Approval

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="memberships")
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.MANUAL)
    # Deactivated here only: the person keeps every other account.
    is_active = models.BooleanField(default=True)
    # "Allow Login" off: provisioned through this account's connection, waiting for its admins.
    approval = models.CharField(max_length=10, choices=Approval.choices, default=Approval.APPROVED)
    created_at = models.DateTimeField(default=timezone.now)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "account"], name="one_membership_per_account")]


class Invitation(models.Model):
    """An offer to join an account, for a person this account does not own.

    Nothing about the invitee is looked up when it is made, so the inviting
    side learns nothing about whether the address exists. The roles and
    projects are applied when the person accepts, signed in as themselves.
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="invitations")
    email = models.CharField(max_length=254)
    email_key = models.CharField(max_length=254)
    name = models.CharField(max_length=200, blank=True)
    # {"roles": [...], "projects": [{"slug", "roles"}]}
    grants = models.JSONField(default=dict, blank=True)
    digest = models.CharField(max_length=64, unique=True)
    # "person:<email>" or "api-key:<prefix>": who asked, for the invitee's page and the audit log.
    invited_by = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["account", "email_key"])]

    @property
    def is_open(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > timezone.now()


class ProjectAccess(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="project_access")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="access")
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.MANUAL)
    # For source=sso: the connection whose linked projects granted this access.
    connection = models.ForeignKey("connections.Connection", null=True, blank=True, on_delete=models.CASCADE)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "project"], condition=Q(source="manual"), name="one_manual_access_per_project"
            ),
            models.UniqueConstraint(
                fields=["user", "project", "connection"], condition=Q(source="sso"), name="one_sso_access_per_link"
            ),
        ]


class RoleGrantQuerySet(models.QuerySet["RoleGrant"]):
    def for_account(self, account: Account) -> RoleGrantQuerySet:
        return self.filter(account=account)


class RoleGrant(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="role_grants")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="role_grants")
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE)
    role = models.CharField(max_length=64)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.MANUAL)
    # For source=sso: the connection whose logins refresh this grant.
    connection = models.ForeignKey("connections.Connection", null=True, blank=True, on_delete=models.SET_NULL)
    # Granted by a login while the connection's SSO authorization was on: the
    # provider decides it and administrators cannot edit it (seed 002). A grant
    # an earlier login made with authorization off (a roles claim applied
    # leniently, the default role) is refreshed by logins but never locked,
    # even once authorization is switched on.
    managed = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    objects = RoleGrantQuerySet.as_manager()

    class Meta:
        constraints = [
            # Two partial constraints because NULL project would defeat one plain unique constraint.
            models.UniqueConstraint(
                fields=["user", "account", "role", "source"],
                condition=Q(project__isnull=True),
                name="one_account_grant",
            ),
            models.UniqueConstraint(
                fields=["user", "account", "project", "role", "source"],
                condition=Q(project__isnull=False),
                name="one_project_grant",
            ),
        ]
        indexes = [models.Index(fields=["user", "account"])]
