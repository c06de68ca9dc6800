"""Identity ownership through real SSO logins (DESIGN "Identity ownership", "Login" step 3; seeds 000, 004).

Regression tests of the security review's SSO findings, each run through SAML
and OIDC with a real peer (``sso_driver``), each asserting the victim's end
state — the person's user row (email, login method, password hash, TOTP),
their external-ID links and their sessions — beside a positive control:

- High, a revoked domain share kept its hold: the former partner's IdP kept
  signing in as the owner's people through the (connection, subject) link it
  had made, and "followed" a new asserted address, renaming the owner's person
  into the partner's domain.
- High, a sandbox share converted production's break-glass administrator:
  one SSO login through the sandbox's connection made them SSO-only and
  purged their password.

And the two-account scenario of seeds 000 and 004: production ``acme`` and its
separate ``acme-sandbox`` account, one person in both.

Two tests at the end go beyond the review's list: a login through a
connection serving a *shared* domain must not carry the person's powers in
the owner's account, and an account's IdP must not mint the operator's
session.

Every act of an administrator goes through the admin API with the key of the
account concerned (the operator only creates accounts, claims domains and
issues the first keys); giving a person a password goes through the ORM, as
after accepting an invitation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from tests.e2e.conftest import Api
from tests.e2e.policy_support import (  # noqa: F401 (fresh_counters, reuse_sp_key_pairs are autouse fixtures)
    PASSWORD,
    assert_refused,
    assert_signed_in,
    audit,
    claims,
    fresh_counters,
    login_step,
    password_login,
    reuse_sp_key_pairs,
    signed_out,
)
from vestibule.accounts.models import Account, Membership, User
from vestibule.connections.models import ExternalIdentity
from vestibule.login.models import SignInSession

pytestmark = pytest.mark.django_db

IDENTITY_FIELDS = (
    "email",
    "name",
    "login_method",
    "password",
    "password_changed_at",
    "is_active",
    "is_operator",
    "totp_secret_encrypted",
    "totp_confirmed",
)


def identity(email: str) -> dict[str, Any]:
    return User.objects.filter(email_key=email).values(*IDENTITY_FIELDS).get()


def identity_of(pk: int) -> dict[str, Any]:
    return User.objects.filter(pk=pk).values(*IDENTITY_FIELDS).get()


def links(user_pk: int) -> list[tuple[str, str]]:
    return sorted(
        (str(c), e)
        for c, e in ExternalIdentity.objects.filter(user_id=user_pk).values_list("connection_id", "external_id")
    )


def account_slugs(me: dict[str, Any]) -> list[str]:
    return [a["slug"] for a in me["accounts"]]


def key_of(api: Api, account: str, *roles: str) -> Api:
    """A key of ``account`` holding ``roles``, issued through the API by the operator."""
    created = api.post(
        f"/accounts/{account}/api-keys", {"name": f"{account} admin", "roles": list(roles) or ["administrator"]}
    ).json()
    return Api(created["key"])


def create_connection(
    tenant: Api, account: str, driver: Any, domains: tuple[str, ...], **fields: Any
) -> dict[str, Any]:
    """The account's own sso-admin creates and enables a connection of the driver's protocol."""
    payload = {"protocol": driver.protocol, "name": f"{account} {driver.protocol} IdP", "domains": list(domains)}
    payload.update(driver.connection_settings())
    payload.update(fields)
    connection = tenant.post(f"/accounts/{account}/connections", payload).json()
    return tenant.patch(f"/connections/{connection['id']}", {"enabled": True}).json()


def add_person(tenant: Api, account: str, email: str, roles: list[str], *, password: str | None = PASSWORD) -> int:
    """The home account adds one of its people directly (201), who then sets a password."""
    body = {"email": email, "name": email.split("@")[0].title(), "roles": roles, "send_invitation": False}
    user_id: int = tenant.post(f"/accounts/{account}/users", body, expect=201).json()["id"]
    if password is not None:
        row = User.objects.get(pk=user_id)
        row.set_password(password)
        row.save()
    return user_id


def share(owner: Api, owner_slug: str, target: Api, target_slug: str, domain: str) -> None:
    """The owner offers (202), the target accepts: the only way a domain gets shared without the operator."""
    offer = owner.post(f"/accounts/{owner_slug}/domains/{domain}/shares", {"account": target_slug}, expect=202).json()
    assert offer["status"] == "offered"
    target.post(f"/accounts/{target_slug}/domain-offers/{domain}/accept", {}, expect=200)


# A partner sharing the owner's domain ----------------------------------------------------------


@pytest.fixture
def partner_share(api: Api, make_account: Callable[..., Any], sso_driver: Any) -> dict[str, Any]:
    """acme owns acme.test (its own IdP, member jane); partner owns partner.test and accepted a share of acme.test."""
    make_account("acme")
    make_account("partner", projects=())
    api.post("/accounts/acme/domains", {"domain": "acme.test"})
    api.post("/accounts/partner/domains", {"domain": "partner.test"})
    acme, partner = key_of(api, "acme"), key_of(api, "partner", "sso-admin")
    owner_connection = create_connection(acme, "acme", sso_driver, ("acme.test",), name="Acme IdP")
    jane = add_person(acme, "acme", "jane@acme.test", ["analyst"])
    share(acme, "acme", partner, "partner", "acme.test")
    partner_connection = create_connection(
        partner,
        "partner",
        sso_driver,
        ("acme.test", "partner.test"),
        name="Partner IdP",
        auto_provision=True,
        provisioned_users_can_login=True,
    )
    return {
        "acme": acme,
        "partner": partner,
        "owner_connection": owner_connection,
        "partner_connection": partner_connection,
        "jane": jane,
    }


def test_revoked_share_ends_the_former_partners_hold_on_the_owners_people(
    api: Api, partner_share: dict[str, Any], sso_driver: Any
) -> None:
    s = partner_share
    owner_conn, partner_conn, jane = s["owner_connection"], s["partner_connection"], s["jane"]
    # jane signs in through her own organization's IdP (which makes her SSO-only, as home connections do).
    owner_browser = Client()
    assert_signed_in(
        sso_driver.login(owner_browser, owner_conn, subject="a-jane", claims=claims("jane@acme.test", "Jane")),
        owner_browser,
        "jane@acme.test",
    )
    # Positive control: while the share lasts, the partner's IdP signs jane into the partner's account.
    partner_browser = Client()
    me = assert_signed_in(
        sso_driver.login(partner_browser, partner_conn, subject="p-jane", claims=claims("jane@acme.test", "Jane")),
        partner_browser,
        "jane@acme.test",
    )
    assert "partner" in account_slugs(me)
    assert (partner_conn["id"], "p-jane") in links(jane)
    assert SignInSession.objects.filter(user_id=jane, connection_id=partner_conn["id"]).exists()
    before = identity_of(jane)

    s["acme"].delete("/accounts/acme/domains/acme.test/shares/partner")

    # The link the partner's IdP made is gone, and the session it started has ended.
    assert links(jane) == [(owner_conn["id"], "a-jane")]
    assert signed_out(partner_browser)
    assert not SignInSession.objects.filter(user_id=jane, connection_id=partner_conn["id"]).exists()
    assert s["partner"].get(f"/connections/{partner_conn['id']}")["domains"] == ["partner.test"]
    assert s["partner"].get("/accounts/partner/domains")["shared_with_this_account"] == []
    # The owner's own session through its own IdP is untouched.
    assert owner_browser.get("/api/v1/session").json()["email"] == "jane@acme.test"

    # The partner's IdP can no longer sign jane in, under any subject.
    for subject in ("p-jane", "jane@acme.test"):
        browser = Client()
        response = sso_driver.login(browser, partner_conn, subject=subject, claims=claims("jane@acme.test", "Jane"))
        assert_refused(response, "sso.email_domain_not_owned", api, "partner", status=403)
        assert signed_out(browser)
    assert identity_of(jane) == before
    assert links(jane) == [(owner_conn["id"], "a-jane")]

    # Positive control: the owner's own connection still signs jane in.
    again = Client()
    me = assert_signed_in(
        sso_driver.login(again, owner_conn, subject="a-jane", claims=claims("jane@acme.test", "Jane")),
        again,
        "jane@acme.test",
    )
    assert "acme" in account_slugs(me)


def test_partner_cannot_rename_the_owners_person_into_its_own_domain(
    api: Api, partner_share: dict[str, Any], sso_driver: Any
) -> None:
    s = partner_share
    owner_conn, partner_conn, jane = s["owner_connection"], s["partner_connection"], s["jane"]
    browser = Client()
    assert_signed_in(
        sso_driver.login(browser, partner_conn, subject="p-jane", claims=claims("jane@acme.test", "Jane")), browser
    )
    before = identity_of(jane)

    # While the share lasts: the partner's IdP says subject p-jane is now jane@partner.test.
    renamed = sso_driver.login(Client(), partner_conn, subject="p-jane", claims=claims("jane@partner.test", "Jane"))
    assert_refused(renamed, "sso.email_change_refused", api, "partner")
    assert identity_of(jane) == before and identity_of(jane)["email"] == "jane@acme.test"

    # After the revocation: the same attempt reaches nobody of acme's.
    s["acme"].delete("/accounts/acme/domains/acme.test/shares/partner")
    after = Client()
    response = sso_driver.login(after, partner_conn, subject="p-jane", claims=claims("jane@partner.test", "Jane"))
    if response.status_code == 302:
        # Whoever that is at partner.test, it is not acme's jane.
        assert after.get("/api/v1/session").json()["email"] == "jane@partner.test"
        assert User.objects.get(email_key="jane@partner.test").pk != jane
    assert identity_of(jane) == before and identity_of(jane)["email"] == "jane@acme.test"
    assert all(conn != partner_conn["id"] for conn, _ in links(jane))

    # Positive control: jane's own IdP still finds her under her address.
    own = Client()
    assert_signed_in(
        sso_driver.login(own, owner_conn, subject="a-jane", claims=claims("jane@acme.test", "Jane")),
        own,
        "jane@acme.test",
    )


# Sandbox and production (seeds 000, 004) -----------------------------------------------------------


@pytest.fixture
def sandbox(api: Api, make_account: Callable[..., Any], sso_driver: Any) -> dict[str, Any]:
    """acme (production; owns acme.test) and acme-sandbox, to which acme shared acme.test.

    acme has its own connection and a break-glass administrator with a
    password; the sandbox created its own auto-provisioning connection for
    acme.test once it accepted the share.
    """
    make_account("acme")
    make_account("acme-sandbox", projects=("sandbox",))
    api.post("/accounts/acme/domains", {"domain": "acme.test"})
    acme, sandbox_key = key_of(api, "acme"), key_of(api, "acme-sandbox")
    production = create_connection(
        acme, "acme", sso_driver, ("acme.test",), name="Production IdP", linked_projects=["production"]
    )
    admin = add_person(acme, "acme", "admin@acme.test", ["administrator"])
    # Before the share: the sandbox cannot serve acme.test at all.
    body = {
        "protocol": sso_driver.protocol,
        "name": "Sandbox IdP",
        "domains": ["acme.test"],
        **sso_driver.connection_settings(),
    }
    assert sandbox_key.post("/accounts/acme-sandbox/connections", body, expect=403).json()["field"] == "domains"
    share(acme, "acme", sandbox_key, "acme-sandbox", "acme.test")
    sandbox_connection = create_connection(
        sandbox_key,
        "acme-sandbox",
        sso_driver,
        ("acme.test",),
        name="Sandbox IdP",
        auto_provision=True,
        provisioned_users_can_login=True,
        linked_projects=["sandbox"],
    )
    return {
        "acme": acme,
        "sandbox": sandbox_key,
        "production": production,
        "sandbox_connection": sandbox_connection,
        "admin": admin,
    }


def test_sandbox_share_does_not_convert_productions_break_glass_admin(
    api: Api, sandbox: dict[str, Any], sso_driver: Any
) -> None:
    admin = sandbox["admin"]
    bob = add_person(sandbox["acme"], "acme", "bob@acme.test", ["analyst"])
    before = identity_of(admin)

    # /login: break-glass is judged in the home account, for every connection serving the domain.
    routed = login_step(Client(), "admin@acme.test")
    assert routed.status_code == 200 and b'name="password"' in routed.content
    assert b"Multiple SSO providers" in login_step(Client(), "bob@acme.test").content  # both IdPs serve everyone else

    # The sandbox's sign-in link, bypassing /login: access to the sandbox, and nothing else changes.
    browser = Client()
    me = assert_signed_in(
        sso_driver.login(
            browser, sandbox["sandbox_connection"], subject="admin@acme.test", claims=claims("admin@acme.test", "Admin")
        ),
        browser,
        "admin@acme.test",
    )
    assert "acme-sandbox" in account_slugs(me) and me["login_method"] == "password"
    assert identity_of(admin) == before  # login method, password hash, password age, TOTP
    assert Membership.objects.filter(user_id=admin, account__slug="acme-sandbox").exists()
    assert password_login(Client(), "admin@acme.test").status_code == 302

    # Positive control: production's own connection converts an ordinary acme person.
    bob_browser = Client()
    assert_signed_in(
        sso_driver.login(
            bob_browser, sandbox["production"], subject="bob@acme.test", claims=claims("bob@acme.test", "Bob")
        ),
        bob_browser,
    )
    converted = User.objects.get(pk=bob)
    assert converted.login_method == "sso" and not converted.has_usable_password()
    assert audit(api, "acme", "sso.user_upgraded")[0]["subject_email"] == "bob@acme.test"
    assert audit(api, "acme-sandbox", "sso.user_upgraded") == []


def test_sandbox_and_production_scenario(api: Api, sandbox: dict[str, Any], sso_driver: Any) -> None:
    """Seeds 000 and 004 without the ``+sandbox`` workaround: one person, two accounts, two IdPs."""
    acme = sandbox["acme"]
    production, sandbox_connection, admin = sandbox["production"], sandbox["sandbox_connection"], sandbox["admin"]
    jane = add_person(acme, "acme", "jane@acme.test", ["analyst"])
    admin_before = identity_of(admin)
    jane_before = identity_of(jane)

    def sso(connection: dict[str, Any], email: str, subject: str | None = None) -> tuple[Client, dict[str, Any]]:
        browser = Client()
        response = sso_driver.login(
            browser, connection, subject=subject or email, claims=claims(email, email.split("@")[0].title())
        )
        return browser, assert_signed_in(response, browser, email)

    # jane through the sandbox IdP: she joins acme-sandbox (auto-provisioned); still a password user at home.
    # The sandbox's provider speaks for the sandbox only: that session sees acme-sandbox, not production.
    sandbox_browser, me = sso(sandbox_connection, "jane@acme.test")
    assert set(account_slugs(me)) == {"acme-sandbox"}
    assert sorted(Membership.objects.filter(user_id=jane).values_list("account__slug", flat=True)) == [
        "acme",
        "acme-sandbox",
    ]
    assert [p["slug"] for a in me["accounts"] if a["slug"] == "acme-sandbox" for p in a["projects"]] == ["sandbox"]
    assert identity_of(jane) == jane_before
    assert b"Multiple SSO providers" in login_step(Client(), "jane@acme.test").content

    # jane through production's IdP: access to acme, and now SSO-only (her home's decision).
    _, me = sso(production, "jane@acme.test")
    assert "acme" in account_slugs(me)
    assert [p["slug"] for a in me["accounts"] if a["slug"] == "acme" for p in a["projects"]] == ["production"]
    converted = User.objects.get(pk=jane)
    assert (
        converted.login_method == "sso"
        and not converted.has_usable_password()
        and converted.password_changed_at is None
    )
    assert password_login(Client(), "jane@acme.test").status_code != 302

    # Both IdPs keep signing her in, each with access to its own account.
    _, me = sso(sandbox_connection, "jane@acme.test")
    assert "acme-sandbox" in account_slugs(me)
    assert sorted(str(c) for c, _ in links(jane)) == sorted([production["id"], sandbox_connection["id"]])
    assert sorted(Membership.objects.filter(user_id=jane).values_list("account__slug", flat=True)) == [
        "acme",
        "acme-sandbox",
    ]

    # The break-glass administrator stays a password login through both IdPs.
    routed = login_step(Client(), "admin@acme.test")
    assert routed.status_code == 200 and b'name="password"' in routed.content
    sso(sandbox_connection, "admin@acme.test")
    sso(production, "admin@acme.test")
    assert identity_of(admin) == admin_before
    admin_browser = Client()
    assert password_login(admin_browser, "admin@acme.test").status_code == 302
    assert "acme" in account_slugs(admin_browser.get("/api/v1/session").json())

    # acme ends the share: the sandbox IdP no longer signs jane in, and her sandbox session ends.
    acme.delete("/accounts/acme/domains/acme.test/shares/acme-sandbox")
    assert signed_out(sandbox_browser)
    refused = sso_driver.login(
        Client(), sandbox_connection, subject="jane@acme.test", claims=claims("jane@acme.test", "Jane")
    )
    assert_refused(refused, "sso.email_domain_not_owned", api, "acme-sandbox", status=403)
    assert [str(c) for c, _ in links(jane)] == [production["id"]]
    # Production is unaffected: jane through production, the administrator with the password.
    sso(production, "jane@acme.test")
    assert password_login(Client(), "admin@acme.test").status_code == 302
    assert identity_of(admin) == admin_before


# Beyond the review's list -----------------------------------------------------------------------


def test_operators_home_idp_cannot_mint_an_operator_session(
    api: Api, make_account: Callable[..., Any], sso_driver: Any
) -> None:
    """The operator whose email domain an account owns (as ``vestibule demo`` seeds ``admin@acme.test``).

    acme's IdP is acme's to run, not the deployment's: a login it asserts for
    the operator's address must not give that browser the operator's powers
    over every account, nor change the operator's identity.
    """
    make_account("acme")
    api.post("/accounts/acme/domains", {"domain": "acme.test"})
    acme = key_of(api, "acme")
    connection = create_connection(acme, "acme", sso_driver, ("acme.test",))
    root = add_person(acme, "acme", "root@acme.test", ["administrator"])
    User.objects.filter(pk=root).update(is_operator=True)
    before = identity_of(root)

    browser = Client()
    sso_driver.login(browser, connection, subject="root@acme.test", claims=claims("root@acme.test", "Root"))
    minted = browser.post(
        "/api/v1/accounts", {"slug": "minted", "name": "Minted by acme's IdP"}, content_type="application/json"
    )
    assert minted.status_code != 201, minted.content
    assert not Account.objects.filter(slug="minted").exists()
    assert identity_of(root) == before

    # Positive control: the operator, signed in with their own password, has the operator's powers.
    own = Client()
    assert password_login(own, "root@acme.test").status_code == 302
    made = own.post(
        "/api/v1/accounts", {"slug": "made", "name": "Made by the operator"}, content_type="application/json"
    )
    assert made.status_code == 201, made.content


def test_sandbox_idp_session_cannot_act_as_productions_administrator(
    api: Api, sandbox: dict[str, Any], sso_driver: Any
) -> None:
    """A shared domain's connection "only lets the person into that account" (signin.pipeline).

    The sandbox's IdP may sign production's administrator into the sandbox;
    the browser it signs in must not wield that person's production
    administrator role (keys, people, connections of acme).
    """
    from vestibule.authority.models import ApiKey

    keys_before = ApiKey.objects.count()
    browser = Client()
    response = sso_driver.login(
        browser, sandbox["sandbox_connection"], subject="admin@acme.test", claims=claims("admin@acme.test", "Admin")
    )
    me = assert_signed_in(response, browser, "admin@acme.test")
    assert "acme-sandbox" in account_slugs(me)
    minted = browser.post(
        "/api/v1/accounts/acme/api-keys", {"name": "from the sandbox IdP"}, content_type="application/json"
    )
    assert minted.status_code in (401, 403, 404), minted.content
    assert ApiKey.objects.count() == keys_before
    # Positive control: the administrator's own password sign-in acts in production.
    own = Client()
    assert password_login(own, "admin@acme.test").status_code == 302
    made = own.post("/api/v1/accounts/acme/api-keys", {"name": "by the administrator"}, content_type="application/json")
    assert made.status_code == 201, made.content


def test_invitation_is_accepted_by_a_login_through_the_inviting_accounts_own_provider(
    api: Api, sandbox: dict[str, Any], sso_driver: Any
) -> None:
    """A sandbox without auto-provisioning lets in only the people it invited; its provider proves who they are."""
    sandbox_key, connection = sandbox["sandbox"], sandbox["sandbox_connection"]
    sandbox_key.patch(f"/connections/{connection['id']}", {"auto_provision": False})
    jane = add_person(sandbox["acme"], "acme", "jane@acme.test", ["analyst"])

    # Not invited: refused, and no membership appears.
    refused = sso_driver.login(Client(), connection, subject="jane@acme.test", claims=claims("jane@acme.test", "Jane"))
    assert_refused(refused, "sso.provisioning_disabled", api, "acme-sandbox", status=403)
    assert not Membership.objects.filter(user_id=jane, account__slug="acme-sandbox").exists()

    invited = sandbox_key.post(
        "/accounts/acme-sandbox/users", {"email": "jane@acme.test", "roles": ["report-viewer", "analyst"]}, expect=202
    )
    assert invited.json()["status"] == "invited"
    browser = Client()
    me = assert_signed_in(
        sso_driver.login(browser, connection, subject="jane@acme.test", claims=claims("jane@acme.test", "Jane")),
        browser,
        "jane@acme.test",
    )
    assert account_slugs(me) == ["acme-sandbox"]
    roles = next(a["roles"] for a in me["accounts"] if a["slug"] == "acme-sandbox")
    assert {"analyst", "report-viewer"} <= set(roles)
    assert sandbox_key.get("/accounts/acme-sandbox/invitations") == []
    # Her identity is untouched: still acme's password person.
    assert User.objects.get(pk=jane).login_method == "password"


@pytest.mark.parametrize("sso_driver", ["oidc"], indirect=True)  # connect organization is an OIDC flow
def test_sandbox_idp_session_cannot_connect_productions_organization(
    api: Api, sandbox: dict[str, Any], sso_driver: Any
) -> None:
    """'Connect organization' binds production's connection: an sso-admin signed in through the sandbox's provider may not start it."""
    from vestibule.connections.models import Connection, PendingLogin

    admin, production = sandbox["admin"], sandbox["production"]
    browser = Client()
    assert_signed_in(
        sso_driver.login(
            browser, sandbox["sandbox_connection"], subject="admin@acme.test", claims=claims("admin@acme.test", "Admin")
        ),
        browser,
        "admin@acme.test",
    )
    before = Connection.objects.filter(pk=production["id"]).values("external_tenant_id", "tenant_verified_at").get()
    assert browser.get(f"/sso/oidc/{production['id']}/connect").status_code == 403
    assert browser.post(f"/sso/oidc/{production['id']}/connect", {}).status_code == 403
    assert not PendingLogin.objects.filter(purpose=PendingLogin.Purpose.CONNECT_ORGANIZATION).exists()
    assert (
        Connection.objects.filter(pk=production["id"]).values("external_tenant_id", "tenant_verified_at").get()
        == before
    )
    # Positive control: the same administrator signed in with their password sees the confirmation page.
    own = Client()
    assert password_login(own, "admin@acme.test").status_code == 302
    assert own.get(f"/sso/oidc/{production['id']}/connect").status_code == 200
    assert User.objects.get(pk=admin).login_method == "password"


def test_sandbox_idp_cannot_catch_people_production_keeps_on_passwords(
    api: Api, sandbox: dict[str, Any], sso_driver: Any
) -> None:
    """The owner's ignored emails hold for every provider serving its domain, a sandbox's included."""
    acme, production = sandbox["acme"], sandbox["production"]
    carl = add_person(acme, "acme", "carl@acme.test", ["analyst"])
    acme.patch(f"/connections/{production['id']}", {"ignored_emails": ["carl@acme.test"]})
    routed = login_step(Client(), "carl@acme.test")
    assert routed.status_code == 200 and b'name="password"' in routed.content
    assert password_login(Client(), "carl@acme.test").status_code == 302
    assert User.objects.get(pk=carl).login_method == "password"
    # The sandbox's own ignored list removes only the sandbox's provider.
    sandbox["sandbox"].patch(
        f"/connections/{sandbox['sandbox_connection']['id']}", {"ignored_emails": ["dana@acme.test"]}
    )
    add_person(acme, "acme", "dana@acme.test", ["analyst"])
    only_production = login_step(Client(), "dana@acme.test")
    assert only_production.status_code == 302 and production["id"] in only_production["Location"]
    # Positive control: everyone else still chooses between both providers.
    assert b"Multiple SSO providers" in login_step(Client(), "erin@acme.test").content


def test_partner_sees_only_its_own_connections_of_a_shared_domain(api: Api, sandbox: dict[str, Any]) -> None:
    listed = sandbox["sandbox"].get("/accounts/acme-sandbox/domains")["shared_with_this_account"]
    assert [d["domain"] for d in listed] == ["acme.test"]
    assert listed[0]["connections"] == [sandbox["sandbox_connection"]["id"]]
    owner_view = sandbox["acme"].get("/accounts/acme/domains")["items"][0]
    assert set(owner_view["connections"]) == {sandbox["production"]["id"], sandbox["sandbox_connection"]["id"]}
