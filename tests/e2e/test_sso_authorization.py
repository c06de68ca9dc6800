"""SSO authorization end to end (seed 002 mapping roles, seed 004 roles claims).

Every test runs once per protocol through the ``sso_driver`` fixture: a real
SAML response or OIDC ID token goes through Vestibule's ACS / callback, and
the outcome is read back the way a downstream application and an
administrator would see it: ``GET /api/v1/session``, the users API and the
audit log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from tests.e2e.conftest import Api
from vestibule.accounts.models import Account
from vestibule.authority.models import ApiKey

ALL_ROLES = sorted(
    [
        "administrator", "analyst", "customer-support", "system-manager", "system-support",
        "user-manager", "sso-admin", "pii-viewer", "report-manager", "report-viewer",
    ]
)  # fmt: skip

# Seed 002's Azure example: department "Finance" is a mapping role.
FINANCE = {
    "name": "Finance",
    "grants": [
        {"scope": "account", "roles": ["analyst", "report-viewer"]},
        {"scope": "project:production", "roles": ["report-manager"]},
    ],
}
# Seed 002's Okta example: the user's division.
OPERATIONS = {
    "name": "Operations",
    "grants": [
        {"scope": "account", "roles": ["customer-support", "pii-viewer"]},
        {"scope": "project:sandbox", "roles": ["system-support"]},
    ],
}
ENGINEERING = {"name": "Engineering", "grants": [{"scope": "account", "roles": ["system-manager", "analyst"]}]}

ROLES_CLAIM = {"role_source": "roles_claim", "roles": "gr4vy_roles"}


class Login:
    """One person signing in through the driver; keeps their browser."""

    def __init__(self, driver: Any, connection: dict[str, Any], email: str) -> None:
        self.driver = driver
        self.connection = connection
        self.email = email

    def __call__(self, **claims: Any) -> tuple[Client, Any]:
        browser = Client()
        response = self.driver.login(
            browser, self.connection, subject=self.email,
            claims={"email": self.email, "name": self.email.split("@")[0].title(), **claims},
        )  # fmt: skip
        return browser, response

    def ok(self, **claims: Any) -> dict[str, Any]:
        browser, response = self(**claims)
        assert response.status_code == 302, response.content.decode()[:3000]
        session = browser.get("/api/v1/session")
        assert session.status_code == 200
        return session.json()

    def refused(self, code: str, **claims: Any) -> Any:
        browser, response = self(**claims)
        assert 400 <= response.status_code < 500, (response.status_code, response.content[:500])
        assert code.encode() in response.content, response.content.decode()[:3000]
        assert browser.get("/api/v1/session").status_code == 401
        return response


def account_of(session: dict[str, Any], slug: str = "acme") -> dict[str, Any]:
    return next(a for a in session["accounts"] if a["slug"] == slug)


def projects_of(entry: dict[str, Any]) -> dict[str, list[str]]:
    return {p["slug"]: p["roles"] for p in entry["projects"]}


def user_by_email(api: Api, email: str, slug: str = "acme") -> dict[str, Any]:
    return next(u for u in api.get(f"/accounts/{slug}/users") if u["email"] == email)


def events(api: Api, code: str, slug: str = "acme") -> list[dict[str, Any]]:
    return api.get(f"/accounts/{slug}/audit-events?code={code}")


@pytest.fixture
def acme(api: Api, make_account: Callable[..., dict[str, Any]]) -> Api:
    make_account("acme")
    return api


@pytest.fixture
def sso(acme: Api, make_connection: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """An enabled, auto-provisioning connection with SSO authorization on (override with fields)."""

    def make(**fields: Any) -> dict[str, Any]:
        base = {"auto_provision": True, "provisioned_users_can_login": True, "sso_authorization": True}
        return make_connection("acme", ("acme.com",), **{**base, **fields})

    return make


def mapping_roles(api: Api, *roles: dict[str, Any]) -> list[dict[str, Any]]:
    return [api.post("/accounts/acme/mapping-roles", r).json() for r in roles]


# Seed 002: mapping roles through the role_mapping claim ------------------------


def test_azure_department_selects_mapping_role(acme, sso, sso_driver):
    """Azure sends ``role_mapping`` = user.department ("Finance"): the Finance mapping role's grants apply."""
    mapping_roles(acme, FINANCE, OPERATIONS)
    alice = Login(sso_driver, sso(), "alice@acme.com")
    session = alice.ok(role_mapping="Finance")
    entry = account_of(session)
    assert entry["roles"] == ["analyst", "report-viewer"]
    # Project roles are effective roles: the account scope applies inside projects too.
    assert projects_of(entry) == {"production": ["analyst", "report-manager", "report-viewer"]}
    user = user_by_email(acme, "alice@acme.com")
    assert user["roles"] == ["analyst", "report-viewer"]
    assert {g["source"] for g in user["grants"]} == {"sso"}
    assert {p["slug"]: p["roles"] for p in user["projects"]} == projects_of(entry)


def test_okta_division_selects_mapping_role(acme, sso, sso_driver):
    """Okta sends ``role_mapping`` = user.division; here under a custom claim name configured on the connection."""
    mapping_roles(acme, FINANCE, OPERATIONS)
    connection = sso(claims={"role_mapping": "division"})
    session = Login(sso_driver, connection, "oscar@acme.com").ok(division="Operations")
    entry = account_of(session)
    assert entry["roles"] == ["customer-support", "pii-viewer"]
    assert projects_of(entry) == {"sandbox": ["customer-support", "pii-viewer", "system-support"]}


def test_multi_valued_role_mapping_grants_the_union(acme, sso, sso_driver):
    """Several role_mapping values (e.g. groups) matching several mapping roles: the union; strangers are ignored."""
    mapping_roles(acme, FINANCE, OPERATIONS)
    session = Login(sso_driver, sso(), "multi@acme.com").ok(role_mapping=["Finance", "Not-A-Mapping", "Operations"])
    entry = account_of(session)
    assert entry["roles"] == ["analyst", "customer-support", "pii-viewer", "report-viewer"]
    assert projects_of(entry) == {
        "production": ["analyst", "customer-support", "pii-viewer", "report-manager", "report-viewer"],
        "sandbox": ["analyst", "customer-support", "pii-viewer", "report-viewer", "system-support"],
    }


def test_rejects_login_without_role_mapping_claim(acme, sso, sso_driver):
    """SSO authorization on and no role_mapping claim: ``sso.role_mapping_missing``, and nobody is provisioned."""
    mapping_roles(acme, FINANCE)
    connection = sso()
    Login(sso_driver, connection, "nomap@acme.com").refused("sso.role_mapping_missing")
    assert acme.get("/accounts/acme/users") == []
    [event] = events(acme, "sso.role_mapping_missing")
    assert event["outcome"] == "failure" and event["subject_email"] == "nomap@acme.com"
    trace = acme.get(f"/accounts/acme/login-traces/{event['trace']}")
    assert trace["failed_step"] == "roles"


def test_rejects_login_with_empty_role_mapping(acme, sso, sso_driver):
    """Azure sends an empty value when user.department is empty: that is a missing claim, not a name."""
    mapping_roles(acme, FINANCE)
    Login(sso_driver, sso(), "blank@acme.com").refused("sso.role_mapping_missing", role_mapping="")


def test_rejects_login_with_unmatched_role_mapping(acme, sso, sso_driver):
    """A role_mapping value naming no mapping role of the account: ``sso.role_mapping_unmatched``."""
    mapping_roles(acme, FINANCE)
    Login(sso_driver, sso(), "marketing@acme.com").refused("sso.role_mapping_unmatched", role_mapping="Marketing")
    assert acme.get("/accounts/acme/users") == []
    [event] = events(acme, "sso.role_mapping_unmatched")
    trace = acme.get(f"/accounts/acme/login-traces/{event['trace']}")
    # The admin sees what was sent and what would have matched.
    detail = str(trace["steps"])
    assert "Marketing" in detail and "Finance" in detail


def test_rejects_mapping_role_of_another_account(acme, sso, sso_driver, make_account):
    """Mapping roles belong to one account: another account's "Finance" never matches here."""
    make_account("globex")
    acme.post("/accounts/globex/mapping-roles", FINANCE)
    Login(sso_driver, sso(), "alice@acme.com").refused("sso.role_mapping_unmatched", role_mapping="Finance")
    # Positive control: the account's own mapping role matches.
    mapping_roles(acme, FINANCE)
    assert account_of(Login(sso_driver, sso(name="second"), "alice@acme.com").ok(role_mapping="Finance"))["roles"]


def test_roles_are_replaced_at_the_next_login(acme, sso, sso_driver):
    """The IdP changes the user's department: the next login replaces every SSO role, project ones included."""
    mapping_roles(acme, FINANCE, ENGINEERING)
    alice = Login(sso_driver, sso(), "alice@acme.com")
    assert projects_of(account_of(alice.ok(role_mapping="Finance"))) == {
        "production": ["analyst", "report-manager", "report-viewer"]
    }
    entry = account_of(alice.ok(role_mapping="Engineering"))
    assert entry["roles"] == ["analyst", "system-manager"]
    assert entry["projects"] == []
    user = user_by_email(acme, "alice@acme.com")
    assert sorted(g["role"] for g in user["grants"]) == ["analyst", "system-manager"]
    assert user["projects"] == []


def test_rejects_manual_roles_surviving_sso_authorization(acme, sso, sso_driver):
    """A user invited as administrator before SSO authorization: the IdP decides all their roles at login.

    Keeping the old manual grants next to the SSO ones would leave
    administrator with someone the identity provider says is an analyst.
    """
    created = acme.post(
        "/accounts/acme/users",
        {"email": "bob@acme.com", "name": "Bob", "roles": ["administrator"], "send_invitation": False,
         "projects": [{"slug": "sandbox", "roles": ["system-manager"]}]},
    ).json()  # fmt: skip
    assert created["roles"] == ALL_ROLES
    mapping_roles(acme, FINANCE)
    entry = account_of(Login(sso_driver, sso(), "bob@acme.com").ok(role_mapping="Finance"))
    assert entry["roles"] == ["analyst", "report-viewer"]
    assert projects_of(entry) == {
        "production": ["analyst", "report-manager", "report-viewer"],
        # The manual project membership stays; its manual role went with the rest.
        "sandbox": ["analyst", "report-viewer"],
    }


def test_sso_managed_roles_cannot_be_edited(acme, sso, sso_driver):
    """PUT …/roles on an SSO-managed user: 409 with an explanation, in every scope of the account."""
    mapping_roles(acme, FINANCE)
    Login(sso_driver, sso(), "alice@acme.com").ok(role_mapping="Finance")
    user = user_by_email(acme, "alice@acme.com")
    for body in (
        {"roles": ["administrator"]},
        {"roles": ["analyst"], "project": "production"},
        {"roles": ["analyst"], "project": "sandbox"},
    ):
        response = acme.put(f"/accounts/acme/users/{user['id']}/roles", body, expect=409)
        detail = response.json()["detail"]
        assert "managed by the identity provider" in detail and "mapping roles" in detail
        assert "turn SSO authorization off" in detail
    assert user_by_email(acme, "alice@acme.com")["roles"] == ["analyst", "report-viewer"]


def test_turning_sso_authorization_off_keeps_roles_and_makes_them_editable(acme, sso, sso_driver):
    mapping_roles(acme, FINANCE)
    connection = sso()
    alice = Login(sso_driver, connection, "alice@acme.com")
    before = account_of(alice.ok(role_mapping="Finance"))
    user = user_by_email(acme, "alice@acme.com")
    acme.put(f"/accounts/acme/users/{user['id']}/roles", {"roles": ["analyst"]}, expect=409)

    acme.patch(f"/connections/{connection['id']}", {"sso_authorization": False})
    assert user_by_email(acme, "alice@acme.com")["roles"] == before["roles"]
    # The next login (no role_mapping needed now) leaves the roles alone.
    assert account_of(alice.ok()) == before
    # Editable again: the PUT replaces the scope's roles, the old SSO grant included.
    out = acme.put(f"/accounts/acme/users/{user['id']}/roles", {"roles": ["customer-support"]}).json()
    assert out["roles"] == ["customer-support"]
    out = acme.put(
        f"/accounts/acme/users/{user['id']}/roles", {"roles": ["system-manager"], "project": "production"}
    ).json()
    assert {p["slug"]: p["roles"] for p in out["projects"]} == {"production": ["customer-support", "system-manager"]}
    assert account_of(alice.ok())["roles"] == ["customer-support"]


def test_mapping_role_rename_and_change_apply_at_next_login(acme, sso, sso_driver):
    """Changing a mapping role affects every user under it at their next login, not before."""
    [finance] = mapping_roles(acme, FINANCE)
    connection = sso()
    alice, carol = (Login(sso_driver, connection, f"{n}@acme.com") for n in ("alice", "carol"))
    alice.ok(role_mapping="Finance")
    carol.ok(role_mapping="Finance")

    acme.patch(
        f"/accounts/acme/mapping-roles/{finance['id']}",
        {"grants": [{"scope": "account", "roles": ["analyst", "pii-viewer"]}]},
    )
    # Not yet: roles change at login.
    assert user_by_email(acme, "carol@acme.com")["roles"] == ["analyst", "report-viewer"]
    for person in (alice, carol):
        entry = account_of(person.ok(role_mapping="Finance"))
        assert entry["roles"] == ["analyst", "pii-viewer"] and entry["projects"] == []

    acme.patch(f"/accounts/acme/mapping-roles/{finance['id']}", {"name": "Finance EMEA"})
    alice.refused("sso.role_mapping_unmatched", role_mapping="Finance")
    assert account_of(alice.ok(role_mapping="Finance EMEA"))["roles"] == ["analyst", "pii-viewer"]


def test_deleted_mapping_role_no_longer_matches(acme, sso, sso_driver):
    [finance] = mapping_roles(acme, FINANCE, ENGINEERING)[:1]
    alice = Login(sso_driver, sso(), "alice@acme.com")
    alice.ok(role_mapping="Finance")
    acme.delete(f"/accounts/acme/mapping-roles/{finance['id']}")
    alice.refused("sso.role_mapping_unmatched", role_mapping="Finance")


# Seed 004: a roles claim checked against the catalog ---------------------------


def test_administrator_in_roles_claim_implies_every_role(acme, sso, sso_driver):
    """``gr4vy_roles`` = [administrator, analyst]: every catalog role is effective."""
    catalog = sorted(r["name"] for r in acme.get("/roles")["roles"])
    assert catalog == ALL_ROLES
    session = Login(sso_driver, sso(claims=ROLES_CLAIM), "root@acme.com").ok(gr4vy_roles=["administrator", "analyst"])
    assert account_of(session)["roles"] == ALL_ROLES
    user = user_by_email(acme, "root@acme.com")
    assert user["roles"] == ALL_ROLES
    # What was granted is what the IdP sent; the rest is implied.
    assert sorted(g["role"] for g in user["grants"]) == ["administrator", "analyst"]


def test_absent_roles_claim_gives_the_default_role(acme, sso, sso_driver):
    session = Login(sso_driver, sso(claims=ROLES_CLAIM), "plain@acme.com").ok()
    assert account_of(session)["roles"] == ["analyst"]


def test_single_valued_roles_claim(acme, sso, sso_driver):
    """A roles claim sent as one plain string (not a list) is one role."""
    session = Login(sso_driver, sso(claims=ROLES_CLAIM), "single@acme.com").ok(gr4vy_roles="user-manager")
    assert account_of(session)["roles"] == ["user-manager"]


def test_multi_valued_roles_claim_with_requirement_met(acme, sso, sso_driver):
    session = Login(sso_driver, sso(claims=ROLES_CLAIM), "cs@acme.com").ok(
        gr4vy_roles=["customer-support", "pii-viewer", "report-viewer", "no-such-role"]
    )
    assert account_of(session)["roles"] == ["customer-support", "pii-viewer", "report-viewer"]


def test_rejects_dependent_role_without_partner_by_default(acme, sso, sso_driver):
    """``pii-viewer`` alone (it needs analyst or customer-support): refused, and nobody is provisioned."""
    Login(sso_driver, sso(claims=ROLES_CLAIM), "pii@acme.com").refused(
        "sso.roles_requirement_not_met", gr4vy_roles=["pii-viewer"]
    )
    assert acme.get("/accounts/acme/users") == []
    [event] = events(acme, "sso.roles_requirement_not_met")
    trace = acme.get(f"/accounts/acme/login-traces/{event['trace']}")
    assert "pii-viewer" in str(trace["steps"]) and "analyst" in str(trace["steps"])


def test_drop_policy_drops_dependent_role_and_audits_it(acme, sso, sso_driver):
    """requirement_policy "drop": the login succeeds without the dependent role, and ``sso.role_dropped`` says so."""
    claims = {**ROLES_CLAIM, "requirement_policy": "drop"}
    person = Login(sso_driver, sso(claims=claims), "pii@acme.com")
    session = person.ok(gr4vy_roles=["pii-viewer", "system-support"])
    assert account_of(session)["roles"] == ["system-support"]
    [event] = events(acme, "sso.role_dropped")
    assert event["subject_email"] == "pii@acme.com" and "pii-viewer" in event["detail"]["role"]
    # Nothing left after dropping: the catalog default, as if no roles were sent.
    assert account_of(person.ok(gr4vy_roles=["pii-viewer"]))["roles"] == ["analyst"]
    assert len(events(acme, "sso.role_dropped")) == 2


def test_rejects_roles_claim_with_only_unknown_values(acme, sso, sso_driver):
    Login(sso_driver, sso(claims=ROLES_CLAIM), "x@acme.com").refused(
        "sso.roles_unmatched", gr4vy_roles=["root", "wheel"]
    )


def test_role_values_translate_idp_groups(acme, sso, sso_driver):
    """IdP group names rarely equal role names: ``role_values`` translates them before the catalog rules."""
    claims = {
        "role_source": "roles_claim",
        "roles": "groups",
        "role_values": {"Acme Analysts": "analyst", "Acme Reporting": "report-viewer", "Acme IT": "administrator"},
    }
    person = Login(sso_driver, sso(claims=claims), "grp@acme.com")
    session = person.ok(groups=["Acme Analysts", "Acme Reporting", "Everyone"])
    assert account_of(session)["roles"] == ["analyst", "report-viewer"]
    # The translation is applied before the requirement check too.
    person.refused("sso.roles_requirement_not_met", groups=["Acme Reporting"])
    # A group name is never taken as a role just because it happens to be one too.
    assert account_of(person.ok(groups=["Acme IT"]))["roles"] == ALL_ROLES


def test_role_values_must_name_catalog_roles(acme, sso, sso_driver):
    connection = sso(claims=ROLES_CLAIM)
    bad = {**ROLES_CLAIM, "role_values": {"Acme IT": "superuser"}}
    response = acme.patch(f"/connections/{connection['id']}", {"claims": bad}, expect=422)
    assert response.json()["field"] == "claims.role_values" and "superuser" in response.json()["detail"]
    acme.patch(f"/connections/{connection['id']}", {"claims": {**bad, "role_values": {"Acme IT": "administrator"}}})


def test_roles_claim_managed_roles_are_not_editable(acme, sso, sso_driver):
    Login(sso_driver, sso(claims=ROLES_CLAIM), "root@acme.com").ok(gr4vy_roles=["administrator"])
    user = user_by_email(acme, "root@acme.com")
    acme.put(f"/accounts/acme/users/{user['id']}/roles", {"roles": ["analyst"]}, expect=409)


# Turning SSO authorization on --------------------------------------------------


def test_turning_on_warns_when_an_sso_admin_would_be_locked_out(acme, sso, sso_driver):
    """The admin's own last login carried no matching role_mapping: enabling authorization warns them."""
    acme.post(
        "/accounts/acme/users",
        {"email": "admin@acme.com", "name": "Admin", "roles": ["sso-admin", "analyst"], "send_invitation": False},
    )
    mapping_roles(acme, FINANCE)
    connection = sso(sso_authorization=False, ignored_emails=[])
    admin = Login(sso_driver, connection, "admin@acme.com")
    admin.ok(role_mapping="Sales")
    out = acme.patch(f"/connections/{connection['id']}", {"sso_authorization": True}).json()
    assert any("admin@acme.com" in w for w in out["warnings"]), out["warnings"]
    [event] = events(acme, "connection.updated")[:1]
    assert event["detail"]["warnings"] == out["warnings"]


def test_turning_on_does_not_warn_when_the_admin_is_covered(acme, sso, sso_driver):
    """Positive control: the admin's last role_mapping matches a mapping role that keeps sso-admin."""
    acme.post(
        "/accounts/acme/users",
        {"email": "admin@acme.com", "name": "Admin", "roles": ["sso-admin", "analyst"], "send_invitation": False},
    )
    mapping_roles(acme, FINANCE, {"name": "IT", "grants": [{"scope": "account", "roles": ["sso-admin", "analyst"]}]})
    connection = sso(sso_authorization=False, ignored_emails=[])
    Login(sso_driver, connection, "admin@acme.com").ok(role_mapping="IT")
    assert acme.patch(f"/connections/{connection['id']}", {"sso_authorization": True}).json()["warnings"] == []


def test_turning_on_warns_when_the_matching_mapping_role_drops_sso_admin(acme, sso, sso_driver):
    """Matching is not enough: a mapping role without sso-admin would strip the admin of it at the next login."""
    acme.post(
        "/accounts/acme/users",
        {"email": "admin@acme.com", "name": "Admin", "roles": ["sso-admin", "analyst"], "send_invitation": False},
    )
    mapping_roles(acme, FINANCE)
    connection = sso(sso_authorization=False, ignored_emails=[])
    Login(sso_driver, connection, "admin@acme.com").ok(role_mapping="Finance")
    warnings = acme.patch(f"/connections/{connection['id']}", {"sso_authorization": True}).json()["warnings"]
    assert any("admin@acme.com" in w and "sso-admin" in w for w in warnings), warnings


def test_account_key_of_another_account_cannot_touch_authorization(acme, sso, sso_driver, make_account):
    """API keys are the administrators' credentials: only the account's own (or an operator) key manages it."""
    make_account("globex")
    connection = sso(sso_authorization=False)
    _, globex_key = ApiKey.issue(account=Account.objects.get(slug="globex"), name="globex admin")
    _, acme_key = ApiKey.issue(account=Account.objects.get(slug="acme"), name="acme admin")
    globex, own = Api(globex_key), Api(acme_key)
    globex.patch(f"/connections/{connection['id']}", {"sso_authorization": True}, expect=404)
    globex.post("/accounts/acme/mapping-roles", FINANCE, expect=404)
    globex.get("/accounts/acme/mapping-roles", expect=404)
    # Positive control: the account's own key acts as its administrator.
    own.post("/accounts/acme/mapping-roles", FINANCE)
    assert (
        own.patch(f"/connections/{connection['id']}", {"sso_authorization": True}).json()["sso_authorization"] is True
    )
