"""The failure page and login trace every SSO endpoint gets from ``signin.failures.sso_endpoint``.

Statuses, titles and messages come from the reason registry
(``vestibule.domain.reasons``), never from the view: these tests read the
expected values from the registry and check that the page, the trace and
the audit event agree with it.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.e2e.oidc_support import password_login, password_user
from tests.e2e.test_oidc_tenancy import connect_path, csrf_token
from vestibule.audit.models import AuditEvent, LoginTrace
from vestibule.domain.reasons import REASONS

pytestmark = pytest.mark.django_db

DOWN = {"issuer": "http://127.0.0.1:9", "client_id": "vestibule", "client_secret": "s3cret"}


def oidc_down(api: Any, make_account: Any, *, enabled: bool = True) -> dict[str, Any]:
    make_account("acme")
    payload = {"protocol": "oidc", "name": "Down", "domains": ["acme.com"], "oidc": DOWN}
    connection: dict[str, Any] = api.post("/accounts/acme/connections", payload, expect=201).json()
    if enabled:
        api.patch(f"/connections/{connection['id']}", {"enabled": True})
    return connection


def failed_step(trace: LoginTrace) -> dict[str, Any]:
    step: dict[str, Any] = trace.steps[-1]
    assert step["status"] == "failed"
    return step


def test_disabled_connection_page_status_and_trace_come_from_the_registry(api, make_account):
    connection = oidc_down(api, make_account, enabled=False)
    entry = REASONS["sso.connection_disabled"]
    page = Client().get(f"/sso/start/{connection['id']}")
    assert page.status_code == entry.status
    html = page.content.decode()
    assert entry.title in html and entry.message.replace("'", "&#x27;") in html and entry.code in html
    trace = LoginTrace.objects.get(connection_id=connection["id"])
    assert str(trace.id) in html
    assert (trace.outcome, trace.reason_code, trace.failed_step) == ("failure", entry.code, "start")
    assert failed_step(trace)["fix_in"] == "vestibule"
    assert AuditEvent.objects.filter(code=entry.code, trace=trace).exists()


def test_callback_without_a_started_login_is_state_invalid(api, make_account):
    connection = oidc_down(api, make_account)
    entry = REASONS["sso.state_invalid"]
    page = Client().get(f"/sso/oidc/{connection['id']}/callback", {"state": "forged", "code": "c"})
    assert page.status_code == entry.status == 400
    assert entry.message in page.content.decode()
    step = failed_step(LoginTrace.objects.get(connection_id=connection["id"]))
    assert (step["code"], step["step"], step["fix_in"], step["detail_code"]) == (
        entry.code,
        "state",
        "user",
        "oidc.state_invalid",
    )


def test_endpoint_of_the_other_protocol_is_404_and_leaves_no_trace(api, make_account):
    connection = oidc_down(api, make_account)
    assert Client().post(f"/sso/saml/{connection['id']}/acs", {"SAMLResponse": "x"}).status_code == 404
    assert Client().get("/sso/start/not-a-uuid").status_code == 404
    assert not LoginTrace.objects.exists()


def test_connect_with_an_unusable_provider_is_a_traced_refusal(api, make_account):
    """Connect organization against a provider that cannot be reached: the connect step fails, not a 500."""
    connection = oidc_down(api, make_account)
    password_user(api, "acme", "admin@acme.com", ["sso-admin"])
    browser = Client()
    password_login(browser, "admin@acme.com")
    form = browser.get(connect_path(connection))
    assert form.status_code == 200 and not LoginTrace.objects.exists()
    page = browser.post(connect_path(connection), {"csrfmiddlewaretoken": csrf_token(form)})
    trace = LoginTrace.objects.get(connection_id=connection["id"])
    # Nothing listens there (the test settings let the outbound client try loopback): the upstream is down.
    entry = REASONS["sso.provider_unavailable"]
    assert trace.reason_code == entry.code and failed_step(trace)["fix_in"] == "identity_provider"
    assert page.status_code == entry.status_for("connect") == 502
    assert trace.failed_step == "connect" and failed_step(trace)["detail_code"] == "oidc.discovery_failed"
    assert "Down&#x27;s identity provider" in page.content.decode()
