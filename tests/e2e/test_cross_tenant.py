"""Cross-tenant isolation (DESIGN "Login" step 3, STYLE rule 15).

An identity provider configured for one account can never sign in, create,
link or rename a user whose email domain belongs to another account, unless
that account shared the domain explicitly; and the races that decide who owns
a domain or who a new user is resolve to exactly one winner.

The race tests need real concurrent transactions with row locks, so they run
on PostgreSQL only (CI runs the suite there); SQLite serializes every writer
and cannot show the interleaving.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection as db_connection
from django.db import connections, transaction
from django.test import Client, RequestFactory

from tests.e2e.conftest import Api
from tests.e2e.policy_support import (  # noqa: F401 (fresh_counters, reuse_sp_key_pairs are autouse fixtures)
    assert_refused,
    assert_signed_in,
    claims,
    fresh_counters,
    invite,
    login_step,
    reuse_sp_key_pairs,
)
from vestibule.accounts.models import Membership, ProjectAccess, RoleGrant, User
from vestibule.connections.models import Connection, ConnectionDomain, DomainClaim, DomainShare, ExternalIdentity
from vestibule.signin.pipeline import VerifiedSubject, run_pipeline
from vestibule.signin.trace import TraceRecorder

SNAPSHOT_MODELS = (
    User,
    Membership,
    ProjectAccess,
    RoleGrant,
    ExternalIdentity,
    DomainClaim,
    DomainShare,
    ConnectionDomain,
)


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every identity and access table, for "changes nothing" assertions."""
    return {m.__name__: list(m.objects.order_by("pk").values_list()) for m in SNAPSHOT_MODELS}


@pytest.fixture
def two_tenants(api, make_account, make_connection):
    """alpha (alpha.com, auto-provisioning IdP) and beta (beta.com, with member bob@beta.com)."""
    make_account("alpha")
    make_account("beta")
    alpha = make_connection(
        "alpha", ("alpha.com",), auto_provision=True, provisioned_users_can_login=True, linked_projects=["production"]
    )
    beta = make_connection("beta", ("beta.com",))
    bob = invite(api, "beta", "bob@beta.com", roles=["analyst"])
    return {"alpha": alpha, "beta": beta, "bob": bob}


# Domain ownership ------------------------------------------------------------


@pytest.mark.django_db
def test_rejects_idp_asserting_another_accounts_domain(api, two_tenants, sso_driver):
    """alpha's IdP says "this is bob@beta.com": refused, and not one row anywhere changes."""
    before = snapshot()
    browser = Client()
    response = sso_driver.login(
        browser, two_tenants["alpha"], subject="bob@beta.com", claims=claims("bob@beta.com", "Bob")
    )
    event = assert_refused(response, "sso.email_domain_not_owned", api, "alpha", status=403)
    assert event["connection"] == two_tenants["alpha"]["id"]
    assert browser.get("/api/v1/session").status_code == 401
    assert snapshot() == before
    assert api.get("/accounts/beta/audit-events?code=sso.") == []  # nothing leaks into beta's log either


@pytest.mark.django_db
def test_rejects_linked_subject_renamed_into_another_accounts_domain(api, two_tenants, sso_driver):
    """The email-change path (same subject, new address) must not become a way into beta's user."""
    browser = Client()
    assert_signed_in(
        sso_driver.login(browser, two_tenants["alpha"], subject="s-carol", claims=claims("carol@alpha.com")), browser
    )
    before = snapshot()
    response = sso_driver.login(Client(), two_tenants["alpha"], subject="s-carol", claims=claims("bob@beta.com"))
    assert_refused(response, "sso.email_domain_not_owned", api, "alpha")
    assert snapshot() == before


@pytest.mark.django_db
def test_rejects_idp_asserting_an_unclaimed_domain(api, two_tenants, sso_driver):
    before = snapshot()
    response = sso_driver.login(Client(), two_tenants["alpha"], subject="x", claims=claims("eve@unclaimed.example"))
    assert_refused(response, "sso.email_domain_not_owned", api, "alpha")
    assert snapshot() == before


@pytest.mark.django_db
def test_account_cannot_serve_a_domain_it_neither_owns_nor_shares(api, two_tenants, sso_driver):
    body = {
        "protocol": sso_driver.protocol,
        "name": "grab",
        "domains": ["beta.com"],
        **sso_driver.connection_settings(),
    }
    response = api.post("/accounts/alpha/connections", body, expect=409)
    assert response.json()["field"] == "domains"
    # Not even with alpha's own key, and not by claiming it; beta keeps it. Alpha's key is told
    # exactly what it is told for a domain nobody holds, so it cannot probe which domains beta has.
    key = api.post("/accounts/alpha/api-keys", {"name": "alpha"}).json()["key"]
    held = Api(key).post("/accounts/alpha/connections", body, expect=403).json()
    free = Api(key).post("/accounts/alpha/connections", {**body, "domains": ["nobody.example"]}, expect=403).json()
    assert held["detail"].replace("beta.com", "D") == free["detail"].replace("nobody.example", "D")
    assert api.get("/accounts/beta/domains")["items"][0]["account"] == "beta"


@pytest.mark.django_db
def test_shared_domain_is_served_until_the_share_is_revoked(api, make_account, make_connection, sso_driver):
    """Seed 000's sandbox case: production shares acme.com with its sandbox account, then revokes it."""
    make_account("acme")
    make_account("acme-sandbox")
    make_connection("acme", ("acme.com",), name="Production IdP")
    api.post("/accounts/acme/domains/acme.com/shares", {"account": "acme-sandbox"})
    sandbox = make_connection(
        "acme-sandbox", ("acme.com",), name="Sandbox IdP", auto_provision=True, provisioned_users_can_login=True
    )

    browser = Client()
    me = assert_signed_in(
        sso_driver.login(browser, sandbox, subject="alice@acme.com", claims=claims("alice@acme.com")), browser
    )
    assert [a["slug"] for a in me["accounts"]] == ["acme-sandbox"]  # the sandbox IdP reaches the sandbox only
    assert b"Multiple SSO providers" in login_step(Client(), "alice@acme.com").content

    api.delete("/accounts/acme/domains/acme.com/shares/acme-sandbox")
    assert api.get(f"/connections/{sandbox['id']}")["domains"] == []
    routed = login_step(Client(), "alice@acme.com")
    assert routed.status_code == 302 and sandbox["id"] not in routed["Location"]
    before = snapshot()
    response = sso_driver.login(Client(), sandbox, subject="alice@acme.com", claims=claims("alice@acme.com"))
    assert_refused(response, "sso.email_domain_not_owned", api, "acme-sandbox")
    assert snapshot() == before


# Races (PostgreSQL) ----------------------------------------------------------


def _require_postgres() -> None:
    if db_connection.vendor != "postgresql":
        pytest.skip(
            "needs concurrent transactions with row locks: run with VESTIBULE_TEST_DATABASE_URL=postgres://... (CI does)"
        )


def _in_thread(fn: Callable[[], Any], results: list[Any]) -> threading.Thread:
    def run() -> None:
        try:
            results.append(fn())
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            results.append(exc)
        finally:
            connections.close_all()  # each thread has its own connection; close it for teardown

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _wait_until_blocked(timeout: float = 10.0) -> None:
    """Until some other backend of this database waits on a lock (the racing INSERT)."""
    deadline = time.monotonic() + timeout
    with db_connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the racing request never blocked on the first writer's lock")


@pytest.mark.django_db(transaction=True)
def test_domain_claim_race_has_exactly_one_winner(api, make_account):
    """Two accounts claim the same domains at the same moment through the API."""
    _require_postgres()
    make_account("alpha", projects=())
    make_account("beta", projects=())
    key = _authorization(api)
    domains = [f"race{i}.example" for i in range(6)]
    for domain in domains:
        barrier = threading.Barrier(2)
        results: list[Any] = []

        def claim(
            slug: str, domain: str = domain, barrier: threading.Barrier = barrier
        ) -> tuple[str, int, dict[str, Any]]:
            client = Client(headers={"Authorization": key})
            barrier.wait()
            response = client.post(
                f"/api/v1/accounts/{slug}/domains", {"domain": domain}, content_type="application/json"
            )
            return slug, response.status_code, response.json()

        threads = [_in_thread(lambda s=s: claim(s), results) for s in ("alpha", "beta")]
        for thread in threads:
            thread.join(30)
        assert not [r for r in results if isinstance(r, BaseException)], results
        statuses = sorted(r[1] for r in results)
        assert statuses == [201, 409], results
        loser = next(r for r in results if r[1] == 409)
        assert loser[2]["field"] == "domain" and "already claimed" in loser[2]["detail"]
        winner = next(r for r in results if r[1] == 201)
        assert list(DomainClaim.objects.filter(domain=domain).values_list("account__slug", flat=True)) == [winner[0]]


@pytest.mark.django_db(transaction=True)
def test_domain_claim_race_loser_blocked_on_the_winner_gets_409(api, make_account):
    """The worst interleaving, forced: the loser passed the "is it free?" check while the winner's INSERT was uncommitted."""
    _require_postgres()
    alpha = make_account("alpha", projects=())
    make_account("beta", projects=())
    holding, release = threading.Event(), threading.Event()
    results: list[Any] = []

    def winner() -> str:
        with transaction.atomic():
            DomainClaim.objects.create(domain="contested.example", account_id=_account_id(alpha["slug"]))
            holding.set()
            release.wait(30)
        return "committed"

    key = _authorization(api)

    def loser() -> tuple[int, dict[str, Any]]:
        response = Client(headers={"Authorization": key}).post(
            "/api/v1/accounts/beta/domains", {"domain": "contested.example"}, content_type="application/json"
        )
        return response.status_code, response.json()

    first = _in_thread(winner, results)
    assert holding.wait(10)
    second_results: list[Any] = []
    second = _in_thread(loser, second_results)
    _wait_until_blocked()
    release.set()
    first.join(30)
    second.join(30)
    assert results == ["committed"]
    assert second_results[0][0] == 409, second_results
    assert second_results[0][1]["field"] == "domain"


def _authorization(api: Api) -> str:
    # The operator key of the ``api`` fixture, for clients made inside threads.
    return api.client.defaults["HTTP_AUTHORIZATION"]


def _account_id(slug: str) -> int:
    from vestibule.accounts.models import Account

    return Account.objects.get(slug=slug).pk


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_logins_create_one_user(api, make_account, make_connection):
    """Two first logins of the same new person, the second blocked on the first's uncommitted user row."""
    _require_postgres()
    make_account("acme")
    created = make_connection(
        "acme", ("acme.com",), auto_provision=True, provisioned_users_can_login=True, linked_projects=["production"]
    )
    connection = Connection.objects.select_related("account").get(pk=created["id"])
    verified = VerifiedSubject(subject="00u-new", claims={"email": ["new@acme.com"], "name": ["New Person"]})
    holding, release = threading.Event(), threading.Event()
    first_results: list[Any] = []
    second_results: list[Any] = []

    def trace() -> TraceRecorder:
        return TraceRecorder(RequestFactory().post("/sso/saml/x/acs"), connection, connection.protocol)

    def first() -> int:
        with transaction.atomic():
            user = run_pipeline(connection, verified, trace())
            holding.set()
            release.wait(30)
        return user.pk

    def second() -> int:
        return run_pipeline(connection, verified, trace()).pk

    t1 = _in_thread(first, first_results)
    assert holding.wait(10)
    t2 = _in_thread(second, second_results)
    _wait_until_blocked()
    release.set()
    t1.join(30)
    t2.join(30)
    assert not isinstance(second_results[0], BaseException), second_results
    assert first_results == second_results
    assert User.objects.filter(email_key="new@acme.com").count() == 1
    assert ExternalIdentity.objects.filter(connection=connection).count() == 1
    assert Membership.objects.filter(user_id=first_results[0]).count() == 1
    assert ProjectAccess.objects.filter(user_id=first_results[0]).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_logins_through_the_callback_are_clean(api, make_account, make_connection, sso_driver):
    """Two browsers finish their first login at once through the real ACS / callback: no 500, one user."""
    _require_postgres()
    make_account("acme")
    connection = make_connection("acme", ("acme.com",), auto_provision=True, provisioned_users_can_login=True)
    for round_ in range(3):
        email = f"twin{round_}@acme.com"
        barrier = threading.Barrier(2)
        results: list[Any] = []

        def login(email: str = email, barrier: threading.Barrier = barrier) -> int:
            browser = Client()
            barrier.wait()
            response = sso_driver.login(browser, connection, subject=email, claims=claims(email))
            assert response.status_code == 302, re.findall(
                rb"sso\.[a-z_.]+|saml\.[a-z_.]+|oidc\.[a-z_.]+", response.content
            )
            return browser.get("/api/v1/session").json()["id"]

        threads = [_in_thread(login, results) for _ in range(2)]
        for thread in threads:
            thread.join(60)
        assert not [r for r in results if isinstance(r, BaseException)], results
        assert len(set(results)) == 1
        assert User.objects.filter(email_key=email).count() == 1
