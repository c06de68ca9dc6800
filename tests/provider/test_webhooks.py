"""Signed webhooks (Standard Webhooks) to a real receiver on 127.0.0.1.

The receiver verifies every request with ``standardwebhooks.Webhook(secret)``,
as an application's endpoint does. Changes go through the admin API or the
model code paths Vestibule uses. The events of a transaction are sent when
it commits; the test's own transaction never does, so every change, setup
included, runs in ``committed()`` (captured commit callbacks, executed), and
sends are inline (``VESTIBULE_DELIVERIES_INLINE``).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.conftest import ApiClient
from tests.provider.receiver import Receiver, signed_in
from vestibule import cli
from vestibule.accounts.models import Account, Membership, RoleGrant, User
from vestibule.accounts.roles import replace_manual_roles, roles_changed
from vestibule.provider import applications, deliveries
from vestibule.provider.models import Delivery

HOOK = "/hooks"


@pytest.fixture
def committed(django_capture_on_commit_callbacks: Any) -> Any:
    """``with committed():`` the changes inside are committed as far as events are concerned."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def hooked(receiver: Receiver, db: None) -> applications.Registered:
    """An application subscribed to events; its webhook secret is what its endpoint verifies with."""
    done = applications.register(
        name="Hooked", redirect_uris=["https://app.example/callback"], webhook_url=receiver.url(HOOK)
    )
    assert done.webhook_secret is not None and done.webhook_secret.startswith("whsec_")
    return done


def events(receiver: Receiver, secret: str, path: str = HOOK) -> list[dict[str, Any]]:
    """Every request at ``path``, verified as the application's endpoint verifies it."""
    verified = []
    for request in receiver.at(path):
        assert request.headers["content-type"] == "application/json"
        payload = Webhook(secret).verify(request.body, request.headers)
        assert set(payload) == {"type", "timestamp", "data"}
        assert request.headers["webhook-id"].startswith("msg_")
        verified.append(payload)
    return verified


def types(receiver: Receiver, secret: str, path: str = HOOK) -> list[str]:
    return [e["type"] for e in events(receiver, secret, path)]


@pytest.fixture
def acme_owns_example(api: ApiClient, make_account: Any) -> None:
    make_account("acme", "Acme")
    assert api.post("/api/v1/accounts/acme/domains", {"domain": "example.com"}).status_code == 201


# --- every event type, with its data --------------------------------------------------------------


def test_creating_a_member_sends_person_and_membership_created_with_roles(hooked, receiver, make_user, committed):
    with committed():
        alice = make_user("alice@example.com", name="Alice Example", roles=("analyst", "report-viewer"))
    got = events(receiver, hooked.webhook_secret)
    # One transaction: the role grants are part of membership.created, not a roles.changed of their own.
    assert [e["type"] for e in got] == ["person.created", "membership.created"]
    for event in got:
        assert event["data"] == {
            "sub": str(alice.subject),
            "email": "alice@example.com",
            "name": "Alice Example",
            "active": True,
            "org": {"slug": "acme", "name": "Acme"},
            "membership": {"active": True, "approval": "approved"},
            "roles": ["analyst", "report-viewer"],
            "projects": [],
        }
        assert event["timestamp"].endswith("Z")
    assert {d.status for d in Delivery.objects.all()} == {"delivered"}


def test_api_changes_send_updated_roles_changed_membership_updated_deactivated_and_removed(
    hooked, receiver, make_user, api: ApiClient, acme_owns_example, committed
):
    with committed():
        alice = make_user("alice@example.com", roles=("analyst",))
    receiver.clear()
    secret = hooked.webhook_secret

    def sent(change: Any) -> list[dict[str, Any]]:
        before = len(receiver.received)
        with committed():
            response = change()
        assert response.status_code in (200, 204), response.content
        return events(receiver, secret)[before:]

    [updated] = sent(lambda: api.patch(f"/api/v1/accounts/acme/users/{alice.pk}", {"name": "Alice Renamed"}))
    assert updated["type"] == "person.updated" and updated["data"]["name"] == "Alice Renamed"

    [roles] = sent(
        lambda: api.put(f"/api/v1/accounts/acme/users/{alice.pk}/roles", {"roles": ["analyst", "pii-viewer"]})
    )
    assert roles["type"] == "roles.changed" and roles["data"]["roles"] == ["analyst", "pii-viewer"]

    # Roles only taken away (no bulk insert at all): still one roles.changed.
    [fewer] = sent(lambda: api.put(f"/api/v1/accounts/acme/users/{alice.pk}/roles", {"roles": ["analyst"]}))
    assert fewer["type"] == "roles.changed" and fewer["data"]["roles"] == ["analyst"]

    # acme is alice's home account: deactivating her there deactivates the identity too.
    got = sent(lambda: api.patch(f"/api/v1/accounts/acme/users/{alice.pk}", {"is_active": False}))
    assert [e["type"] for e in got] == ["membership.updated", "person.deactivated"]
    assert got[0]["data"]["membership"] == {"active": False, "approval": "approved"}
    # A membership not in force gives no roles.
    assert got[0]["data"]["roles"] == []
    assert got[1]["data"]["active"] is False and got[1]["data"]["sub"] == str(alice.subject)

    [removed] = sent(lambda: api.delete(f"/api/v1/accounts/acme/users/{alice.pk}"))
    assert removed["type"] == "membership.removed"
    assert removed["data"] == {
        "sub": str(alice.subject),
        "email": "alice@example.com",
        "name": "Alice Renamed",
        "active": False,
        "org": {"slug": "acme", "name": "Acme"},
        "membership": None,
        "roles": [],
        "projects": [],
    }
    # The identity went with its last membership; the event still names it.
    assert not User.objects.filter(pk=alice.pk).exists()


def test_reactivating_a_membership_is_membership_updated(hooked, receiver, make_user, committed):
    with committed():
        alice = make_user("alice@example.com")
        membership = Membership.objects.get(user=alice)
        membership.is_active = False
        membership.save()
    receiver.clear()
    with committed():
        membership = Membership.objects.get(pk=membership.pk)
        membership.is_active = True
        membership.save()
    [event] = events(receiver, hooked.webhook_secret)
    assert event["type"] == "membership.updated" and event["data"]["membership"]["active"] is True
    assert event["data"]["roles"] == ["analyst"]


def test_saves_that_change_nothing_an_event_describes_send_nothing(hooked, receiver, make_user, committed):
    with committed():
        alice = make_user("alice@example.com")
    receiver.clear()
    with committed():
        alice = User.objects.get(pk=alice.pk)
        alice.last_login = timezone.now()
        alice.save(update_fields=["last_login"])
        alice.set_password("another long password 123")
        alice.save()
        same = User.objects.get(pk=alice.pk)
        same.save()
    assert receiver.received == []
    # Positive control: a real change in the same way is sent.
    with committed():
        same.email = "alice@example.org"
        same.save()
    assert types(receiver, hooked.webhook_secret) == ["person.updated"]


def test_sso_sign_in_role_changes_send_roles_changed(hooked, receiver, make_user, committed):
    """The sign-in pipeline writes role grants in bulk; its roles_changed signal stands in for post_save."""
    with committed():
        alice = make_user("alice@example.com", roles=())
    receiver.clear()
    acme = Account.objects.get(slug="acme")
    with committed(), transaction.atomic():
        RoleGrant.objects.bulk_create([RoleGrant(user=alice, account=acme, role="customer-support", source="sso")])
        roles_changed.send(sender=RoleGrant, user_id=alice.pk, account_id=acme.pk)
    [event] = events(receiver, hooked.webhook_secret)
    assert event["type"] == "roles.changed" and event["data"]["roles"] == ["customer-support"]


# --- signatures ---------------------------------------------------------------------------------


def test_a_tampered_body_fails_verification(hooked, receiver, make_user, committed):
    with committed():
        make_user("alice@example.com", roles=("analyst",))
    request = receiver.at(HOOK)[0]
    hook = Webhook(hooked.webhook_secret)
    # Positive control: the body as sent verifies.
    assert hook.verify(request.body, request.headers)["type"] == "person.created"
    tampered = request.body.replace('"analyst"', '"administrator"')
    assert tampered != request.body
    with pytest.raises(WebhookVerificationError):
        hook.verify(tampered, request.headers)
    # Another application's secret does not verify it either.
    with pytest.raises(WebhookVerificationError):
        Webhook(applications.new_webhook_secret()).verify(request.body, request.headers)
    # Nor does the signature of another message (its id is signed too).
    other = {**request.headers, "webhook-id": "msg_forged"}
    with pytest.raises(WebhookVerificationError):
        hook.verify(request.body, other)


def test_a_retry_is_signed_again_with_a_fresh_timestamp_and_the_same_id(hooked, receiver, make_user, committed):
    receiver.answer(HOOK, 500)
    with committed():
        make_user("alice@example.com")
    row = Delivery.objects.get(event_type="person.created")
    assert row.status == "pending" and row.last_status_code == 500
    # The first attempt was a minute ago (its signature's timestamp with it); the retry is due now.
    long_ago = timezone.now() - timedelta(minutes=1)
    Delivery.objects.filter(pk=row.pk).update(next_attempt_at=long_ago, last_attempt_at=long_ago)
    deliveries.sweep()
    row.refresh_from_db()
    assert row.status == "delivered" and row.attempts == 2
    first, second = (r for r in receiver.at(HOOK) if r.headers["webhook-id"] == row.message_id)
    assert first.body == second.body == row.body
    for request in (first, second):
        Webhook(hooked.webhook_secret).verify(request.body, request.headers)


def test_a_person_of_no_account_is_no_event(hooked, receiver, make_user, committed):
    with committed():
        make_user("loner@example.com", account=None)
    assert receiver.received == [] and not Delivery.objects.exists()


# --- who receives -------------------------------------------------------------------------------


def test_only_non_revoked_applications_with_a_webhook_url_receive_events(hooked, receiver, make_user, committed):
    applications.register(name="No hook", redirect_uris=["https://quiet.example/cb"])
    revoked = applications.register(
        name="Revoked", redirect_uris=["https://gone.example/cb"], webhook_url=receiver.url("/revoked")
    )
    applications.revoke(revoked.application)
    with committed():
        make_user("alice@example.com")
    assert types(receiver, hooked.webhook_secret) == ["person.created", "membership.created"]
    assert receiver.at("/revoked") == []
    assert {d.application_id for d in Delivery.objects.all()} == {hooked.application.pk}


def test_an_application_revoked_while_a_delivery_waits_gets_no_retry(hooked, receiver, make_user, committed):
    receiver.answer(HOOK, 500, 500)
    with committed():
        make_user("alice@example.com")
    applications.revoke(hooked.application)
    Delivery.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    deliveries.sweep()
    assert len(receiver.at(HOOK)) == 2  # the two first attempts, before the revocation
    assert set(Delivery.objects.values_list("status", "last_error")) == {("failed", "the application was revoked")}


def test_nothing_is_queued_when_the_transaction_rolls_back(hooked, receiver, make_user, committed):
    class Abort(Exception):
        pass

    with committed(), pytest.raises(Abort), transaction.atomic():
        make_user("ghost@example.com")
        raise Abort
    assert receiver.received == [] and not Delivery.objects.exists()
    # A savepoint rolled back inside a transaction that commits: only what was kept is sent.
    with committed(), transaction.atomic():
        make_user("kept@example.com")
        with pytest.raises(Abort), transaction.atomic():
            make_user("dropped@example.com")
            raise Abort
    emails = {e["data"]["email"] for e in events(receiver, hooked.webhook_secret)}
    assert emails == {"kept@example.com"}


# --- tenancy and secrets ------------------------------------------------------------------------


def test_an_event_names_only_its_own_account(hooked, receiver, make_user, make_account, committed):
    with committed():
        alice = make_user("alice@example.com", roles=("analyst",))
        globex = make_account("globex", "Globex")
        Membership.objects.create(user=alice, account=globex)
        replace_manual_roles(alice, globex, ["system-manager"])
    receiver.clear()
    with committed():
        replace_manual_roles(alice, globex, ["system-manager", "system-support"])
    [event] = events(receiver, hooked.webhook_secret)
    assert event["data"]["org"] == {"slug": "globex", "name": "Globex"}
    assert event["data"]["roles"] == ["system-manager", "system-support"]
    assert "acme" not in receiver.at(HOOK)[0].body and "analyst" not in receiver.at(HOOK)[0].body
    # A change of the identity is told per account, each naming only its own.
    with committed():
        alice = User.objects.get(pk=alice.pk)
        alice.name = "Alice Renamed"
        alice.save()
    updates = [e for e in events(receiver, hooked.webhook_secret) if e["type"] == "person.updated"]
    assert sorted((e["data"]["org"]["slug"], tuple(e["data"]["roles"])) for e in updates) == [
        ("acme", ("analyst",)),
        ("globex", ("system-manager", "system-support")),
    ]
    for request in receiver.at(HOOK)[1:]:
        body = json.loads(request.body)
        other = "globex" if body["data"]["org"]["slug"] == "acme" else "acme"
        assert other not in request.body


def test_no_secret_token_or_password_appears_in_any_delivery(hooked, receiver, make_user, settings, committed):
    app = applications.register(
        name="Both",
        redirect_uris=["https://app.example/callback"],
        backchannel_logout_uri=receiver.url("/bc"),
        webhook_url=receiver.url("/both-hooks"),
    )
    with committed():
        alice = make_user("alice@example.com", roles=("analyst",))
    browser, got = signed_in(alice.email, (app.application, app.client_secret))
    with committed():
        alice = User.objects.get(pk=alice.pk)
        alice.name = "Alice Again"
        alice.save()
        browser.post("/logout")
    alice.refresh_from_db()
    tokens = got[app.application.client_id]
    secrets = [
        app.client_secret,
        app.webhook_secret,
        hooked.webhook_secret,
        tokens["access_token"],
        tokens["refresh_token"],
        tokens["id_token"],
        alice.password,
        alice.password.split("$")[-1],
        settings.SECRET_KEY,
    ]
    kinds = set(Delivery.objects.values_list("kind", flat=True))
    assert kinds == {"webhook", "backchannel_logout"}
    sent = [r.body + json.dumps(r.headers) for r in receiver.received] + list(
        Delivery.objects.values_list("body", flat=True)
    )
    assert len(sent) >= 6
    for text in sent:
        for secret in secrets:
            assert secret and secret not in text


# --- the command line ---------------------------------------------------------------------------


def test_deliveries_run_once_sends_what_is_due_and_list_prints_the_log(
    hooked, receiver, make_user, capsys, monkeypatch, committed
):
    monkeypatch.setattr(cli.common, "_setup", lambda test_idp=False: None)
    receiver.answer(HOOK, 500, 500)
    with committed():
        make_user("alice@example.com")
    assert set(Delivery.objects.values_list("status", flat=True)) == {"pending"}
    Delivery.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert cli.main(["deliveries", "run", "--once"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out) == {"delivered": 2, "retrying": 0, "failed": 0}
    assert cli.main(["deliveries", "list", "--client-id", hooked.application.client_id]) == 0
    log = json.loads(capsys.readouterr().out)
    assert sorted((e["event_type"], e["status"], e["attempts"]) for e in log) == [
        ("membership.created", "delivered", 2),
        ("person.created", "delivered", 2),
    ]
    assert cli.main(["deliveries", "list", "--client-id", "nope"]) == 1
