"""``GET /metrics``: who may read it, and that sign-ins and token exchanges move its counters."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import PASSWORD, password_login
from tests.provider.support import Pkce, authorize_url, code_from, exchange, register_app, saml_connection, sign_in
from vestibule import cli
from vestibule.conf.env import ConfigError, load_config

TOKEN = "metrics-token-0123456789abcdef"


@pytest.fixture
def scrape(client: Client, settings: Any) -> Any:
    settings.VESTIBULE_METRICS_TOKEN = TOKEN

    def read() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert response.status_code == 200, response.content
        assert response["Content-Type"].startswith("text/plain")
        samples = {}
        for family in text_string_to_metric_families(response.content.decode()):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples

    return read


def total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return sum(
        value
        for (sample, found), value in samples.items()
        if sample == name and all((k, v) in found for k, v in labels.items())
    )


def test_metrics_are_a_404_while_no_token_is_set(client: Client, settings: Any) -> None:
    settings.VESTIBULE_METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer wrong-token-0123456789", f"Basic {TOKEN}", f"Bearer {TOKEN}x"])
def test_metrics_refuse_a_wrong_or_missing_token(client: Client, settings: Any, header: str | None) -> None:
    settings.VESTIBULE_METRICS_TOKEN = TOKEN
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.get("/metrics", **extra)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert TOKEN.encode() not in response.content


@pytest.mark.django_db
def test_the_right_token_reads_the_histogram_by_route_name(client: Client, scrape: Any) -> None:
    client.get("/login")
    client.get("/no/such/page/12345")
    samples = scrape()
    assert total(samples, "vestibule_http_request_duration_seconds_count", route="login") >= 1
    assert total(samples, "vestibule_http_request_duration_seconds_count", route="unmatched") >= 1
    routes = {dict(labels).get("route") for (name, labels) in samples if name.startswith("vestibule_http_request")}
    assert not any(route and "/" in route for route in routes), routes  # route names, never raw paths


@pytest.mark.django_db
def test_password_logins_move_their_counter(client: Client, make_user: Any, scrape: Any) -> None:
    make_user("alice@example.com")
    before = scrape()
    assert password_login(client, "alice@example.com", "not the password at all").status_code == 401
    assert password_login(Client(), "alice@example.com", PASSWORD).status_code == 302
    after = scrape()
    name = "vestibule_password_logins_total"
    assert total(after, name, outcome="invalid") - total(before, name, outcome="invalid") == 1
    assert total(after, name, outcome="success") - total(before, name, outcome="success") == 1


@pytest.mark.django_db
def test_a_failed_sso_login_moves_its_counter(
    client: Client, operator_key: str, make_account: Any, scrape: Any
) -> None:
    make_account("acme")
    connection = saml_connection(operator_key, "acme", ("acme.example",))
    before = scrape()
    response = client.post(f"/sso/saml/{connection['id']}/acs", {"SAMLResponse": "bm90IGEgcmVzcG9uc2U="})
    assert response.status_code in (400, 403)
    after = scrape()
    name = "vestibule_sso_logins_total"
    moved = total(after, name, protocol="saml", outcome="failure") - total(
        before, name, protocol="saml", outcome="failure"
    )
    assert moved == 1
    reasons = {dict(labels)["reason"] for (sample, labels) in after if sample == name}
    assert all(reason.startswith("sso.") or reason == "" for reason in reasons), reasons


@pytest.mark.django_db
def test_a_token_exchange_moves_its_counter(client: Client, make_user: Any, scrape: Any) -> None:
    make_user("alice@example.com")
    app, secret = register_app()
    sign_in(client, "alice@example.com")
    pkce = Pkce.make()
    code = code_from(client.get(authorize_url(app.client_id, pkce)))
    before = scrape()
    assert exchange(client, app, secret, code, pkce.verifier).status_code == 200
    assert exchange(client, app, secret, code, pkce.verifier).status_code == 400  # a code is used once
    after = scrape()
    name = "vestibule_op_tokens_total"
    grant = "authorization_code"
    assert total(after, name, grant=grant, outcome="success") - total(before, name, grant=grant, outcome="success") == 1
    assert (
        total(after, name, grant=grant, outcome="invalid_grant")
        - total(before, name, grant=grant, outcome="invalid_grant")
        == 1
    )


def test_serve_gives_the_workers_a_fresh_metrics_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Empty, not deleted: deleting an unset variable records no undo, and the
    # folder _metrics_dir() sets (then removed below) would leak into every later
    # test that starts a server. _metrics_dir() treats empty as unset.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")
    cli._metrics_dir()
    made = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    assert made.is_dir() and not any(made.iterdir())
    made.rmdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    cli._metrics_dir()
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path)


def test_workers_samples_are_summed_in_multiprocess_mode(tmp_path: Path) -> None:
    """Two processes count into PROMETHEUS_MULTIPROC_DIR; a scrape in a third sees both."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    count = "from vestibule.conf import metrics; metrics.password_login('success'); metrics.sso_login('oidc', 'failure', 'sso.claim_missing.email')"
    for _ in range(2):
        subprocess.run([sys.executable, "-c", count], env=env, check=True, timeout=60)
    read = "from prometheus_client import generate_latest; from vestibule.conf.metrics import _registry; print(generate_latest(_registry()).decode())"
    done = subprocess.run([sys.executable, "-c", read], env=env, check=True, timeout=60, capture_output=True, text=True)
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(done.stdout)
        for sample in family.samples
    }
    assert total(samples, "vestibule_password_logins_total", outcome="success") == 2
    # A family member counts under its family: the label set stays bounded.
    assert total(samples, "vestibule_sso_logins_total", protocol="oidc", reason="sso.claim_missing") == 2


def test_a_short_metrics_token_stops_startup(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="VESTIBULE_METRICS_TOKEN"):
        load_config({"VESTIBULE_DATA_DIR": str(tmp_path), "VESTIBULE_METRICS_TOKEN": "short"})
    assert load_config({"VESTIBULE_DATA_DIR": str(tmp_path)}).metrics_token == ""
