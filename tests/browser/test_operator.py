"""The operator's screens in the browser: accounts, domain claims with their refusals, deployment checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from vestibule.accounts.models import Account
from vestibule.connections.models import DomainClaim

pytestmark = [pytest.mark.browser]


@pytest.fixture
def operator(make_person: Callable[..., Any]) -> Any:
    return make_person("op@operator.test", account=None, roles=(), operator=True)


def test_deployment_checks(
    page: Any,
    url: Callable[[str], str],
    operator: Any,
    sign_in: Callable[..., None],
    axe_clean: Callable[..., Any],
    shot: Callable[[Any, str], Any],
    settings: Any,
) -> None:
    sign_in(page, operator.email)
    settings.VESTIBULE_TEST_IDP = True
    settings.VESTIBULE_BASE_URL = "http://vestibule.example.com"
    page.goto(url("/console/operator/checks/"))
    text = page.locator("main").inner_text()
    assert "vestibule.W001" in text and "vestibule.W002" in text and "Warnings" in text
    axe_clean(page, "deployment checks")
    shot(page, "operator-checks")
    page.get_by_role("button", name="Run the checks again").click()
    assert "vestibule.W001" in page.locator("main").inner_text()


def test_accounts_and_domain_claims(
    page: Any,
    url: Callable[[str], str],
    operator: Any,
    sign_in: Callable[..., None],
    axe_clean: Callable[..., Any],
    shot: Callable[[Any, str], Any],
) -> None:
    sign_in(page, operator.email)
    page.goto(url("/console/operator/accounts/"))
    axe_clean(page, "operator accounts")
    page.get_by_label("Slug").fill("globex")
    page.get_by_label("Name").fill("Globex")
    page.get_by_role("button", name="Create account").click()
    assert Account.objects.filter(slug="globex").exists()
    page.get_by_label("Slug").fill("globex")
    page.get_by_label("Name").fill("Globex again")
    page.get_by_role("button", name="Create account").click()
    assert "is taken" in page.locator(".field-error").inner_text()
    axe_clean(page, "operator accounts with a taken slug")
    shot(page, "operator-accounts")

    page.goto(url("/console/operator/domains/"))
    page.get_by_role("textbox", name="Account").fill("globex")
    page.get_by_role("textbox", name="Domain").fill("gmail.com")
    page.get_by_role("button", name="Claim domain").click()
    assert "public mail domain" in page.locator(".field-error").inner_text()
    page.get_by_role("textbox", name="Domain").fill("globex.test")
    page.get_by_role("button", name="Claim domain").click()
    assert DomainClaim.objects.get(domain="globex.test").account.slug == "globex"
    axe_clean(page, "operator domain claims")
    page.get_by_role("button", name="Release globex.test").click()
    page.locator("#confirm-dialog").get_by_role("button", name="Release globex.test").click()
    page.wait_for_load_state("load")
    assert "released" in page.locator("#notices").inner_text()
    assert not DomainClaim.objects.filter(domain="globex.test").exists()


def test_an_account_admin_gets_the_operator_refusal(
    page: Any,
    url: Callable[[str], str],
    make_person: Callable[..., Any],
    sign_in: Callable[..., None],
    axe_clean: Callable[..., Any],
) -> None:
    ann = make_person("ann@acme.test", roles=["administrator"])
    sign_in(page, ann.email)
    page.goto(url("/console/operator/checks/"))
    assert "Only the operator can open this page" in page.locator("main").inner_text()
    axe_clean(page, "operator refusal")
