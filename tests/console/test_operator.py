"""The operator's screens: accounts, domain claims across the deployment, deployment checks."""

from __future__ import annotations

import pytest

from vestibule.accounts.models import Account
from vestibule.audit.models import AuditEvent
from vestibule.connections.models import Connection, ConnectionDomain, DomainClaim, DomainShare

pytestmark = pytest.mark.django_db

OPERATOR_URLS = [
    ("get", "/console/operator/accounts/", {}),
    ("post", "/console/operator/accounts/", {"slug": "evil", "name": "Evil"}),
    ("get", "/console/operator/domains/", {}),
    ("post", "/console/operator/domains/", {"account": "beta", "domain": "acme.com"}),
    ("post", "/console/operator/domains/acme.com/release", {}),
    ("get", "/console/operator/checks/", {}),
]


@pytest.fixture
def op(person):
    return person("op@vestibule.test", account=None, roles=(), operator=True)


def test_accounts_list_with_counts_and_create(op, make_account, make_user) -> None:
    acme = make_account("acme", name="Acme Corp")
    make_user("a1@acme.test", account="acme")
    DomainClaim.objects.create(domain="acme.com", account=acme)
    page = op.get("/console/operator/accounts/").content.decode()
    assert "Acme Corp" in page and 'href="/console/a/acme/"' in page

    created = op.post("/console/operator/accounts/", {"slug": "globex", "name": "Globex"})
    assert created.status_code == 302
    account = Account.objects.get(slug="globex")
    assert account.name == "Globex"
    assert AuditEvent.objects.filter(code="account.created", account=account, actor_user=op.user).exists()


@pytest.mark.parametrize(
    ("data", "status", "text"),
    [
        ({"slug": "acme", "name": "Again"}, 409, "is taken"),
        ({"slug": "Bad Slug", "name": "X"}, 400, "Lowercase letters"),
        ({"slug": "x" * 80, "name": "X"}, 400, "at most"),
        ({"slug": "ok", "name": ""}, 400, "required"),
    ],
)
def test_account_creation_errors_on_the_field(op, make_account, data, status, text) -> None:
    make_account("acme")
    response = op.post("/console/operator/accounts/", data)
    assert response.status_code == status and text in response.content.decode()
    assert 'aria-invalid="true"' in response.content.decode()
    assert Account.objects.count() == 1


def test_claim_and_release_a_domain(op, make_account) -> None:
    acme = make_account("acme")
    make_account("beta")
    claimed = op.post("/console/operator/domains/", {"account": "acme", "domain": "ACME.com"})
    assert claimed.status_code == 302
    claim = DomainClaim.objects.get(domain="acme.com")
    assert claim.account == acme
    assert AuditEvent.objects.filter(code="domain.claimed", account=acme, detail__domain="acme.com").exists()
    assert "acme.com" in op.get("/console/operator/domains/").content.decode()

    held = op.post("/console/operator/domains/", {"account": "beta", "domain": "acme.com"})
    assert held.status_code == 409 and "already claimed by another account" in held.content.decode()
    public = op.post("/console/operator/domains/", {"account": "beta", "domain": "gmail.com"})
    assert public.status_code == 422 and "public mail domain" in public.content.decode()
    nobody = op.post("/console/operator/domains/", {"account": "nobody", "domain": "nobody.com"})
    assert nobody.status_code == 422 and "no account" in nobody.content.decode()

    DomainShare.objects.create(claim=claim, target_slug="beta")
    released = op.post("/console/operator/domains/acme.com/release", page="/console/operator/domains/")
    assert released.status_code == 302
    assert not DomainClaim.objects.exists() and not DomainShare.objects.exists()
    assert AuditEvent.objects.filter(code="domain.released", account=acme).exists()


def test_a_domain_in_use_is_not_released(op, make_account) -> None:
    acme = make_account("acme")
    claim = DomainClaim.objects.create(domain="acme.com", account=acme)
    connection = Connection.objects.create(account=acme, protocol="oidc", name="Okta")
    ConnectionDomain.objects.create(connection=connection, domain="acme.com", claim=claim)
    response = op.post("/console/operator/domains/acme.com/release", page="/console/operator/domains/")
    assert response.status_code == 302
    assert DomainClaim.objects.filter(domain="acme.com").exists()
    assert "still serve acme.com" in op.get("/console/operator/domains/").content.decode()


def test_deployment_checks_list_vestibule_findings_with_hints(op, settings) -> None:
    settings.VESTIBULE_BASE_URL = "http://vestibule.example.com"
    page = op.get("/console/operator/checks/").content.decode()
    assert "vestibule.W001" in page and "Serve Vestibule over https" in page
    assert "Warnings" in page and "Run the checks again" in page
    settings.VESTIBULE_BASE_URL = "https://vestibule.example.com"
    settings.VESTIBULE_TEST_IDP = False
    assert "vestibule.W001" not in op.get("/console/operator/checks/").content.decode()


@pytest.mark.parametrize(("method", "path", "data"), OPERATOR_URLS)
def test_a_non_operator_gets_the_403_page_everywhere(person, make_account, method, path, data) -> None:
    acme = make_account("acme")
    make_account("beta")
    DomainClaim.objects.create(domain="acme.com", account=acme)
    ann = person("ann@acme.test", roles=["administrator", "sso-admin", "user-manager"])
    response = ann.get(path) if method == "get" else ann.post(path, data, page="/console/a/acme/")
    assert response.status_code == 403
    assert "Only the operator can open this page" in response.content.decode()
    assert not Account.objects.filter(slug="evil").exists()
    assert DomainClaim.objects.get(domain="acme.com").account == acme
    assert not AuditEvent.objects.filter(code__in=["account.created", "domain.claimed", "domain.released"]).exists()


@pytest.mark.parametrize("domain", ["%00", "x" * 400, "no-such.example"])
def test_release_of_an_unknown_domain_is_a_404_page(op, domain) -> None:
    assert op.post(f"/console/operator/domains/{domain}/release", page="/console/operator/domains/").status_code == 404
