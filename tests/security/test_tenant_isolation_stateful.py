"""Tenant isolation under random admin sequences (DESIGN "Identity ownership", "Authority").

Two accounts share a deployment. ``alpha`` owns ``alpha.test`` and has people
there (an administrator and a break-glass ``sso-admin`` with passwords, an SSO
person) plus a consultant on a public mail domain; ``beta`` owns ``beta.test``.
Beta acts through everything it controls: its administrator's browser session
(CSRF header on unsafe calls), its API keys (the ones it makes too), its
identity providers — and every browser session those providers start, which
are beta's to use from then on. Alpha acts through its administrator's session
and its own provider. alpha.test is shared with beta from the start (beta
serves it with a "partner" provider): a partner's provider signing in alpha's
people is where beta gets closest to them. ``bob@beta.test`` is beta's person
and a member of alpha: beta owns his identity, so only alpha's membership of
him is alpha's.

The property, checked after every step: nothing beta can do changes what
alpha's administrators see about alpha's people, except beta's own memberships
of them. Concretely

* the rows behind alpha's view — the identity rows of the people alpha owns (or
  who own themselves), alpha's memberships, role grants and project access, the
  external IDs at alpha's connections, alpha's domains — equal the rows as
  alpha's own last action left them;
* alpha's users list (``GET /accounts/alpha/users`` as alpha's administrator)
  equals a model that only alpha's own rules change. The list is computed from
  those rows, so it is read again whenever they (or the administrator's session)
  changed since it was last read;
* whatever of beta reaches for alpha (its URLs, its connection, its people
  through beta's URLs, the console's connection switch) gets 401/403/404, an
  account beta has no standing in answers like one that does not exist, beta's
  own API answers as its roles say, and nothing anywhere answers 5xx.

Each example starts from the same world, built once per test and restored by a
savepoint. The providers are Vestibule's own SAML IdP in process (see
:class:`OwnIdp`). The example-based tests at the end name the attacks, each
beside a positive control.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings as settings_module
from django.contrib.auth.hashers import is_password_usable
from django.contrib.sessions.models import Session
from django.core import mail
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from tests.conftest import csrf_token_from
from tests.e2e.policy_support import PASSWORD, fresh_counters, reuse_sp_key_pairs  # noqa: F401 (autouse fixtures)
from tests.saml_support import cert, key_pair
from vestibule.accounts.models import Account, Membership, ProjectAccess, RoleGrant, User
from vestibule.accounts.roles import effective_account_roles, get_catalog
from vestibule.authority.models import ApiKey
from vestibule.authority.principal import Principal
from vestibule.connections.models import Connection, DomainClaim, ExternalIdentity
from vestibule.domain.emails import email_key
from vestibule.login.totp import _totp
from vestibule.people.members import open_invitation
from vestibule.saml import IdentityProvider, build_response, parse_authn_request
from vestibule.saml.idp import response_form

V1 = "/api/v1"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}

A_ADMIN = "admin@alpha.test"
A_BREAKGLASS = "breakglass@alpha.test"
A_SSO = "sso@alpha.test"
A_PUBLIC = "pat@public.test"
A_NEWBIE = "newbie@alpha.test"
A_STRANGER = "stranger@alpha.test"
B_ADMIN = "admin@beta.test"
B_BOB = "bob@beta.test"
B_CAROL = "carol@beta.test"

ADMIN_ROLES = frozenset({"administrator", "user-manager", "sso-admin"})
ROLE_SETS = ([], ["analyst"], ["user-manager"], ["sso-admin"], ["administrator"], ["analyst", "pii-viewer"])
KEY_ROLE_SETS = (["administrator"], ["user-manager"], ["sso-admin"], ["user-manager", "sso-admin"])


def home_of(email: str) -> str | None:
    domain = email.rsplit("@", 1)[-1].lower()
    return {"alpha.test": "alpha", "beta.test": "beta"}.get(domain)


def effective(roles: frozenset[str] | set[str]) -> list[str]:
    catalog = get_catalog()
    return sorted(catalog.effective(r for r in roles if r in catalog.roles))


# Talking to Vestibule -----------------------------------------------------------------


class Actor:
    """One who calls the admin API: a browser session (CSRF header on unsafe calls) or an API key.

    ``kind``: ``session`` (a person who signed in with a password), ``key``, or
    ``idp`` (a session started by one of beta's identity providers: whoever
    runs that provider holds it). ``roles`` are a key's roles in beta.
    """

    def __init__(
        self,
        label: str,
        client: Client,
        *,
        kind: str,
        roles: frozenset[str] = frozenset(),
        prefix: str = "",
        user_id: int | None = None,
    ) -> None:
        self.label = label
        self.user_id = user_id  # the person of a session (an address may change; the row stays)
        self.client = client
        self.kind = kind
        self.roles = roles
        self.prefix = prefix
        self.revoked = False

    def call(self, method: str, path: str, body: Any = None) -> Any:
        headers: dict[str, str] = {}
        if self.kind != "key" and method in UNSAFE and "csrftoken" in self.client.cookies:
            headers["X-CSRFToken"] = self.client.cookies["csrftoken"].value
        kwargs: dict[str, Any] = {"headers": headers}
        if body is not None:
            kwargs.update(data=json.dumps(body), content_type="application/json")
        response = getattr(self.client, method.lower())(V1 + path, **kwargs)
        assert response.status_code < 500, (
            self.label,
            method,
            path,
            body,
            response.status_code,
            response.content[:800],
        )
        return response

    def __repr__(self) -> str:
        return self.label


def key_actor(label: str, secret: str, roles: list[str], prefix: str = "") -> Actor:
    return Actor(
        label,
        Client(headers={"Authorization": f"Bearer {secret}"}),
        kind="key",
        roles=frozenset(get_catalog().effective(roles)) & ADMIN_ROLES,
        prefix=prefix,
    )


def browser_with(cookies: dict[str, str]) -> Client:
    browser = Client(enforce_csrf_checks=True)
    for name, value in cookies.items():
        browser.cookies[name] = value
    return browser


def cookies_of(browser: Client) -> dict[str, str]:
    return {name: morsel.value for name, morsel in browser.cookies.items()}


def password_browser(email: str) -> Client:
    """A browser signed in through the email-first form (with its CSRF token), password step."""
    browser = Client(enforce_csrf_checks=True)
    token = csrf_token_from(browser.get("/login").content.decode())
    first = browser.post("/login", {"email": email, "csrfmiddlewaretoken": token})
    assert first.status_code == 200 and b'name="password"' in first.content, (
        email,
        first.status_code,
        first.content[:600],
    )
    done = browser.post("/login", {"email": email, "password": PASSWORD, "csrfmiddlewaretoken": token})
    assert done.status_code == 302, (email, done.status_code, done.content[:600])
    return browser


class OwnIdp:
    """An account's identity provider: Vestibule's own SAML IdP (``vestibule.saml.idp``), in process.

    The login is the browser's: ``/sso/start/<id>`` -> the IdP reads the real
    AuthnRequest -> a signed Response POSTed to the ACS. Signing in process
    (signxml) keeps a login at a few tens of milliseconds, where the pysaml2
    driver of tests/e2e forks ``xmlsec1`` for every signature; the machine
    makes hundreds of logins. alpha's and beta's providers have their own keys.
    """

    protocol = "saml"

    def __init__(self, name: str, key: str) -> None:
        self.idp = IdentityProvider(f"https://{name}.idp.test/metadata", f"https://{name}.idp.test/sso", key_pair(key))
        self.key = key

    def connection_settings(self) -> dict[str, Any]:
        return {
            "saml": {"idp_entity_id": self.idp.entity_id, "sso_url": self.idp.sso_url, "certificates": [cert(self.key)]}
        }

    def login(self, browser: Client, connection: dict[str, Any], *, subject: str, claims: dict[str, Any]) -> Any:
        start = browser.get(urlsplit(connection["sign_in_url"]).path)
        if start.status_code != 302:
            return start
        location = urlsplit(start["Location"])
        # This IdP answers whichever IdP the connection trusts, under that IdP's name but with its own key:
        # a forgery when they differ (beta's provider answering for alpha's).
        trusted = connection["saml"]["idp_entity_id"]
        issuer = IdentityProvider(trusted, f"{location.scheme}://{location.netloc}{location.path}", self.idp.signing)
        request = parse_authn_request(issuer, location.query)
        xml = build_response(
            issuer, sp_entity_id=connection["sp_entity_id"], acs_url=connection["acs_url"], name_id=subject,
            attributes={k: v if isinstance(v, list) else [v] for k, v in claims.items()},
            now=dt.datetime.now(dt.UTC), in_response_to=request.request_id,
        )  # fmt: skip
        form = response_form(xml, connection["acs_url"], request.relay_state)
        return browser.post(urlsplit(connection["acs_url"]).path, dict(form.fields))


def sso_login(
    idp: OwnIdp, connection: dict[str, Any], email: str, *, name: str, subject: str | None = None, **claims: Any
) -> tuple[Client, Any]:
    browser = Client(enforce_csrf_checks=True)
    response = idp.login(browser, connection, subject=subject or email, claims={"email": email, "name": name, **claims})
    assert response.status_code < 500, response.content[:800]
    return browser, response


def reason(response: Any) -> list[str]:
    return sorted(set(re.findall(r"sso\.[a-z_.]+[a-z]", response.content.decode(errors="replace"))))


def join(browser: Client, token: str) -> Any:
    """Accept an invitation in a signed-in browser: the confirmation page, then its form."""
    page = browser.get(f"/join/{token}")
    if page.status_code != 200 or b"csrfmiddlewaretoken" not in page.content:
        return page
    return browser.post(f"/join/{token}", {"csrfmiddlewaretoken": csrf_token_from(page.content.decode())})


def join_token(email: str) -> str:
    for message in reversed(mail.outbox):
        if [email_key(t) for t in message.to] == [email_key(email)]:
            found = re.search(r"/join/([A-Za-z0-9_\-]+)", message.body)
            if found:
                return found.group(1)
    raise AssertionError(f"no invitation email to {email}")


def set_password(email: str) -> None:
    user = User.objects.get_by_email(email)
    user.set_password(PASSWORD)
    user.save()


def user_id(email: str) -> int:
    user = User.objects.filter(email_key=email_key(email)).first()
    return user.pk if user is not None else 10**6


def is_member(email: str, slug: str) -> bool:
    return Membership.objects.filter(user__email_key=email_key(email), account__slug=slug).exists()


def sso_authorization_on(slug: str) -> bool:
    return Connection.objects.filter(account__slug=slug, enabled=True, sso_authorization=True).exists()


# The model of what alpha's administrators see ------------------------------------------


@dataclass
class Person:
    """One of alpha's members as alpha's admins should see them; only alpha's rules change it."""

    email: str
    name: str
    login_method: str
    has_password: bool
    roles: frozenset[str]  # account-scope grants in alpha
    links: frozenset[tuple[str, str]] = frozenset()  # (connection, external ID) at alpha's connections
    active: bool = True  # the identity
    member_active: bool = True  # alpha's membership
    approval: str = "approved"
    id: int | None = None  # set for beta's people, whose address beta's provider may change

    @property
    def key(self) -> str:
        return f"beta's person #{self.id}" if self.home == "beta" else self.email

    @property
    def home(self) -> str | None:
        return home_of(self.email)

    def seen_by_alpha(self) -> dict[str, Any]:
        membership = {
            "membership_active": self.member_active,
            "approval": self.approval,
            "identity_managed_here": self.home == "alpha",
            "roles": effective(self.roles),
        }
        if self.home == "beta":
            return membership  # beta owns this identity: only alpha's membership of it is alpha's
        return {
            **membership,
            "email": self.email,
            "name": self.name,
            "login_method": self.login_method,
            "password_pinned": False,
            "totp_enabled": False,
            "is_active": self.active and self.member_active,
            "external_ids": sorted(self.links),
        }


def seen_key(user: dict[str, Any]) -> str:
    """How alpha's list and the model name a person: by address, or by row for beta's people (see ``Person.key``)."""
    return f"beta's person #{user['id']}" if home_of(user["email"]) == "beta" else user["email"]


def seen(user: dict[str, Any]) -> dict[str, Any]:
    """The same projection of one item of alpha's users list."""
    full = {
        "membership_active": user["membership_active"],
        "approval": user["approval"],
        "identity_managed_here": user["identity_managed_here"],
        "roles": user["roles"],
    }
    if home_of(user["email"]) == "beta":
        return full
    return {
        **full,
        "email": user["email"],
        "name": user["name"],
        "login_method": user["login_method"],
        "password_pinned": user["password_pinned"],
        "totp_enabled": user["totp_enabled"],
        "is_active": user["is_active"],
        "external_ids": sorted((e["connection"], e["external_id"]) for e in user["external_ids"]),
    }


def differences(got: dict[str, Any], want: dict[str, Any]) -> dict[str, Any]:
    """Per person, the fields alpha's administrators see differently from what alpha left: {field: (seen, expected)}."""
    out: dict[str, Any] = {}
    for email in sorted(set(got) | set(want)):
        if email not in got or email not in want:
            out[email] = "listed but not expected" if email in got else "expected but not listed"
            continue
        fields = {
            k: (got[email].get(k), want[email].get(k))
            for k in sorted(set(got[email]) | set(want[email]))
            if got[email].get(k) != want[email].get(k)
        }
        if fields:
            out[email] = fields
    return out


def row_changes(now: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    """What changed in alpha's rows since alpha's own last action: per person and column for identities."""
    out: dict[str, Any] = {}
    for email in sorted(set(now["users"]) | set(before["users"])):
        a, b = now["users"].get(email), before["users"].get(email)
        if a != b:
            out[email] = {
                k: {"now": (a or {}).get(k), "before": (b or {}).get(k)}
                for k in sorted(set(a or {}) | set(b or {}))
                if (a or {}).get(k) != (b or {}).get(k)
            }
    for table in now:
        if table != "users" and now[table] != before[table]:
            out[table] = {
                "added": [r for r in now[table] if r not in before[table]],
                "gone": [r for r in before[table] if r not in now[table]],
            }
    return out


def alpha_rows(emails: list[str]) -> dict[str, Any]:
    """The rows behind alpha's view: identities it owns (or nobody does), its memberships, grants, project access, links."""
    alpha = Account.objects.get(slug="alpha")
    keys = {email_key(e): e for e in emails if home_of(e) != "beta"}
    found = {row["email_key"]: row for row in User.objects.filter(email_key__in=list(keys)).values()}
    users = {}
    for key, email in sorted(keys.items()):
        row = found.get(key)
        if row is not None:
            row.pop("last_login")  # a sign-in anywhere moves it; not part of what anyone manages
        users[email] = row
    ids = [row["id"] for row in users.values() if row is not None]
    return {
        "claims": sorted(DomainClaim.objects.filter(account=alpha).values_list("domain", flat=True)),
        "users": users,
        "memberships": sorted(
            Membership.objects.filter(account=alpha).values_list("user_id", "source", "is_active", "approval")
        ),
        "grants": sorted(
            RoleGrant.objects.filter(account=alpha).values_list(
                "user_id", "project_id", "role", "source", "connection_id"
            ),
            key=repr,
        ),
        "project_access": sorted(
            ProjectAccess.objects.filter(project__account=alpha).values_list(
                "user_id", "project_id", "source", "connection_id"
            ),
            key=repr,
        ),
        "links": sorted(
            ExternalIdentity.objects.filter(connection__account=alpha, user_id__in=ids).values_list(
                "connection_id", "external_id", "user_id"
            ),
            key=repr,
        ),
    }


# The world every example starts from ---------------------------------------------------


@dataclass
class World:
    alpha_idp: OwnIdp
    beta_idp: OwnIdp
    a_conn: dict[str, Any]
    b_conn: dict[str, Any]
    b_partner: dict[str, Any]
    a_admin_cookies: dict[str, str]
    b_admin_cookies: dict[str, str]
    b_key: str
    b_key_prefix: str
    b_admin_id: int
    people: dict[str, Person] = field(default_factory=dict)


def build_world() -> World:
    alpha_idp, beta_idp = OwnIdp("alpha", "idp"), OwnIdp("beta", "okta")
    _, secret = ApiKey.issue(name="operator")
    operator = key_actor("operator", secret, [])
    for slug, project in (("alpha", "main"), ("beta", "prod")):
        assert operator.call("POST", "/accounts", {"slug": slug, "name": slug.title()}).status_code == 201
        assert (
            operator.call("POST", f"/accounts/{slug}/projects", {"slug": project, "name": project.title()}).status_code
            == 201
        )
    people = [
        ("alpha", A_ADMIN, ["administrator"], "password"),
        ("alpha", A_BREAKGLASS, ["sso-admin"], "password"),
        ("alpha", A_SSO, ["analyst"], "sso"),
        ("alpha", A_PUBLIC, ["analyst"], "password"),
        ("beta", B_ADMIN, ["administrator"], "password"),
        ("beta", B_BOB, ["analyst"], "sso"),
    ]
    for slug, email, roles, method in people:
        body = {
            "email": email,
            "name": email.split("@")[0].title(),
            "roles": roles,
            "login_method": method,
            "send_invitation": False,
        }
        made = operator.call("POST", f"/accounts/{slug}/users", body)
        assert made.status_code == 201, made.content
        if method == "password":
            set_password(email)

    def connection(slug: str, name: str, domains: list[str], idp: OwnIdp, **fields: Any) -> dict[str, Any]:
        body = {"protocol": "saml", "name": name, "domains": domains, **idp.connection_settings(), **fields}
        made = operator.call("POST", f"/accounts/{slug}/connections", body)
        assert made.status_code == 201, made.content
        enabled = operator.call("PATCH", f"/connections/{made.json()['id']}", {"enabled": True})
        assert enabled.status_code == 200, enabled.content
        return enabled.json()  # type: ignore[no-any-return]

    a_conn = connection(
        "alpha", "Alpha IdP", ["alpha.test"], alpha_idp, auto_provision=True, provisioned_users_can_login=True
    )
    b_conn = connection("beta", "Beta IdP", ["beta.test"], beta_idp, auto_provision=True, linked_projects=["prod"])
    _, first = sso_login(alpha_idp, a_conn, A_SSO, name="Sso")
    assert first.status_code == 302, reason(first)

    a_admin = Actor("alpha's administrator (password session)", password_browser(A_ADMIN), kind="session")
    b_admin = Actor("beta's administrator (password session)", password_browser(B_ADMIN), kind="session")
    made = b_admin.call("POST", "/accounts/beta/api-keys", {"name": "beta automation", "roles": ["administrator"]})
    assert made.status_code == 201, made.content
    b_key, b_key_prefix = made.json()["key"], made.json()["id"]

    # An alpha person joins beta by invitation; beta's bob joins alpha the same way.
    assert (
        b_admin.call("POST", "/accounts/beta/users", {"email": A_BREAKGLASS, "roles": ["analyst"]}).status_code == 202
    )
    assert join(password_browser(A_BREAKGLASS), join_token(A_BREAKGLASS)).status_code == 302
    assert a_admin.call("POST", "/accounts/alpha/users", {"email": B_BOB, "roles": ["analyst"]}).status_code == 202
    bob, signed_in = sso_login(beta_idp, b_conn, B_BOB, name="Bob")
    assert signed_in.status_code == 302, reason(signed_in)
    assert join(bob, join_token(B_BOB)).status_code == 302

    # Alpha shares its domain with beta, which serves it with a second provider.
    assert a_admin.call("POST", "/accounts/alpha/domains/alpha.test/shares", {"account": "beta"}).status_code == 202
    assert b_admin.call("POST", "/accounts/beta/domain-offers/alpha.test/accept").status_code == 200
    partner_body = {
        "protocol": "saml", "name": "Beta partner IdP", "domains": ["alpha.test"], "auto_provision": True,
        "provisioned_users_can_login": True, "claims": {"role_source": "roles_claim", "roles": "roles"},
        **beta_idp.connection_settings(),
    }  # fmt: skip
    made = b_admin.call("POST", "/accounts/beta/connections", partner_body)
    assert made.status_code == 201, made.content
    b_partner = b_admin.call("PATCH", f"/connections/{made.json()['id']}", {"enabled": True}).json()

    world = World(
        alpha_idp,
        beta_idp,
        a_conn,
        b_conn,
        b_partner,
        cookies_of(a_admin.client),
        cookies_of(b_admin.client),
        b_key,
        b_key_prefix,
        User.objects.get_by_email(B_ADMIN).pk,
    )
    world.people = {
        A_ADMIN: Person(A_ADMIN, "Admin", "password", True, frozenset({"administrator"})),
        A_BREAKGLASS: Person(A_BREAKGLASS, "Breakglass", "password", True, frozenset({"sso-admin"})),
        A_SSO: Person(A_SSO, "Sso", "sso", False, frozenset({"analyst"}), frozenset({(a_conn["id"], A_SSO)})),
        A_PUBLIC: Person(A_PUBLIC, "Pat", "password", True, frozenset({"analyst"})),
        B_BOB: Person(B_BOB, "Bob", "sso", False, frozenset({"analyst"}), id=User.objects.get_by_email(B_BOB).pk),
    }
    return world


# The machine --------------------------------------------------------------------------

B_TARGETS = (A_ADMIN, A_BREAKGLASS, A_SSO, A_PUBLIC, A_NEWBIE, B_BOB, B_CAROL)
INVITEES = (A_ADMIN, A_BREAKGLASS, A_SSO, A_PUBLIC, A_NEWBIE, B_BOB, B_CAROL, "Admin@alpha.test", "sso@ALPHA.test")
SSO_EMAILS = (A_ADMIN, A_BREAKGLASS, A_SSO, A_NEWBIE, A_STRANGER, A_PUBLIC, B_BOB, B_CAROL, B_ADMIN, "Admin@alpha.test")
ALPHA_INVITEES = (A_ADMIN, A_BREAKGLASS, A_SSO, A_PUBLIC)
INVITE_EXTRAS = (None, None, "login_method", "external_ids")
MEMBER_OPS = (
    ("patch", {"name": "Renamed by beta"}),
    ("patch", {"login_method": "sso"}),
    ("patch", {"login_method": "password"}),
    ("patch", {"is_active": False}),
    ("patch", {"is_active": True}),
    ("patch", {"approval": "approved"}),
    *(("roles", roles) for roles in ROLE_SETS),
    ("delete", None),
    ("withdraw", None),
    ("external-id", "beta"),  # link them to a subject at beta's partner provider
    ("external-id", "alpha"),  # ... or at alpha's own connection
)
BETA_DOMAIN_ACTIONS = (
    "offer beta.test to alpha",
    "revoke beta.test from alpha",
    "accept alpha.test",
    "decline alpha.test",
    "grab alpha.test for alpha",
    "grab alpha.test for beta",
    "grab alpha.test for gamma",
)
ALPHA_DOMAIN_ACTIONS = (
    "offer alpha.test to beta",
    "revoke alpha.test from beta",
    "accept beta.test",
    "serve beta.test",
    "bob signs in through alpha's provider for beta.test",
)
CONNECTION_PATCHES = (
    {"auto_provision": True},
    {"auto_provision": False},
    {"provisioned_users_can_login": True},
    {"sso_authorization": True},
    {"sso_authorization": False},
    {"ignored_emails": [A_ADMIN]},
    {"linked_projects": ["prod"]},
    {"enabled": False},
    {"enabled": True},
)
PROBES = (
    ("GET", "/accounts/alpha", None),
    ("GET", "/accounts/alpha/users", None),
    ("GET", "/accounts/alpha/users/{victim}", None),
    ("PATCH", "/accounts/alpha/users/{victim}", {"name": "Renamed by beta"}),
    ("PATCH", "/accounts/alpha/users/{victim}", {"login_method": "sso"}),
    ("PATCH", "/accounts/alpha/users/{victim}", {"is_active": False}),
    ("PUT", "/accounts/alpha/users/{victim}/roles", {"roles": ["analyst"]}),
    ("DELETE", "/accounts/alpha/users/{victim}", None),
    ("POST", "/accounts/alpha/users", {"email": "planted@alpha.test", "roles": ["administrator"]}),
    ("POST", "/accounts/alpha/api-keys", {"roles": ["administrator"]}),
    ("GET", "/accounts/alpha/audit-events", None),
    ("GET", "/connections/{a_conn}", None),
    ("PATCH", "/connections/{a_conn}", {"enabled": False}),
    ("PATCH", "/connections/{a_conn}", {"ignored_emails": [A_SSO]}),
    ("DELETE", "/accounts/alpha/domains/alpha.test/shares/beta", None),
    ("POST", "/accounts/alpha/domains/alpha.test/shares", {"account": "gamma"}),
    ("GET", "/accounts/alpha/domains", None),
    ("GET", "/accounts/beta/users/{outside}", None),
    ("PATCH", "/accounts/beta/users/{outside}", {"is_active": False}),
    ("PUT", "/accounts/beta/users/{outside}/roles", {"roles": ["analyst"]}),
    ("DELETE", "/accounts/beta/users/{outside}", None),
    ("GET", "slugs", None),
    ("POST", "sso-admin", None),
)

SECOND_FACTOR = ("totp",)
# What a session beta's provider just started does first: half the time set up a second factor, else one probe.
FOLLOW_UPS = st.one_of(st.just(SECOND_FACTOR), st.sampled_from(PROBES))

actor_index = st.integers(min_value=0, max_value=31)


class TenantIsolation(RuleBasedStateMachine):
    world: World

    def __init__(self) -> None:
        super().__init__()
        # Every example starts from the same world: a savepoint rolled back in teardown.
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        cache.clear()
        mail.outbox = []
        world = self.world
        self.alpha_idp, self.beta_idp = world.alpha_idp, world.beta_idp
        self.a_conn = world.a_conn
        self.a_admin = Actor("alpha's administrator", browser_with(world.a_admin_cookies), kind="session")
        self.b_actors: list[Actor] = [
            Actor("beta's administrator (session)", browser_with(world.b_admin_cookies), kind="session"),
            key_actor("beta's API key", world.b_key, ["administrator"], world.b_key_prefix),
        ]
        self.people: dict[str, Person] = copy.deepcopy(world.people)
        self.alpha_share = "active"  # alpha.test offered to / shared with beta
        self.beta_share: str | None = None  # beta.test offered to / shared with alpha
        # beta's connections, and whether each serves alpha.test now
        self.b_conns: list[tuple[dict[str, Any], bool]] = [(world.b_conn, False), (world.b_partner, True)]
        self.a_beta_conn: dict[str, Any] | None = None
        self.invitations: dict[str, str] = {}  # email key -> latest join token
        self.alpha_acted = False
        self.rows = alpha_rows(list(self.people))
        self.viewed: tuple[str, bool] | None = None

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    # Helpers -----------------------------------------------------------------------

    def actor(self, index: int) -> Actor:
        return self.b_actors[index % len(self.b_actors)]

    def held(self, actor: Actor) -> frozenset[str] | int | None:
        """beta's admin roles ``actor`` holds now, or the 401/404 beta answers it before roles; None: judged loosely.

        A key holds what it was made with until revoked. beta's administrator
        may lose roles or the session itself to beta's own provider (a login
        through a provider with SSO authorization decides their roles, one
        without converts them): beta's own business, read back here.
        """
        if actor.kind == "key":
            return 401 if actor.revoked else actor.roles
        if actor.kind == "idp":
            return None  # whoever beta's provider signed in
        if actor.client.get("/api/v1/session").status_code == 401:
            return 401
        # By row: beta's own provider may rename beta's administrator (a new address at the same subject).
        beta, acting = Account.objects.get(slug="beta"), Principal(user=User.objects.get(pk=self.world.b_admin_id))
        return acting.roles_in(beta) if acting.is_member_of(beta) else 404

    def guards_an_admin(self, held: frozenset[str] | int | None, email: str) -> bool:
        """Whether beta's rule "only an administrator deactivates, removes or converts an admin" stops this actor."""
        if not isinstance(held, frozenset) or "administrator" in held:
            return False
        user = User.objects.filter(email_key=email_key(email)).first()
        return user is not None and bool(effective_account_roles(user, Account.objects.get(slug="beta")) & ADMIN_ROLES)

    def expect(self, held: frozenset[str] | int | None, response: Any, role: str, *codes: int) -> None:
        """``codes`` once the actor passes beta's gate (its standing and ``role``); any 2xx/4xx when judged loosely."""
        if held is None:
            return  # no 5xx: Actor.call checks that
        allowed = {held} if isinstance(held, int) else set(codes) if role in held else {403}
        assert response.status_code in allowed, (response.status_code, allowed, response.content[:500])

    # Beta: people ------------------------------------------------------------------------

    @rule(
        who=actor_index,
        email=st.sampled_from(INVITEES),
        roles=st.sampled_from(ROLE_SETS),
        extra=st.sampled_from(INVITE_EXTRAS),
    )
    def beta_invites(self, who: int, email: str, roles: list[str], extra: str | None) -> None:
        """Add (own domain, 201) or invite (202) any address; with identity fields only beta's own people's."""
        actor = self.actor(who)
        held = self.held(actor)
        member = is_member(email, "beta")
        body: dict[str, Any] = {"email": email, "name": "Invited by beta", "roles": roles, "send_invitation": False}
        if extra == "login_method":
            body["login_method"] = "sso"
        elif extra == "external_ids":
            body["external_ids"] = [{"connection": self.b_conns[1][0]["id"], "external_id": email}]
        if sso_authorization_on("beta"):
            codes = {409}
        elif ADMIN_ROLES & set(roles) and isinstance(held, frozenset) and "administrator" not in held:
            codes = {403}
        elif home_of(email) == "beta":
            codes = {409} if member else {201} if extra != "external_ids" else {201, 409, 422}
        elif extra is not None:
            codes = {422} if extra == "login_method" else {403}  # the identity is not beta's to set
        else:
            codes = {409} if member else {202}
        response = actor.call("POST", "/accounts/beta/users", body)
        self.expect(held, response, "user-manager", *codes)
        if response.status_code == 202:
            self.invitations[email_key(email)] = join_token(email)

    @precondition(lambda self: any(email_key(e) in self.invitations for e in ALPHA_INVITEES))
    @rule(email=st.sampled_from(ALPHA_INVITEES))
    def alpha_person_accepts_betas_invitation(self, email: str) -> None:
        """The invitee signs in as themselves (password, or alpha's own provider) and joins at /join/<token>."""
        token = self.invitations.get(email_key(email))
        if token is None:
            return
        person = self.people[email]
        if person.login_method == "sso":
            browser, response = sso_login(self.alpha_idp, self.a_conn, email, name=person.name)
            assert response.status_code == 302, reason(response)
        else:
            browser = password_browser(email)
        was_open = open_invitation(token) is not None
        response = join(browser, token)
        assert response.status_code == (302 if was_open else 410), (response.status_code, response.content[:400])
        if was_open:
            assert is_member(email, "beta")

    @rule(who=actor_index, email=st.sampled_from(B_TARGETS), op=st.sampled_from(MEMBER_OPS))
    def beta_manages_a_member(self, who: int, email: str, op: tuple[str, Any]) -> None:
        """PATCH (name, login_method, is_active, approval), PUT roles, DELETE; or withdraw an open invitation."""
        actor = self.actor(who)
        held = self.held(actor)
        kind, body = op
        member = is_member(email, "beta")
        uid = user_id(email)
        if kind == "withdraw":
            listed = actor.call("GET", "/accounts/beta/invitations")
            ids = [i["invitation"]["id"] for i in listed.json()] if listed.status_code == 200 else []
            if ids:
                response = actor.call("DELETE", f"/accounts/beta/invitations/{ids[0]}")
                self.expect(held, response, "user-manager", 204)
            return
        if kind == "roles":
            response = actor.call("PUT", f"/accounts/beta/users/{uid}/roles", {"roles": body})
            self.expect(held, response, "user-manager", *({200, 403, 409, 422} if member else {404}))
            return
        guarded = member and self.guards_an_admin(held, email)
        if kind == "delete":
            response = actor.call("DELETE", f"/accounts/beta/users/{uid}")
            self.expect(held, response, "user-manager", *({403} if guarded else {204} if member else {404}))
            return
        if kind == "external-id":
            connection = self.b_conns[1][0] if body == "beta" else self.a_conn
            change = {"external_ids": [{"connection": connection["id"], "external_id": "planted-subject"}]}
            response = actor.call("PATCH", f"/accounts/beta/users/{uid}", change)
            if not member:
                codes = {404}
            elif home_of(email) != "beta":
                codes = {403}  # external IDs are identity: alpha's, or the person's own
            else:
                codes = {200, 403, 404, 409, 422}
            self.expect(held, response, "user-manager", *codes)
            return
        if not member:
            codes = {404}
        elif {"name", "login_method"} & set(body) and home_of(email) != "beta":
            codes = {403}  # the identity is not beta's
        elif guarded and {"name", "login_method", "is_active"} & set(body):
            codes = {403}  # only an administrator deactivates or converts someone holding an admin role
        elif "name" in body and sso_authorization_on("beta"):
            codes = {200, 409}
        else:
            codes = {200}
        response = actor.call("PATCH", f"/accounts/beta/users/{uid}", body)
        self.expect(held, response, "user-manager", *codes)

    # Beta: keys --------------------------------------------------------------------------

    @rule(who=actor_index, which=actor_index, roles=st.sampled_from((None, *KEY_ROLE_SETS)))
    def beta_manages_keys(self, who: int, which: int, roles: list[str] | None) -> None:
        """Create a key with ``roles`` (kept as another actor of beta's), or revoke one (``roles`` None)."""
        actor = self.actor(who)
        held = self.held(actor)
        if roles is None:
            target = self.actor(which)
            if target.kind != "key":
                return
            response = actor.call("DELETE", f"/accounts/beta/api-keys/{target.prefix}")
            self.expect(held, response, "administrator", 404 if target.revoked else 204)
            if response.status_code == 204:
                target.revoked = True
            return
        beyond = isinstance(held, frozenset) and not set(get_catalog().effective(roles)) & ADMIN_ROLES <= held
        response = actor.call("POST", "/accounts/beta/api-keys", {"name": "made by beta", "roles": roles})
        self.expect(held, response, "administrator", 403 if beyond else 201)
        if response.status_code == 201 and len(self.b_actors) < 12:
            made = response.json()
            assert made["account"] == "beta"
            self.b_actors.append(key_actor(f"beta key {made['id']} {roles}", made["key"], roles, made["id"]))

    # Beta: domains, shares and connections ---------------------------------------------------

    @rule(who=actor_index, action=st.sampled_from(BETA_DOMAIN_ACTIONS))
    def beta_domain_action(self, who: int, action: str) -> None:
        actor = self.actor(who)
        held = self.held(actor)
        if action == "offer beta.test to alpha":
            response = actor.call("POST", "/accounts/beta/domains/beta.test/shares", {"account": "alpha"})
            self.expect(held, response, "sso-admin", 409 if self.beta_share else 202)
            if response.status_code == 202:
                self.beta_share = "offered"
        elif action == "revoke beta.test from alpha":
            response = actor.call("DELETE", "/accounts/beta/domains/beta.test/shares/alpha")
            self.expect(held, response, "sso-admin", 204 if self.beta_share else 404)
            if response.status_code == 204:
                self.beta_share = None
        elif action == "accept alpha.test":
            response = actor.call("POST", "/accounts/beta/domain-offers/alpha.test/accept")
            self.expect(held, response, "sso-admin", 200 if self.alpha_share == "offered" else 404)
            if response.status_code == 200:
                self.alpha_share = "active"
        elif action == "decline alpha.test":
            response = actor.call("DELETE", "/accounts/beta/domain-offers/alpha.test")
            self.expect(held, response, "sso-admin", 204 if self.alpha_share == "offered" else 404)
            if response.status_code == 204:
                self.alpha_share = None
        else:  # offer / revoke / claim alpha.test, which beta does not own
            partner = action.rsplit(" ", 1)[-1]
            offered = actor.call("POST", "/accounts/beta/domains/alpha.test/shares", {"account": partner})
            self.expect(held, offered, "sso-admin", 404)
            revoked = actor.call("DELETE", f"/accounts/beta/domains/alpha.test/shares/{partner}")
            self.expect(held, revoked, "sso-admin", 404)
            claimed = actor.call("POST", "/accounts/beta/domains", {"domain": "alpha.test"})
            assert claimed.status_code in (401, 403), (actor.label, claimed.status_code)

    @precondition(lambda self: len(self.b_conns) < 4)
    @rule(
        who=actor_index,
        with_beta=st.booleans(),
        auto=st.booleans(),
        can_login=st.booleans(),
        sso_authorization=st.booleans(),
    )
    def beta_creates_a_connection_for_alphas_domain(
        self, who: int, with_beta: bool, auto: bool, can_login: bool, sso_authorization: bool
    ) -> None:
        actor = self.actor(who)
        held = self.held(actor)
        body = {
            "protocol": "saml", "name": f"Beta IdP #{len(self.b_conns)} for alpha.test",
            "domains": ["alpha.test", *(["beta.test"] if with_beta else [])],
            "auto_provision": auto, "provisioned_users_can_login": auto and can_login, "sso_authorization": sso_authorization,
            "claims": {"role_source": "roles_claim", "roles": "roles"}, **self.beta_idp.connection_settings(),
        }  # fmt: skip
        response = actor.call("POST", "/accounts/beta/connections", body)
        # 403, as for a domain nobody holds: beta learns nothing of which domains alpha has.
        self.expect(held, response, "sso-admin", 201 if self.alpha_share == "active" else 403)
        if response.status_code == 201:
            enabled = actor.call("PATCH", f"/connections/{response.json()['id']}", {"enabled": True})
            assert enabled.status_code == 200, enabled.content
            self.b_conns.append((enabled.json(), True))

    @rule(who=actor_index, which=st.integers(0, 3), change=st.sampled_from(CONNECTION_PATCHES))
    def beta_changes_a_connection(self, who: int, which: int, change: dict[str, Any]) -> None:
        actor = self.actor(who)
        held = self.held(actor)
        connection, _ = self.b_conns[which % len(self.b_conns)]
        response = actor.call("PATCH", f"/connections/{connection['id']}", change)
        self.expect(held, response, "sso-admin", 200, 409, 422)

    # Beta: its providers ---------------------------------------------------------------------

    def _beta_provider_login(
        self,
        connection: dict[str, Any],
        serves_alpha: bool,
        email: str,
        subject: str,
        name: str | None,
        roles: list[str] | None,
        then: tuple[str, ...],
    ) -> None:
        claims = {} if roles is None else {"roles": roles}
        person = self.people.get(email)
        browser, response = sso_login(
            self.beta_idp, connection, email, name=name or (person.name if person else "Someone"),
            subject=email if subject == "email" else subject, **claims,
        )  # fmt: skip
        if home_of(email) == "alpha" and not serves_alpha:
            assert response.status_code != 302, f"{connection['name']} signed in {email} without serving alpha.test"
        if home_of(email) is None:
            assert response.status_code != 302, f"{connection['name']} signed in {email}, whose domain no account owns"
        if response.status_code == 302:
            # Whoever runs beta's provider holds this session from now on: it is one of beta's actors.
            me = browser.get("/api/v1/session").json()
            session = Actor(
                f"session beta's {connection['name']} started for {email}", browser, kind="idp", user_id=me["id"]
            )
            self.b_actors.append(session)
            if then == SECOND_FACTOR:
                self._second_factor(session)
            else:
                self._reach(session, then, A_SSO)

    @rule(
        which=st.integers(0, 4),
        email=st.sampled_from(SSO_EMAILS),
        subject=st.sampled_from(("email", "shared-subject", A_SSO, A_ADMIN)),
        name=st.sampled_from(("Mallory", None)),
        roles=st.sampled_from((None, ["analyst"], ["administrator"])),
        then=FOLLOW_UPS,
    )
    def beta_provider_signs_someone_in(
        self, which: int, email: str, subject: str, name: str | None, roles: list[str] | None, then: tuple[str, ...]
    ) -> None:
        """Any of beta's providers asserts whom it likes, under any subject; the session it gets tries alpha.

        ``which`` 4 answers the AuthnRequest of alpha's own connection with beta's key (a forgery).
        """
        if which == 4:
            _, response = sso_login(
                self.beta_idp,
                self.a_conn,
                email,
                name=name or "Mallory",
                subject=email if subject == "email" else subject,
            )
            assert response.status_code != 302 and "sso.assertion_invalid" in reason(response), (
                email,
                response.status_code,
                reason(response),
            )
            return
        connection, serves_alpha = self.b_conns[which % len(self.b_conns)]
        self._beta_provider_login(connection, serves_alpha, email, subject, name, roles, then)

    @precondition(lambda self: any(serves for _, serves in self.b_conns))
    @rule(
        which=st.integers(0, 3),
        email=st.sampled_from((A_ADMIN, A_BREAKGLASS, A_SSO, A_NEWBIE)),
        name=st.sampled_from(("Mallory", None)),
        roles=st.sampled_from((None, ["administrator"])),
        then=FOLLOW_UPS,
    )
    def beta_provider_signs_in_an_alpha_person_while_shared(
        self, which: int, email: str, name: str | None, roles: list[str] | None, then: tuple[str, ...]
    ) -> None:
        """The shared case: a provider of beta serving alpha.test asserts one of alpha's people."""
        serving = [c for c, serves in self.b_conns if serves]
        self._beta_provider_login(serving[which % len(serving)], True, email, "email", name, roles, then)

    @precondition(lambda self: any(a.kind == "idp" for a in self.b_actors))
    @rule(which=actor_index)
    def beta_provider_session_sets_up_a_second_factor(self, which: int) -> None:
        sessions = [a for a in self.b_actors if a.kind == "idp"]
        self._second_factor(sessions[which % len(sessions)])

    def _second_factor(self, session: Actor) -> None:
        """A session one of beta's providers started turns two-factor sign-in on, with a key beta then knows."""
        browser = session.client
        page = browser.get("/account/totp")
        assert page.status_code < 500, page.content[:500]
        key = re.search(r'Key: <code class="reason">([A-Z2-7]+)</code>', page.content.decode())
        if page.status_code != 200 or key is None:
            return
        code = _totp(key.group(1)).generate(int(time.time())).decode()
        done = browser.post(
            "/account/totp", {"code": code, "csrfmiddlewaretoken": csrf_token_from(page.content.decode())}
        )
        assert done.status_code < 500, done.content[:500]

    # Beta: reaching for alpha ----------------------------------------------------------------

    def _reach(self, actor: Actor, probe: tuple[str, str, Any], victim: str) -> None:
        method, path, body = probe
        if path == "slugs":
            # An account beta has no standing in answers exactly like one that does not exist.
            if Membership.objects.filter(user_id=actor.user_id, account__slug="alpha").exists():
                return  # bob is a member of alpha: he may know it exists
            taken, free = actor.call("GET", "/accounts/alpha/users"), actor.call("GET", "/accounts/gamma/users")
            assert taken.status_code == free.status_code, (actor.label, taken.status_code, free.status_code)
            return
        if path == "sso-admin":
            # The console's connection switch, for a browser session.
            if actor.kind == "key":
                return
            page = actor.client.get("/sso-admin")
            token = actor.client.cookies["csrftoken"].value if "csrftoken" in actor.client.cookies else ""
            response = actor.client.post(
                f"/sso-admin/connections/{self.a_conn['id']}/enabled", {"enabled": "0", "csrfmiddlewaretoken": token}
            )
            assert page.status_code < 500 and response.status_code in (302, 403, 404), (
                actor.label,
                response.status_code,
            )
            if response.status_code == 302:
                assert "/login" in response["Location"], (
                    f"{actor.label} switched alpha's connection",
                    response["Location"],
                )
            return
        outside = next((e for e in (A_SSO, A_PUBLIC, A_ADMIN, A_BREAKGLASS) if not is_member(e, "beta")), None)
        if "{outside}" in path and outside is None:
            return
        path = path.format(victim=user_id(victim), a_conn=self.a_conn["id"], outside=user_id(outside or victim))
        response = actor.call(method, path, body)
        assert response.status_code in (401, 403, 404), (
            f"{actor.label} reached alpha: {method} {path} {body} -> {response.status_code} {response.content[:300]!r}"
        )

    @rule(
        who=actor_index, probe=st.sampled_from(PROBES), victim=st.sampled_from((A_ADMIN, A_SSO, A_PUBLIC, A_BREAKGLASS))
    )
    def beta_reaches_for_alpha(self, who: int, probe: tuple[str, str, Any], victim: str) -> None:
        """alpha's URLs, alpha's connection, alpha's people through beta's URLs: 401/403/404, whoever of beta asks."""
        self._reach(self.actor(who), probe, victim)

    @precondition(lambda self: any(a.kind == "idp" for a in self.b_actors))
    @rule(
        which=actor_index,
        probe=st.sampled_from(PROBES),
        victim=st.sampled_from((A_ADMIN, A_SSO, A_PUBLIC, A_BREAKGLASS)),
    )
    def beta_provider_session_reaches_for_alpha(self, which: int, probe: tuple[str, str, Any], victim: str) -> None:
        """The same, through a session one of beta's providers started."""
        sessions = [a for a in self.b_actors if a.kind == "idp"]
        self._reach(sessions[which % len(sessions)], probe, victim)

    # Alpha's own rules (the only ones allowed to change the model) ---------------------------

    @rule(action=st.sampled_from(ALPHA_DOMAIN_ACTIONS))
    def alpha_domain_action(self, action: str) -> None:
        self.alpha_acted = True
        if action == "offer alpha.test to beta":
            response = self.a_admin.call("POST", "/accounts/alpha/domains/alpha.test/shares", {"account": "beta"})
            assert response.status_code == (409 if self.alpha_share else 202), response.content
            if response.status_code == 202:
                self.alpha_share = "offered"
        elif action == "revoke alpha.test from beta":
            response = self.a_admin.call("DELETE", "/accounts/alpha/domains/alpha.test/shares/beta")
            assert response.status_code == (204 if self.alpha_share else 404), response.content
            if response.status_code == 204:
                self.alpha_share = None
                self.b_conns = [(c, False) for c, _ in self.b_conns]
        elif action == "accept beta.test":
            response = self.a_admin.call("POST", "/accounts/alpha/domain-offers/beta.test/accept")
            assert response.status_code == (200 if self.beta_share == "offered" else 404), response.content
            if response.status_code == 200:
                self.beta_share = "active"
        elif action == "serve beta.test" and self.a_beta_conn is None:
            body = {
                "protocol": "saml",
                "name": "Alpha IdP for beta.test",
                "domains": ["beta.test"],
                **self.alpha_idp.connection_settings(),
            }
            response = self.a_admin.call("POST", "/accounts/alpha/connections", body)
            assert response.status_code == (201 if self.beta_share == "active" else 403), response.content
            if response.status_code == 201:
                self.a_beta_conn = self.a_admin.call(
                    "PATCH", f"/connections/{response.json()['id']}", {"enabled": True}
                ).json()
        elif action == "bob signs in through alpha's provider for beta.test" and self.a_beta_conn is not None:
            _, response = sso_login(self.alpha_idp, self.a_beta_conn, B_BOB, name="Bob")
            if self.beta_share != "active":
                assert response.status_code != 302, "alpha's provider signed bob in after beta revoked the share"

    @rule(email=st.sampled_from((A_ADMIN, A_BREAKGLASS, A_SSO, A_NEWBIE, A_STRANGER)), rename=st.booleans())
    def alpha_provider_signs_in(self, email: str, rename: bool) -> None:
        """Alpha's own provider (auto-provisioning, no roles claim): the home account's login."""
        self.alpha_acted = True
        person = self.people.get(email)
        name = f"Renamed {email.split('@')[0]}" if rename or person is None else person.name
        _, response = sso_login(self.alpha_idp, self.a_conn, email, name=name)
        assert response.status_code == 302, (email, reason(response))
        link = (self.a_conn["id"], email)
        if person is None:
            self.people[email] = Person(email, name, "sso", False, frozenset({"analyst"}), frozenset({link}))
            return
        person.links = person.links | {link}
        break_glass = "sso-admin" in effective(person.roles) and person.member_active and person.approval == "approved"
        if person.login_method == "sso":
            person.name = name
        elif not break_glass:
            person.login_method, person.has_password = "sso", False
        if not person.roles:
            person.roles = frozenset({"analyst"})

    @rule(email=st.sampled_from((A_NEWBIE, A_STRANGER)))
    def alpha_adds_a_person(self, email: str) -> None:
        """Alpha adds an address of its domain directly (201): the identity is as alpha typed it."""
        self.alpha_acted = True
        existing = self.people.get(email)
        name = email.split("@")[0].title()
        response = self.a_admin.call(
            "POST",
            "/accounts/alpha/users",
            {"email": email, "name": name, "roles": ["analyst"], "send_invitation": False},
        )
        assert response.status_code == (409 if existing else 201), response.content
        if existing is None:
            self.people[email] = Person(email, name, "password", False, frozenset({"analyst"}))

    @rule(email=st.sampled_from((A_ADMIN, A_BREAKGLASS, A_SSO, A_PUBLIC, A_NEWBIE)))
    def alpha_renames_a_person(self, email: str) -> None:
        self.alpha_acted = True
        person = self.people.get(email)
        if person is None:
            return
        response = self.a_admin.call("PATCH", f"/accounts/alpha/users/{user_id(email)}", {"name": "Named by alpha"})
        assert response.status_code == (200 if person.home == "alpha" else 403), response.content
        if response.status_code == 200:
            person.name = "Named by alpha"

    # The property ------------------------------------------------------------------------

    @invariant()
    def alpha_sees_its_people_as_it_left_them(self) -> None:
        """After every step: the rows as alpha's own last action left them, and alpha's users list as the model says.

        The list is computed from exactly these rows (and alpha's administrator's
        session), so it is read again whenever any of them changed since it was last read.
        """
        rows = alpha_rows(list(self.people))
        if self.alpha_acted:
            self.rows, self.alpha_acted = rows, False
        else:
            assert rows == self.rows, row_changes(rows, self.rows)
        for person in self.people.values():
            if person.home != "beta":
                row = rows["users"][person.email]
                assert row is not None and is_password_usable(row["password"]) == person.has_password, person.email
        inputs = (
            repr(rows),
            Session.objects.filter(
                session_key=self.a_admin.client.cookies[settings_module.SESSION_COOKIE_NAME].value
            ).exists(),
        )
        if inputs == self.viewed:
            return
        listed = self.a_admin.call("GET", "/accounts/alpha/users")
        assert listed.status_code == 200, (
            "alpha's administrator lost access",
            listed.status_code,
            listed.content[:300],
        )
        got = {seen_key(u): seen(u) for u in listed.json()}
        want = {p.key: p.seen_by_alpha() for p in self.people.values()}
        assert got == want, differences(got, want)
        self.viewed = inputs


@pytest.mark.django_db(transaction=False)
def test_nothing_beta_does_changes_what_alpha_sees_about_its_people() -> None:
    TenantIsolation.world = build_world()
    run_state_machine_as_test(
        TenantIsolation,
        settings=settings(
            max_examples=40,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[
                HealthCheck.too_slow,
                HealthCheck.function_scoped_fixture,
                HealthCheck.filter_too_much,
            ],
        ),
    )


# The attacks, one by one ------------------------------------------------------------------


@pytest.fixture
def world(db: None) -> World:
    return build_world()


def alpha_view(world: World) -> dict[str, dict[str, Any]]:
    admin = Actor("alpha's administrator", browser_with(world.a_admin_cookies), kind="session")
    listed = admin.call("GET", "/accounts/alpha/users")
    assert listed.status_code == 200, listed.content
    return {u["email"]: seen(u) for u in listed.json()}


def totp_key(page: Any) -> str | None:
    found = re.search(r'Key: <code class="reason">([A-Z2-7]+)</code>', page.content.decode())
    return found.group(1) if found else None


def password_login_lands_on(email: str) -> str:
    """Where the password step sends ``email``: "/" when the password alone signs them in."""
    browser = Client(enforce_csrf_checks=True)
    token = csrf_token_from(browser.get("/login").content.decode())
    browser.post("/login", {"email": email, "csrfmiddlewaretoken": token})
    done = browser.post("/login", {"email": email, "password": PASSWORD, "csrfmiddlewaretoken": token})
    assert done.status_code == 302, done.content[:500]
    return str(done["Location"])


def test_beta_cannot_attach_alphas_admin_by_adding_their_email(world: World) -> None:
    """Adding alpha's administrator's address to beta is an invitation (202), never a membership or a say over them."""
    b_admin = Actor("beta's administrator", browser_with(world.b_admin_cookies), kind="session")
    before = alpha_view(world)
    admin = User.objects.get_by_email(A_ADMIN)

    invited = b_admin.call(
        "POST", "/accounts/beta/users", {"email": A_ADMIN, "name": "Mallory", "roles": ["administrator"]}
    )
    assert invited.status_code == 202, invited.content
    assert set(invited.json()) == {
        "status",
        "email",
        "name",
        "roles",
        "projects",
        "invitation",
    }  # nothing about the person
    assert not is_member(A_ADMIN, "beta")
    for method, body in (("GET", None), ("PATCH", {"is_active": False}), ("DELETE", None)):
        assert b_admin.call(method, f"/accounts/beta/users/{admin.pk}", body).status_code == 404
    forced = b_admin.call("POST", "/accounts/beta/users", {"email": A_ADMIN, "login_method": "sso"})
    assert forced.status_code == 422 and forced.json()["field"] == "login_method"
    assert alpha_view(world) == before

    # Positive control: beta adds its own person at once, and alpha's admin joins when they accept, as themselves.
    assert (
        b_admin.call(
            "POST", "/accounts/beta/users", {"email": B_CAROL, "roles": ["analyst"], "send_invitation": False}
        ).status_code
        == 201
    )
    assert join(password_browser(A_ADMIN), join_token(A_ADMIN)).status_code == 302
    assert is_member(A_ADMIN, "beta")
    # From then on beta manages its membership of them, and nothing of their identity.
    assert b_admin.call("PATCH", f"/accounts/beta/users/{admin.pk}", {"name": "Mallory"}).status_code == 403
    assert b_admin.call("PATCH", f"/accounts/beta/users/{admin.pk}", {"login_method": "sso"}).status_code == 403
    elsewhere = {"external_ids": [{"connection": world.b_partner["id"], "external_id": "planted"}]}
    assert b_admin.call("PATCH", f"/accounts/beta/users/{admin.pk}", elsewhere).status_code == 403
    off = b_admin.call("PATCH", f"/accounts/beta/users/{admin.pk}", {"is_active": False})
    assert off.status_code == 200 and off.json()["membership_active"] is False
    assert b_admin.call("DELETE", f"/accounts/beta/users/{admin.pk}").status_code == 204
    assert alpha_view(world) == before
    assert User.objects.get_by_email(A_ADMIN).has_usable_password()


def test_beta_provider_session_for_alphas_admin_speaks_only_for_beta(world: World) -> None:
    """While alpha shares its domain, beta's provider can sign alpha's administrator in: to beta, not as alpha's admin."""
    victim = User.objects.get_by_email(A_SSO)
    before = alpha_view(world)
    browser, response = sso_login(world.beta_idp, world.b_partner, A_ADMIN, name="Mallory")
    assert response.status_code == 302, reason(response)
    assert [a["slug"] for a in browser.get("/api/v1/session").json()["accounts"]] == ["beta"]
    held = Actor("session beta's partner IdP started for alpha's administrator", browser, kind="idp")
    for method, path, body in (
        ("GET", "/accounts/alpha/users", None),
        ("PATCH", f"/accounts/alpha/users/{victim.pk}", {"name": "Renamed by beta"}),
        ("PATCH", f"/accounts/alpha/users/{victim.pk}", {"login_method": "password"}),
        ("POST", "/accounts/alpha/api-keys", {"roles": ["administrator"]}),
        ("PATCH", f"/connections/{world.a_conn['id']}", {"enabled": False}),
        ("DELETE", "/accounts/alpha/domains/alpha.test/shares/beta", None),
    ):
        assert held.call(method, path, body).status_code == 404, (method, path)
    assert alpha_view(world) == before

    # Positive control: the same person signed in with their own password is alpha's administrator.
    own = Actor("alpha's administrator", password_browser(A_ADMIN), kind="session")
    renamed = own.call("PATCH", f"/accounts/alpha/users/{victim.pk}", {"name": "Renamed by alpha"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "Renamed by alpha"


def test_beta_provider_session_cannot_accept_another_accounts_invitation_for_alphas_admin(world: World) -> None:
    """Joining an account is the person's own consent: a session that speaks only for beta cannot give it to gamma."""
    _, secret = ApiKey.issue(name="operator")
    operator = key_actor("operator", secret, [])
    assert operator.call("POST", "/accounts", {"slug": "gamma", "name": "Gamma"}).status_code == 201
    _, gamma_secret = ApiKey.issue(account=Account.objects.get(slug="gamma"), name="gamma automation")
    gamma = key_actor("gamma's key", gamma_secret, ["administrator"])
    assert (
        gamma.call("POST", "/accounts/gamma/users", {"email": A_ADMIN, "roles": ["administrator"]}).status_code == 202
    )
    token = join_token(A_ADMIN)

    browser, response = sso_login(world.beta_idp, world.b_partner, A_ADMIN, name="Mallory")
    assert response.status_code == 302, reason(response)
    join(browser, token)
    assert not is_member(A_ADMIN, "gamma"), (
        "a session beta's provider started accepted gamma's invitation for alpha's admin"
    )
    assert open_invitation(token) is not None  # still the person's to accept

    # Positive control: alpha's administrator, signed in with their own password, accepts it.
    assert join(password_browser(A_ADMIN), token).status_code == 302
    assert is_member(A_ADMIN, "gamma")


def test_beta_provider_session_cannot_turn_on_alphas_admins_second_factor(world: World) -> None:
    """A second factor is part of the identity alpha owns: a session beta's provider started must not enrol one.

    Enrolled, it changes what alpha's admins see (``totp_enabled``) and locks
    alpha's break-glass administrator out of their password sign-in behind a
    code only beta has.
    """
    # Positive control: signed in with their own password, alpha's people turn it on here.
    assert totp_key(password_browser(A_BREAKGLASS).get("/account/totp")) is not None
    before = {email: seen for email, seen in alpha_view(world).items() if email != A_BREAKGLASS}

    browser, response = sso_login(world.beta_idp, world.b_partner, A_ADMIN, name="Mallory")
    assert response.status_code == 302, reason(response)
    page = browser.get("/account/totp")
    key = totp_key(page)
    if key is not None:  # the attack goes through: confirm the factor with beta's copy of the key
        code = _totp(key).generate(int(time.time())).decode()
        browser.post("/account/totp", {"code": code, "csrfmiddlewaretoken": csrf_token_from(page.content.decode())})
    admin = User.objects.get_by_email(A_ADMIN)
    assert (admin.totp_secret_encrypted, admin.totp_confirmed) == ("", False), (
        "beta's provider session enrolled a second factor"
    )
    assert {email: seen for email, seen in alpha_view(world).items() if email != A_BREAKGLASS} == before
    assert password_login_lands_on(A_ADMIN) == "/"  # no code asked: alpha's admin still signs in alone


def test_beta_provider_cannot_shape_an_identity_alpha_adds_later(world: World) -> None:
    """Name and sign-in method are the home account's: beta's provider may not pick them for a new alpha.test address.

    While alpha shares alpha.test, beta's provider signs in a new address and
    so creates its identity, named as beta likes and SSO-only. When alpha then
    adds that address, alpha's administrators should see what alpha set.
    """
    _, response = sso_login(world.beta_idp, world.b_partner, A_NEWBIE, name="Mallory")
    assert response.status_code == 302, reason(response)
    a_admin = Actor("alpha's administrator", browser_with(world.a_admin_cookies), kind="session")
    added = a_admin.call(
        "POST",
        "/accounts/alpha/users",
        {"email": A_NEWBIE, "name": "Newbie", "roles": ["analyst"], "send_invitation": False},
    )
    assert added.status_code == 201, added.content
    # Positive control first: an address beta's provider never saw is added exactly as alpha typed it.
    fresh = a_admin.call(
        "POST",
        "/accounts/alpha/users",
        {"email": A_STRANGER, "name": "Stranger", "roles": ["analyst"], "send_invitation": False},
    )
    assert (fresh.json()["name"], fresh.json()["login_method"]) == ("Stranger", "password")
    assert (added.json()["name"], added.json()["login_method"]) == ("Newbie", "password"), (
        "beta's provider chose this identity"
    )


def test_revoking_the_share_ends_betas_hold_but_not_alphas_links(world: World) -> None:
    """Revocation takes back what beta's provider did with alpha's people, and leaves alpha's own links alone."""
    a_admin = Actor("alpha's administrator", browser_with(world.a_admin_cookies), kind="session")
    browser, response = sso_login(world.beta_idp, world.b_partner, A_SSO, name="Mallory")
    assert response.status_code == 302, reason(response)  # positive control: served while shared
    assert ExternalIdentity.objects.filter(connection_id=world.b_partner["id"], user__email_key=A_SSO).exists()
    before = alpha_view(world)
    assert before[A_SSO]["external_ids"] == [(world.a_conn["id"], A_SSO)]

    assert a_admin.call("DELETE", "/accounts/alpha/domains/alpha.test/shares/beta").status_code == 204
    assert not ExternalIdentity.objects.filter(connection_id=world.b_partner["id"]).exists()
    assert browser.get("/api/v1/session").status_code == 401  # the session beta's provider started has ended
    _, again = sso_login(world.beta_idp, world.b_partner, A_SSO, name="Mallory")
    assert again.status_code != 302 and "sso.email_domain_not_owned" in reason(again)
    assert alpha_view(world) == before
    _, home = sso_login(world.alpha_idp, world.a_conn, A_SSO, name="Sso")
    assert home.status_code == 302, reason(home)  # alpha's own provider still signs them in
