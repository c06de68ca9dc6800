"""Demo data for ``vestibule demo``: account ``acme`` and a way in within a minute.

Idempotent: running ``vestibule demo`` again finds the SAML connection to the
built-in test IdP by name, re-imports the test IdP's metadata (its key lives in
the data directory and may have been regenerated) and makes sure it is enabled.

The demo administrator ``admin@acme.test`` shares the SSO domain on purpose:
holding ``administrator`` (which implies ``sso-admin``), they are routed to
the password step and stay a break-glass administrator; a new connection also
lists the account's administrators of its domains as ignored emails.

The administrator reaches the console without typing the password: the
demo prints a one-time link, ``/demo/sign-in/<token>``, that signs them in and
lands on the account's console page. It is issued here only, stored as a
SHA-256 (``OneTimeLink``), works once, for an hour, and only while the
server runs in demo mode (``VESTIBULE_TEST_IDP``, which ``vestibule demo``
turns on): a plain ``vestibule serve`` answers 404 there. That mode already
lets anyone sign in as anyone through the test IdP, so the link opens no door
that was shut.

The hub has something to show: a second, disabled connection, a mapping
role, people with roles (one waiting for approval), two projects and a
failed login in the traces. Each is created once, found again on a re-run.

Two applications are registered for the examples under ``examples/`` (a
Flask app on Authlib, a Django app on mozilla-django-oidc). Their client
credentials are printed and written to ``$VESTIBULE_DATA_DIR/
demo-applications.json``, where the examples read them; a client secret is
stored hashed, so a re-run keeps the secret that file still holds (the
examples keep working across demo restarts) and makes a new one only when the
file no longer has it.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.test import RequestFactory
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_GET

from vestibule.accounts.models import Account, Approval, Membership, Project, ProjectAccess, User
from vestibule.accounts.roles import replace_manual_roles
from vestibule.audit.models import LoginTrace
from vestibule.authority.models import ApiKey
from vestibule.connections import rules
from vestibule.connections.authorization import save_mapping_role
from vestibule.connections.models import Connection, MappingRole
from vestibule.connections.rules import ConnectionRuleError
from vestibule.domain.pipeline import LoginFailure
from vestibule.login.models import OneTimeLink
from vestibule.login.sessions import start_session
from vestibule.people import members
from vestibule.provider import applications
from vestibule.provider.models import Application
from vestibule.signin.trace import TraceRecorder
from vestibule.testidp import idp

ADMIN_EMAIL = "admin@acme.test"
DEMO_DOMAIN = "acme.test"
DEMO_CONNECTION_NAME = "Test identity provider (demo)"
DEMO_APPLICATIONS_FILE = "demo-applications.json"
SECOND_CONNECTION_NAME = "Okta (not set up yet)"
SECOND_DOMAIN = "acme-labs.test"
DEMO_SIGN_IN = OneTimeLink.Purpose.DEMO_SIGN_IN
DEMO_SIGN_IN_TTL = timedelta(hours=1)
# (email, name, account roles, waiting for approval)
DEMO_PEOPLE: tuple[tuple[str, str, list[str], bool], ...] = (
    ("grace.hopper@acme.test", "Grace Hopper", ["sso-admin"], False),
    ("alan.turing@acme.test", "Alan Turing", ["user-manager"], False),
    ("ada.lovelace@acme.test", "Ada Lovelace", [], False),
    ("new.hire@acme.test", "New Hire", [], True),
)


@dataclass(frozen=True)
class DemoApplication:
    """One example under ``examples/``: where it listens and the paths Vestibule sends the browser back to."""

    key: str  # the example's folder name, and its entry in demo-applications.json
    name: str
    origin: str
    callback_path: str
    home_path: str = "/"


DEMO_APPLICATIONS = (
    DemoApplication("flask-authlib", "Flask example (Authlib)", "http://127.0.0.1:5001", "/callback"),
    DemoApplication(
        "django-mozilla-oidc", "Django example (mozilla-django-oidc)", "http://127.0.0.1:5002", "/oidc/callback/"
    ),
)


def seed_demo(*, example_origins: Mapping[str, str] | None = None) -> list[str]:
    """Seed (idempotently) and return the lines that tell how to sign in.

    URLs come from ``VESTIBULE_BASE_URL``, which ``vestibule demo --port``
    sets when the operator did not: what is printed is where the server is.
    ``example_origins`` moves an example off its usual port (a test runs it
    on a free one): ``{"flask-authlib": "http://127.0.0.1:54321"}``.
    """
    # One transaction for all of it; the lines are collected inside it, since a
    # generator would run its body (and its writes) after the block had ended.
    with transaction.atomic():
        account, _ = Account.objects.get_or_create(slug="acme", defaults={"name": "Acme Corporation"})
        for slug, name in (("production", "Production"), ("sandbox", "Sandbox")):
            Project.objects.get_or_create(account=account, slug=slug, defaults={"name": name})
        admin = User.objects.filter(email_key=ADMIN_EMAIL).first() or User(email=ADMIN_EMAIL, name="Acme Admin")
        password = secrets.token_urlsafe(12)
        admin.set_password(password)
        admin.login_method = User.LoginMethod.PASSWORD
        admin.is_operator = True
        admin.save()
        Membership.objects.get_or_create(user=admin, account=account)
        replace_manual_roles(admin, account, ["administrator"])
        for project in account.projects.all():
            ProjectAccess.objects.get_or_create(user=admin, project=project, source="manual", connection=None)
        _, key = ApiKey.issue(account=None, name="demo operator key")
        sso_lines = list(seed_demo_connections(account))
        seed_demo_hub(account)
        registered = seed_demo_applications(example_origins or {})
        console_link = issue_console_link(admin)
    app_lines = write_demo_applications(registered)

    base = settings.VESTIBULE_BASE_URL
    return [
        "",
        "=" * 72,
        f"Vestibule demo is ready at {base}/login",
        f"  Open the console, signed in as {ADMIN_EMAIL} (works once, for an hour):",
        f"    {console_link}",
        f"  Administrator (password login, break-glass): {ADMIN_EMAIL} / {password}",
        *sso_lines,
        f"  Operator API key: {key}",
        f"  Try: curl -H 'Authorization: Bearer {key}' {base}/api/v1/accounts",
        f"  API docs: {base}/api/v1/docs",
        *app_lines,
        "=" * 72,
    ]


def seed_demo_connections(account: Account) -> Iterator[str]:
    base = settings.VESTIBULE_BASE_URL
    try:
        with transaction.atomic():
            connection = (
                Connection.objects.for_account(account)
                .filter(protocol=Connection.Protocol.SAML, name=DEMO_CONNECTION_NAME)
                .first()
            )
            if connection is None:
                connection = rules.create_connection(
                    account,
                    {
                        "protocol": Connection.Protocol.SAML, "name": DEMO_CONNECTION_NAME, "domains": [DEMO_DOMAIN],
                        "auto_provision": True, "provisioned_users_can_login": True,
                    },
                    may_claim=True,
                )  # fmt: skip
            rules.import_idp_metadata(connection, idp.metadata_xml())
            # Demo only: lets the test IdP's IdP-initiated page work. New
            # connections keep the secure default (off).
            saml = {**connection.saml_settings, "allow_idp_initiated": True}
            rules.update_connection(connection, {"saml": saml, "enabled": True})
    except ConnectionRuleError as exc:
        yield f"  SAML demo connection not created: {exc.detail}"
        return
    yield f"  Sign in via SAML: open {base}/login and type any name@{DEMO_DOMAIN}"
    yield f"    (the built-in test identity provider asks who you want to be; IdP-initiated: {base}/test-idp/login)"
    yield f"    connection {connection.pk}, test IdP metadata: {base}/test-idp/metadata"


def seed_demo_hub(account: Account) -> None:
    """What makes the console worth a look: people, a second connection, a mapping role, a failed login."""
    for email, name, roles, pending in DEMO_PEOPLE:
        user = User.objects.filter(email_key=email).first()
        if user is None:
            user, _ = members.add_member(account, email, name)
            membership = Membership.objects.get(user=user, account=account)
            if pending:
                membership.approval = Approval.PENDING
                membership.save(update_fields=["approval"])
            replace_manual_roles(user, account, roles)
    if not Connection.objects.for_account(account).filter(name=SECOND_CONNECTION_NAME).exists():
        try:
            with transaction.atomic():
                rules.create_connection(
                    account,
                    {"protocol": Connection.Protocol.SAML, "name": SECOND_CONNECTION_NAME, "domains": [SECOND_DOMAIN]},
                    may_claim=True,
                )
        except ConnectionRuleError:
            pass  # the domain went to another account meanwhile: the demo shows one connection less
    if not MappingRole.objects.filter(account=account, name="Engineering").exists():
        save_mapping_role(
            account,
            name="Engineering",
            grants=[
                {"scope": "account", "roles": ["user-manager"]},
                {"scope": "project:sandbox", "roles": ["administrator"]},
            ],
        )
    connection = Connection.objects.for_account(account).filter(name=DEMO_CONNECTION_NAME).first()
    if connection is not None and not LoginTrace.objects.filter(account=account, outcome="failure").exists():
        _failed_login(connection)


def _failed_login(connection: Connection) -> None:
    """A refused SAML login in the traces, as a misconfigured identity provider leaves one."""
    request = RequestFactory().post(f"/sso/saml/{connection.pk}/acs", REMOTE_ADDR="127.0.0.1")
    trace = TraceRecorder(request, connection, "saml")
    trace.note_identity(email="mallory@acme.test")
    trace.ok("start")
    trace.fail(
        LoginFailure(
            "sso.assertion_invalid",
            "validate",
            expected=f"Audience {settings.VESTIBULE_BASE_URL}/sso/saml/{connection.pk}/metadata",
            received="Audience https://sso.other-vendor.example/metadata",
        )
    )


def issue_console_link(admin: User) -> str:
    """A fresh one-time link into the console; the links of earlier runs stop working."""
    OneTimeLink.objects.filter(user=admin, purpose=DEMO_SIGN_IN, used_at__isnull=True).delete()
    _, token = OneTimeLink.issue(DEMO_SIGN_IN, admin, DEMO_SIGN_IN_TTL)
    return f"{settings.VESTIBULE_BASE_URL}/demo/sign-in/{token}"


@require_GET
def sign_in(request: HttpRequest, token: str) -> HttpResponse:
    """Follow the printed link: signed in as the demo administrator, on the account's console page."""
    if not settings.VESTIBULE_TEST_IDP:
        raise Http404("not in demo mode")
    link = OneTimeLink.consume(DEMO_SIGN_IN, token[:100])
    if link is None or not link.user.is_active:
        return render(
            request,
            "vestibule/message.html",
            {
                "title": "This demo link has been used or has expired",
                "text": "Each link the demo prints signs in once, within an hour. Restart the demo for a new one, "
                f"or sign in with the password it printed for {ADMIN_EMAIL}.",
            },
            status=410,
        )
    account = Account.objects.filter(slug="acme").first()
    target = reverse("console:account", args=["acme"]) if account is not None else reverse("console:home")
    return start_session(request, link.user, method="demo", next_url=target, account=account)


# Kept here, not in a module of their own: ``vestibule.demo`` is one module (its own layer), and the
# link's view belongs with the seed that issues it. ``vestibule.urls`` includes them at /demo/.
urlpatterns: list[URLPattern] = [
    path("sign-in/<str:token>", sign_in, name="demo-sign-in"),
]


def demo_applications_path() -> Path:
    return Path(settings.CONFIG.data_dir) / DEMO_APPLICATIONS_FILE


def _previous_secrets() -> dict[str, str]:
    """client_id -> client_secret from the file an earlier run wrote, if it is there and readable."""
    try:
        data = json.loads(demo_applications_path().read_text())
        entries = data["applications"].values()
        return {str(e["client_id"]): str(e["client_secret"]) for e in entries}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def seed_demo_applications(origins: Mapping[str, str]) -> list[tuple[DemoApplication, Application, str]]:
    """Register the examples' applications, or bring them up to date; each with its client secret."""
    previous = _previous_secrets()
    out = []
    for example in DEMO_APPLICATIONS:
        origin = origins.get(example.key, example.origin).rstrip("/")
        redirect_uris = [origin + example.callback_path]
        logout_uris = [origin + example.home_path]
        application = Application.objects.filter(name=example.name, revoked_at__isnull=True).order_by("pk").first()
        if application is None:
            registered = applications.register(
                name=example.name, redirect_uris=redirect_uris, post_logout_redirect_uris=logout_uris, created_by="demo"
            )
            assert registered.client_secret is not None  # a confidential client
            out.append((example, registered.application, registered.client_secret))
            continue
        application.redirect_uris = " ".join(redirect_uris)
        application.post_logout_redirect_uris = " ".join(logout_uris)
        application.save(update_fields=["redirect_uris", "post_logout_redirect_uris", "updated"])
        secret = previous.get(application.client_id, "")
        if not (secret and check_password(secret, application.client_secret)):
            secret = applications.rotate_secret(application)
        out.append((example, application, secret))
    return out


def write_demo_applications(registered: list[tuple[DemoApplication, Application, str]]) -> list[str]:
    """Write demo-applications.json (readable by its owner only: it holds client secrets); the banner lines."""
    issuer = settings.VESTIBULE_BASE_URL
    entries: dict[str, Any] = {
        example.key: {
            "name": application.name,
            "issuer": issuer,
            "client_id": application.client_id,
            "client_secret": secret,
            "redirect_uris": application.redirect_uri_list(),
            "post_logout_redirect_uris": application.post_logout_redirect_uri_list(),
        }
        for example, application, secret in registered
    }
    document = {
        "issuer": issuer,
        "discovery": f"{issuer}/.well-known/openid-configuration",
        "applications": entries,
    }
    path = demo_applications_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written beside and renamed over, so an example never reads half a file.
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # also when a crashed run left the partial file behind
    with os.fdopen(fd, "w") as handle:
        json.dump(document, handle, indent=2)
        handle.write("\n")
    os.replace(partial, path)
    lines = [f"  Example applications (client credentials also in {path}):"]
    for example, application, secret in registered:
        lines += [
            f"    {application.name}: make -C examples/{example.key} run, then open {demo_home(application)}",
            f"      client_id {application.client_id}  client_secret {secret}",
        ]
    return lines


def demo_home(application: Application) -> str:
    logout_uris = application.post_logout_redirect_uri_list()
    return logout_uris[0] if logout_uris else ""
