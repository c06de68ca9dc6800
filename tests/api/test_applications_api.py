"""The operator's API for applications (clients of the OpenID Provider) and the provider's signing keys.

Refusals are shown beside a positive control, and each names the state the
application (the victim) is left in: a refused request changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.hashers import check_password
from django.test import Client

from tests.conftest import PASSWORD, ApiClient, csrf_token_from, password_login
from tests.provider.support import REDIRECT_URI, Pkce, authorize_url, code_from, exchange, refresh
from vestibule.audit.models import AuditEvent
from vestibule.provider import applications
from vestibule.provider.models import Application, Authorization, Delivery, SigningKey

pytestmark = pytest.mark.django_db

V1 = "/api/v1"
APP = {"name": "Billing", "redirect_uris": [REDIRECT_URI]}


def register(api: ApiClient, **fields: Any) -> dict[str, Any]:
    response = api.post(f"{V1}/applications", {**APP, **fields})
    assert response.status_code == 201, response.content
    return response.json()  # type: ignore[no-any-return]


def stored(client_id: str) -> Application:
    return Application.objects.get(client_id=client_id)


def audit_text() -> str:
    return json.dumps(list(AuditEvent.objects.values("code", "detail")), default=str)


def codes(prefix: str) -> list[str]:
    return list(AuditEvent.objects.filter(code__startswith=prefix).order_by("pk").values_list("code", flat=True))


# Registration --------------------------------------------------------------------------


def test_a_confidential_application_gets_its_secret_once_and_only_a_hash_is_stored(api: ApiClient) -> None:
    body = register(
        api,
        post_logout_redirect_uris=["https://app.example/bye"],
        backchannel_logout_uri="https://app.example/backchannel",
    )
    secret = body["client_secret"]
    assert len(secret) >= 40 and body["webhook_secret"] is None
    assert body["client_type"] == "confidential" and body["name"] == "Billing"
    assert body["redirect_uris"] == [REDIRECT_URI] and body["post_logout_redirect_uris"] == ["https://app.example/bye"]
    assert body["backchannel_logout_uri"] == "https://app.example/backchannel" and body["revoked_at"] is None
    assert body["created_by"].startswith("api-key:")
    row = stored(body["client_id"])
    # The column holds a salted hash that verifies the secret, never the secret itself.
    assert secret not in row.client_secret and row.client_secret.startswith("vestibule_client_secret$")
    assert check_password(secret, row.client_secret)
    # Reading it back never shows it again, and the audit log never saw it.
    shown = api.get(f"{V1}/applications/{body['client_id']}")
    assert shown.status_code == 200 and "client_secret" not in shown.json()
    assert secret not in api.get(f"{V1}/applications").content.decode()
    assert codes("application.") == ["application.created"]
    assert secret not in audit_text() and body["client_id"] in audit_text()


def test_a_public_application_has_no_secret(api: ApiClient) -> None:
    body = register(api, client_type="public")
    assert body["client_secret"] is None and body["client_type"] == "public"
    assert stored(body["client_id"]).client_type == Application.CLIENT_PUBLIC


def test_a_webhook_url_comes_with_a_signing_secret_shown_once_and_sealed_at_rest(api: ApiClient) -> None:
    body = register(api, webhook_url="https://app.example/hooks")
    hook_secret = body["webhook_secret"]
    assert hook_secret.startswith("whsec_") and body["webhook_url"] == "https://app.example/hooks"
    row = stored(body["client_id"])
    assert applications.webhook_secret(row) == hook_secret
    assert hook_secret not in row.webhook_secret_sealed and hook_secret.removeprefix("whsec_") not in (
        row.webhook_secret_sealed
    )
    assert "webhook_secret" not in api.get(f"{V1}/applications/{body['client_id']}").json()
    assert hook_secret not in audit_text()


def test_loopback_http_redirects_are_allowed_for_development(api: ApiClient) -> None:
    body = register(api, redirect_uris=["http://127.0.0.1:5000/cb", "http://localhost/cb"])
    assert body["redirect_uris"] == ["http://127.0.0.1:5000/cb", "http://localhost/cb"]


REFUSED_BODIES = [
    pytest.param({"redirect_uris": [REDIRECT_URI]}, "name", id="missing-name"),
    pytest.param({**APP, "name": "   "}, "name", id="blank-name"),
    pytest.param({**APP, "name": "x" * 201}, "name", id="long-name"),
    pytest.param({"name": "Billing"}, "redirect_uris", id="missing-redirect-uris"),
    pytest.param({**APP, "redirect_uris": []}, "redirect_uris", id="empty-redirect-uris"),
    pytest.param({**APP, "redirect_uris": "https://app.example/cb"}, "redirect_uris", id="redirect-uris-not-a-list"),
    pytest.param({**APP, "redirect_uris": ["http://app.example/cb"]}, "redirect_uris", id="http-not-loopback"),
    pytest.param({**APP, "redirect_uris": ["https://app.example/cb#frag"]}, "redirect_uris", id="fragment"),
    pytest.param({**APP, "redirect_uris": ["https://me:pw@app.example/cb"]}, "redirect_uris", id="credentials"),
    pytest.param({**APP, "redirect_uris": ["/callback"]}, "redirect_uris", id="relative"),
    pytest.param({**APP, "redirect_uris": ["javascript:alert(1)"]}, "redirect_uris", id="javascript-scheme"),
    pytest.param({**APP, "redirect_uris": [" https://app.example/cb"]}, "redirect_uris", id="padded"),
    pytest.param({**APP, "redirect_uris": ["https://app.example/\x00"]}, "redirect_uris", id="nul"),
    pytest.param({**APP, "redirect_uris": [f"https://app.example/{i}" for i in range(51)]}, "redirect_uris", id="51"),
    pytest.param({**APP, "client_type": "trusted"}, "client_type", id="bad-client-type"),
    pytest.param(
        {**APP, "post_logout_redirect_uris": ["http://evil.example/"]}, "post_logout_redirect_uris", id="logout-http"
    ),
    pytest.param(
        {**APP, "backchannel_logout_uri": "https://app.example/bc#x"}, "backchannel_logout_uri", id="backchannel-frag"
    ),
    pytest.param({**APP, "webhook_url": "ftp://app.example/hooks"}, "webhook_url", id="webhook-ftp"),
    pytest.param({**APP, "client_secret": "chosen"}, "client_secret", id="caller-chosen-secret"),
    pytest.param({**APP, "skip_authorization": False}, "skip_authorization", id="unknown-field"),
]


@pytest.mark.parametrize("body, field", REFUSED_BODIES)
def test_registration_refuses_bad_input_naming_the_field(api: ApiClient, body: dict[str, Any], field: str) -> None:
    response = api.post(f"{V1}/applications", body)
    assert response.status_code == 422, response.content
    assert response.json()["field"] == field and response.json()["detail"]
    assert not Application.objects.exists()
    # Positive control: the same caller registers a well-formed application.
    assert api.post(f"{V1}/applications", APP).status_code == 201


# Who may: the operator only ------------------------------------------------------------

OPERATIONS = [
    ("GET", "/applications", None),
    ("POST", "/applications", APP),
    ("GET", "/applications/{id}", None),
    ("PATCH", "/applications/{id}", {"name": "Hijacked", "redirect_uris": ["https://evil.example/cb"]}),
    ("DELETE", "/applications/{id}", None),
    ("POST", "/applications/{id}/secret", None),
    ("POST", "/applications/{id}/webhook-secret", None),
    ("GET", "/applications/{id}/deliveries", None),
    ("GET", "/signing-keys", None),
    ("POST", "/signing-keys/rotate", {"action": "stage"}),
]


@pytest.mark.parametrize("owner", ["acme", "globex"])
@pytest.mark.parametrize("method, path, body", OPERATIONS, ids=[f"{m} {p}" for m, p, _ in OPERATIONS])
def test_rejects_account_api_keys_on_every_operator_endpoint(
    api: ApiClient, account_key: Any, owner: str, method: str, path: str, body: Any
) -> None:
    """An administrator key of any account is not the operator: it sees and changes no application or key."""
    target = register(api, webhook_url="https://app.example/hooks")
    before = Application.objects.values().get(client_id=target["client_id"])
    keys_before = list(SigningKey.objects.values("kid", "state"))
    attacker = api.as_key(account_key(owner))
    response = attacker.request(method, V1 + path.format(id=target["client_id"]), body)
    assert response.status_code == 403, response.content
    assert "operator" in response.json()["detail"]
    assert target["client_id"] not in response.content.decode()
    # The victim's end state: the application, its secrets and the keys are as they were.
    assert Application.objects.values().get(client_id=target["client_id"]) == before
    assert Application.objects.count() == 1
    assert list(SigningKey.objects.values("kid", "state")) == keys_before
    # Positive control: the operator's key gets through the same door.
    assert api.request(method, V1 + path.format(id=target["client_id"]), body).status_code < 400


def test_rejects_an_account_administrators_session(api: ApiClient, make_user: Any) -> None:
    """A person who administers an account, signed in with the CSRF token, still cannot register or read apps."""
    target = register(api)
    make_user("admin@acme.example", roles=("administrator",))
    browser = Client(enforce_csrf_checks=True)
    token = csrf_token_from(browser.get("/login").content.decode())
    browser.post("/login", {"email": "admin@acme.example", "csrfmiddlewaretoken": token})
    browser.post("/login", {"email": "admin@acme.example", "password": PASSWORD, "csrfmiddlewaretoken": token})
    assert browser.get(f"{V1}/accounts/acme").status_code == 200  # signed in, and an administrator of acme
    headers = {"X-CSRFToken": browser.cookies["csrftoken"].value}
    assert browser.get(f"{V1}/applications").status_code == 403
    made = browser.post(f"{V1}/applications", APP, content_type="application/json", headers=headers)
    assert made.status_code == 403
    rotated = browser.post(f"{V1}/applications/{target['client_id']}/secret", headers=headers)
    assert rotated.status_code == 403
    assert Application.objects.count() == 1 and check_password(
        target["client_secret"], stored(target["client_id"]).client_secret
    )


def test_an_operators_session_may(make_user: Any) -> None:
    make_user("op@example.com", is_operator=True, account=None)
    browser = Client(enforce_csrf_checks=True)
    token = csrf_token_from(browser.get("/login").content.decode())
    browser.post("/login", {"email": "op@example.com", "csrfmiddlewaretoken": token})
    browser.post("/login", {"email": "op@example.com", "password": PASSWORD, "csrfmiddlewaretoken": token})
    headers = {"X-CSRFToken": browser.cookies["csrftoken"].value}
    made = browser.post(f"{V1}/applications", APP, content_type="application/json", headers=headers)
    assert made.status_code == 201, made.content
    assert made.json()["created_by"] == "person:op@example.com"
    assert [a["client_id"] for a in browser.get(f"{V1}/applications").json()] == [made.json()["client_id"]]
    event = AuditEvent.objects.get(code="application.created")
    assert event.actor_user is not None and event.actor_user.email == "op@example.com"


def test_no_credentials_is_401(client: Client) -> None:
    assert client.get(f"{V1}/applications").status_code == 401
    assert client.get(f"{V1}/signing-keys").status_code == 401


@pytest.mark.parametrize("method, path, body", OPERATIONS[2:8], ids=[f"{m} {p}" for m, p, _ in OPERATIONS[2:8]])
@pytest.mark.parametrize("client_id", ["0" * 40, "nope", "..", "a%00b", "x" * 101, "%E2%80%AE"])
def test_an_unknown_client_id_is_404(api: ApiClient, method: str, path: str, body: Any, client_id: str) -> None:
    register(api)
    response = api.request(method, V1 + path.format(id=client_id), body)
    assert response.status_code == 404, response.content
    assert response.json()["field"] == "client_id"


# Listing, reading, changing -------------------------------------------------------------


def test_list_and_show(api: ApiClient) -> None:
    first, second = register(api, name="First"), register(api, name="Second", client_type="public")
    listed = api.get(f"{V1}/applications").json()
    assert [a["client_id"] for a in listed] == [first["client_id"], second["client_id"]]
    assert all("client_secret" not in a and "webhook_secret" not in a for a in listed)
    shown = api.get(f"{V1}/applications/{second['client_id']}").json()
    assert shown == {k: v for k, v in second.items() if k not in ("client_secret", "webhook_secret")}


def test_patch_changes_the_name_and_uris_with_the_registration_rules(api: ApiClient) -> None:
    app = register(api)
    changed = api.patch(
        f"{V1}/applications/{app['client_id']}",
        {
            "name": "Billing (staging)",
            "redirect_uris": ["https://staging.app.example/cb", "https://staging.app.example/cb"],
            "post_logout_redirect_uris": ["https://staging.app.example/"],
            "backchannel_logout_uri": "https://staging.app.example/bc",
        },
    )
    assert changed.status_code == 200, changed.content
    body = changed.json()
    assert body["name"] == "Billing (staging)" and body["redirect_uris"] == ["https://staging.app.example/cb"]
    assert body["post_logout_redirect_uris"] == ["https://staging.app.example/"] and body["webhook_secret"] is None
    row = stored(app["client_id"])
    assert row.redirect_uri_list() == ["https://staging.app.example/cb"]
    assert row.backchannel_logout_uri == "https://staging.app.example/bc"
    # The secret is untouched by a change of the other fields.
    assert check_password(app["client_secret"], row.client_secret)
    event = AuditEvent.objects.get(code="application.updated")
    assert event.detail["fields"] == [
        "backchannel_logout_uri",
        "name",
        "post_logout_redirect_uris",
        "redirect_uris",
    ]
    # null removes an optional URI.
    cleared = api.patch(f"{V1}/applications/{app['client_id']}", {"backchannel_logout_uri": None})
    assert cleared.json()["backchannel_logout_uri"] is None and stored(app["client_id"]).backchannel_logout_uri == ""


@pytest.mark.parametrize(
    "body, field",
    [
        pytest.param({"redirect_uris": []}, "redirect_uris", id="no-redirect-uris"),
        pytest.param({"redirect_uris": None}, "redirect_uris", id="null-redirect-uris"),
        pytest.param({"redirect_uris": ["http://evil.example/cb"]}, "redirect_uris", id="http"),
        pytest.param({"redirect_uris": ["https://evil.example/cb#x"]}, "redirect_uris", id="fragment"),
        pytest.param({"redirect_uris": ["https://u:p@evil.example/cb"]}, "redirect_uris", id="credentials"),
        pytest.param({"name": "  "}, "name", id="blank-name"),
        pytest.param({"name": None}, "name", id="null-name"),
        pytest.param({"client_type": "public"}, "client_type", id="client-type"),
        pytest.param({"client_id": "mine"}, "client_id", id="client-id"),
        pytest.param({"webhook_url": "http://evil.example/h"}, "webhook_url", id="webhook-http"),
        # One bad field refuses the whole change: the good one is not applied either.
        pytest.param({"name": "Renamed", "redirect_uris": ["https://x.example/#"]}, "redirect_uris", id="atomic"),
    ],
)
def test_patch_refuses_bad_input_and_changes_nothing(api: ApiClient, body: dict[str, Any], field: str) -> None:
    app = register(api)
    before = Application.objects.values().get(client_id=app["client_id"])
    response = api.patch(f"{V1}/applications/{app['client_id']}", body)
    assert response.status_code == 422, response.content
    assert response.json()["field"] == field
    assert Application.objects.values().get(client_id=app["client_id"]) == before
    assert not codes("application.updated")


def test_patch_sending_the_same_client_type_back_is_accepted(api: ApiClient) -> None:
    app = register(api)
    assert api.patch(f"{V1}/applications/{app['client_id']}", {"client_type": "confidential"}).status_code == 200


def test_a_first_webhook_url_makes_its_secret_once_and_clearing_it_drops_the_secret(api: ApiClient) -> None:
    app = register(api)
    url = f"{V1}/applications/{app['client_id']}"
    first = api.patch(url, {"webhook_url": "https://app.example/hooks"}).json()
    assert first["webhook_secret"].startswith("whsec_") and first["webhook_url"] == "https://app.example/hooks"
    assert applications.webhook_secret(stored(app["client_id"])) == first["webhook_secret"]
    # Moving the URL keeps the secret (receivers keep verifying) and does not show it again.
    moved = api.patch(url, {"webhook_url": "https://app.example/hooks/v2"}).json()
    assert moved["webhook_secret"] is None
    assert applications.webhook_secret(stored(app["client_id"])) == first["webhook_secret"]
    cleared = api.patch(url, {"webhook_url": None}).json()
    assert cleared["webhook_url"] is None and stored(app["client_id"]).webhook_secret_sealed == ""
    again = api.patch(url, {"webhook_url": "https://app.example/hooks"}).json()
    assert again["webhook_secret"].startswith("whsec_") and again["webhook_secret"] != first["webhook_secret"]
    assert first["webhook_secret"] not in audit_text() and again["webhook_secret"] not in audit_text()


def test_webhook_secret_rotation(api: ApiClient) -> None:
    app = register(api, webhook_url="https://app.example/hooks")
    rotated = api.post(f"{V1}/applications/{app['client_id']}/webhook-secret")
    assert rotated.status_code == 200, rotated.content
    new = rotated.json()["webhook_secret"]
    assert new.startswith("whsec_") and new != app["webhook_secret"]
    assert applications.webhook_secret(stored(app["client_id"])) == new
    assert codes("application.webhook_secret_rotated") == ["application.webhook_secret_rotated"]
    assert new not in audit_text()
    # Without a webhook URL there is nothing to sign: a 409 that says what to do.
    bare = register(api, name="No hooks")
    refused = api.post(f"{V1}/applications/{bare['client_id']}/webhook-secret")
    assert refused.status_code == 409 and refused.json()["field"] == "webhook_url"
    assert stored(bare["client_id"]).webhook_secret_sealed == ""


def test_deliveries_are_the_applications_delivery_log_newest_first(api: ApiClient) -> None:
    app = register(api, webhook_url="https://app.example/hooks")
    other = register(api, name="Other")
    row = stored(app["client_id"])
    for i, status in enumerate([Delivery.Status.DELIVERED, Delivery.Status.PENDING]):
        Delivery.objects.create(
            application=row, kind=Delivery.Kind.WEBHOOK, event_type="person.created", message_id=f"msg_{i}",
            url=row.webhook_url, body="{}", status=status, attempts=1, last_status_code=200,
        )  # fmt: skip
    log = api.get(f"{V1}/applications/{app['client_id']}/deliveries")
    assert log.status_code == 200, log.content
    assert [d["message_id"] for d in log.json()] == ["msg_1", "msg_0"]
    assert log.json()[0]["status"] == "pending" and log.json()[0]["next_attempt_at"]
    assert log.json()[1]["next_attempt_at"] is None and "body" not in log.json()[0]
    assert [d["message_id"] for d in api.get(f"{V1}/applications/{app['client_id']}/deliveries?limit=1").json()] == [
        "msg_1"
    ]
    assert api.get(f"{V1}/applications/{app['client_id']}/deliveries?limit=0").status_code == 422
    assert api.get(f"{V1}/applications/{other['client_id']}/deliveries").json() == []


# Secrets and revocation against the token endpoint ---------------------------------------


def signed_in_code(client: Client, make_user: Any, client_id: str) -> tuple[str, Pkce]:
    """A code issued by the authorization endpoint to a signed-in person."""
    user = make_user("alice@example.com")
    pkce = Pkce.make()
    url = authorize_url(client_id, pkce)
    done = password_login(client, user.email, PASSWORD, next_url=url)
    assert done.status_code == 302, done.content
    return code_from(client.get(url)), pkce


def test_rejects_the_old_client_secret_after_rotation(client: Client, api: ApiClient, make_user: Any) -> None:
    """A leaked client secret is rotated: from then on it authenticates nothing at /oauth/token."""
    app = register(api)
    row = stored(app["client_id"])
    code, pkce = signed_in_code(client, make_user, app["client_id"])
    rotated = api.post(f"{V1}/applications/{app['client_id']}/secret")
    assert rotated.status_code == 200, rotated.content
    new_secret = rotated.json()["client_secret"]
    assert new_secret != app["client_secret"] and rotated.json()["client_id"] == app["client_id"]
    refused = exchange(client, row, app["client_secret"], code, pkce.verifier)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client", refused.content
    # Positive control: the same code, with the new secret, is redeemed.
    token = exchange(client, row, new_secret, code, pkce.verifier)
    assert token.status_code == 200, token.content
    assert refresh(client, row, app["client_secret"], token.json()["refresh_token"]).status_code == 401
    assert refresh(client, row, new_secret, token.json()["refresh_token"]).status_code == 200
    stored_hash = stored(app["client_id"]).client_secret
    assert new_secret not in stored_hash and check_password(new_secret, stored_hash)
    assert codes("application.secret_rotated") == ["application.secret_rotated"]
    assert new_secret not in audit_text()


def test_a_public_client_has_no_secret_to_rotate(api: ApiClient) -> None:
    app = register(api, client_type="public")
    refused = api.post(f"{V1}/applications/{app['client_id']}/secret")
    assert refused.status_code == 409 and refused.json()["field"] == "client_type"
    assert not codes("application.secret_rotated")


def test_rejects_a_revoked_application_at_authorize_and_refresh(client: Client, api: ApiClient, make_user: Any) -> None:
    """A revoked application gets no code (an error page, never a redirect to it) and refreshes nothing."""
    app = register(api)
    row = stored(app["client_id"])
    code, pkce = signed_in_code(client, make_user, app["client_id"])
    token = exchange(client, row, app["client_secret"], code, pkce.verifier)
    assert token.status_code == 200, token.content
    # Positive control: before revocation the signed-in person gets a code for it.
    code_from(client.get(authorize_url(app["client_id"], Pkce.make())))

    revoked = api.delete(f"{V1}/applications/{app['client_id']}")
    assert revoked.status_code == 204, revoked.content
    page = client.get(authorize_url(app["client_id"], Pkce.make()))
    assert 400 <= page.status_code < 500 and not page.has_header("Location"), page.status_code
    assert REDIRECT_URI not in page.content.decode()
    again = refresh(client, row, app["client_secret"], token.json()["refresh_token"])
    assert again.status_code in (400, 401) and "access_token" not in again.json(), again.content
    # Its sign-ins ended with it.
    assert not Authorization.objects.filter(application=row, ended_at__isnull=True).exists()
    reasons = Authorization.objects.filter(application=row).values_list("ended_reason", flat=True)
    assert list(reasons) == ["application_revoked", "application_revoked"]
    # Still listed, with when it was revoked.
    listed = api.get(f"{V1}/applications").json()
    assert [a["revoked_at"] is not None for a in listed] == [True]
    event = AuditEvent.objects.get(code="application.revoked")
    assert event.detail["client_id"] == app["client_id"] and event.detail["ended"] == 2


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("PATCH", "/applications/{id}", {"name": "Back from the dead"}),
        ("DELETE", "/applications/{id}", None),
        ("POST", "/applications/{id}/secret", None),
        ("POST", "/applications/{id}/webhook-secret", None),
    ],
)
def test_a_revoked_application_cannot_change(api: ApiClient, method: str, path: str, body: Any) -> None:
    app = register(api, webhook_url="https://app.example/hooks")
    assert api.delete(f"{V1}/applications/{app['client_id']}").status_code == 204
    before = Application.objects.values().get(client_id=app["client_id"])
    response = api.request(method, V1 + path.format(id=app["client_id"]), body)
    assert response.status_code == 409, response.content
    assert "revoked" in response.json()["detail"] and response.json()["field"] == "client_id"
    assert Application.objects.values().get(client_id=app["client_id"]) == before
    # Reading it is still fine.
    assert api.get(f"{V1}/applications/{app['client_id']}").json()["revoked_at"] is not None
    assert api.get(f"{V1}/applications/{app['client_id']}/deliveries").status_code == 200


# Signing keys --------------------------------------------------------------------------


def jwks_kids(client: Client) -> list[str]:
    return [k["kid"] for k in client.get("/oauth/jwks").json()["keys"]]


def test_signing_key_rotation_stage_promote_through_the_api(client: Client, api: ApiClient) -> None:
    assert api.get(f"{V1}/signing-keys").json() == []
    staged = api.post(f"{V1}/signing-keys/rotate", {"action": "stage", "algorithm": "ES256"})
    assert staged.status_code == 200, staged.content
    by_state = {k["state"]: k for k in staged.json()}
    assert by_state["next"]["algorithm"] == "ES256" and by_state["active"]["algorithm"] == "RS256"
    assert all(k["published"] for k in staged.json())
    # The staged key is in the JWKS before it signs anything.
    assert set(jwks_kids(client)) == {by_state["next"]["kid"], by_state["active"]["kid"]}
    promoted = api.post(f"{V1}/signing-keys/rotate", {"action": "promote"}).json()
    states = {k["kid"]: (k["state"], k["published"]) for k in promoted}
    assert states == {by_state["next"]["kid"]: ("active", True), by_state["active"]["kid"]: ("retired", True)}
    assert api.get(f"{V1}/signing-keys").json() == promoted
    assert codes("signing_key.") == ["signing_key.staged", "signing_key.promoted"]
    promoted_event = AuditEvent.objects.get(code="signing_key.promoted")
    assert promoted_event.detail == {"kid": [by_state["next"]["kid"]], "retired_kid": [by_state["active"]["kid"]]}
    assert AuditEvent.objects.get(code="signing_key.staged").detail == {
        "kid": by_state["next"]["kid"],
        "algorithm": "ES256",
    }


def test_signing_keys_never_show_private_material(api: ApiClient) -> None:
    api.post(f"{V1}/signing-keys/rotate", {"action": "stage"})
    text = api.get(f"{V1}/signing-keys").content.decode() + audit_text()
    for row in SigningKey.objects.all():
        assert row.private_jwk_sealed not in text
    from vestibule.provider import keys

    private = keys.active_key().key.as_dict(private=True)
    assert private["d"] not in text and '"d"' not in text and "private" not in text


def test_discarding_a_staged_key_drops_it_from_the_jwks(client: Client, api: ApiClient) -> None:
    staged = api.post(f"{V1}/signing-keys/rotate", {"action": "stage"}).json()
    next_kid = next(k["kid"] for k in staged if k["state"] == "next")
    assert next_kid in jwks_kids(client)
    discarded = api.post(f"{V1}/signing-keys/rotate", {"action": "discard"})
    assert discarded.status_code == 200 and [k["state"] for k in discarded.json()] == ["active"]
    assert next_kid not in jwks_kids(client)
    assert AuditEvent.objects.get(code="signing_key.discarded").detail == {"kid": [next_kid]}


@pytest.mark.parametrize(
    "body, status, field",
    [
        pytest.param({"action": "promote"}, 409, "action", id="promote-nothing-staged"),
        pytest.param({"action": "discard"}, 409, "action", id="discard-nothing-staged"),
        pytest.param({"action": "promote", "algorithm": "ES256"}, 422, "algorithm", id="algorithm-not-stage"),
        pytest.param({"action": "stage", "algorithm": "HS256"}, 422, "algorithm", id="symmetric"),
        pytest.param({"action": "stage", "algorithm": "none"}, 422, "algorithm", id="none"),
        pytest.param({"action": "retire"}, 422, "action", id="unknown-action"),
        pytest.param({}, 422, "action", id="no-action"),
        pytest.param({"action": "stage", "private_jwk": {"kty": "oct"}}, 422, "private_jwk", id="bring-your-own-key"),
    ],
)
def test_signing_key_rotation_refusals(api: ApiClient, body: dict[str, Any], status: int, field: str) -> None:
    response = api.post(f"{V1}/signing-keys/rotate", body)
    assert response.status_code == status, response.content
    assert response.json()["field"] == field and response.json()["detail"]
    assert not SigningKey.objects.exists() and not codes("signing_key.")


def test_staging_twice_is_a_conflict_that_keeps_the_first_staged_key(api: ApiClient) -> None:
    first = api.post(f"{V1}/signing-keys/rotate", {"action": "stage"}).json()
    again = api.post(f"{V1}/signing-keys/rotate", {"action": "stage", "algorithm": "ES256"})
    assert again.status_code == 409 and "promote or discard" in again.json()["detail"]
    assert api.get(f"{V1}/signing-keys").json() == first


def test_the_operations_are_documented_in_openapi(client: Client) -> None:
    paths = client.get(f"{V1}/openapi.json").json()["paths"]
    assert set(paths[f"{V1}/applications"]) == {"get", "post"}
    assert set(paths[f"{V1}/applications/{{client_id}}"]) == {"get", "patch", "delete"}
    for path in ("secret", "webhook-secret"):
        assert set(paths[f"{V1}/applications/{{client_id}}/{path}"]) == {"post"}
    assert set(paths[f"{V1}/applications/{{client_id}}/deliveries"]) == {"get"}
    assert set(paths[f"{V1}/signing-keys"]) == {"get"} and set(paths[f"{V1}/signing-keys/rotate"]) == {"post"}
    created = paths[f"{V1}/applications"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    assert created["$ref"].endswith("/ApplicationCreated")
