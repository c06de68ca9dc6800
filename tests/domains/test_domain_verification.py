"""Domain verification by DNS TXT record, end to end through the REST API against a real DNS server.

Each refusal is shown with the victim's end state (who holds the domain, the
challenge's state), beside the positive path.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from tests.conftest import PASSWORD, password_login
from tests.domains.conftest import Zone
from vestibule.audit.models import AuditEvent
from vestibule.authority.models import ApiKey
from vestibule.connections import verification
from vestibule.connections.models import Connection, DomainClaim, DomainVerification
from vestibule.login.routing import route_email

pytestmark = pytest.mark.django_db

V1 = "/api/v1"
DOMAIN = "acme.example"


@pytest.fixture(autouse=True)
def _no_check_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests check several times in a row; test_checks_are_rate_limited restores the interval.
    monkeypatch.setattr(verification, "CHECK_INTERVAL", timedelta(0))


@pytest.fixture
def acme(api: Any, account_key: Any) -> Any:
    """An API client holding an administrator key of account acme."""
    assert api.post(f"{V1}/accounts", {"slug": "acme", "name": "Acme"}).status_code == 201
    return api.as_key(account_key("acme"))


@pytest.fixture
def globex(api: Any, account_key: Any) -> Any:
    assert api.post(f"{V1}/accounts", {"slug": "globex", "name": "Globex"}).status_code == 201
    return api.as_key(account_key("globex"))


def start(client: Any, slug: str, domain: str = DOMAIN) -> dict[str, Any]:
    response = client.post(f"{V1}/accounts/{slug}/domain-verifications", {"domain": domain})
    assert response.status_code == 201, response.content
    return dict(response.json())


def check(client: Any, slug: str, domain: str = DOMAIN) -> Any:
    return client.post(f"{V1}/accounts/{slug}/domain-verifications/{domain}/check")


def owner(domain: str = DOMAIN) -> str | None:
    claim = DomainClaim.objects.filter(domain=domain).select_related("account").first()
    return None if claim is None else claim.account.slug


# The path that works ---------------------------------------------------------------------------


def test_end_to_end_dns_verification_claims_the_domain_and_sso_can_use_it(acme: Any, dns_zone: Zone) -> None:
    connection = {"protocol": "saml", "name": "Okta", "domains": [DOMAIN]}
    # Before: an account administrator may not claim a domain by creating a connection.
    assert acme.post(f"{V1}/accounts/acme/connections", connection).status_code == 403

    started = start(acme, "acme", "Acme.Example.")
    assert started["domain"] == DOMAIN
    assert started["record_name"] == f"_vestibule-challenge.{DOMAIN}"
    assert started["record_type"] == "TXT"
    assert started["record_value"].startswith("vestibule-domain-verification=")
    assert len(started["record_value"].split("=", 1)[1]) >= 40
    assert started["status"] == "pending" and started["expires_at"]

    dns_zone.publish(started["record_name"], "v=spf1 -all", started["record_value"])
    checked = check(acme, "acme")
    assert checked.status_code == 200, checked.content
    assert checked.json()["status"] == "verified" and checked.json()["verified_at"]
    assert (f"_vestibule-challenge.{DOMAIN}", "udp") in dns_zone.queries

    domains = acme.get(f"{V1}/accounts/acme/domains").json()["items"]
    assert [d["domain"] for d in domains] == [DOMAIN]
    assert owner() == "acme"

    created = acme.post(f"{V1}/accounts/acme/connections", connection)
    assert created.status_code == 201, created.content
    Connection.objects.filter(pk=created.json()["id"]).update(enabled=True)
    route = route_email(f"ann@{DOMAIN}")
    assert route.kind == "sso" and [str(c.pk) for c in route.connections] == [created.json()["id"]]

    codes = list(AuditEvent.objects.filter(account__slug="acme").values_list("code", flat=True))
    assert {"domain.verification_started", "domain.verified", "domain.claimed"} <= set(codes)


def test_a_signed_in_administrator_verifies_and_the_audit_names_them(
    acme: Any, make_user: Any, client: Any, dns_zone: Zone
) -> None:
    make_user("ada@acme.example", account="acme", roles=["administrator"])
    password_login(client, "ada@acme.example", PASSWORD)
    started = client.post(
        f"{V1}/accounts/acme/domain-verifications", {"domain": DOMAIN}, content_type="application/json"
    )
    assert started.status_code == 201, started.content
    dns_zone.publish(started.json()["record_name"], started.json()["record_value"])
    checked = client.post(f"{V1}/accounts/acme/domain-verifications/{DOMAIN}/check")
    assert checked.status_code == 200 and owner() == "acme"
    for code in ("domain.verification_started", "domain.verified", "domain.claimed"):
        event = AuditEvent.objects.select_related("actor_user").get(code=code)
        assert event.actor_user is not None and event.actor_user.email == "ada@acme.example"
        assert event.detail["domain"] == DOMAIN


def test_checking_a_verified_challenge_again_is_200_without_a_dns_query(acme: Any, dns_zone: Zone) -> None:
    started = start(acme, "acme")
    dns_zone.publish(started["record_name"], started["record_value"])
    assert check(acme, "acme").status_code == 200
    queries = len(dns_zone.queries)
    again = check(acme, "acme")
    assert again.status_code == 200 and again.json()["status"] == "verified"
    assert len(dns_zone.queries) == queries
    assert AuditEvent.objects.filter(code="domain.verified").count() == 1


def test_starting_again_while_pending_keeps_the_token(acme: Any) -> None:
    first = start(acme, "acme")
    again = acme.post(f"{V1}/accounts/acme/domain-verifications", {"domain": DOMAIN})
    assert again.status_code == 200
    assert again.json()["record_value"] == first["record_value"]


def test_an_internationalized_domain_is_verified_in_its_ascii_form(acme: Any, dns_zone: Zone) -> None:
    started = start(acme, "acme", "Bücher.example")
    assert started["domain"] == "xn--bcher-kva.example"
    assert started["record_name"] == "_vestibule-challenge.xn--bcher-kva.example"
    dns_zone.publish(started["record_name"], started["record_value"])
    assert check(acme, "acme", "bücher.example").status_code == 200
    assert owner("xn--bcher-kva.example") == "acme"


def test_a_record_of_several_strings_is_joined(acme: Any, dns_zone: Zone) -> None:
    started = start(acme, "acme")
    value = started["record_value"]
    dns_zone.publish(started["record_name"], [value[:20], value[20:]])
    assert check(acme, "acme").status_code == 200
    assert owner() == "acme"


def test_a_large_record_set_is_read_over_tcp(acme: Any, dns_zone: Zone) -> None:
    started = start(acme, "acme")
    noise = [f"unrelated-{i}-" + "x" * 60 for i in range(12)]
    dns_zone.publish(started["record_name"], *noise, started["record_value"])
    assert check(acme, "acme").status_code == 200
    assert (started["record_name"], "tcp") in dns_zone.queries


def test_list_get_and_delete(acme: Any, dns_zone: Zone) -> None:
    started = start(acme, "acme")
    start(acme, "acme", "beta.example")
    listed = acme.get(f"{V1}/accounts/acme/domain-verifications").json()["items"]
    assert [v["domain"] for v in listed] == ["acme.example", "beta.example"]
    assert acme.get(f"{V1}/accounts/acme/domain-verifications/ACME.example").json() == started

    dns_zone.publish(started["record_name"], started["record_value"])
    assert check(acme, "acme").status_code == 200
    # Cancelling forgets the challenge, not the claim it made.
    assert acme.delete(f"{V1}/accounts/acme/domain-verifications/{DOMAIN}").status_code == 204
    assert acme.get(f"{V1}/accounts/acme/domain-verifications/{DOMAIN}").status_code == 404
    assert owner() == "acme"


def test_a_domain_the_account_holds_is_409_to_start(acme: Any, api: Any) -> None:
    assert api.post(f"{V1}/accounts/acme/domains", {"domain": DOMAIN}).status_code == 201
    response = acme.post(f"{V1}/accounts/acme/domain-verifications", {"domain": DOMAIN})
    assert response.status_code == 409 and response.json()["field"] == "domain"


def test_a_released_domain_can_be_verified_again_with_a_new_token(acme: Any, api: Any, dns_zone: Zone) -> None:
    started = start(acme, "acme")
    dns_zone.publish(started["record_name"], started["record_value"])
    assert check(acme, "acme").status_code == 200
    assert api.delete(f"{V1}/accounts/acme/domains/{DOMAIN}").status_code == 204
    stale = check(acme, "acme")
    assert stale.status_code == 409 and stale.json()["reason"] == "released"
    renewed = start(acme, "acme")
    assert renewed["record_value"] != started["record_value"] and renewed["status"] == "pending"


# The record is missing or wrong: the challenge stays pending ----------------------------------


def test_no_record_is_409_and_stays_pending(acme: Any, dns_zone: Zone) -> None:
    start(acme, "acme")
    response = check(acme, "acme")
    assert response.status_code == 409
    body = response.json()
    assert body["reason"] == "no_record" and "NXDOMAIN" in body["detail"]
    assert body["verification"]["status"] == "pending" and body["verification"]["last_error"]
    assert owner() is None
    failed = AuditEvent.objects.get(code="domain.verification_failed")
    assert failed.outcome == AuditEvent.Outcome.FAILURE and failed.detail["reason"] == "no_record"


def test_a_name_without_txt_records_is_no_record(acme: Any, dns_zone: Zone) -> None:
    started = start(acme, "acme")
    dns_zone.publish(started["record_name"])
    response = check(acme, "acme")
    assert response.status_code == 409 and response.json()["reason"] == "no_record"
    assert owner() is None


@pytest.mark.parametrize(
    "published",
    [
        "vestibule-domain-verification=not-the-token",
        "vestibule-domain-verification=",
        "{value} ",
        " {value}",
        '"{value}"',
        "{value}x",
        "VESTIBULE-DOMAIN-VERIFICATION={token}",
        "{token}",
    ],
    ids=["other-token", "empty-token", "trailing-space", "leading-space", "quoted", "suffix", "upper-prefix", "bare"],
)
def test_a_wrong_value_is_refused(acme: Any, dns_zone: Zone, published: str) -> None:
    started = start(acme, "acme")
    token = started["record_value"].split("=", 1)[1]
    dns_zone.publish(started["record_name"], published.format(value=started["record_value"], token=token))
    response = check(acme, "acme")
    assert response.status_code == 409 and response.json()["reason"] == "wrong_value"
    assert token not in response.json()["detail"]
    assert response.json()["verification"]["status"] == "pending"
    assert owner() is None


def test_another_accounts_token_claims_nothing_for_this_one(acme: Any, globex: Any, dns_zone: Zone) -> None:
    """Globex publishes its own token: Acme's check fails, and the claim can only go to Globex."""
    mine = start(acme, "acme")
    theirs = start(globex, "globex")
    assert mine["record_value"] != theirs["record_value"]
    dns_zone.publish(theirs["record_name"], theirs["record_value"])

    refused = check(acme, "acme")
    assert refused.status_code == 409 and refused.json()["reason"] == "wrong_value"
    assert owner() is None
    assert check(globex, "globex").status_code == 200
    assert owner() == "globex"
    assert DomainVerification.objects.get(account__slug="acme").status == "pending"


def test_a_domain_held_by_another_account_cannot_be_verified_and_nothing_leaks(
    acme: Any, globex: Any, api: Any, dns_zone: Zone
) -> None:
    """Globex even proves DNS control of Acme's domain: 409, Acme's claim unchanged, Acme not named."""
    assert api.post(f"{V1}/accounts/acme/domains", {"domain": DOMAIN}).status_code == 201
    # Starting answers exactly as for a domain nobody holds: no probing of who owns what.
    held = globex.post(f"{V1}/accounts/globex/domain-verifications", {"domain": DOMAIN})
    free = globex.post(f"{V1}/accounts/globex/domain-verifications", {"domain": "free.example"})
    assert held.status_code == free.status_code == 201
    assert held.json().keys() == free.json().keys()
    no_record_held, no_record_free = check(globex, "globex"), check(globex, "globex", "free.example")
    assert no_record_held.status_code == no_record_free.status_code == 409
    assert no_record_held.json()["reason"] == no_record_free.json()["reason"] == "no_record"

    dns_zone.publish(held.json()["record_name"], held.json()["record_value"])
    refused = check(globex, "globex")
    assert refused.status_code == 409 and refused.json()["reason"] == "unavailable"
    text = refused.content.decode().lower()
    assert "acme" not in text.replace(DOMAIN, "")
    assert owner() == "acme"
    assert DomainVerification.objects.get(account__slug="globex", domain=DOMAIN).status == "pending"


def test_an_expired_challenge_is_refused_even_with_the_record(acme: Any, dns_zone: Zone) -> None:
    started = start(acme, "acme")
    DomainVerification.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert acme.get(f"{V1}/accounts/acme/domain-verifications/{DOMAIN}").json()["status"] == "expired"
    dns_zone.publish(started["record_name"], started["record_value"])
    response = check(acme, "acme")
    assert response.status_code == 409 and response.json()["reason"] == "expired"
    assert owner() is None
    assert dns_zone.queries == []
    # Starting again makes a new token; the old record proves nothing.
    renewed = start(acme, "acme")
    assert renewed["record_value"] != started["record_value"]
    stale = check(acme, "acme")
    assert stale.status_code == 409 and stale.json()["reason"] == "wrong_value"
    assert owner() is None


# DNS trouble is a clear 4xx, never a 5xx --------------------------------------------------------


def test_a_resolver_that_never_answers_is_409_dns_timeout(acme: Any, silent_dns: None) -> None:
    start(acme, "acme")
    response = check(acme, "acme")
    assert response.status_code == 409
    assert response.json()["reason"] == "dns_timeout" and "timed out" in response.json()["detail"]
    assert response.json()["verification"]["status"] == "pending"
    assert owner() is None


def test_a_failing_dns_server_is_409_dns_error(acme: Any, dns_zone: Zone) -> None:
    started = start(acme, "acme")
    dns_zone.failing.add(started["record_name"])
    response = check(acme, "acme")
    assert response.status_code == 409 and response.json()["reason"] == "dns_error"
    assert owner() is None


def test_a_server_without_any_resolver_says_so(acme: Any, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import dns.resolver

    def unconfigured(*args: Any, **kwargs: Any) -> Any:
        raise dns.resolver.NoResolverConfiguration("no nameservers")

    settings.VESTIBULE_DNS_RESOLVER = None
    monkeypatch.setattr(dns.resolver, "Resolver", unconfigured)
    start(acme, "acme")
    response = check(acme, "acme")
    assert response.status_code == 409 and response.json()["reason"] == "dns_error"
    assert "VESTIBULE_DNS_RESOLVER" in response.json()["detail"]


def test_checks_are_rate_limited_per_challenge(acme: Any, dns_zone: Zone, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verification, "CHECK_INTERVAL", timedelta(seconds=30))
    start(acme, "acme")
    assert check(acme, "acme").status_code == 409
    queries = len(dns_zone.queries)
    limited = check(acme, "acme")
    assert limited.status_code == 429
    assert 1 <= int(limited["Retry-After"]) <= 30
    assert len(dns_zone.queries) == queries


def test_checks_are_rate_limited_per_account(acme: Any, dns_zone: Zone) -> None:
    start(acme, "acme")
    for _ in range(30):
        assert check(acme, "acme").status_code == 409
    queries = len(dns_zone.queries)
    limited = check(acme, "acme")
    assert limited.status_code == 429 and limited["Retry-After"] == "60"
    assert len(dns_zone.queries) == queries


def test_pending_challenges_per_account_are_capped(acme: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verification, "MAX_PENDING", 2)
    start(acme, "acme", "one.example")
    start(acme, "acme", "two.example")
    response = acme.post(f"{V1}/accounts/acme/domain-verifications", {"domain": "three.example"})
    assert response.status_code == 409 and "at most 2 pending" in response.json()["detail"]
    assert DomainVerification.objects.count() == 2


# Public mail domains and malformed input -------------------------------------------------------


PUBLIC = ["gmail.com", "GoogleMail.com", "outlook.com", "hotmail.co.uk", "yahoo.co.jp", "icloud.com", "mail.gmail.com"]


@pytest.mark.parametrize("domain", PUBLIC)
def test_public_mail_domains_cannot_be_verified(acme: Any, domain: str) -> None:
    response = acme.post(f"{V1}/accounts/acme/domain-verifications", {"domain": domain})
    assert response.status_code == 422
    assert "public mail domain" in response.json()["detail"] and response.json()["field"] == "domain"
    assert not DomainVerification.objects.exists()


@pytest.mark.parametrize("domain", PUBLIC)
def test_public_mail_domains_cannot_be_claimed_by_the_operator(api: Any, acme: Any, domain: str) -> None:
    response = api.post(f"{V1}/accounts/acme/domains", {"domain": domain})
    assert response.status_code == 422 and "public mail domain" in response.json()["detail"]
    assert not DomainClaim.objects.exists()
    # Positive control: the operator still claims a company's domain directly.
    assert api.post(f"{V1}/accounts/acme/domains", {"domain": DOMAIN}).status_code == 201


def test_the_operator_cannot_claim_a_public_mail_domain_by_creating_a_connection(api: Any, acme: Any) -> None:
    response = api.post(f"{V1}/accounts/acme/connections", {"protocol": "saml", "name": "x", "domains": ["gmail.com"]})
    assert response.status_code == 422 and "public mail domain" in response.json()["detail"]
    assert not DomainClaim.objects.exists()


def test_a_challenge_for_a_domain_listed_later_is_refused_at_check(
    acme: Any, dns_zone: Zone, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = start(acme, "acme", "newmail.example")
    dns_zone.publish(started["record_name"], started["record_value"])
    monkeypatch.setattr(verification, "is_public_mail_domain", lambda domain: domain == "newmail.example")
    response = check(acme, "acme", "newmail.example")
    assert response.status_code == 422 and response.json()["reason"] == "public_mail_domain"
    assert not DomainClaim.objects.exists()


@pytest.mark.parametrize(
    "domain",
    ["", " ", "acme", "-acme.example", "acme-.example", "acme..example", "1.2.3.4", "acme.example/x", "ac me.example",
     "a" * 64 + ".example", ("a" * 60 + ".") * 5 + "example", "*.acme.example", "acme.example:443", "_dmarc.acme.example",
     "xn--.example", "acme.example\x00"],
)  # fmt: skip
def test_malformed_domains_are_422(acme: Any, domain: str) -> None:
    response = acme.post(f"{V1}/accounts/acme/domain-verifications", {"domain": domain})
    assert response.status_code == 422, response.content
    assert response.json()["field"] == "domain"
    assert not DomainVerification.objects.exists()


@pytest.mark.parametrize("body", [{}, {"domain": None}, {"domain": 5}, {"domain": "acme.example", "extra": 1}])
def test_malformed_bodies_are_422(acme: Any, body: Any) -> None:
    assert acme.post(f"{V1}/accounts/acme/domain-verifications", body).status_code == 422


@pytest.mark.parametrize("domain", ["acme", "a..b", "%00", "x" * 300])
def test_malformed_domains_in_the_path_are_4xx(acme: Any, domain: str) -> None:
    for method, suffix in (("get", ""), ("post", "/check"), ("delete", "")):
        response = getattr(acme, method)(f"{V1}/accounts/acme/domain-verifications/{domain}{suffix}")
        assert response.status_code in (404, 422), (method, response.status_code)


# Tenancy and roles -----------------------------------------------------------------------------


def test_another_accounts_key_can_do_nothing_to_this_accounts_verifications(
    acme: Any, globex: Any, dns_zone: Zone
) -> None:
    started = start(acme, "acme")
    dns_zone.publish(started["record_name"], started["record_value"])
    base = f"{V1}/accounts/acme/domain-verifications"
    assert globex.get(base).status_code == 404
    assert globex.get(f"{base}/{DOMAIN}").status_code == 404
    assert globex.post(f"{base}/{DOMAIN}/check").status_code == 404
    assert globex.delete(f"{base}/{DOMAIN}").status_code == 404
    assert globex.post(base, {"domain": "other.example"}).status_code == 404
    # Through its own account, Globex does not reach Acme's challenge either.
    assert globex.get(f"{V1}/accounts/globex/domain-verifications/{DOMAIN}").status_code == 404
    assert globex.post(f"{V1}/accounts/globex/domain-verifications/{DOMAIN}/check").status_code == 404
    assert globex.get(f"{V1}/accounts/globex/domain-verifications").json() == {"items": []}

    challenge = DomainVerification.objects.get()
    assert challenge.account.slug == "acme" and challenge.status == "pending" and challenge.last_checked_at is None
    assert owner() is None and dns_zone.queries == []
    assert check(acme, "acme").status_code == 200 and owner() == "acme"


def test_another_accounts_administrator_person_gets_404(acme: Any, globex: Any, make_user: Any, client: Any) -> None:
    start(acme, "acme")
    make_user("gina@globex.example", account="globex", roles=["administrator"])
    password_login(client, "gina@globex.example", PASSWORD)
    assert client.get(f"{V1}/accounts/acme/domain-verifications").status_code == 404
    assert client.get(f"{V1}/accounts/acme/domain-verifications/{DOMAIN}").status_code == 404
    assert client.get(f"{V1}/accounts/globex/domain-verifications").status_code == 200


def test_sso_admin_reads_but_only_the_administrator_claims(acme: Any, api: Any) -> None:
    start(acme, "acme")
    _, secret = ApiKey.issue(account=ApiKey.objects.filter(account__slug="acme").first().account, roles=["sso-admin"])
    sso_admin = api.as_key(secret)
    assert sso_admin.get(f"{V1}/accounts/acme/domain-verifications").status_code == 200
    assert sso_admin.get(f"{V1}/accounts/acme/domain-verifications/{DOMAIN}").status_code == 200
    refused = sso_admin.post(f"{V1}/accounts/acme/domain-verifications", {"domain": "b.example"})
    assert refused.status_code == 403 and "administrator" in refused.json()["detail"]
    assert sso_admin.post(f"{V1}/accounts/acme/domain-verifications/{DOMAIN}/check").status_code == 403
    assert sso_admin.delete(f"{V1}/accounts/acme/domain-verifications/{DOMAIN}").status_code == 403
    _, viewer = ApiKey.issue(
        account=ApiKey.objects.filter(account__slug="acme").first().account, roles=["user-manager"]
    )
    assert api.as_key(viewer).get(f"{V1}/accounts/acme/domain-verifications").status_code == 403
    assert DomainVerification.objects.get().last_checked_at is None
