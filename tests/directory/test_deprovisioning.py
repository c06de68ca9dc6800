"""Deprovisioning through SCIM ends access at once: the next request of the person's browser or tokens is refused.

A person is signed in twice over: a Vestibule browser session (the password
form) and an application's sign-in through Vestibule's OpenID Provider for
the organization ``acme`` (code flow, refresh token). The application has a
back-channel logout URI and a webhook URL at a real receiver on 127.0.0.1.
Then acme's identity provider sends ``active: false`` (or ``DELETE``), and the
very next requests show it: ``GET /api/v1/session`` no longer lists acme,
the refresh token is ``invalid_grant``, the access token is refused at
userinfo, and the application was sent a verifiable logout token and a
signed ``membership`` event. Tenancy: another account's SCIM token reaches
none of this, and the person stays signed in.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote

import pytest
from django.test import Client
from standardwebhooks import Webhook

from tests.conftest import PASSWORD, ApiClient, password_login
from tests.directory.conftest import GROUP_URN, USER_URN, ScimClient, body, listed, membership_of, scim_error
from tests.provider.receiver import Receiver
from tests.provider.support import REDIRECT_URI, Pkce, authorize_url, code_from, exchange, refresh
from vestibule.accounts.models import User
from vestibule.provider import applications
from vestibule.provider.models import Authorization, Delivery

ALICE = "alice@example.com"
SCOPE = "openid email profile organization:acme"


@pytest.fixture
def receiver(settings: Any) -> Iterator[Receiver]:
    """Records what the application is sent; deliveries are sent inline, loopback allowed."""
    settings.VESTIBULE_DELIVERIES_INLINE = True
    settings.VESTIBULE_OUTBOUND_ALLOW = ("127.0.0.1",)
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def committed(django_capture_on_commit_callbacks: Any) -> Any:
    """``with committed():`` the request's transaction counts as committed (events and logout tokens sent)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def app(receiver: Receiver, db: None) -> applications.Registered:
    return applications.register(
        name="Payroll",
        redirect_uris=[REDIRECT_URI],
        backchannel_logout_uri=receiver.url("/logout"),
        webhook_url=receiver.url("/hooks"),
    )


@dataclass
class SignedIn:
    """A person's browser (Vestibule session) and the tokens the application got for acme."""

    browser: Client
    tokens: dict[str, Any]
    sid: str  # of the application's sign-in: what its logout token names


def sign_in_everywhere(email: str, app: applications.Registered) -> SignedIn:
    browser = Client()
    done = password_login(browser, email, PASSWORD)
    assert done.status_code == 302, done.content[:500]
    pkce = Pkce.make()
    code = code_from(browser.get(authorize_url(app.application.client_id, pkce, scope=SCOPE)))
    response = exchange(browser, app.application, app.client_secret, code, pkce.verifier)
    assert response.status_code == 200, response.content
    tokens: dict[str, Any] = response.json()
    assert tokens["refresh_token"]
    authorization = Authorization.objects.filter(application=app.application).latest("pk")
    assert authorization.account is not None and authorization.account.slug == "acme"
    return SignedIn(browser, tokens, str(authorization.sid))


def session_accounts(browser: Client) -> list[str] | None:
    """The accounts ``GET /api/v1/session`` lists for this browser; None once it is signed out."""
    response = browser.get("/api/v1/session")
    if response.status_code in (401, 403):
        return None
    assert response.status_code == 200, response.content
    return [a["slug"] for a in response.json()["accounts"]]


def refreshed(app: applications.Registered, refresh_token: str) -> Any:
    """The application redeems its refresh token (its own HTTP client: no browser cookies)."""
    return refresh(Client(), app.application, app.client_secret, refresh_token)


def still_signed_in(signed: SignedIn, app: applications.Registered) -> None:
    """Positive control: the session lists acme and the refresh token works (the rotated pair is kept)."""
    accounts = session_accounts(signed.browser)
    assert accounts is not None and "acme" in accounts, accounts
    response = refreshed(app, signed.tokens["refresh_token"])
    assert response.status_code == 200, response.content
    signed.tokens = response.json()
    assert userinfo_status(signed.tokens["access_token"]) == 200


def userinfo_status(access_token: str) -> int:
    return int(Client().get("/oauth/userinfo", HTTP_AUTHORIZATION=f"Bearer {access_token}").status_code)


def scim_id(scim: ScimClient, email: str) -> str:
    """The person's SCIM id, found as Entra and Okta find an existing person: ``userName eq``."""
    [found] = listed(scim.get("/Users?filter=" + quote(f'userName eq "{email}"')))
    found_id: str = found["id"]
    return found_id


def logout_sids(receiver: Receiver) -> list[str]:
    """The ``sid`` of every logout token the application received (signature checks: tests/provider)."""
    from joserfc import jwt
    from joserfc.jwk import KeySet

    keys = KeySet.import_key_set(Client().get("/oauth/jwks").json())
    sids = []
    for request in receiver.at("/logout"):
        token = parse_qs(request.body)["logout_token"][0]
        claims = jwt.decode(token, keys, algorithms=["RS256", "ES256"]).claims
        sids.append(str(claims["sid"]))
    return sids


def events(receiver: Receiver, app: applications.Registered) -> list[dict[str, Any]]:
    """The webhook events the application received, each verified with its secret."""
    assert app.webhook_secret is not None
    verified = []
    for request in receiver.at("/hooks"):
        verified.append(Webhook(app.webhook_secret).verify(request.body, request.headers))
    return verified


def assert_acme_access_ended(signed: SignedIn, app: applications.Registered, receiver: Receiver) -> None:
    """What "access ends at once" means, request by request."""
    accounts = session_accounts(signed.browser)
    assert accounts is None or "acme" not in accounts, accounts
    refused = refreshed(app, signed.tokens["refresh_token"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant", refused.content
    assert userinfo_status(signed.tokens["access_token"]) == 401
    # The sign-in is ended, or gone with the person (a DELETE of someone with no other membership).
    assert not Authorization.objects.filter(sid=signed.sid, ended_at__isnull=True).exists()
    assert logout_sids(receiver) == [signed.sid]
    delivery = Delivery.objects.get(application=app.application, kind="backchannel_logout")
    assert delivery.status == "delivered", (delivery.status, delivery.last_error)


@pytest.fixture
def acme_owns_example(api: ApiClient, make_account: Any) -> None:
    make_account("acme", "Acme")
    assert api.post("/api/v1/accounts/acme/domains", {"domain": "example.com"}).status_code == 201


@pytest.fixture
def alice(acme_owns_example: None, make_user: Any, committed: Any) -> User:
    """A member of acme (her home account) with a password, made before acme turned SCIM on."""
    with committed():
        user: User = make_user(ALICE, roles=("analyst",))
    return user


def test_active_false_ends_the_session_the_tokens_and_tells_the_application(
    alice: User, app: applications.Registered, scim: ScimClient, receiver: Receiver, committed: Any
) -> None:
    signed = sign_in_everywhere(ALICE, app)
    still_signed_in(signed, app)
    receiver.clear()

    with committed():
        response = scim.patch(f"/Users/{scim_id(scim, ALICE)}", {"op": "replace", "path": "active", "value": False})
    assert response.status_code in (200, 204), response.content
    membership = membership_of(ALICE, "acme")
    assert membership is not None and membership.is_active is False

    assert_acme_access_ended(signed, app, receiver)
    got = events(receiver, app)
    assert all(e["data"]["sub"] == str(alice.subject) for e in got), got
    assert any(
        (e["type"] == "membership.updated" and e["data"]["membership"]["active"] is False)
        or e["type"] == "person.deactivated"
        for e in got
    ), [e["type"] for e in got]


def test_entra_string_false_ends_access_the_same_way(
    alice: User, app: applications.Registered, scim: ScimClient, receiver: Receiver, committed: Any
) -> None:
    signed = sign_in_everywhere(ALICE, app)
    still_signed_in(signed, app)
    receiver.clear()
    with committed():
        response = scim.patch(f"/Users/{scim_id(scim, ALICE)}", {"op": "Replace", "path": "active", "value": "False"})
    assert response.status_code in (200, 204), response.content
    assert_acme_access_ended(signed, app, receiver)


def test_okta_put_with_active_false_ends_access_the_same_way(
    alice: User, app: applications.Registered, scim: ScimClient, receiver: Receiver, committed: Any
) -> None:
    signed = sign_in_everywhere(ALICE, app)
    still_signed_in(signed, app)
    receiver.clear()
    user_id = scim_id(scim, ALICE)
    current = body(scim.get(f"/Users/{user_id}"))
    whole = {k: current[k] for k in ("schemas", "id", "userName", "name", "emails") if k in current}
    with committed():
        response = scim.put(f"/Users/{user_id}", {**whole, "active": False})
    assert body(response)["active"] is False
    assert_acme_access_ended(signed, app, receiver)


def test_delete_ends_the_session_the_tokens_and_tells_the_application(
    alice: User, app: applications.Registered, scim: ScimClient, receiver: Receiver, committed: Any
) -> None:
    signed = sign_in_everywhere(ALICE, app)
    still_signed_in(signed, app)
    receiver.clear()

    with committed():
        response = scim.delete(f"/Users/{scim_id(scim, ALICE)}")
    assert response.status_code == 204, response.content
    assert membership_of(ALICE, "acme") is None

    assert_acme_access_ended(signed, app, receiver)
    got = events(receiver, app)
    assert "membership.removed" in [e["type"] for e in got], [e["type"] for e in got]
    assert all(e["data"]["sub"] == str(alice.subject) for e in got)


def test_reactivation_restores_access_for_new_sign_ins_only(
    alice: User, app: applications.Registered, scim: ScimClient, receiver: Receiver, committed: Any
) -> None:
    """``active: true`` again: acme is back for a new sign-in; the ended tokens stay dead."""
    signed = sign_in_everywhere(ALICE, app)
    user_id = scim_id(scim, ALICE)
    with committed():
        assert scim.patch(f"/Users/{user_id}", {"op": "replace", "value": {"active": False}}).status_code in (200, 204)
    with committed():
        assert scim.patch(f"/Users/{user_id}", {"op": "replace", "value": {"active": True}}).status_code in (200, 204)
    assert refreshed(app, signed.tokens["refresh_token"]).status_code == 400
    again = sign_in_everywhere(ALICE, app)
    still_signed_in(again, app)


def test_sso_and_scim_agree_on_the_external_id_and_the_sso_session_ends_at_active_false(
    api: ApiClient,
    operator_key: str,
    make_account: Any,
    app: applications.Registered,
    receiver: Receiver,
    committed: Any,
) -> None:
    """Entra provisions Ana with her object ID as externalId; her SAML NameID is that ID; SCIM then switches her off."""
    from tests.e2e.drivers.saml_driver import SamlDriver
    from tests.provider.support import saml_connection
    from vestibule.connections.models import ExternalIdentity

    make_account("acme", "Acme")
    connection = saml_connection(operator_key, "acme", ("acme-sso.test",), name="Entra ID")
    made = api.post("/api/v1/accounts/acme/scim-tokens", {"name": "Entra ID", "connection": connection["id"]})
    assert made.status_code == 201, made.content
    scim = ScimClient(made.json()["token"])
    ana_email, object_id = "ana@acme-sso.test", "5c0f6d2e-0b1a-4c8e-9d3f-ana-object-id"
    created = body(
        scim.post(
            "/Users",
            {
                "schemas": [USER_URN],
                "userName": ana_email,
                "externalId": object_id,
                "name": {"givenName": "Ana", "familyName": "Sso"},
                "emails": [{"value": ana_email, "type": "work", "primary": True}],
                "active": True,
            },
        ),
        201,
    )

    # Her first SSO sign-in finds the provisioned person by the NameID: one identity, not two.
    browser = Client()
    with committed():
        done = SamlDriver().login(
            browser, connection, subject=object_id, claims={"email": ana_email, "name": "Ana Sso"}
        )
    assert done.status_code == 302, done.content[:800]
    assert User.objects.filter(email=ana_email).count() == 1
    ana = User.objects.get_by_email(ana_email)
    assert list(ExternalIdentity.objects.filter(user=ana).values_list("external_id", flat=True)) == [object_id]
    assert session_accounts(browser) == ["acme"]
    pkce = Pkce.make()
    code = code_from(browser.get(authorize_url(app.application.client_id, pkce, scope=SCOPE)))
    tokens = exchange(browser, app.application, app.client_secret, code, pkce.verifier).json()
    sid = str(Authorization.objects.get(application=app.application).sid)
    signed = SignedIn(browser, tokens, sid)
    still_signed_in(signed, app)
    receiver.clear()

    with committed():
        off = scim.patch(f"/Users/{created['id']}", {"op": "Replace", "path": "active", "value": "False"})
    assert off.status_code in (200, 204), off.content
    assert_acme_access_ended(signed, app, receiver)
    # Her browser session was acme's (SSO through its connection): nothing of acme is left in it.
    assert session_accounts(browser) in (None, [])


# --- identity ownership and tenancy ---------------------------------------------------------------


@pytest.fixture
def globex_person(api: ApiClient, make_account: Any, make_user: Any, committed: Any) -> User:
    """Gus: his home account is globex (it owns globex.test); acme counts him as a member too."""
    from vestibule.accounts.models import Membership

    make_account("globex", "Globex")
    make_account("acme", "Acme")
    assert api.post("/api/v1/accounts/globex/domains", {"domain": "globex.test"}).status_code == 201
    with committed():
        gus: User = make_user("gus@globex.test", name="Gus Globex", account="globex", roles=("analyst",))
        Membership.objects.create(user=gus, account=make_account("acme"))
    return gus


def test_acme_deprovisions_its_membership_of_a_person_whose_home_is_globex_and_nothing_more(
    globex_person: User, app: applications.Registered, scim: ScimClient, receiver: Receiver, committed: Any
) -> None:
    signed = sign_in_everywhere("gus@globex.test", app)
    still_signed_in(signed, app)
    assert sorted(session_accounts(signed.browser) or []) == ["acme", "globex"]
    user_id = scim_id(scim, "gus@globex.test")

    # acme's IdP may not edit globex's identity: the name stays (refused, or ignored).
    with committed():
        renamed = scim.patch(f"/Users/{user_id}", {"op": "replace", "path": "name.familyName", "value": "Renamed"})
    assert renamed.status_code in (200, 204, 400, 403, 409), renamed.content
    assert renamed.status_code < 500
    globex_person.refresh_from_db()
    assert globex_person.name == "Gus Globex" and globex_person.is_active

    receiver.clear()
    with committed():
        response = scim.patch(f"/Users/{user_id}", {"op": "replace", "path": "active", "value": False})
    assert response.status_code in (200, 204), response.content

    # acme's access is over ...
    assert_acme_access_ended(signed, app, receiver)
    # ... and only acme's: the identity and the globex membership are untouched, the session goes on.
    globex_person.refresh_from_db()
    assert globex_person.is_active and globex_person.name == "Gus Globex"
    home = membership_of("gus@globex.test", "globex")
    assert home is not None and home.is_active and home.approval == "approved"
    assert session_accounts(signed.browser) == ["globex"]


def test_another_accounts_scim_token_cannot_touch_acmes_member(
    alice: User,
    app: applications.Registered,
    scim: ScimClient,
    scim_for: Any,
    receiver: Receiver,
    committed: Any,
    api: ApiClient,
) -> None:
    signed = sign_in_everywhere(ALICE, app)
    user_id = scim_id(scim, ALICE)
    group = body(scim.post("/Groups", {"schemas": [GROUP_URN], "displayName": "Staff"}), 201)
    assert scim.patch(
        f"/Groups/{group['id']}", {"op": "add", "path": "members", "value": [{"value": user_id}]}
    ).status_code in (200, 204)
    globex = scim_for("globex")
    receiver.clear()

    with committed():
        # globex's directory does not see acme's people or groups ...
        assert listed(globex.get("/Users?filter=" + quote(f'userName eq "{ALICE}"'))) == []
        assert user_id not in [u["id"] for u in listed(globex.get("/Users"))]
        assert listed(globex.get("/Groups")) == []
        scim_error(globex.get(f"/Users/{user_id}"), 404)
        scim_error(globex.get(f"/Groups/{group['id']}"), 404)
        # ... and cannot change them by id.
        scim_error(globex.patch(f"/Users/{user_id}", {"op": "replace", "path": "active", "value": False}), 404)
        scim_error(globex.patch(f"/Users/{user_id}", {"op": "Replace", "value": {"active": "False"}}), 404)
        scim_error(globex.put(f"/Users/{user_id}", {"schemas": [USER_URN], "userName": ALICE, "active": False}), 404)
        scim_error(globex.delete(f"/Users/{user_id}"), 404)
        scim_error(
            globex.patch(f"/Groups/{group['id']}", {"op": "remove", "path": f'members[value eq "{user_id}"]'}), 404
        )
        scim_error(globex.delete(f"/Groups/{group['id']}"), 404)
        # Nor put acme's person in a globex group by her id (an id of another directory is no member reference).
        scim_error(
            globex.post("/Groups", {"schemas": [GROUP_URN], "displayName": "Spies", "members": [{"value": user_id}]}),
            400,
        )
        own = body(globex.post("/Groups", {"schemas": [GROUP_URN], "displayName": "Spies"}), 201)
        scim_error(
            globex.patch(f"/Groups/{own['id']}", {"op": "add", "path": "members", "value": [{"value": user_id}]}), 400
        )
        assert not body(globex.get(f"/Groups/{own['id']}")).get("members")
        # Provisioning acme's person into globex leaves her identity and her acme membership alone.
        pushed = globex.post("/Users", {"schemas": [USER_URN], "userName": ALICE, "name": {"familyName": "Owned"}})
        assert pushed.status_code in (201, 403, 409), pushed.content
        if pushed.status_code == 201:
            off = globex.patch(f"/Users/{pushed.json()['id']}", {"op": "replace", "path": "active", "value": False})
            assert off.status_code in (200, 204), off.content

    # The victim's end state: still a member of acme in force, still signed in, nobody told to log her out.
    alice.refresh_from_db()
    assert alice.is_active and alice.name == "Alice Example"
    membership = membership_of(ALICE, "acme")
    assert membership is not None and membership.is_active
    still_signed_in(signed, app)
    assert receiver.at("/logout") == []
    assert {m["value"] for m in body(scim.get(f"/Groups/{group['id']}"))["members"]} == {user_id}

    # Positive control: acme's own token does what globex's could not.
    with committed():
        assert scim.patch(f"/Users/{user_id}", {"op": "replace", "path": "active", "value": False}).status_code in (
            200,
            204,
        )
    assert_acme_access_ended(signed, app, receiver)


def test_only_a_scim_token_opens_the_scim_api(
    alice: User, scim: ScimClient, operator_key: str, account_key: Any, issue_scim_token: Any
) -> None:
    user_id = scim_id(scim, ALICE)
    for token in (None, "", "not-a-token", operator_key, account_key("acme")):
        stranger = ScimClient(token)
        scim_error(stranger.get("/Users"), 401)
        scim_error(stranger.patch(f"/Users/{user_id}", {"op": "replace", "path": "active", "value": False}), 401)
    # Nor does a SCIM token open the admin API.
    admin = ApiClient(Client(), issue_scim_token("acme"))
    assert admin.get("/api/v1/accounts/acme/users").status_code == 401
    membership = membership_of(ALICE, "acme")
    assert membership is not None and membership.is_active


def test_a_revoked_token_is_refused_at_the_next_request_and_only_its_account_can_revoke_it(
    alice: User, api: ApiClient, account_key: Any, make_account: Any
) -> None:
    made = api.post("/api/v1/accounts/acme/scim-tokens", {"name": "Okta"})
    assert made.status_code == 201, made.content
    scim = ScimClient(made.json()["token"])
    user_id = scim_id(scim, ALICE)
    [listed_token] = [t for t in api.get("/api/v1/accounts/acme/scim-tokens").json() if t["name"] == "Okta"]
    prefix = listed_token["prefix"]
    assert made.json()["token"] not in str(api.get("/api/v1/accounts/acme/scim-tokens").json())

    # globex's administrator key neither sees nor revokes acme's token.
    make_account("globex", "Globex")
    globex_admin = api.as_key(account_key("globex"))
    assert globex_admin.get("/api/v1/accounts/acme/scim-tokens").status_code in (403, 404)
    assert globex_admin.delete(f"/api/v1/accounts/acme/scim-tokens/{prefix}").status_code in (403, 404)
    assert globex_admin.delete(f"/api/v1/accounts/globex/scim-tokens/{prefix}").status_code == 404
    assert body(scim.get(f"/Users/{user_id}"))["active"] is True

    assert api.delete(f"/api/v1/accounts/acme/scim-tokens/{prefix}").status_code == 204
    scim_error(scim.get(f"/Users/{user_id}"), 401)
    scim_error(scim.patch(f"/Users/{user_id}", {"op": "replace", "path": "active", "value": False}), 401)
    membership = membership_of(ALICE, "acme")
    assert membership is not None and membership.is_active
