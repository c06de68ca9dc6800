"""Back-channel logout (OpenID Connect Back-Channel Logout 1.0) to a real receiver on 127.0.0.1.

The receiver verifies each logout token as a relying party does: signature
with the keys published at /oauth/jwks, ``typ`` ``logout+jwt``, ``iss``,
``aud``, the back-channel event, ``sid`` matching the ID token's, and no
``nonce``. Sends are made inline (``VESTIBULE_DELIVERIES_INLINE``) inside
captured commit callbacks, so each test sees the attempt that follows the
commit; ``deliveries.sweep()`` is the retrying sweeper.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest
from django.db import transaction
from django.db.models import Q
from django.test import Client
from django.utils import timezone
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from tests.conftest import ApiClient
from tests.provider.receiver import HANG, Receiver, redirect, signed_in
from tests.provider.support import register_app
from vestibule.provider import authorizations, deliveries
from vestibule.provider.models import AccessToken, Authorization, Delivery, Grant, RefreshToken

ISSUER = "http://localhost"
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_URI = "https://app.example/bye"


@pytest.fixture
def alice(make_user: Any) -> Any:
    return make_user("alice@example.com", roles=("analyst",))


@pytest.fixture
def two_apps(receiver: Receiver) -> tuple[tuple[Any, str | None], tuple[Any, str | None]]:
    a = register_app(name="App A", backchannel_logout_uri=receiver.url("/a"), post_logout_redirect_uris=[LOGOUT_URI])
    b = register_app(name="App B", backchannel_logout_uri=receiver.url("/b"))
    return a, b


def verified_logout_token(request: Any, jwks: dict[str, Any], client_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """What a relying party checks (Back-Channel Logout 1.0 section 2.6); returns (header, claims)."""
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    form = parse_qs(request.body, strict_parsing=True)
    assert list(form) == ["logout_token"] and len(form["logout_token"]) == 1
    token = jwt.decode(form["logout_token"][0], KeySet.import_key_set(jwks), algorithms=["RS256", "ES256"])
    JWTClaimsRegistry(
        iss={"essential": True, "value": ISSUER},
        aud={"essential": True, "value": client_id},
        iat={"essential": True},
        exp={"essential": True},
        jti={"essential": True},
    ).validate(token.claims)
    claims = dict(token.claims)
    assert token.header["typ"] == "logout+jwt"
    assert claims["events"] == {LOGOUT_EVENT: {}}
    assert "nonce" not in claims
    assert claims["exp"] - claims["iat"] == 120
    assert claims["sub"] and claims["sid"]
    return dict(token.header), claims


def id_sid(client: Client, id_token: str) -> str:
    keys = KeySet.import_key_set(client.get("/oauth/jwks").json())
    return str(jwt.decode(id_token, keys, algorithms=["RS256", "ES256"]).claims["sid"])


def test_signing_out_of_vestibule_sends_each_application_a_verifiable_logout_token(
    alice, two_apps, receiver, django_capture_on_commit_callbacks
):
    (a, a_secret), (b, b_secret) = two_apps
    browser, got = signed_in(alice.email, (a, a_secret), (b, b_secret))
    jwks = browser.get("/oauth/jwks").json()
    with django_capture_on_commit_callbacks(execute=True):
        assert browser.post("/logout").status_code == 302
    for app, path in ((a, "/a"), (b, "/b")):
        [request] = receiver.at(path)
        _, claims = verified_logout_token(request, jwks, app.client_id)
        assert claims["sub"] == str(alice.subject)
        # The relying party finds its session by the ID token's sid.
        assert claims["sid"] == id_sid(browser, got[app.client_id]["id_token"])
        row = Delivery.objects.get(application=app)
        assert (row.kind, row.event_type, row.status, row.attempts) == ("backchannel_logout", "logout", "delivered", 1)
        assert row.message_id == claims["jti"] and row.last_status_code == 200 and row.delivered_at is not None
    # The sign-ins are over: their tokens no longer work.
    assert not Authorization.objects.filter(ended_at__isnull=True).exists()
    assert (
        browser.get("/oauth/userinfo", HTTP_AUTHORIZATION=f"Bearer {got[a.client_id]['access_token']}").status_code
        == 401
    )


def test_one_logout_token_per_application_and_sid(alice, two_apps, receiver, django_capture_on_commit_callbacks):
    (a, a_secret), _ = two_apps
    browser, _ = signed_in(alice.email, (a, a_secret), (a, a_secret))
    sids = set(Authorization.objects.filter(application=a).values_list("sid", flat=True))
    assert len(sids) == 2
    with django_capture_on_commit_callbacks(execute=True):
        browser.post("/logout")
    jwks = browser.get("/oauth/jwks").json()
    told = [verified_logout_token(r, jwks, a.client_id)[1]["sid"] for r in receiver.at("/a")]
    assert sorted(told) == sorted(str(s) for s in sids)
    assert Delivery.objects.count() == 2


def test_an_application_without_a_backchannel_uri_gets_nothing(alice, receiver, django_capture_on_commit_callbacks):
    quiet, quiet_secret = register_app(name="Quiet")
    told, told_secret = register_app(name="Told", backchannel_logout_uri=receiver.url("/told"))
    browser, _ = signed_in(alice.email, (quiet, quiet_secret), (told, told_secret))
    with django_capture_on_commit_callbacks(execute=True):
        browser.post("/logout")
    assert len(receiver.at("/told")) == 1 and len(receiver.received) == 1
    assert not Delivery.objects.filter(application=quiet).exists()


def test_deactivating_the_person_through_the_api_sends_logout(
    alice, two_apps, receiver, api: ApiClient, django_capture_on_commit_callbacks
):
    (a, a_secret), _ = two_apps
    # acme owns example.com: it is alice's home account and may deactivate her identity.
    assert api.post("/api/v1/accounts/acme/domains", {"domain": "example.com"}).status_code == 201
    browser, _ = signed_in(alice.email, (a, a_secret))
    with django_capture_on_commit_callbacks(execute=True):
        response = api.patch(f"/api/v1/accounts/acme/users/{alice.pk}", {"is_active": False})
    assert response.status_code == 200, response.content
    alice.refresh_from_db()
    assert alice.is_active is False
    [request] = receiver.at("/a")
    _, claims = verified_logout_token(request, browser.get("/oauth/jwks").json(), a.client_id)
    assert claims["sub"] == str(alice.subject)
    assert Authorization.objects.get().ended_reason == "person_deactivated"


def test_removing_the_membership_sends_logout_for_that_organizations_sign_in(
    alice, two_apps, receiver, api: ApiClient, django_capture_on_commit_callbacks, make_account
):
    (a, a_secret), _ = two_apps
    browser, _ = signed_in(alice.email, (a, a_secret), scope="openid organization")
    authorization = Authorization.objects.get()
    assert authorization.account is not None and authorization.account.slug == "acme"
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"/api/v1/accounts/acme/users/{alice.pk}").status_code == 204
    [request] = receiver.at("/a")
    _, claims = verified_logout_token(request, browser.get("/oauth/jwks").json(), a.client_id)
    assert claims["sid"] == str(authorization.sid)


def test_rp_initiated_logout_ends_the_session_and_tells_only_the_other_applications(
    alice, two_apps, receiver, django_capture_on_commit_callbacks
):
    (a, a_secret), (b, b_secret) = two_apps
    browser, got = signed_in(alice.email, (a, a_secret), (b, b_secret))
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.get(
            "/oauth/logout?"
            + urlencode({"id_token_hint": got[a.client_id]["id_token"], "post_logout_redirect_uri": LOGOUT_URI})
        )
    assert response.status_code == 302 and response["Location"] == LOGOUT_URI
    # The Vestibule session is over, and with it both sign-ins.
    assert browser.get("/api/v1/session").status_code in (401, 403)
    assert set(Authorization.objects.values_list("ended_reason", flat=True)) == {"rp_logout", "logout"}
    # A asked: it is not told. B is.
    assert receiver.at("/a") == []
    [request] = receiver.at("/b")
    _, claims = verified_logout_token(request, browser.get("/oauth/jwks").json(), b.client_id)
    assert claims["sid"] == str(Authorization.objects.get(application=b).sid)
    assert not Delivery.objects.filter(application=a).exists()


# --- retries, giving up, hostile receivers ------------------------------------------------------


def _logout_one(alice: Any, app: tuple[Any, str | None], capture: Any) -> tuple[Client, Delivery]:
    browser, _ = signed_in(alice.email, app)
    with capture(execute=True):
        browser.post("/logout")
    return browser, Delivery.objects.get()


def _due_now(row: Delivery) -> None:
    """The backoff wait is over (the clock moved on)."""
    Delivery.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def test_a_500_is_retried_with_backoff_then_delivered(alice, receiver, django_capture_on_commit_callbacks):
    app = register_app(name="Flaky", backchannel_logout_uri=receiver.url("/flaky"))
    receiver.answer("/flaky", 500)
    before = timezone.now()
    browser, row = _logout_one(alice, app, django_capture_on_commit_callbacks)
    assert (row.status, row.attempts, row.last_status_code, row.last_error) == ("pending", 1, 500, "HTTP 500")
    assert row.next_attempt_at >= before + deliveries.BACKOFF[0]
    # Not due yet: the sweeper leaves it alone.
    assert deliveries.sweep().message_ids == []
    assert len(receiver.at("/flaky")) == 1

    _due_now(row)
    outcome = deliveries.sweep()
    assert (outcome.delivered, outcome.message_ids) == (1, [row.message_id])
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_status_code, row.last_error) == ("delivered", 2, 200, "")
    # The retry carries a freshly signed token with the same jti: a two-minute token must not arrive stale.
    jwks = browser.get("/oauth/jwks").json()
    first, second = (verified_logout_token(r, jwks, app[0].client_id)[1] for r in receiver.at("/flaky"))
    assert first["jti"] == second["jti"] == row.message_id
    assert (first["sid"], first["sub"]) == (second["sid"], second["sub"])
    log = deliveries.delivery_log(app[0])
    assert log[0]["status"] == "delivered" and log[0]["next_attempt_at"] is None


def test_backoff_grows_and_the_delivery_gives_up_as_failed(alice, receiver, django_capture_on_commit_callbacks):
    app = register_app(name="Down", backchannel_logout_uri=receiver.url("/down"))
    receiver.answer("/down", *([503] * deliveries.MAX_ATTEMPTS))
    _, row = _logout_one(alice, app, django_capture_on_commit_callbacks)
    waits = []
    for attempt in range(2, deliveries.MAX_ATTEMPTS + 1):
        row.refresh_from_db()
        assert row.status == "pending" and row.attempts == attempt - 1
        waits.append(row.next_attempt_at - row.last_attempt_at)
        _due_now(row)
        deliveries.sweep()
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_status_code) == ("failed", deliveries.MAX_ATTEMPTS, 503)
    assert len(receiver.at("/down")) == deliveries.MAX_ATTEMPTS
    # 10 s, 1 min, 5 min, ... each wait longer than the one before.
    assert [round(w.total_seconds()) for w in waits] == [int(b.total_seconds()) for b in deliveries.BACKOFF]
    # Failed is final: no sweep sends it again.
    _due_now(row)
    assert deliveries.sweep().message_ids == []
    assert deliveries.delivery_log(app[0])[0]["next_attempt_at"] is None


def test_a_receiver_that_never_answers_is_a_recorded_timeout(
    alice, receiver, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(deliveries, "SEND_TIMEOUT", 0.5)
    app = register_app(name="Hangs", backchannel_logout_uri=receiver.url("/hang"))
    receiver.answer("/hang", HANG)
    started = time.monotonic()
    browser, row = _logout_one(alice, app, django_capture_on_commit_callbacks)
    assert time.monotonic() - started < 5
    assert row.status == "pending" and row.attempts == 1 and row.last_status_code is None
    assert row.last_error.startswith("outbound.timeout")
    # The sign-out itself went through.
    assert browser.get("/api/v1/session").status_code in (401, 403)


def test_a_redirecting_receiver_is_not_followed(alice, receiver, django_capture_on_commit_callbacks):
    app = register_app(name="Moved", backchannel_logout_uri=receiver.url("/moved"))
    receiver.answer("/moved", redirect(receiver.url("/elsewhere")))
    _, row = _logout_one(alice, app, django_capture_on_commit_callbacks)
    assert receiver.at("/elsewhere") == []
    assert row.status == "pending" and row.last_error.startswith("outbound.redirect_refused")


def test_ssrf_through_a_loopback_backchannel_uri_is_refused_unless_the_operator_allows_it(
    alice, receiver, settings, django_capture_on_commit_callbacks
):
    app = register_app(name="Internal", backchannel_logout_uri=receiver.url("/internal"))
    settings.VESTIBULE_OUTBOUND_ALLOW = ()
    _, row = _logout_one(alice, app, django_capture_on_commit_callbacks)
    assert receiver.received == []
    assert row.status == "pending" and row.last_error.startswith("outbound.")
    # Positive control: allowed by the operator, the same delivery goes through at its retry.
    settings.VESTIBULE_OUTBOUND_ALLOW = ("127.0.0.1",)
    _due_now(row)
    deliveries.sweep()
    row.refresh_from_db()
    assert row.status == "delivered" and len(receiver.at("/internal")) == 1


def test_a_claimed_delivery_cannot_be_claimed_again_during_its_lease(
    alice, receiver, django_capture_on_commit_callbacks
):
    app = register_app(name="Flaky", backchannel_logout_uri=receiver.url("/flaky"))
    receiver.answer("/flaky", 500)
    _, row = _logout_one(alice, app, django_capture_on_commit_callbacks)
    _due_now(row)
    [claimed] = deliveries._claim(Q(), limit=10)
    assert claimed.pk == row.pk and claimed.attempts == 2
    # A second sweeper (another worker) finds nothing to take.
    assert deliveries._claim(Q(), limit=10) == []
    assert deliveries.sweep().message_ids == []
    # A stale outcome (the first claim's) does not overwrite the current claim.
    stale = Delivery.objects.get(pk=row.pk)
    stale.attempts = 1
    deliveries._attempt(stale)
    row.refresh_from_db()
    assert row.attempts == 2 and row.status == "pending" and row.next_attempt_at > timezone.now()


# --- the background thread and the sweeper, as in production -------------------------------------
#
# The test database is SQLite's shared in-memory cache, where a write meeting another thread's
# lock fails at once instead of waiting (a file database waits: WAL and a busy timeout). So while
# the other thread works, this one only watches the receiver and touches no table.


def _wait_for(predicate: Any, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.mark.django_db(transaction=True)
def test_after_commit_the_first_attempt_runs_in_a_background_thread(make_user, settings):
    settings.VESTIBULE_OUTBOUND_ALLOW = ("127.0.0.1",)
    settings.VESTIBULE_DELIVERIES_INLINE = False
    server = Receiver().start()
    try:
        user = make_user("bob@example.com")
        app = register_app(name="Background", backchannel_logout_uri=server.url("/bg"))
        browser, _ = signed_in(user.email, app)
        with transaction.atomic():
            assert authorizations.end_for_sessions([browser.session.session_key], "logout") == 1
            # Queued, not sent: the attempt waits for the commit.
            assert Delivery.objects.get().attempts == 0
        pool = deliveries._executor()
        pool.shutdown(wait=True)
        deliveries._pool = None
        assert len(server.at("/bg")) == 1
        row = Delivery.objects.get()
        assert (row.status, row.attempts, row.last_status_code) == ("delivered", 1, 200)
    finally:
        server.stop()


@pytest.mark.django_db(transaction=True)
def test_the_sweeper_loop_delivers_what_is_due_until_stopped(make_user, settings):
    settings.VESTIBULE_OUTBOUND_ALLOW = ("127.0.0.1",)
    settings.VESTIBULE_DELIVERIES_INLINE = True
    server = Receiver().start()
    try:
        user = make_user("bob@example.com")
        app = register_app(name="Later", backchannel_logout_uri=server.url("/later"))
        server.answer("/later", 500)
        browser, _ = signed_in(user.email, app)
        browser.post("/logout")
        row = Delivery.objects.get()
        assert row.status == "pending" and len(server.at("/later")) == 1
        _due_now(row)
        stop = threading.Event()
        loop = threading.Thread(target=deliveries.run, kwargs={"interval": 0.05, "stop": stop})
        loop.start()
        _wait_for(lambda: len(server.at("/later")) == 2)
        stop.set()
        loop.join(10)
        assert not loop.is_alive()
        row.refresh_from_db()
        assert (row.status, row.attempts) == ("delivered", 2)
    finally:
        server.stop()


# --- the purge ----------------------------------------------------------------------------------


def test_the_sweep_purges_expired_codes_ended_sign_ins_and_old_log_entries(
    alice, receiver, django_capture_on_commit_callbacks
):
    app = register_app(name="Old", backchannel_logout_uri=receiver.url("/old"))
    browser, _ = signed_in(alice.email, app)
    with django_capture_on_commit_callbacks(execute=True):
        browser.post("/logout")
    old = timezone.now() - timedelta(days=400)
    Authorization.objects.update(ended_at=old)
    Delivery.objects.update(created_at=old)
    signed_in(alice.email, app)  # a sign-in still open
    Grant.objects.update(expires=timezone.now() - timedelta(seconds=1))
    deliveries.purge()
    # The long-ended sign-in went with its tokens; the open one stays, its expired code does not.
    [kept] = Authorization.objects.all()
    assert kept.ended_at is None
    assert not RefreshToken.objects.exclude(authorization=kept).exists()
    assert not AccessToken.objects.exclude(authorization=kept).exists()
    assert not Grant.objects.exists()
    assert not Delivery.objects.exists()
