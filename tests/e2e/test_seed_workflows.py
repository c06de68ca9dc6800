"""The seed workflows the API got subtly wrong, end to end (seeds 000, 001, 002, 004).

- Seed 000: an administrator switches a person back to password. Routing and
  the automatic SSO upgrade (seed 004) honour that choice until an
  administrator switches them to SSO again; the email says why it came.
- Seed 000: the External user ID, set when the user is added and edited later,
  decides which IdP subject signs in which person.
- Seed 001: "Allow Login" — the queue of people waiting for approval, the
  email to the account's user-managers, and Allow Login only with
  auto-provisioning.
- Seed 001: SAML settings — a partial PATCH merges, "generate from metadata"
  is a preview the admin saves, node-saml settings are an import format,
  domains are fixed.
- Seed 002: roles granted while SSO authorization was off (the default role)
  do not become locked SSO-managed roles when it is switched on.

Where a login decides the outcome, the test signs in through a real peer
(``sso_driver``: once over SAML, once over OIDC) and reads the result back
the way an administrator and the person would: the admin API, the audit log,
``/login`` and ``GET /api/v1/session``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from tests.e2e.conftest import Api
from tests.e2e.policy_support import (  # noqa: F401 (fresh_counters, reuse_sp_key_pairs are autouse fixtures)
    PASSWORD,
    assert_refused,
    assert_signed_in,
    audit,
    claims,
    fresh_counters,
    invite,
    login_step,
    password_login,
    reuse_sp_key_pairs,
)
from tests.saml_support import FIXTURES
from vestibule.accounts.models import User
from vestibule.saml.keys import normalize_certificate

pytestmark = pytest.mark.django_db

ROLES_CLAIM = {"role_source": "roles_claim", "roles": "gr4vy_roles"}


def key_of(api: Api, account: str, *roles: str) -> Api:
    created = api.post(f"/accounts/{account}/api-keys", {"name": f"{account} key", "roles": list(roles)}).json()
    return Api(created["key"])


def user(api: Api, user_id: int, account: str = "acme") -> dict[str, Any]:
    return api.get(f"/accounts/{account}/users/{user_id}")


def reset_link(body: str) -> str:
    match = re.search(r"https?://[^/\s]+(/password/reset/\S+)", body)
    assert match, body
    return match.group(1)


def routes_to_password(email: str) -> bool:
    response = login_step(Client(), email)
    return response.status_code == 200 and b"Enter your password" in response.content


def routes_to(connection: dict[str, Any], email: str) -> bool:
    response = login_step(Client(), email)
    return response.status_code == 302 and response["Location"].startswith(f"/sso/start/{connection['id']}?")


# Seed 000: back to password, and it stays --------------------------------------------------------


def test_switch_back_to_password_is_honoured_by_routing_and_not_undone_by_sso_logins(
    api, make_account, make_connection, sso_driver
):
    make_account("acme")
    connection = make_connection("acme", ("acme.com",))
    managers = key_of(api, "acme", "user-manager")
    bob = invite(api, "acme", "bob@acme.com", roles=["analyst"])
    invite(api, "acme", "ann@acme.com", roles=["analyst"])
    browser = Client()
    assert_signed_in(
        sso_driver.login(browser, connection, subject="bob@acme.com", claims=claims("bob@acme.com", "Bob")), browser
    )
    assert user(api, bob["id"])["login_method"] == "sso" and routes_to(connection, "bob@acme.com")
    mail.outbox.clear()

    out = managers.patch(f"/accounts/acme/users/{bob['id']}", {"login_method": "password"}).json()
    assert out["login_method"] == "password" and out["password_pinned"] is True

    # The email says why it came, and its link sets the new password.
    [email] = mail.outbox
    assert email.to == ["bob@acme.com"]
    assert "your administrator switched you to password sign-in" in email.body.lower()
    new = "a password chosen after the switch 7"
    assert Client().post(reset_link(email.body), {"password1": new, "password2": new}).status_code == 200

    # /login offers bob the password step although acme.com routes to the provider; ann still goes there.
    assert routes_to_password("bob@acme.com") and routes_to_password(" BOB@acme.com ")
    assert routes_to(connection, "ann@acme.com")
    password_browser = Client()
    assert (
        assert_signed_in(password_login(password_browser, "bob@acme.com", new), password_browser, "bob@acme.com")[
            "login_method"
        ]
        == "password"
    )

    # An SSO login (the sign-in link) still lets him in, but no longer upgrades him (seed 004).
    sso_browser = Client()
    me = assert_signed_in(
        sso_driver.login(sso_browser, connection, subject="bob@acme.com", claims=claims("bob@acme.com", "Bob")),
        sso_browser,
    )
    assert me["login_method"] == "password"
    row = User.objects.get(pk=bob["id"])
    assert row.login_method == "password" and row.check_password(new)
    assert [e["subject_email"] for e in audit(api, "acme", "sso.user_upgraded")] == [
        "bob@acme.com"
    ]  # the first login only
    assert routes_to_password("bob@acme.com")
    assert password_login(Client(), "bob@acme.com", new).status_code == 302

    # Until an administrator switches him to SSO again: routed, password gone, and upgraded as before.
    out = managers.patch(f"/accounts/acme/users/{bob['id']}", {"login_method": "sso"}).json()
    assert out["login_method"] == "sso" and out["password_pinned"] is False
    assert routes_to(connection, "bob@acme.com")
    assert password_login(Client(), "bob@acme.com", new).status_code == 401


def test_choosing_password_for_a_password_user_keeps_them_off_the_automatic_upgrade(
    api, make_account, make_connection, sso_driver
):
    """An explicit "password" for someone already on it records the choice; nothing is purged, nothing sent."""
    make_account("acme")
    connection = make_connection("acme", ("acme.com",))
    carol = invite(api, "acme", "carol@acme.com", roles=["analyst"])
    assert routes_to(connection, "carol@acme.com")
    mail.outbox.clear()

    out = api.patch(f"/accounts/acme/users/{carol['id']}", {"login_method": "password"}).json()
    assert out["password_pinned"] is True and mail.outbox == []
    assert routes_to_password("carol@acme.com")
    browser = Client()
    assert (
        assert_signed_in(
            sso_driver.login(browser, connection, subject="carol@acme.com", claims=claims("carol@acme.com")), browser
        )["login_method"]
        == "password"
    )
    password_browser = Client()
    assert_signed_in(password_login(password_browser, "carol@acme.com", PASSWORD), password_browser, "carol@acme.com")
    assert not audit(api, "acme", "sso.user_upgraded")


def test_only_the_home_account_pins_password_sign_in(api, make_account, make_connection, sso_driver):
    """The sandbox account sharing acme.com may not change how acme's person signs in."""
    make_account("acme")
    make_account("acme-sandbox", projects=())
    connection = make_connection("acme", ("acme.com",))
    api.post("/accounts/acme/domains/acme.com/shares", {"account": "acme-sandbox"})
    bob = invite(api, "acme", "bob@acme.com", roles=["analyst"])
    api.post(
        "/accounts/acme-sandbox/users", {"email": "bob@acme.com", "send_invitation": False}, expect=201
    )  # the operator adds directly
    sandbox = key_of(api, "acme-sandbox", "administrator")
    browser = Client()
    assert_signed_in(
        sso_driver.login(browser, connection, subject="bob@acme.com", claims=claims("bob@acme.com")), browser
    )

    refused = sandbox.patch(
        f"/accounts/acme-sandbox/users/{bob['id']}", {"login_method": "password"}, expect=403
    ).json()
    assert refused["field"] == "login_method"
    assert user(api, bob["id"])["login_method"] == "sso" and routes_to(connection, "bob@acme.com")


# Seed 000: the External user ID ------------------------------------------------------------------


def test_external_user_id_set_at_creation_decides_who_signs_in(api, make_account, make_connection, sso_driver):
    make_account("acme")
    connection = make_connection("acme", ("acme.com",))
    acme = key_of(api, "acme", "user-manager")
    bob = acme.post(
        "/accounts/acme/users",
        {"email": "bob@acme.com", "name": "Bob", "send_invitation": False, "login_method": "sso",
         "external_ids": [{"connection": connection["id"], "external_id": "00u-bob-azure"}]},
    ).json()  # fmt: skip
    assert bob["external_ids"] == [{"connection": connection["id"], "external_id": "00u-bob-azure"}]

    # The IdP's subject for bob signs him in; another subject asserting his address does not.
    intruder = Client()
    assert_refused(
        sso_driver.login(intruder, connection, subject="00u-someone", claims=claims("bob@acme.com")),
        "sso.external_id_conflict",
        api,
        "acme",
    )
    browser = Client()
    me = assert_signed_in(
        sso_driver.login(browser, connection, subject="00u-bob-azure", claims=claims("bob@acme.com", "Bob")), browser
    )
    assert me["id"] == bob["id"]


def test_admin_updates_the_external_user_id_to_match_the_third_party_system(
    api, make_account, make_connection, sso_driver
):
    """Seed 000: the IdP's ID for bob changed (a directory migration): the admin edits it, bob signs in as bob."""
    make_account("acme")
    connection = make_connection("acme", ("acme.com",))
    acme = key_of(api, "acme", "user-manager")
    bob = invite(api, "acme", "bob@acme.com", roles=["analyst"])
    first = Client()
    assert_signed_in(
        sso_driver.login(first, connection, subject="old-bob", claims=claims("bob@acme.com", "Bob")), first
    )

    out = acme.patch(
        f"/accounts/acme/users/{bob['id']}",
        {"external_ids": [{"connection": connection["id"], "external_id": "new-bob"}]},
    ).json()
    assert out["external_ids"] == [{"connection": connection["id"], "external_id": "new-bob"}]
    event = audit(api, "acme", "user.external_id_changed")[0]
    assert (
        event["subject_email"] == "bob@acme.com"
        and event["detail"]["previous"] == "old-bob"
        and event["detail"]["external_id"] == "new-bob"
    )

    browser = Client()
    assert (
        assert_signed_in(
            sso_driver.login(browser, connection, subject="new-bob", claims=claims("bob@acme.com", "Bob")), browser
        )["id"]
        == bob["id"]
    )
    stale = Client()
    assert_refused(
        sso_driver.login(stale, connection, subject="old-bob", claims=claims("bob@acme.com", "Bob")),
        "sso.external_id_conflict",
        api,
        "acme",
    )


def test_external_user_id_of_another_person_is_a_409_naming_it(api, make_account, make_connection, sso_driver):
    make_account("acme")
    connection = make_connection("acme", ("acme.com",), auto_provision=True, provisioned_users_can_login=True)
    browser = Client()
    assert_signed_in(
        sso_driver.login(browser, connection, subject="00u-alice", claims=claims("alice@acme.com", "Alice")), browser
    )
    bob = invite(api, "acme", "bob@acme.com", roles=["analyst"])

    response = api.patch(
        f"/accounts/acme/users/{bob['id']}",
        {"name": "Robert", "external_ids": [{"connection": connection["id"], "external_id": "00u-alice"}]},
        expect=409,
    )
    body = response.json()
    assert body["field"] == "external_ids[0].external_id"
    assert "00u-alice" in body["detail"] and "alice@acme.com" in body["detail"]
    # Nothing of the request was applied, and alice still signs in as alice.
    assert user(api, bob["id"])["external_ids"] == [] and user(api, bob["id"])["name"] == "Bob"
    again = Client()
    assert (
        assert_signed_in(
            sso_driver.login(again, connection, subject="00u-alice", claims=claims("alice@acme.com", "Alice")), again
        )["email"]
        == "alice@acme.com"
    )
    # The same at creation: the whole add is refused.
    api.post(
        "/accounts/acme/users",
        {
            "email": "carl@acme.com",
            "send_invitation": False,
            "external_ids": [{"connection": connection["id"], "external_id": "00u-alice"}],
        },
        expect=409,
    )
    assert "carl@acme.com" not in {u["email"] for u in api.get("/accounts/acme/users")}


# Seed 001: "Allow Login" ------------------------------------------------------------------------


def test_people_waiting_for_approval_are_queued_and_the_user_managers_told(
    api, make_account, make_connection, sso_driver
):
    make_account("acme")
    connection = make_connection("acme", ("acme.com",), auto_provision=True)
    invite(api, "acme", "hr@acme.com", roles=["user-manager"])
    invite(api, "acme", "boss@acme.com", roles=["administrator"])  # implies user-manager
    invite(api, "acme", "worker@acme.com", roles=["analyst"])
    mail.outbox.clear()

    response = sso_driver.login(
        Client(), connection, subject="new@acme.com", claims=claims("new@acme.com", "New Person")
    )
    assert_refused(response, "sso.pending_approval", api, "acme", status=403)

    queue = api.get("/accounts/acme/users?approval=pending")
    assert [(u["email"], u["approval"]) for u in queue] == [("new@acme.com", "pending")]
    assert {u["email"] for u in api.get("/accounts/acme/users?approval=approved")} == {
        "hr@acme.com",
        "boss@acme.com",
        "worker@acme.com",
    }
    assert sorted(m.to[0] for m in mail.outbox) == ["boss@acme.com", "hr@acme.com"]
    notice = mail.outbox[0]
    assert "new@acme.com" in notice.subject and "Acme" in notice.subject
    assert (
        "New Person" in notice.body
        and "/console/a/acme/users/pending/" in notice.body
        and f"/console/a/acme/users/{queue[0]['id']}/" in notice.body
    )
    assert audit(api, "acme", "user.approval_requested")[0]["detail"]["notified"] == 2

    # Waiting again tells nobody again.
    mail.outbox.clear()
    assert (
        sso_driver.login(Client(), connection, subject="new@acme.com", claims=claims("new@acme.com")).status_code == 403
    )
    assert mail.outbox == []

    api.patch(f"/accounts/acme/users/{queue[0]['id']}", {"approval": "approved"})
    assert api.get("/accounts/acme/users?approval=pending") == []
    browser = Client()
    assert_signed_in(
        sso_driver.login(browser, connection, subject="new@acme.com", claims=claims("new@acme.com")),
        browser,
        "new@acme.com",
    )
    assert api.get("/accounts/acme/users?approval=whatever", expect=422)


def test_a_failing_mail_server_does_not_fail_the_waiting_persons_login(
    api, make_account, make_connection, sso_driver, monkeypatch
):
    import smtplib

    from vestibule.people import members

    def broken(*args: Any, **kwargs: Any) -> None:
        raise smtplib.SMTPServerDisconnected("mail server down")

    make_account("acme")
    connection = make_connection("acme", ("acme.com",), auto_provision=True)
    invite(api, "acme", "hr@acme.com", roles=["user-manager"])
    monkeypatch.setattr(members, "send", broken)
    response = sso_driver.login(Client(), connection, subject="new@acme.com", claims=claims("new@acme.com"))
    assert_refused(response, "sso.pending_approval", api, "acme", status=403)
    assert [u["email"] for u in api.get("/accounts/acme/users?approval=pending")] == ["new@acme.com"]
    assert audit(api, "acme", "user.approval_requested")[0]["detail"]["notified"] == 0


def test_allow_login_needs_auto_provisioning(api, make_account, make_connection, sso_driver):
    """Seed 001 shows "Allow Login" only under "Automatically provision new users"."""
    make_account("acme")
    refused = api.post(
        "/accounts/acme/connections",
        {
            "protocol": sso_driver.protocol,
            "name": "x",
            "domains": ["acme.com"],
            "provisioned_users_can_login": True,
            **sso_driver.connection_settings(),
        },
        expect=409,
    ).json()
    assert refused["field"] == "provisioned_users_can_login" and "auto_provision" in refused["detail"]
    assert api.get("/accounts/acme/connections") == []

    connection = make_connection("acme", ("acme.com",))
    url = f"/connections/{connection['id']}"
    body = api.patch(url, {"provisioned_users_can_login": True}, expect=409).json()
    assert "auto-provisioning, which is off" in body["detail"]
    assert api.get(url)["provisioned_users_can_login"] is False
    both = api.patch(url, {"auto_provision": True, "provisioned_users_can_login": True}).json()
    assert both["auto_provision"] is True and both["provisioned_users_can_login"] is True

    # Auto-provisioning off takes Allow Login with it, and says so ...
    off = api.patch(url, {"auto_provision": False}).json()
    assert off["provisioned_users_can_login"] is False and any("Allow Login" in w for w in off["warnings"])
    # ... so switching it back on later does not let new people in unapproved.
    api.patch(url, {"auto_provision": True})
    response = sso_driver.login(Client(), connection, subject="late@acme.com", claims=claims("late@acme.com"))
    assert_refused(response, "sso.pending_approval", api, "acme", status=403)


# Seed 002: roles from before SSO authorization ---------------------------------------------------


def test_default_role_granted_while_authorization_was_off_is_not_locked_when_it_is_switched_on(
    api, make_account, make_connection, sso_driver
):
    make_account("acme")
    connection = make_connection(
        "acme", ("acme.com",), auto_provision=True, provisioned_users_can_login=True, claims=ROLES_CLAIM
    )
    browser = Client()
    me = assert_signed_in(
        sso_driver.login(browser, connection, subject="dan@acme.com", claims=claims("dan@acme.com", "Dan")), browser
    )
    assert me["accounts"][0]["roles"] == ["analyst"]  # no roles claim: the catalog default
    dan = next(u for u in api.get("/accounts/acme/users") if u["email"] == "dan@acme.com")

    api.patch(f"/connections/{connection['id']}", {"sso_authorization": True})
    assert user(api, dan["id"])["roles_managed_by"] is None
    out = api.put(f"/accounts/acme/users/{dan['id']}/roles", {"roles": ["customer-support"]}).json()
    assert "customer-support" in out["roles"]

    # The next login under authorization decides every role, and from then on they are the provider's.
    again = Client()
    me = assert_signed_in(
        sso_driver.login(
            again,
            connection,
            subject="dan@acme.com",
            claims=claims("dan@acme.com", "Dan", gr4vy_roles=["system-manager"]),
        ),
        again,
    )
    assert me["accounts"][0]["roles"] == ["system-manager"]
    assert user(api, dan["id"])["roles_managed_by"] == connection["id"]
    assert (
        "managed by the identity provider"
        in api.put(f"/accounts/acme/users/{dan['id']}/roles", {"roles": ["analyst"]}, expect=409).json()["detail"]
    )


def test_default_role_of_a_mapping_roles_connection_stays_editable_after_switching_on(
    api, make_account, make_connection, sso_driver
):
    make_account("acme")
    api.post(
        "/accounts/acme/mapping-roles",
        {"name": "Finance", "grants": [{"scope": "account", "roles": ["analyst", "report-viewer"]}]},
    )
    connection = make_connection("acme", ("acme.com",), auto_provision=True, provisioned_users_can_login=True)
    browser = Client()
    assert assert_signed_in(
        sso_driver.login(browser, connection, subject="eve@acme.com", claims=claims("eve@acme.com")), browser
    )["accounts"][0]["roles"] == ["analyst"]
    eve = next(u for u in api.get("/accounts/acme/users") if u["email"] == "eve@acme.com")

    api.patch(f"/connections/{connection['id']}", {"sso_authorization": True})
    assert api.put(f"/accounts/acme/users/{eve['id']}/roles", {"roles": ["customer-support"]}).json()["roles"] == [
        "customer-support"
    ]
    again = Client()
    me = assert_signed_in(
        sso_driver.login(
            again, connection, subject="eve@acme.com", claims=claims("eve@acme.com", role_mapping="Finance")
        ),
        again,
    )
    assert me["accounts"][0]["roles"] == ["analyst", "report-viewer"]
    api.put(f"/accounts/acme/users/{eve['id']}/roles", {"roles": ["analyst"]}, expect=409)


# Seed 001: SAML settings -----------------------------------------------------------------------


@pytest.fixture
def saml_driver() -> Any:
    from tests.e2e.drivers.saml_driver import SamlDriver

    return SamlDriver()


def saml_connection(api: Api, driver: Any, **fields: Any) -> dict[str, Any]:
    body = {
        "protocol": "saml",
        "name": "Okta",
        "domains": ["acme.com"],
        "auto_provision": True,
        "provisioned_users_can_login": True,
        **fields,
    }
    return api.post("/accounts/acme/connections", body).json()


def signs_in(driver: Any, connection: dict[str, Any], email: str, **kw: Any) -> bool:
    browser = Client()
    response = driver.login(browser, connection, subject=email, claims=claims(email), **kw)
    return response.status_code == 302 and browser.get("/api/v1/session").json()["email"] == email


def test_partial_saml_patch_changes_one_setting_and_keeps_the_rest(api, make_account, saml_driver):
    make_account("acme")
    connection = saml_connection(api, saml_driver, **saml_driver.connection_settings())
    url = f"/connections/{connection['id']}"
    api.patch(url, {"enabled": True})
    before = api.get(url)["saml"]

    after = api.patch(url, {"saml": {"want_assertions_encrypted": True}}).json()["saml"]
    assert after == {**before, "want_assertions_encrypted": True}
    # The change is in force: a clear-text assertion is refused, an encrypted one signs in.
    assert not signs_in(saml_driver, connection, "clear@acme.com")
    assert signs_in(saml_driver, connection, "secret@acme.com", encrypt=True)
    # null puts one setting back to its default; a bad value is refused naming it, and changes nothing.
    assert api.patch(url, {"saml": {"want_assertions_encrypted": None}}).json()["saml"] == before
    error = api.patch(url, {"saml": {"sso_url": "http://idp.example.test/sso"}}, expect=422).json()
    assert error["field"] == "saml.sso_url"
    assert api.get(url)["saml"] == before
    # The oidc object of an OIDC connection merged already; saml now behaves the same.


def test_generate_saml_settings_from_metadata_for_review(api, make_account, saml_driver):
    """Seed 001: the generated settings replace the text area; the admin saves them."""
    make_account("acme")
    connection = saml_connection(api, saml_driver)
    url = f"/connections/{connection['id']}"
    blank = api.get(url)["saml"]
    metadata = (FIXTURES / "metadata" / "okta.xml").read_bytes()

    preview = api.client.put(
        f"/api/v1{url}/saml/idp-metadata?dry_run=true", metadata, content_type="application/samlmetadata+xml"
    )
    assert preview.status_code == 200
    generated = preview.json()
    assert generated["idp_entity_id"] == "http://www.okta.com/exk9vestib0le4417239" and generated["certificates"]
    assert api.get(url)["saml"] == blank  # nothing saved
    assert not audit(api, "acme", "connection.idp_metadata_imported")
    json_preview = api.put(f"{url}/saml/idp-metadata", {"metadata": metadata.decode(), "dry_run": True}).json()
    assert json_preview == generated and api.get(url)["saml"] == blank

    # The admin reviews, adjusts one setting and saves.
    saved = api.patch(url, {"saml": {**generated, "clock_skew_seconds": 60}}).json()["saml"]
    assert saved == {**generated, "clock_skew_seconds": 60} == api.get(url)["saml"]


def test_node_saml_settings_are_imported_and_sign_in(api, make_account, saml_driver):
    """The settings JSON of seed 001's system (node-saml / passport-saml options), pasted as it is."""
    from tests import pysaml2_support as peer

    make_account("acme")
    certificate = "".join(peer.certificate().strip().splitlines()[1:-1])  # bare base64, as such configs often hold it
    node_saml = {
        "entryPoint": peer.IDP_SSO,
        "idpIssuer": peer.IDP_ENTITY,
        "issuer": "https://rbqm.example.com/saml/metadata",
        "callbackUrl": "https://rbqm.example.com/saml/callback",
        "cert": certificate,
        "identifierFormat": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
        "wantAuthnResponseSigned": False,
        "acceptedClockSkewMs": 5000,
        "disableRequestedAuthnContext": True,
    }
    created = api.post(
        "/accounts/acme/connections",
        {
            "protocol": "saml",
            "name": "Imported",
            "domains": ["acme.com"],
            "auto_provision": True,
            "provisioned_users_can_login": True,
            "saml": node_saml,
        },
    ).json()
    saml = created["saml"]
    assert saml["idp_entity_id"] == peer.IDP_ENTITY and saml["sso_url"] == peer.IDP_SSO
    assert saml["certificates"] == [normalize_certificate(peer.certificate())]  # PEM again
    assert saml["clock_skew_seconds"] == 5 and saml["want_response_signed"] is False
    assert any("issuer, callbackUrl not imported" in w for w in created["warnings"])
    assert any("disableRequestedAuthnContext not used" in w for w in created["warnings"])
    api.patch(f"/connections/{created['id']}", {"enabled": True})
    assert signs_in(saml_driver, created, "imported@acme.com")

    # A partial node-saml document (a certificate rollover) merges like Vestibule's own keys.
    rolled = api.patch(
        f"/connections/{created['id']}",
        {"saml": {"idpCert": [peer.certificate(), peer.certificate("pysaml2_idp_next")]}},
    ).json()
    assert len(rolled["saml"]["certificates"]) == 2 and rolled["saml"]["clock_skew_seconds"] == 5
    # Errors name the key the admin wrote.
    error = api.patch(
        f"/connections/{created['id']}", {"saml": {"entryPoint": "http://idp.example.test/"}}, expect=422
    ).json()
    assert error["field"] == "saml.entryPoint"
    missing = api.post(
        "/accounts/acme/connections",
        {
            "protocol": "saml",
            "name": "No IdP issuer",
            "domains": ["acme.com"],
            "saml": {**node_saml, "idpIssuer": None},
        },
        expect=422,
    ).json()
    assert missing["field"] == "saml.idpIssuer" and "service provider's own entity ID" in missing["detail"]


def test_patching_domains_says_they_are_fixed_and_what_to_do(api, make_account, make_connection):
    make_account("acme")
    connection = make_connection("acme", ("acme.com",))
    url = f"/connections/{connection['id']}"
    error = api.patch(url, {"domains": ["acme.org"]}, expect=422).json()
    assert error["field"] == "domains"
    assert "fixed" in error["detail"] and "create a new connection" in error["detail"]
    assert "Extra inputs" not in error["detail"]
    assert api.get(url)["domains"] == ["acme.com"]
    # Sending back what the connection has is no change, not an error.
    assert api.patch(url, {"domains": ["ACME.com"], "name": "Renamed"}).json()["name"] == "Renamed"
    assert "create a new connection" in api.patch(url, {"protocol": "x"}, expect=422).json()["detail"]
