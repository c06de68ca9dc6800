"""``make demo`` puts the administrator into the console: the printed one-time link, and the hub's seeded data."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from vestibule.accounts.models import Approval, Membership, User
from vestibule.audit.models import AuditEvent, LoginTrace
from vestibule.connections.models import Connection, MappingRole
from vestibule.demo import ADMIN_EMAIL, SECOND_CONNECTION_NAME, seed_demo
from vestibule.login.models import OneTimeLink, token_digest

LINK = re.compile(r"^\s+(http://\S+/demo/sign-in/(\S+))$", re.M)


@pytest.fixture
def demo(db: None, settings: Any, tmp_path: Path) -> str:
    """The demo seeded as ``vestibule demo`` seeds it (test IdP on); its printed output."""
    settings.VESTIBULE_TEST_IDP = True
    settings.CONFIG = dataclasses.replace(settings.CONFIG, data_dir=tmp_path)
    return "\n".join(seed_demo())


def link_in(output: str) -> tuple[str, str]:
    match = LINK.search(output)
    assert match, output
    return match.group(1), match.group(2)


def path_of(url: str, settings: Any) -> str:
    assert url.startswith(settings.VESTIBULE_BASE_URL + "/")
    return url.removeprefix(settings.VESTIBULE_BASE_URL)


def test_the_printed_link_signs_the_administrator_into_the_console_once(demo: str, settings: Any) -> None:
    url, token = link_in(demo)
    assert "Open the console, signed in as admin@acme.test" in demo
    # Stored as a digest only: the token is in the output, not in the database.
    assert OneTimeLink.objects.filter(digest=token_digest(token)).exists()
    assert not OneTimeLink.objects.filter(digest=token).exists()

    browser = Client()
    landed = browser.get(path_of(url, settings))
    assert landed.status_code == 302 and landed["Location"] == "/console/a/acme/"
    console = browser.get(landed["Location"])
    assert console.status_code == 200
    page = console.content.decode()
    assert "Acme Corporation" in page and "Sign out" in page
    assert AuditEvent.objects.filter(code="login.demo.succeeded", subject_email=ADMIN_EMAIL).exists()

    # Used once: the second visit (another browser) is refused and signs nobody in.
    again = Client()
    refused = again.get(path_of(url, settings))
    assert refused.status_code == 410
    assert "used or has expired" in refused.content.decode()
    assert again.get("/console/a/acme/").status_code == 302  # to the sign-in page


def test_a_rerun_voids_the_earlier_link(demo: str, settings: Any) -> None:
    first, _ = link_in(demo)
    second, _ = link_in("\n".join(seed_demo()))
    assert first != second
    assert Client().get(path_of(first, settings)).status_code == 410
    assert Client().get(path_of(second, settings)).status_code == 302


def test_an_expired_link_is_refused(demo: str, settings: Any) -> None:
    url, token = link_in(demo)
    OneTimeLink.objects.filter(digest=token_digest(token)).update(expires_at="2000-01-01T00:00:00Z")
    assert Client().get(path_of(url, settings)).status_code == 410


def test_outside_demo_mode_the_path_is_a_404_and_spends_nothing(demo: str, settings: Any) -> None:
    url, token = link_in(demo)
    settings.VESTIBULE_TEST_IDP = False  # a plain `vestibule serve`
    response = Client().get(path_of(url, settings))
    assert response.status_code == 404
    assert OneTimeLink.objects.get(digest=token_digest(token)).used_at is None
    assert Client().get("/demo/sign-in/anything").status_code == 404


def test_a_made_up_token_is_refused_without_a_5xx(demo: str) -> None:
    for token in ("x", "A" * 43, "%00", "a" * 5000):
        assert Client().get(f"/demo/sign-in/{token}").status_code in (404, 410)


def test_the_hub_has_something_to_show_and_a_rerun_adds_nothing(demo: str) -> None:
    def snapshot() -> dict[str, Any]:
        return {
            "connections": sorted(Connection.objects.filter(account__slug="acme").values_list("name", "enabled")),
            "mapping_roles": MappingRole.objects.filter(account__slug="acme").count(),
            "members": Membership.objects.filter(account__slug="acme").count(),
            "pending": list(
                Membership.objects.filter(account__slug="acme", approval=Approval.PENDING).values_list(
                    "user__email", flat=True
                )
            ),
            "failed_traces": LoginTrace.objects.filter(account__slug="acme", outcome="failure").count(),
        }

    first = snapshot()
    assert (SECOND_CONNECTION_NAME, False) in first["connections"]
    assert any(enabled for _, enabled in first["connections"])
    assert first["mapping_roles"] == 1
    assert first["members"] >= 5 and first["pending"] == ["new.hire@acme.test"]
    assert first["failed_traces"] == 1
    assert User.objects.get(email_key="grace.hopper@acme.test").role_grants.filter(role="sso-admin").exists()
    seed_demo()
    assert snapshot() == first


@pytest.mark.multiprocess  # a real `vestibule demo` process; CI runs it once, in the multi-process pass
def test_the_real_demo_prints_a_link_that_opens_the_console(tmp_path: Path) -> None:
    import httpx

    from tests.test_demo_port import VESTIBULE, Process, free_port

    port = free_port()
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith("VESTIBULE_") and k != "DJANGO_SETTINGS_MODULE"
    }
    env = {**inherited, "VESTIBULE_DATA_DIR": str(tmp_path / "data")}
    process = Process([str(VESTIBULE), "demo", "--port", str(port), "--threads", "4"], env)
    try:
        process.wait_for(f"http://127.0.0.1:{port}/login", timeout=300)  # a fresh database migrates first
        url, _ = link_in(process.output)
        assert url.startswith(f"http://127.0.0.1:{port}/demo/sign-in/"), process.output
        with httpx.Client(timeout=20, follow_redirects=True) as browser:
            console = browser.get(url)
            assert console.status_code == 200 and str(console.url) == f"http://127.0.0.1:{port}/console/a/acme/"
            assert "Acme Corporation" in console.text
            assert httpx.get(url, timeout=20).status_code == 410
    finally:
        process.stop()
