"""The domains screen: owned domains, shares and offers, and DNS verification, as api/domains.py rules them."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest

from vestibule.audit.models import AuditEvent
from vestibule.connections import verification
from vestibule.connections.models import DomainClaim, DomainShare, DomainVerification

pytestmark = pytest.mark.django_db

PAGE = "/console/a/acme/domains/"


@pytest.fixture
def acme_domain(make_account) -> DomainClaim:
    return DomainClaim.objects.create(domain="acme.com", account=make_account("acme"))


def test_offer_a_domain_then_the_partner_accepts_and_the_owner_revokes(person, make_account, acme_domain) -> None:
    sam = person("sam@acme.test", roles=["sso-admin"])
    bea = person("bea@beta.test", account="beta", roles=["sso-admin"])
    field = f"share-{acme_domain.pk}-account"
    offered = sam.post(f"{PAGE}acme.com/shares", {field: "beta"}, page=PAGE)
    assert offered.status_code == 302
    share = DomainShare.objects.get(claim=acme_domain, target_slug="beta")
    assert share.status == DomainShare.Status.OFFERED
    assert AuditEvent.objects.filter(code="domain.share_offered", detail__offered_to="beta").exists()

    beta_page = bea.get("/console/a/beta/domains/").content.decode()
    assert "Accept acme.com" in beta_page
    accepted = bea.post("/console/a/beta/domains/offers/acme.com/accept", page="/console/a/beta/domains/")
    assert accepted.status_code == 302
    share.refresh_from_db()
    assert share.status == DomainShare.Status.ACTIVE and share.account is not None
    assert AuditEvent.objects.filter(code="domain.share_accepted").count() == 2
    assert "acme.com" in bea.get("/console/a/beta/domains/").content.decode()

    revoked = sam.post(f"{PAGE}acme.com/shares/beta/revoke", page=PAGE)
    assert revoked.status_code == 302
    assert not DomainShare.objects.exists()
    assert AuditEvent.objects.filter(code="domain.share_revoked", detail__shared_with="beta").exists()


def test_offering_to_a_missing_account_answers_as_to_an_existing_one(person, acme_domain) -> None:
    sam = person("sam@acme.test", roles=["sso-admin"])
    field = f"share-{acme_domain.pk}-account"
    assert sam.post(f"{PAGE}acme.com/shares", {field: "nobody-here"}, page=PAGE).status_code == 302
    assert DomainShare.objects.filter(target_slug="nobody-here", status="offered").exists()


def test_share_errors_are_on_the_field(person, acme_domain) -> None:
    sam = person("sam@acme.test", roles=["sso-admin"])
    field = f"share-{acme_domain.pk}-account"
    itself = sam.post(f"{PAGE}acme.com/shares", {field: "acme"}, page=PAGE)
    assert itself.status_code == 422 and "cannot share a domain with itself" in itself.content.decode()
    bad = sam.post(f"{PAGE}acme.com/shares", {field: "Not A Slug!"}, page=PAGE)
    assert bad.status_code == 400 and 'aria-invalid="true"' in bad.content.decode()
    sam.post(f"{PAGE}acme.com/shares", {field: "beta"}, page=PAGE)
    twice = sam.post(f"{PAGE}acme.com/shares", {field: "beta"}, page=PAGE)
    assert twice.status_code == 409 and "already offered" in twice.content.decode()
    assert DomainShare.objects.count() == 1


def test_decline_an_offer(person, make_account, acme_domain) -> None:
    bea = person("bea@beta.test", account="beta", roles=["sso-admin"])
    DomainShare.objects.create(claim=acme_domain, target_slug="beta")
    assert (
        bea.post("/console/a/beta/domains/offers/acme.com/decline", page="/console/a/beta/domains/").status_code == 302
    )
    assert not DomainShare.objects.exists()
    assert AuditEvent.objects.filter(code="domain.share_declined", account__slug="acme").exists()


def test_verification_start_shows_the_record_and_check_claims_the_domain(person, make_account) -> None:
    ann = person("ann@acme.test", roles=["administrator"])
    started = ann.post(f"{PAGE}verifications", {"domain": "Acme-Corp.example"}, page=PAGE)
    assert started.status_code == 302
    challenge = DomainVerification.objects.get(account__slug="acme")
    page = ann.get(PAGE).content.decode()
    assert verification.record_name("acme-corp.example") in page and verification.record_value(challenge) in page
    assert "Copy the record value" in page

    with mock.patch.object(verification, "_txt_values", return_value=[]):
        missing = ann.post(f"{PAGE}verifications/acme-corp.example/check", page=PAGE)
    assert missing.status_code == 302 and not DomainClaim.objects.exists()
    assert "not verified yet" in ann.get(PAGE).content.decode()
    assert AuditEvent.objects.filter(code="domain.verification_failed", outcome="failure").exists()

    DomainVerification.objects.filter(pk=challenge.pk).update(last_checked_at=None)
    with mock.patch.object(verification, "_txt_values", return_value=[verification.record_value(challenge).encode()]):
        found = ann.post(f"{PAGE}verifications/acme-corp.example/check", page=PAGE)
    assert found.status_code == 302
    assert DomainClaim.objects.get(domain="acme-corp.example").account.slug == "acme"
    assert AuditEvent.objects.filter(code="domain.verified").exists()
    assert AuditEvent.objects.filter(code="domain.claimed", detail__method="dns_txt").exists()


@pytest.mark.parametrize(
    ("domain", "status", "text"),
    [("gmail.com", 422, "public mail domain"), ("not a domain", 422, "not a domain"), ("", 400, "required")],
)
def test_verification_refusals_are_on_the_field(person, make_account, domain, status, text) -> None:
    ann = person("ann@acme.test", roles=["administrator"])
    response = ann.post(f"{PAGE}verifications", {"domain": domain}, page=PAGE)
    assert response.status_code == status and text in response.content.decode()
    assert not DomainVerification.objects.exists()


def test_cancel_a_verification(person, make_account) -> None:
    ann = person("ann@acme.test", roles=["administrator"])
    ann.post(f"{PAGE}verifications", {"domain": "acme.example"}, page=PAGE)
    assert ann.post(f"{PAGE}verifications/acme.example/cancel", page=PAGE).status_code == 302
    assert not DomainVerification.objects.exists()
    assert AuditEvent.objects.filter(code="domain.verification_cancelled").exists()


def test_an_sso_admin_reads_verifications_but_cannot_start_them(person, make_account) -> None:
    sam = person("sam@acme.test", roles=["sso-admin"])
    assert "needs the administrator role" in sam.get(PAGE).content.decode()
    assert sam.post(f"{PAGE}verifications", {"domain": "acme.example"}, page=PAGE).status_code == 403
    assert not DomainVerification.objects.exists()


def test_a_user_manager_cannot_open_domains(person, make_account) -> None:
    uma = person("uma@acme.test", roles=["user-manager"])
    assert uma.get(PAGE).status_code == 403


# Tenancy ----------------------------------------------------------------------------------


@pytest.fixture
def acme_state(make_account, acme_domain) -> dict[str, Any]:
    make_account("beta")
    share = DomainShare.objects.create(claim=acme_domain, target_slug="gamma")
    challenge, _ = verification.start(acme_domain.account, "acme-two.example")
    return {"share": share, "challenge": challenge}


ATTACKS = [
    ("get", "/console/a/acme/domains/", {}),
    ("post", "/console/a/acme/domains/acme.com/shares", {"account": "beta"}),
    ("post", "/console/a/beta/domains/acme.com/shares", {"account": "beta"}),
    ("post", "/console/a/acme/domains/acme.com/shares/gamma/revoke", {}),
    ("post", "/console/a/beta/domains/acme.com/shares/gamma/revoke", {}),
    ("post", "/console/a/beta/domains/offers/acme.com/accept", {}),
    ("post", "/console/a/acme/domains/verifications", {"domain": "evil.example"}),
    ("post", "/console/a/acme/domains/verifications/acme-two.example/check", {}),
    ("post", "/console/a/beta/domains/verifications/acme-two.example/check", {}),
    ("post", "/console/a/acme/domains/verifications/acme-two.example/cancel", {}),
    ("post", "/console/a/beta/domains/verifications/acme-two.example/cancel", {}),
]


@pytest.mark.parametrize(("method", "path", "data"), ATTACKS)
def test_account_b_can_do_nothing_to_a_domains(person, acme_state, method, path, data) -> None:
    bob = person("bob@beta.test", account="beta", roles=["administrator", "sso-admin"])
    response = bob.get(path) if method == "get" else bob.post(path, data, page="/console/a/beta/domains/")
    assert response.status_code == 404
    assert acme_state["challenge"].token not in response.content.decode()
    share = acme_state["share"]
    share.refresh_from_db()
    assert share.status == DomainShare.Status.OFFERED
    assert DomainClaim.objects.get(domain="acme.com").account.slug == "acme"
    assert list(DomainVerification.objects.values_list("domain", flat=True)) == ["acme-two.example"]
    assert DomainVerification.objects.get().last_checked_at is None
    assert not AuditEvent.objects.filter(code__startswith="domain.").exists()


@pytest.mark.parametrize("domain", ["%00", "a" * 400, "..", "acme.com%2F..", "ACME.COM"])
def test_hostile_domains_in_urls_never_5xx(person, acme_domain, domain) -> None:
    sam = person("sam@acme.test", roles=["administrator"])
    for path in (f"{PAGE}{domain}/shares", f"{PAGE}offers/{domain}/accept", f"{PAGE}verifications/{domain}/check"):
        assert sam.post(path, {}, page=PAGE).status_code < 500


@pytest.mark.parametrize("target", ["%00", "x" * 300, "Beta"])
def test_hostile_share_targets_never_5xx(person, acme_domain, target) -> None:
    sam = person("sam@acme.test", roles=["sso-admin"])
    assert sam.post(f"{PAGE}acme.com/shares/{target}/revoke", page=PAGE).status_code == 404
