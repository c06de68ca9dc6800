"""IdP metadata URL refresh against a real metadata server on 127.0.0.1, through the guarded outbound client.

Adopted: a changed SSO URL, a rollover (a certificate added, later the old one
dropped while another trusted one stays). Held: a document that drops every
trusted signing certificate, until an sso-admin confirms (or discards) it.
Refused, with the connection unchanged and no 5xx: 404, oversized, redirect
(not followed), non-XML, XXE, billion laughs, a destination the guard refuses.
Tenancy: another account's sso-admin can neither refresh, read the change log,
nor confirm or discard.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from tests.connections_lifecycle.conftest import ENTITY, SSO, metadata
from tests.connections_lifecycle.metadata_server import MetadataServer
from tests.saml_support import cert
from vestibule import cli
from vestibule.audit.models import AuditEvent
from vestibule.connections import metadata_refresh
from vestibule.connections.checks import check_idp_lifecycle
from vestibule.connections.models import IdpMetadataSource, MetadataChange
from vestibule.saml.keys import certificate_der, fingerprint
from vestibule.signin import idp_lifecycle

pytestmark = pytest.mark.django_db

METRICS_TOKEN = "metrics-token-0123456789abcdef"


def fp(key: str) -> str:
    return fingerprint(certificate_der(cert(key)))


def codes() -> list[str]:
    return list(
        AuditEvent.objects.filter(code__startswith="connection.idp_metadata")
        .order_by("pk")
        .values_list("code", flat=True)
    )


@pytest.fixture
def watched(saml_connection: Any, api: Any, metadata_server: MetadataServer) -> dict[str, Any]:
    """acme's SAML connection trusting ``idp``, enabled, reading its metadata from the local server."""
    connection = saml_connection("acme", keys=("idp",))
    url = metadata_server.serve(metadata("idp"))
    changed = api.patch(f"/api/v1/connections/{connection['id']}", {"idp_metadata_url": url, "enabled": True})
    assert changed.status_code == 200, changed.content[:500]
    return dict(changed.json())


def refresh(api: Any, connection: dict[str, Any]) -> Any:
    return api.post(f"/api/v1/connections/{connection['id']}/saml/idp-metadata/refresh")


def current(api: Any, connection: dict[str, Any]) -> dict[str, Any]:
    return dict(api.get(f"/api/v1/connections/{connection['id']}").json())


# --- Setting the URL ------------------------------------------------------------------------------


def test_the_url_is_shown_with_its_schedule(watched: dict[str, Any], metadata_server: MetadataServer) -> None:
    source = watched["idp_metadata"]
    assert source["url"] == metadata_server.url() and source["refresh_interval"] == 43200
    assert source["consecutive_failures"] == 0 and source["pending_change"] is None
    assert metadata_server.requests == []  # setting it fetches nothing yet


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://idp.example.com/metadata", "https://"),
        ("http://idp.example.com/metadata", "plain http only to a host listed in VESTIBULE_OUTBOUND_ALLOW"),
        ("https://user:secret@idp.example.com/metadata", "credentials"),
        ("https://10.1.2.3/metadata", "a private address"),
        ("https://169.254.169.254/latest/meta-data", "a link-local address"),
        ("https:///metadata", "no host"),
        ("", "non-empty"),
    ],
)
def test_a_url_that_could_never_be_fetched_is_refused(saml_connection: Any, api: Any, url: str, says: str) -> None:
    connection = saml_connection()
    refused = api.patch(f"/api/v1/connections/{connection['id']}", {"idp_metadata_url": url})
    assert refused.status_code == 422, refused.content
    assert refused.json()["field"] == "idp_metadata_url" and says in refused.json()["detail"]
    assert not IdpMetadataSource.objects.exists()


def test_the_interval_is_bounded_and_the_url_can_be_removed(watched: dict[str, Any], api: Any) -> None:
    path = f"/api/v1/connections/{watched['id']}"
    assert api.patch(path, {"idp_metadata_refresh_interval": 60}).status_code == 422
    assert api.patch(path, {"idp_metadata_refresh_interval": 3600}).json()["idp_metadata"]["refresh_interval"] == 3600
    assert api.patch(path, {"idp_metadata_url": None}).json()["idp_metadata"] is None
    assert not IdpMetadataSource.objects.exists()


def test_an_oidc_connection_has_no_metadata_url(api: Any, make_account: Any) -> None:
    make_account("acme")
    body = {"protocol": "oidc", "name": "Entra", "domains": ["acme.com"], "idp_metadata_url": "https://idp.example.com/m",
            "oidc": {"issuer": "https://login.example.com", "client_id": "x", "client_secret": "y"}}  # fmt: skip
    refused = api.post("/api/v1/accounts/acme/connections", body)
    assert refused.status_code == 422 and refused.json()["field"] == "idp_metadata_url"


def test_a_connection_can_be_created_with_its_metadata_url(
    api: Any, make_account: Any, metadata_server: MetadataServer
) -> None:
    make_account("acme")
    url = metadata_server.serve(metadata("idp"))
    body = {"protocol": "saml", "name": "Okta", "domains": ["acme.com"], "idp_metadata_url": url}
    created = api.post("/api/v1/accounts/acme/connections", body)
    assert created.status_code == 201, created.content
    connection = created.json()
    assert connection["idp_certificates"] == [] and connection["idp_metadata"]["url"] == url
    # The first read fills in the IdP settings of a new connection: nothing was trusted yet.
    assert refresh(api, connection).json()["outcome"] == "adopted"
    got = current(api, connection)
    assert got["saml"]["idp_entity_id"] == ENTITY and [c["fingerprint"] for c in got["idp_certificates"]] == [fp("idp")]


def test_refresh_needs_a_url_and_a_saml_connection(saml_connection: Any, api: Any, make_account: Any) -> None:
    connection = saml_connection()
    missing = refresh(api, connection)
    assert missing.status_code == 409 and missing.json()["field"] == "idp_metadata_url"
    body = {"protocol": "oidc", "name": "Entra", "domains": ["acme.com"],
            "oidc": {"issuer": "https://login.example.com", "client_id": "x", "client_secret": "y"}}  # fmt: skip
    oidc = api.post("/api/v1/accounts/acme/connections", body).json()
    for answer in (refresh(api, oidc), api.get(f"/api/v1/connections/{oidc['id']}/saml/metadata-changes")):
        assert answer.status_code == 422 and "SAML connections" in answer.json()["detail"]


# --- Adopted changes ------------------------------------------------------------------------------


def test_unchanged_metadata_changes_nothing(watched: dict[str, Any], api: Any) -> None:
    answer = refresh(api, watched)
    assert answer.status_code == 200 and answer.json()["outcome"] == "unchanged" and answer.json()["change"] is None
    assert MetadataChange.objects.count() == 0 and codes() == []
    assert answer.json()["idp_metadata"]["last_success_at"] is not None


def test_a_changed_sso_url_is_adopted_and_logged(
    watched: dict[str, Any], api: Any, metadata_server: MetadataServer
) -> None:
    metadata_server.serve(metadata("idp", sso_url="https://idp.lifecycle.test/sso/v2"))
    answer = refresh(api, watched).json()
    assert answer["outcome"] == "adopted"
    assert answer["change"]["changed_fields"] == ["sso_url"]
    assert answer["change"]["before"]["sso_url"] == SSO
    assert answer["change"]["after"]["sso_url"] == "https://idp.lifecycle.test/sso/v2"
    assert current(api, watched)["saml"]["sso_url"] == "https://idp.lifecycle.test/sso/v2"
    log = api.get(f"/api/v1/connections/{watched['id']}/saml/metadata-changes").json()
    assert [(c["status"], c["trigger"]) for c in log] == [("adopted", "api")]
    assert log[0]["triggered_by"].startswith("api-key:") and log[0]["decided_by"] == "automatic"
    assert codes() == ["connection.idp_metadata_changed"]
    event = AuditEvent.objects.get(code="connection.idp_metadata_changed")
    assert event.actor_api_key is not None and event.detail["changed_fields"] == ["sso_url"]


def test_a_rollover_is_adopted_in_two_steps(watched: dict[str, Any], api: Any, metadata_server: MetadataServer) -> None:
    """The IdP publishes its next certificate beside the current one, later the next one alone."""
    metadata_server.serve(metadata("idp", "idp_next"))
    first = refresh(api, watched).json()
    assert first["outcome"] == "adopted" and first["change"]["added_certificates"] == [fp("idp_next")]
    assert [c["fingerprint"] for c in current(api, watched)["idp_certificates"]] == [fp("idp"), fp("idp_next")]

    metadata_server.serve(metadata("idp_next"))
    second = refresh(api, watched).json()
    # The old certificate goes, but a trusted one (the next) stays: still a rollover, adopted.
    assert second["outcome"] == "adopted" and second["change"]["removed_certificates"] == [fp("idp")]
    assert [c["fingerprint"] for c in current(api, watched)["idp_certificates"]] == [fp("idp_next")]
    assert codes() == ["connection.idp_metadata_changed"] * 2


def test_an_aggregate_is_followed_by_the_trusted_entity_id(
    watched: dict[str, Any], api: Any, metadata_server: MetadataServer
) -> None:
    """A federation's EntitiesDescriptor lists several IdPs; the connection follows its own."""
    ours = metadata("idp", "idp_next").split(b"?>", 1)[1]
    theirs = metadata("attacker", entity_id="https://other-idp.test/metadata").split(b"?>", 1)[1]
    aggregate = (
        b'<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">'
        + theirs
        + ours
        + b"</md:EntitiesDescriptor>"
    )
    metadata_server.serve(aggregate)
    answer = refresh(api, watched).json()
    assert answer["outcome"] == "adopted" and answer["change"]["added_certificates"] == [fp("idp_next")]
    assert current(api, watched)["saml"]["idp_entity_id"] == ENTITY


# --- Held changes -----------------------------------------------------------------------------------


def test_metadata_dropping_every_trusted_key_is_held_until_an_admin_confirms(
    watched: dict[str, Any], api: Any, metadata_server: MetadataServer, settings: Any
) -> None:
    """A metadata host now publishing only a key nobody trusted yet (a hijack, or an IdP that skipped the overlap)."""
    metadata_server.serve(metadata("attacker"))
    held = refresh(api, watched)
    assert held.status_code == 200 and held.json()["outcome"] == "pending"
    change = held.json()["change"]
    assert change["status"] == "pending" and change["removed_certificates"] == [fp("idp")]
    assert change["added_certificates"] == [fp("attacker")]
    # The victim's end state: still trusting only its own key.
    after = current(api, watched)
    assert [c["fingerprint"] for c in after["idp_certificates"]] == [fp("idp")]
    assert after["idp_metadata"]["pending_change"] == change["id"]
    assert codes() == ["connection.idp_metadata_held"]
    assert [f.id for f in check_idp_lifecycle()] == ["vestibule.W017"]
    settings.VESTIBULE_METRICS_TOKEN = METRICS_TOKEN
    scraped = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}").content.decode()
    assert f'vestibule_idp_metadata_pending_changes{{account="acme",connection="{watched["id"]}"}} 1.0' in scraped

    # The next fetch of the same document neither logs nor audits it twice.
    again = refresh(api, watched).json()
    assert again["outcome"] == "pending" and again["change"]["id"] == change["id"]
    assert MetadataChange.objects.count() == 1 and codes() == ["connection.idp_metadata_held"]

    confirmed = api.post(f"/api/v1/connections/{watched['id']}/saml/idp-metadata/confirm", {"change_id": change["id"]})
    assert confirmed.status_code == 200, confirmed.content
    assert confirmed.json()["change"]["status"] == "confirmed"
    assert [c["fingerprint"] for c in current(api, watched)["idp_certificates"]] == [fp("attacker")]
    assert codes()[-1] == "connection.idp_metadata_confirmed"
    assert check_idp_lifecycle() == []
    twice = api.post(f"/api/v1/connections/{watched['id']}/saml/idp-metadata/confirm", {"change_id": change["id"]})
    assert twice.status_code == 409 and "confirmed, not pending" in twice.json()["detail"]


def test_a_held_change_can_be_discarded(watched: dict[str, Any], api: Any, metadata_server: MetadataServer) -> None:
    metadata_server.serve(metadata("attacker"))
    change = refresh(api, watched).json()["change"]
    discarded = api.post(f"/api/v1/connections/{watched['id']}/saml/idp-metadata/discard", {"change_id": change["id"]})
    assert discarded.status_code == 200 and discarded.json()["change"]["status"] == "discarded"
    assert [c["fingerprint"] for c in current(api, watched)["idp_certificates"]] == [fp("idp")]
    assert codes() == ["connection.idp_metadata_held", "connection.idp_metadata_discarded"]
    # Still published: held again, as a new change, for a new decision.
    again = refresh(api, watched).json()
    assert again["outcome"] == "pending" and again["change"]["id"] != change["id"]


def test_a_held_change_is_superseded_when_the_idp_returns_to_a_trusted_key(
    watched: dict[str, Any], api: Any, metadata_server: MetadataServer
) -> None:
    metadata_server.serve(metadata("attacker"))
    held = refresh(api, watched).json()["change"]
    metadata_server.serve(metadata("idp"))
    assert refresh(api, watched).json()["outcome"] == "unchanged"
    assert MetadataChange.objects.get(pk=held["id"]).status == "superseded"
    refused = api.post(f"/api/v1/connections/{watched['id']}/saml/idp-metadata/confirm", {"change_id": held["id"]})
    assert refused.status_code == 409
    assert [c["fingerprint"] for c in current(api, watched)["idp_certificates"]] == [fp("idp")]


def test_an_unknown_change_id_is_a_404(watched: dict[str, Any], api: Any) -> None:
    for body in ({"change_id": 999999}, {"change_id": -1}):
        answer = api.post(f"/api/v1/connections/{watched['id']}/saml/idp-metadata/confirm", body)
        assert answer.status_code == 404 and answer.json()["field"] == "change_id"
    assert (
        api.post(f"/api/v1/connections/{watched['id']}/saml/idp-metadata/confirm", {"change_id": "x"}).status_code
        == 422
    )


# --- Failed fetches -----------------------------------------------------------------------------------

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE md:EntityDescriptor [<!ENTITY leak SYSTEM "file:///etc/hostname">]>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&leak;"/>"""

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&lol9;"/>"""


@pytest.mark.parametrize(
    ("answer", "status", "reason"),
    [
        ({"body": b"gone", "status": 404}, 502, "metadata.http_status"),
        ({"body": b"x" * (600 * 1024)}, 422, "outbound.too_large"),
        ({"body": b"x", "headers": {"Content-Length": str(3 * 1024 * 1024)}}, 422, "outbound.too_large"),
        ({"body": b"", "status": 302, "headers": {"Location": "/elsewhere"}}, 422, "outbound.redirect_refused"),
        ({"body": b"<html><body>Sign in</body></html>"}, 422, "metadata.invalid"),
        ({"body": b'{"issuer": "https://idp"}'}, 422, "metadata.invalid"),
        ({"body": XXE}, 422, "metadata.invalid"),
        ({"body": LAUGHS}, 422, "metadata.invalid"),
    ],
    ids=["404", "oversized-body", "oversized-length", "redirect", "html", "json", "xxe", "billion-laughs"],
)
def test_a_failed_fetch_changes_nothing_and_says_why(
    watched: dict[str, Any], api: Any, metadata_server: MetadataServer, answer: dict[str, Any], status: int, reason: str
) -> None:
    before = current(api, watched)["saml"]
    metadata_server.serve(answer["body"], status=answer.get("status", 200), **answer.get("headers", {}))
    metadata_server.serve(metadata("attacker"), path="/elsewhere")
    failed = refresh(api, watched)
    assert failed.status_code == status, failed.content
    assert reason in failed.json()["detail"] and failed.json()["field"] == "idp_metadata_url"
    assert current(api, watched)["saml"] == before
    assert MetadataChange.objects.count() == 0
    assert "/elsewhere" not in metadata_server.requests  # a redirect is never followed
    source = current(api, watched)["idp_metadata"]
    assert source["consecutive_failures"] == 1 and source["last_error"].startswith(reason)
    event = AuditEvent.objects.get(code="connection.idp_metadata_refresh_failed")
    assert event.detail["reason"] == reason and event.outcome == "failure"
    # Nothing of the entity the XXE asked for reached the log or the answer.
    leaked = json.dumps(event.detail) + failed.content.decode()
    assert "&leak;" not in leaked and "lollol" not in leaked


def test_a_destination_the_guard_refuses_is_never_contacted(
    watched: dict[str, Any], api: Any, metadata_server: MetadataServer, settings: Any
) -> None:
    """The URL was allowed when set; the operator since removed 127.0.0.1 from the allow list."""
    settings.VESTIBULE_OUTBOUND_ALLOW = ()
    failed = refresh(api, watched)
    assert failed.status_code == 422 and "outbound.scheme_not_allowed" in failed.json()["detail"]
    assert metadata_server.requests == []


def test_repeated_failures_become_a_check_finding(
    watched: dict[str, Any], api: Any, metadata_server: MetadataServer
) -> None:
    metadata_server.serve(b"gone", status=404)
    for attempt in range(1, metadata_refresh.FAILURES_BEFORE_FINDING + 1):
        assert [f.id for f in check_idp_lifecycle()] == []
        assert refresh(api, watched).status_code == 502
        assert current(api, watched)["idp_metadata"]["consecutive_failures"] == attempt
    findings = check_idp_lifecycle()
    assert [f.id for f in findings] == ["vestibule.W018"] and "metadata.http_status" in findings[0].msg
    metadata_server.serve(metadata("idp"))
    assert refresh(api, watched).json()["outcome"] == "unchanged"
    assert check_idp_lifecycle() == []


# --- Tenancy --------------------------------------------------------------------------------------------


def test_another_accounts_admin_can_do_nothing_to_the_metadata_url(
    watched: dict[str, Any], api: Any, metadata_server: MetadataServer, saml_connection: Any, sso_admin_key: Any
) -> None:
    metadata_server.serve(metadata("attacker"))
    held = refresh(api, watched).json()["change"]
    own = saml_connection("globex", keys=("idp",))
    outsider = api.as_key(sso_admin_key("globex"))
    requests_before = len(metadata_server.requests)
    base = f"/api/v1/connections/{watched['id']}/saml"
    assert outsider.post(f"{base}/idp-metadata/refresh").status_code == 404
    assert outsider.get(f"{base}/metadata-changes").status_code == 404
    assert outsider.post(f"{base}/idp-metadata/confirm", {"change_id": held["id"]}).status_code == 404
    assert outsider.post(f"{base}/idp-metadata/discard", {"change_id": held["id"]}).status_code == 404
    assert outsider.patch(f"/api/v1/connections/{watched['id']}", {"idp_metadata_url": None}).status_code == 404
    # Naming A's change through B's own connection finds nothing either.
    through_own = outsider.post(f"/api/v1/connections/{own['id']}/saml/idp-metadata/confirm", {"change_id": held["id"]})
    assert through_own.status_code == 404
    # A's state: the change still pending, the certificates untouched, nothing fetched for B.
    assert MetadataChange.objects.get(pk=held["id"]).status == "pending"
    assert [c["fingerprint"] for c in current(api, watched)["idp_certificates"]] == [fp("idp")]
    assert len(metadata_server.requests) == requests_before
    # Positive control: A's own sso-admin decides it.
    insider = api.as_key(sso_admin_key("acme"))
    assert insider.post(f"{base}/idp-metadata/discard", {"change_id": held["id"]}).status_code == 200


# --- The periodic pass -----------------------------------------------------------------------------------


def test_the_periodic_pass_refreshes_due_urls_once(
    watched: dict[str, Any], api: Any, metadata_server: MetadataServer
) -> None:
    metadata_server.serve(metadata("idp", "idp_next"))
    now = timezone.now()
    passed = idp_lifecycle.run_once(now)
    assert passed.refreshed == {watched["id"]: "adopted"}
    change = MetadataChange.objects.get()
    assert (change.trigger, change.triggered_by) == ("schedule", "")
    # Not due again before its interval.
    assert idp_lifecycle.run_once(now + dt.timedelta(hours=1)).refreshed == {}
    assert idp_lifecycle.run_once(now + dt.timedelta(hours=12, seconds=1)).refreshed == {watched["id"]: "unchanged"}


def test_two_processes_cannot_both_claim_a_due_url(watched: dict[str, Any]) -> None:
    now = timezone.now()
    seen_by_first, seen_by_second = metadata_refresh.due_sources(now), metadata_refresh.due_sources(now)
    assert metadata_refresh.claim_due(seen_by_first[0], now) is True
    assert metadata_refresh.claim_due(seen_by_second[0], now) is False


def test_a_failed_scheduled_fetch_is_retried_sooner(watched: dict[str, Any], metadata_server: MetadataServer) -> None:
    metadata_server.serve(b"gone", status=404)
    now = timezone.now()
    assert idp_lifecycle.run_once(now).refreshed == {watched["id"]: "metadata.http_status"}
    source = IdpMetadataSource.objects.get()
    assert source.next_fetch_at - now == dt.timedelta(seconds=metadata_refresh.RETRY_SECONDS)


# --- The CLI ------------------------------------------------------------------------------------------------


def test_the_cli_sets_refreshes_lists_and_confirms(
    saml_connection: Any, metadata_server: MetadataServer, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setattr(cli.common, "_setup", lambda test_idp=False, server=False: None)
    connection = saml_connection("acme", keys=("idp",))
    url = metadata_server.serve(metadata("attacker"))
    assert cli.main(["connection", "metadata-url", connection["id"], url, "--interval", "3600"]) == 0
    assert "every 3600 s" in capsys.readouterr().out
    assert cli.main(["connection", "refresh-metadata", connection["id"]]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("pending") and "confirm-metadata" in err
    change = MetadataChange.objects.get()
    assert cli.main(["connection", "metadata-changes", connection["id"], "--json"]) == 0
    assert [c["status"] for c in json.loads(capsys.readouterr().out)] == ["pending"]
    assert cli.main(["connection", "confirm-metadata", connection["id"], str(change.pk)]) == 0
    assert "confirmed" in capsys.readouterr().out
    assert cli.main(["connection", "confirm-metadata", connection["id"], str(change.pk)]) == 1
    assert "not pending" in capsys.readouterr().err
    assert AuditEvent.objects.filter(code="connection.idp_metadata_confirmed", detail__via="cli").count() == 1
    metadata_server.serve(b"gone", status=404)
    assert cli.main(["connection", "refresh-metadata", connection["id"]]) == 1
    assert "metadata.http_status" in capsys.readouterr().err
    assert cli.main(["connection", "metadata-url", connection["id"], "--remove"]) == 0
    assert not IdpMetadataSource.objects.exists()


def test_the_workers_loop_survives_a_failed_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """``vestibule serve`` workers run this loop in a thread (gunicorn's post_worker_init starts it)."""
    import threading

    stop, passes = threading.Event(), []

    def one_pass() -> None:
        passes.append(1)
        if len(passes) == 1:
            raise RuntimeError("database went away")
        stop.set()

    monkeypatch.setattr(idp_lifecycle, "run_once", one_pass)
    idp_lifecycle.run(interval=0.01, first=0.01, stop=stop)
    assert len(passes) == 2
    started = []
    monkeypatch.setattr(idp_lifecycle, "start", lambda: started.append(True) or True)
    cli._worker_started(None)
    assert started == [True]
