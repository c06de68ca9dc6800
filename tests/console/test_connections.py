"""The sso-admin's connection screens (seed 001, seed 003) through the Django client, CSRF enforced.

Every test asserts the database's end state, not only the page: what was
refused left the connection as it was; what was accepted is stored and
audited as the admin API audits it.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.connections_lifecycle.conftest import ENTITY, SSO, metadata
from tests.connections_lifecycle.metadata_server import MetadataServer
from tests.saml_support import cert
from vestibule.accounts.models import Account, Project
from vestibule.audit.models import AuditEvent
from vestibule.connections import rules
from vestibule.connections.keys import read_secrets
from vestibule.connections.models import Connection, DomainClaim, MetadataChange
from vestibule.signin import adapters

pytestmark = pytest.mark.django_db

LIST = "/console/a/acme/connections/"
COMPLETE = {"idp_entity_id": ENTITY, "sso_url": SSO, "certificates": [cert("idp")]}


@pytest.fixture
def make_connection(make_account: Callable[..., Account]) -> Callable[..., Connection]:
    """``make_connection("acme", domain="acme.test", protocol="saml", **fields)``: created as the operator would."""

    def make(account: str = "acme", *, domain: str | None = None, **data: Any) -> Connection:
        owner = make_account(account)
        payload = {"protocol": "saml", "name": "Okta", "domains": [domain or f"{account}.test"], **data}
        return rules.create_connection(owner, payload, may_claim=True)

    return make


@pytest.fixture
def sam(person: Callable[..., Any]) -> Any:
    return person("sam@acme.test", roles=["sso-admin"])


def base(connection: Connection) -> str:
    return f"/console/a/{connection.account.slug}/connections/{connection.pk}/"


def fresh(connection: Connection) -> Connection:
    return Connection.objects.get(pk=connection.pk)


def page_of(response: Any) -> str:
    return html.unescape(response.content.decode())


def events(code: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(code=code).order_by("pk"))


def textarea(page: str, field_id: str) -> str:
    match = re.search(rf'<textarea[^>]*id="{re.escape(field_id)}"[^>]*>(.*?)</textarea>', page, re.S)
    assert match, f"no textarea {field_id}"
    return match.group(1).strip()


def textarea_tag(page: str, field_id: str) -> str:
    match = re.search(rf'<textarea[^>]*id="{re.escape(field_id)}"[^>]*>', page)
    assert match, f"no textarea {field_id}"
    return match.group(0)


def key(connection: Connection) -> str:
    return connection.pk.hex[:12]


# The list: one box per connection ------------------------------------------------------------


def test_each_connection_is_a_box_and_a_disabled_one_says_so(sam: Any, make_connection: Any) -> None:
    off = make_connection(name="Okta")
    on = make_connection(domain="acme-eu.test", name="Entra", saml=COMPLETE)
    rules.update_connection(on, {"enabled": True})
    page = page_of(sam.get("/console/a/acme/connections/"))
    off_box = re.search(rf'<section class="card disabled" id="c-{key(off)}"', page)
    on_box = re.search(rf'<section class="card" id="c-{key(on)}"', page)
    assert off_box and on_box
    assert '<span class="badge off">Disabled</span>' in page and '<span class="badge on">Enabled</span>' in page
    # The domain is read-only, with the way to change it.
    assert f'<span class="readonly" id="c-{key(off)}-domains">acme.test</span>' in page
    assert "create a new connection" in page
    assert "Disable Entra" in page and "Enable Okta" in page and "data-confirm=" in page


def test_the_sign_in_link_and_the_sp_values_have_copy_buttons(sam: Any, make_connection: Any) -> None:
    connection = make_connection()
    page = page_of(sam.get("/console/a/acme/connections/"))
    k = key(connection)
    for what, path in (("signin", "/sso/start/"), ("acs", "/acs"), ("entity", "/metadata"), ("spmeta", "/metadata")):
        assert re.search(rf'<code id="c-{k}-{what}">[^<]*{re.escape(path)}', page), what
        assert f'data-copy-from="c-{k}-{what}"' in page
    assert f"/sso/start/{connection.pk}" in page


def test_the_detail_url_lands_on_the_box(sam: Any, make_connection: Any) -> None:
    connection = make_connection()
    response = sam.get(base(connection))
    assert response.status_code == 302 and response["Location"].endswith(f"/connections/#c-{key(connection)}")
    claims = sam.get(base(connection) + "?section=claims")
    assert claims["Location"].endswith(f"/connections/?open={key(connection)}#c-{key(connection)}-claims")
    assert f'<details id="c-{key(connection)}-claims" open>' in page_of(sam.get(claims["Location"]))
    assert f'<details id="c-{key(connection)}-claims">' in page_of(sam.get(LIST))


# Enable / disable ---------------------------------------------------------------------------


def test_enabling_incomplete_settings_is_refused_and_says_what_to_do(sam: Any, make_connection: Any) -> None:
    connection = make_connection()
    response = sam.post(base(connection) + "enabled", {"enabled": "on"}, page=LIST)
    assert response.status_code == 409
    assert "was not enabled" in page_of(response) and "generate them from metadata" in page_of(response)
    assert fresh(connection).enabled is False and events("connection.updated") == []


def test_enable_then_disable_is_stored_and_audited(sam: Any, make_connection: Any) -> None:
    connection = make_connection(saml=COMPLETE)
    response = sam.post(base(connection) + "enabled", {"enabled": "on"}, page=LIST)
    assert response.status_code == 302 and response["Location"].endswith(f"#c-{key(connection)}")
    assert fresh(connection).enabled is True
    assert sam.post(base(connection) + "enabled", {"enabled": "off"}, page=LIST).status_code == 302
    assert fresh(connection).enabled is False
    updated = events("connection.updated")
    assert [e.detail["fields"] for e in updated] == [["enabled"], ["enabled"]]
    assert all(e.actor_user_id == sam.user.pk and e.connection_id == connection.pk for e in updated)


# SAML settings text area --------------------------------------------------------------------


def test_saml_settings_are_saved(sam: Any, make_connection: Any) -> None:
    connection = make_connection()
    typed = json.dumps({**connection.saml_settings, **COMPLETE})
    response = sam.post(base(connection) + "saml", {"settings": typed}, page=LIST)
    assert response.status_code == 302
    assert fresh(connection).saml_settings["idp_entity_id"] == ENTITY
    assert events("connection.updated")[-1].detail["fields"] == ["saml"]


def test_node_saml_settings_of_the_seed_are_accepted(sam: Any, make_connection: Any) -> None:
    connection = make_connection()
    typed = json.dumps(
        {
            "entryPoint": SSO,
            "idpIssuer": ENTITY,
            "cert": cert("idp"),
            "identifierFormat": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
        }
    )
    assert sam.post(base(connection) + "saml", {"settings": typed}, page=LIST).status_code == 302
    stored = fresh(connection).saml_settings
    assert stored["sso_url"] == SSO and stored["name_id_format"].endswith("emailAddress")


def test_invalid_json_points_at_line_and_column_and_keeps_the_text(sam: Any, make_connection: Any) -> None:
    connection = make_connection()
    before = connection.saml_settings
    typed = '{\n  "sso_url": "https://idp.example/sso",\n  "idp_entity_id" "x"\n}'
    response = sam.post(base(connection) + "saml", {"settings": typed}, page=LIST)
    page = page_of(response)
    assert response.status_code == 400
    assert "line 3, column 19" in page
    tag = textarea_tag(page, f"c{key(connection)}-settings")
    assert 'aria-invalid="true"' in tag and f"c{key(connection)}-settings-error" in tag
    assert textarea(page, f"c{key(connection)}-settings") == typed
    assert fresh(connection).saml_settings == before and events("connection.updated") == []


def test_a_rule_error_names_the_key_and_keeps_the_text(sam: Any, make_connection: Any) -> None:
    connection = make_connection()
    before = connection.saml_settings
    typed = json.dumps({**COMPLETE, "sso_url": "ftp://not-a-web-address"})
    response = sam.post(base(connection) + "saml", {"settings": typed}, page=LIST)
    page = page_of(response)
    assert response.status_code == 422
    error = re.search(rf'<p class="field-error" id="c{key(connection)}-settings-error">([^<]*)</p>', page)
    assert error and "saml.sso_url" in error.group(1)
    assert json.loads(textarea(page, f"c{key(connection)}-settings")) == json.loads(typed)
    assert fresh(connection).saml_settings == before


@pytest.mark.parametrize(
    "typed, says",
    [
        ("[1, 2, 3]", "one JSON object"),
        ('"just a string"', "one JSON object"),
        ("", "This field is required"),
        ("\x00\x01\x02 binary", "Null characters are not allowed"),
        ("\x01\x02 binary", "not valid JSON"),
        ("[" * 5000 + "]" * 5000, "not valid JSON"),
        ('{"a": "' + "x" * 70_000 + '"}', "at most 65536 characters"),
    ],
    ids=["array", "string", "empty", "nul", "binary", "deep", "huge"],
)
def test_hostile_settings_are_refused_with_a_message(sam: Any, make_connection: Any, typed: str, says: str) -> None:
    connection = make_connection()
    before = connection.saml_settings
    response = sam.post(base(connection) + "saml", {"settings": typed}, page=LIST)
    assert response.status_code == 400
    assert says in page_of(response) or (says == "not valid JSON" and "too deeply" in page_of(response))
    assert fresh(connection).saml_settings == before


# Generate from metadata ---------------------------------------------------------------------------


def test_pasted_metadata_replaces_the_text_area_unsaved(sam: Any, make_connection: Any) -> None:
    connection = make_connection()
    before = connection.saml_settings
    response = sam.post(base(connection) + "metadata", {"metadata": metadata("idp").decode()}, page=LIST)
    page = page_of(response)
    assert response.status_code == 200
    assert "Generated from metadata — review the settings and Save them" in page
    generated = json.loads(textarea(page, f"c{key(connection)}-settings"))
    assert generated["idp_entity_id"] == ENTITY and generated["sso_url"] == SSO
    # Not saved: the admin saves what they reviewed.
    assert fresh(connection).saml_settings == before and not AuditEvent.objects.filter(code__startswith="connection.")
    saved = sam.post(base(connection) + "saml", {"settings": json.dumps(generated)}, page=LIST)
    assert saved.status_code == 302 and fresh(connection).saml_settings["idp_entity_id"] == ENTITY


XXE = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'


@pytest.mark.parametrize(
    "xml",
    ["this is not xml", XXE, '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"/>'],
    ids=["not-xml", "xxe", "no-idp-descriptor"],
)
def test_bad_metadata_is_shown_in_the_dialog_tied_to_the_field(sam: Any, make_connection: Any, xml: str) -> None:
    connection = make_connection()
    before = connection.saml_settings
    response = sam.post(base(connection) + "metadata", {"metadata": xml}, page=LIST)
    page = page_of(response)
    assert response.status_code == 422
    assert re.search(rf'<dialog id="m{key(connection)}-dialog"[^>]*open', page)
    assert re.search(rf'<p class="field-error" id="m{key(connection)}-metadata-error">metadata: ', page)
    assert "root:" not in page  # no file content leaked through an entity
    assert fresh(connection).saml_settings == before


def test_metadata_from_a_url_goes_through_the_guarded_client(sam: Any, make_connection: Any) -> None:
    server = MetadataServer()
    try:
        connection = make_connection()
        url = server.serve(metadata("idp"))
        response = sam.post(base(connection) + "metadata", {"metadata_url": url}, page=LIST)
        assert response.status_code == 200, page_of(response)[:2000]
        assert json.loads(textarea(page_of(response), f"c{key(connection)}-settings"))["sso_url"] == SSO
        missing = sam.post(base(connection) + "metadata", {"metadata_url": server.url("/nope")}, page=LIST)
        assert missing.status_code == 422 and "metadata.http_status" in page_of(missing)
        assert server.requests == ["/metadata", "/nope"]
    finally:
        server.close()
    assert fresh(connection).saml_settings == connection.saml_settings


@pytest.mark.parametrize(
    "url, says",
    [
        ("http://idp.example.com/metadata", "must be https://"),
        ("https://10.0.0.1/metadata", "which Vestibule does not fetch"),
        ("ftp://idp.example.com/metadata", "must be an https:// URL"),
        ("file:///etc/passwd", "has no host"),
    ],
)
def test_a_url_the_guard_refuses_is_never_fetched(sam: Any, make_connection: Any, url: str, says: str) -> None:
    connection = make_connection()
    response = sam.post(base(connection) + "metadata", {"metadata_url": url}, page=LIST)
    assert response.status_code == 422 and says in page_of(response)
    assert re.search(rf'id="m{key(connection)}-metadata_url-error"', page_of(response))


def test_the_dialog_wants_exactly_one_of_xml_and_url(sam: Any, make_connection: Any) -> None:
    connection = make_connection()
    neither = sam.post(base(connection) + "metadata", {}, page=LIST)
    both = sam.post(base(connection) + "metadata", {"metadata": "<x/>", "metadata_url": "https://a"}, page=LIST)
    assert neither.status_code == both.status_code == 400
    assert "Paste the metadata XML" in page_of(neither) and "not both" in page_of(both)


def test_without_script_the_generate_link_opens_the_dialog(sam: Any, make_connection: Any) -> None:
    connection = make_connection()
    page = page_of(sam.get(f"/console/a/acme/connections/?generate={key(connection)}"))
    assert re.search(rf'<dialog id="m{key(connection)}-dialog"[^>]*open', page)
    closed = page_of(sam.get("/console/a/acme/connections/"))
    assert not re.search(rf'<dialog id="m{key(connection)}-dialog"[^>]*open', closed)


# Auto-provision and Allow Login -------------------------------------------------------------


def test_auto_provision_asks_first_and_allow_login_shows_only_when_on(sam: Any, make_connection: Any) -> None:
    connection = make_connection()
    page = page_of(sam.get("/console/a/acme/connections/"))
    assert "Disabling the auto-provision will not remove the users" in page and "data-confirm-on=" in page
    assert 'name="provisioned_users_can_login"' not in page
    assert sam.post(base(connection) + "auto-provision", {"auto_provision": "on"}, page=LIST).status_code == 302
    assert fresh(connection).auto_provision is True
    page = page_of(sam.get("/console/a/acme/connections/"))
    assert 'name="provisioned_users_can_login"' in page
    assert sam.post(base(connection) + "allow-login", {"provisioned_users_can_login": "on"}, page=LIST)
    assert fresh(connection).provisioned_users_can_login is True
    # Off again: Allow Login goes with it, and the admin is told.
    off = sam.post(base(connection) + "auto-provision", {}, page=LIST, follow=True)
    assert "was turned off too" in page_of(off)
    stored = fresh(connection)
    assert (stored.auto_provision, stored.provisioned_users_can_login) == (False, False)
    assert [e.detail["fields"] for e in events("connection.updated")] == [
        ["auto_provision"],
        ["provisioned_users_can_login"],
        ["auto_provision"],
    ]


def test_allow_login_without_auto_provision_is_refused(sam: Any, make_connection: Any) -> None:
    connection = make_connection()
    response = sam.post(base(connection) + "allow-login", {"provisioned_users_can_login": "on"}, page=LIST)
    page = page_of(response)
    assert response.status_code == 409
    assert re.search(
        rf'<p class="field-error" id="c{key(connection)}-provisioned_users_can_login-error">Allow Login applies', page
    )
    assert "turn “Automatically provision new users” on first" in page
    assert fresh(connection).provisioned_users_can_login is False and events("connection.updated") == []


# Ignored emails --------------------------------------------------------------------------------


def test_ignored_emails_are_saved_one_per_line(sam: Any, make_connection: Any) -> None:
    connection = make_connection()
    typed = "Test@acme.test\n\n  qa@acme.test  \n"
    assert sam.post(base(connection) + "ignored-emails", {"ignored_emails": typed}, page=LIST).status_code == 302
    assert fresh(connection).ignored_emails == ["Test@acme.test", "qa@acme.test"]
    assert events("connection.updated")[-1].detail["fields"] == ["ignored_emails"]


def test_an_address_outside_the_domain_turns_the_area_red_and_saves_nothing(sam: Any, make_connection: Any) -> None:
    connection = make_connection(ignored_emails=["keep@acme.test"])
    typed = "ok@acme.test\nintruder@other.example"
    response = sam.post(base(connection) + "ignored-emails", {"ignored_emails": typed}, page=LIST)
    page = page_of(response)
    assert response.status_code == 422
    tag = textarea_tag(page, f"c{key(connection)}-ignored_emails")
    assert 'aria-invalid="true"' in tag
    error = re.search(rf'<p class="field-error" id="c{key(connection)}-ignored_emails-error">([^<]*)</p>', page)
    assert error and "intruder@other.example" in error.group(1) and "Nothing was saved" in error.group(1)
    assert textarea(page, f"c{key(connection)}-ignored_emails") == typed
    assert fresh(connection).ignored_emails == ["keep@acme.test"] and events("connection.updated") == []


@pytest.mark.parametrize(
    "typed", ["not an address", "x" * 1_000_001, "\x00\xff@acme.test"], ids=["not-email", "1MB", "binary"]
)
def test_hostile_ignored_emails_are_refused(sam: Any, make_connection: Any, typed: str) -> None:
    connection = make_connection(ignored_emails=["keep@acme.test"])
    response = sam.post(base(connection) + "ignored-emails", {"ignored_emails": typed}, page=LIST)
    assert 400 <= response.status_code < 500
    assert fresh(connection).ignored_emails == ["keep@acme.test"]


# New connection ------------------------------------------------------------------------------------


def test_the_operator_creates_a_disabled_provider_with_the_admins_ignored(
    person: Any, make_user: Any, make_account: Any
) -> None:
    make_account("acme")
    make_user("boss@acme.test", roles=["administrator"])
    make_user("sso@acme.test", roles=["sso-admin"])
    make_user("worker@acme.test", roles=["analyst"])
    make_user("admin@elsewhere.test", roles=["administrator"])
    op = person("op@vestibule.test", account=None, roles=(), operator=True)
    form = {"name": "Okta", "protocol": "saml", "domains": "acme.test\n"}
    response = op.post("/console/a/acme/connections/new", form)
    connection = Connection.objects.get(account__slug="acme")
    assert response.status_code == 302 and response["Location"].endswith(f"/connections/#c-{key(connection)}")
    assert (connection.enabled, connection.auto_provision, connection.provisioned_users_can_login) == (
        False,
        False,
        False,
    )
    assert connection.ignored_emails == ["boss@acme.test", "sso@acme.test"]
    assert DomainClaim.objects.get(domain="acme.test").account.slug == "acme"
    event = events("connection.created")[-1]
    assert event.actor_user_id == op.user.pk and event.detail["domains"] == ["acme.test"]


def test_an_sso_admin_may_only_use_domains_the_account_holds(sam: Any, make_account: Any) -> None:
    refused = sam.post("/console/a/acme/connections/new", {"name": "Okta", "protocol": "saml", "domains": "new.test"})
    page = page_of(refused)
    assert refused.status_code == 403
    assert re.search(r'<p class="field-error" id="id_domains-error">domain new.test is neither claimed', page)
    assert "prove it under Domains or ask the operator" in page and "POST /api" not in page
    assert 'value="Okta"' in page and not Connection.objects.exists() and not DomainClaim.objects.exists()
    DomainClaim.objects.create(domain="acme.test", account=make_account("acme"))
    ok = sam.post("/console/a/acme/connections/new", {"name": "Okta", "protocol": "saml", "domains": "acme.test"})
    assert ok.status_code == 302 and Connection.objects.get().domain_list == ["acme.test"]


def test_the_operator_cannot_take_another_accounts_domain(person: Any, make_account: Any) -> None:
    DomainClaim.objects.create(domain="beta.test", account=make_account("beta"))
    make_account("acme")
    op = person("op@vestibule.test", account=None, roles=(), operator=True)
    response = op.post("/console/a/acme/connections/new", {"name": "X", "protocol": "saml", "domains": "beta.test"})
    assert response.status_code == 409 and "is claimed by another account" in page_of(response)
    assert not Connection.objects.exists()


@pytest.mark.parametrize(
    "form, field",
    [
        ({"name": "", "protocol": "saml", "domains": "acme.test"}, "name"),
        ({"name": "X", "protocol": "ldap", "domains": "acme.test"}, "protocol"),
        ({"name": "X", "protocol": "saml", "domains": "\n \n"}, "domains"),
        ({"name": "X", "protocol": "saml", "domains": "not a domain!"}, "domains"),
        ({"name": "X", "protocol": "saml", "domains": "gmail.com"}, "domains"),
        ({"name": "X", "protocol": "oidc", "domains": "acme.test", "client_id": "c"}, "issuer"),
        ({"name": "X" * 300, "protocol": "saml", "domains": "acme.test"}, "name"),
    ],
    ids=["no-name", "protocol", "no-domain", "bad-domain", "public-mail", "oidc-no-issuer", "long-name"],
)
def test_a_refused_new_connection_says_why_at_the_field(
    person: Any, make_account: Any, form: dict[str, Any], field: str
) -> None:
    make_account("acme")
    op = person("op@vestibule.test", account=None, roles=(), operator=True)
    response = op.post("/console/a/acme/connections/new", form)
    assert 400 <= response.status_code < 500
    assert f'id="id_{field}-error"' in page_of(response)
    assert not Connection.objects.exists()


# Name, linked projects, claim mapping ----------------------------------------------------------------


def test_name_projects_and_claims_are_saved(sam: Any, make_connection: Any) -> None:
    connection = make_connection()
    Project.objects.create(account=connection.account, slug="trial-1", name="Trial 1")
    Project.objects.create(account=connection.account, slug="trial-2", name="Trial 2")
    form = {
        "name": "Okta EU",
        "linked_projects": ["trial-2"],
        "claim_email": "mail",
        "claim_name": "displayName",
        "claim_external_id": "",
        "claim_roles": "groups",
        "claim_role_mapping": "role_mapping",
    }
    assert sam.post(base(connection) + "settings", form, page=LIST).status_code == 302
    stored = fresh(connection)
    assert stored.name == "Okta EU" and list(stored.linked_projects.values_list("slug", flat=True)) == ["trial-2"]
    assert (stored.claims["email"], stored.claims["name"], stored.claims["roles"]) == ("mail", "displayName", "groups")
    assert events("connection.updated")[-1].detail["fields"] == ["claims", "linked_projects", "name"]


def test_another_accounts_project_cannot_be_linked(sam: Any, make_connection: Any, make_account: Any) -> None:
    connection = make_connection()
    Project.objects.create(account=make_account("beta"), slug="secret", name="Secret")
    form = {"name": "Okta", "linked_projects": ["secret"], "claim_email": "email", "claim_name": "name"}
    form["claim_role_mapping"] = "role_mapping"
    response = sam.post(base(connection) + "settings", form, page=LIST)
    assert response.status_code == 400 and "Select a valid choice" in page_of(response)
    assert not fresh(connection).linked_projects.exists()


# OIDC card (seed 003) -----------------------------------------------------------------------------------

OIDC = {"issuer": "https://op.example.test", "client_id": "vestibule", "client_secret": "s3cret-value"}


@pytest.fixture
def oidc_connection(make_connection: Any) -> Connection:
    connection: Connection = make_connection(protocol="oidc", name="Entra", oidc=OIDC)
    return connection


def test_the_oidc_card_explains_setup_and_connect_and_never_shows_the_secret(sam: Any, oidc_connection: Any) -> None:
    page = page_of(sam.get("/console/a/acme/connections/"))
    assert "s3cret-value" not in page and "Client secret: set." in page
    assert f'href="/sso/oidc/{oidc_connection.pk}/connect"' in page
    assert "administrator rights in the external organization" in page and "Login traces" in page
    assert "reason code and a reference" in page and "None yet" in page


def test_saving_oidc_settings_without_a_secret_keeps_it(sam: Any, oidc_connection: Any) -> None:
    form = {"issuer": "https://op2.example.test", "client_id": "vestibule", "scopes": "openid email"}
    assert sam.post(base(oidc_connection) + "oidc", form, page=LIST).status_code == 302
    stored = fresh(oidc_connection)
    assert stored.oidc_settings["issuer"] == "https://op2.example.test"
    assert read_secrets(stored)["client_secret"] == "s3cret-value"
    replaced = {**form, "client_secret": "new-secret"}
    assert sam.post(base(oidc_connection) + "oidc", replaced, page=LIST).status_code == 302
    assert read_secrets(fresh(oidc_connection))["client_secret"] == "new-secret"
    assert [e.detail["fields"] for e in events("connection.updated")] == [["oidc"], ["oidc"]]
    assert "new-secret" not in json.dumps([e.detail for e in AuditEvent.objects.all()])


def test_a_bad_oidc_setting_is_tied_to_its_field(sam: Any, oidc_connection: Any) -> None:
    form = {"issuer": "http://op.example.test", "client_id": "vestibule", "scopes": "email"}
    response = sam.post(base(oidc_connection) + "oidc", form, page=LIST)
    assert response.status_code == 422
    assert re.search(rf'id="o{key(oidc_connection)}-issuer-error">oidc.issuer', page_of(response))
    assert fresh(oidc_connection).oidc_settings["issuer"] == OIDC["issuer"]


class FakeRelyingParty:
    def __init__(self, url: str | None) -> None:
        self.url = url

    def setup_url(self, redirect_uri: str) -> str | None:
        return self.url


def test_the_setup_url_has_a_copy_button(sam: Any, oidc_connection: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(adapters, "relying_party", lambda c: FakeRelyingParty("https://login.example/adminconsent?x=1"))
    page = page_of(sam.get(base(oidc_connection) + "setup-url"))
    assert 'id="setup-result"' in page and "https://login.example/adminconsent?x=1" in page
    assert f'data-copy-from="setup-{key(oidc_connection)}"' in page
    monkeypatch.setattr(adapters, "relying_party", lambda c: FakeRelyingParty(None))
    assert "no admin-consent step" in page_of(sam.get(base(oidc_connection) + "setup-url"))


def test_a_provider_that_cannot_be_reached_is_a_message_not_a_5xx(sam: Any, oidc_connection: Any) -> None:
    response = sam.get(base(oidc_connection) + "setup-url")
    assert response.status_code == 200 and "The provider could not be used" in page_of(response)


def test_unbinding_the_organization(sam: Any, oidc_connection: Any) -> None:
    from django.utils import timezone

    Connection.objects.filter(pk=oidc_connection.pk).update(
        external_tenant_id="tenant-a", tenant_verified_at=timezone.now()
    )
    page = page_of(sam.get("/console/a/acme/connections/"))
    assert "<code>tenant-a</code>, verified" in page and "Unbind Entra from its organization" in page
    assert sam.post(base(oidc_connection) + "unbind", {}, page=LIST).status_code == 302
    stored = fresh(oidc_connection)
    assert (stored.external_tenant_id, stored.tenant_verified_at) == ("", None)
    assert events("connection.updated")[-1].detail["fields"] == ["external_tenant_id"]


def test_saml_actions_on_an_oidc_connection_are_refused(sam: Any, oidc_connection: Any) -> None:
    response = sam.post(base(oidc_connection) + "saml", {"settings": "{}"}, page=LIST)
    assert response.status_code == 422 and fresh(oidc_connection).saml_settings == {}


# Delete -------------------------------------------------------------------------------------------------


def test_delete_asks_first_and_is_audited(sam: Any, make_connection: Any) -> None:
    connection = make_connection()
    page = page_of(sam.get("/console/a/acme/connections/"))
    assert re.search(r'data-confirm="Delete Okta\?[^"]*" data-confirm-label="Delete Okta" data-confirm-danger', page)
    response = sam.post(base(connection) + "delete", {}, page=LIST)
    assert response.status_code == 302 and not Connection.objects.filter(pk=connection.pk).exists()
    assert events("connection.deleted")[-1].detail["name"] == "Okta"


# Tenancy, CSRF, hostile URLs ---------------------------------------------------------------------------

ACTIONS = [
    ("enabled", {"enabled": "on"}),
    ("saml", {"settings": json.dumps(COMPLETE)}),
    ("metadata", {"metadata": "<x/>"}),
    ("metadata-url", {"idp_metadata_url": "https://evil.example/metadata"}),
    ("metadata-refresh", {}),
    ("metadata-decision", {"change_id": "1", "decision": "confirm"}),
    ("auto-provision", {"auto_provision": "on"}),
    ("allow-login", {"provisioned_users_can_login": "on"}),
    ("ignored-emails", {"ignored_emails": "x@acme.test"}),
    ("settings", {"name": "Stolen", "claim_email": "e", "claim_name": "n", "claim_role_mapping": "r"}),
    ("oidc", {"issuer": "https://evil.example", "client_id": "x", "scopes": "openid"}),
    ("unbind", {}),
    ("delete", {}),
]


@pytest.fixture
def victim(make_connection: Any) -> Iterator[Connection]:
    connection: Connection = make_connection(saml=COMPLETE, ignored_emails=["keep@acme.test"])
    snapshot = Connection.objects.filter(pk=connection.pk).values().get()
    yield connection
    after = Connection.objects.filter(pk=connection.pk).values().first()
    assert after == snapshot, "the victim's connection changed"


@pytest.mark.parametrize("action, form", ACTIONS, ids=[a for a, _ in ACTIONS])
def test_account_b_cannot_touch_account_a(person: Any, victim: Connection, action: str, form: dict[str, Any]) -> None:
    bob = person("bob@beta.test", account="beta", roles=["sso-admin", "administrator"])
    through_a = bob.post(f"/console/a/acme/connections/{victim.pk}/{action}", form, page=LIST)
    through_b = bob.post(f"/console/a/beta/connections/{victim.pk}/{action}", form, page=LIST)
    assert through_a.status_code == through_b.status_code == 404
    assert "Okta" not in page_of(through_a) + page_of(through_b)
    assert not AuditEvent.objects.filter(code__startswith="connection.").exclude(code="connection.created").exists()


@pytest.mark.parametrize("action, form", ACTIONS, ids=[a for a, _ in ACTIONS])
def test_a_member_without_sso_admin_gets_the_403_page(
    person: Any, victim: Connection, action: str, form: dict[str, Any]
) -> None:
    ann = person("ann@acme.test", roles=["user-manager"])
    response = ann.post(f"/console/a/acme/connections/{victim.pk}/{action}", form, page=LIST)
    assert response.status_code == 403 and "sso-admin" in page_of(response)


@pytest.mark.parametrize("path", ["", "new", "{id}/", "{id}/setup-url"], ids=["list", "new", "detail", "setup-url"])
def test_account_b_cannot_see_account_a_pages(person: Any, victim: Connection, path: str) -> None:
    bob = person("bob@beta.test", account="beta", roles=["sso-admin"])
    carl = person("carl@acme.test", roles=["analyst"])
    url = f"/console/a/acme/connections/{path.format(id=victim.pk)}"
    assert bob.get(url).status_code == 404
    assert bob.get(f"/console/a/beta/connections/{path.format(id=victim.pk)}").status_code in (200, 404)
    if path.startswith("{id}"):
        assert bob.get(f"/console/a/beta/connections/{path.format(id=victim.pk)}").status_code == 404
    assert carl.get(url).status_code == 403


@pytest.mark.parametrize("action, form", ACTIONS, ids=[a for a, _ in ACTIONS])
def test_a_post_without_csrf_is_refused(sam: Any, victim: Connection, action: str, form: dict[str, Any]) -> None:
    response = sam.client.post(f"/console/a/acme/connections/{victim.pk}/{action}", form)
    assert response.status_code == 403


@pytest.mark.parametrize(
    "connection_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000", "%00", "x" * 500, "' OR 1=1 --"]
)
def test_bad_ids_in_the_url_are_404_pages(sam: Any, victim: Connection, connection_id: str) -> None:
    assert sam.get(f"/console/a/acme/connections/{connection_id}/").status_code == 404
    response = sam.post(f"/console/a/acme/connections/{connection_id}/delete", {}, page=LIST)
    assert response.status_code == 404 and "No such connection" in page_of(response)


def test_get_on_an_action_is_not_allowed(sam: Any, victim: Connection) -> None:
    assert sam.get(base(victim) + "delete").status_code == 405


def test_a_body_beyond_the_upload_limit_is_a_4xx_not_a_5xx(sam: Any, victim: Connection) -> None:
    response = sam.post(base(victim) + "ignored-emails", {"ignored_emails": "a@acme.test\n" * 300_000}, page=LIST)
    assert 400 <= response.status_code < 500


def test_the_new_connection_form_keeps_what_was_typed(sam: Any) -> None:
    form = {"name": "Okta <b>", "protocol": "oidc", "domains": "acme.test", "issuer": "nope", "client_id": "c"}
    form["client_secret"] = "typed-secret"
    page = page_of(sam.post("/console/a/acme/connections/new", form))
    assert 'value="Okta <b>"' not in sam.post("/console/a/acme/connections/new", form).content.decode()
    assert "Okta <b>" in page and "acme.test" in page and "typed-secret" not in page


def test_the_dialog_answers_htmx_with_a_block_it_can_swap(sam: Any, make_connection: Any) -> None:
    connection = make_connection()
    headers = {"HTTP_HX_REQUEST": "true"}
    refused = sam.post(base(connection) + "metadata", {"metadata": "<nope"}, page=LIST, **headers)
    assert refused.status_code == 200 and f'id="m{key(connection)}-metadata-error"' in refused.content.decode()
    done = sam.post(base(connection) + "metadata", {"metadata": metadata("idp").decode()}, page=LIST, **headers)
    page = page_of(done)
    assert done.status_code == 200 and f'<div id="c-{key(connection)}-saml-block">' in page
    assert re.search(rf'<textarea[^>]*autofocus[^>]*id="c{key(connection)}-settings"', page)
    assert fresh(connection).saml_settings == connection.saml_settings


# IdP metadata URL, read now, held changes ---------------------------------------------------------------


@pytest.fixture
def metadata_server() -> Iterator[MetadataServer]:
    server = MetadataServer()
    yield server
    server.close()


def fingerprints(connection: Connection) -> list[str]:
    from django.utils import timezone

    from vestibule.connections.certificates import connection_certificates

    return [c.fingerprint for c in connection_certificates(fresh(connection), timezone.now())]


def test_the_metadata_url_is_kept_read_now_and_removed(
    sam: Any, make_connection: Any, metadata_server: MetadataServer
) -> None:
    connection = make_connection(saml=COMPLETE)
    url = metadata_server.serve(metadata("idp", sso_url="https://idp.lifecycle.test/sso/v2"))
    assert sam.post(base(connection) + "metadata-url", {"idp_metadata_url": url}, page=LIST).status_code == 302
    assert metadata_server.requests == []
    assert events("connection.updated")[-1].detail["fields"] == ["idp_metadata_url"]
    page = page_of(sam.get(LIST))
    assert f'value="{url}"' in page and "Read it now" in page
    read = sam.post(base(connection) + "metadata-refresh", {}, page=LIST, follow=True)
    assert "changed and was adopted" in page_of(read)
    assert fresh(connection).saml_settings["sso_url"] == "https://idp.lifecycle.test/sso/v2"
    assert events("connection.idp_metadata_changed")[-1].actor_user_id == sam.user.pk
    assert sam.post(base(connection) + "metadata-url", {"idp_metadata_url": ""}, page=LIST).status_code == 302
    assert "Read it now" not in page_of(sam.get(LIST))


def test_a_metadata_url_the_guard_refuses_is_not_kept(sam: Any, make_connection: Any) -> None:
    connection = make_connection(saml=COMPLETE)
    form = {"idp_metadata_url": "http://idp.example.com/metadata"}
    response = sam.post(base(connection) + "metadata-url", form, page=LIST)
    assert response.status_code == 422
    assert re.search(
        rf'id="u{key(connection)}-idp_metadata_url-error">the IdP metadata URL must be https', page_of(response)
    )
    assert 'value="http://idp.example.com/metadata"' in page_of(response)
    assert "Read it now" not in page_of(sam.get(LIST))


def test_a_failed_read_is_said_and_changes_nothing(
    sam: Any, make_connection: Any, metadata_server: MetadataServer
) -> None:
    connection = make_connection(saml=COMPLETE, idp_metadata_url=metadata_server.url("/gone"))
    response = sam.post(base(connection) + "metadata-refresh", {}, page=LIST)
    assert response.status_code == 422 and "metadata.http_status" in page_of(response)
    assert fresh(connection).saml_settings == connection.saml_settings
    no_url = make_connection(domain="acme-eu.test", saml=COMPLETE)
    assert sam.post(base(no_url) + "metadata-refresh", {}, page=LIST).status_code == 409


@pytest.mark.parametrize("decision", ["confirm", "discard"])
def test_a_held_change_waits_for_the_sso_admin(
    sam: Any, make_connection: Any, metadata_server: MetadataServer, decision: str
) -> None:
    connection = make_connection(saml=COMPLETE, idp_metadata_url=metadata_server.serve(metadata("attacker")))
    trusted = fingerprints(connection)
    read = sam.post(base(connection) + "metadata-refresh", {}, page=LIST, follow=True)
    page = page_of(read)
    assert "waits for your decision" in page and f'id="c-{key(connection)}-pending"' in page
    assert "Confirm the new certificates" in page and "data-confirm-danger" in page
    assert fingerprints(connection) == trusted
    change = MetadataChange.objects.get(connection=connection)
    bad = sam.post(base(connection) + "metadata-decision", {"change_id": "nope", "decision": decision}, page=LIST)
    assert bad.status_code == 404 and fingerprints(connection) == trusted
    done = sam.post(
        base(connection) + "metadata-decision", {"change_id": str(change.pk), "decision": decision}, page=LIST
    )
    assert done.status_code == 302
    assert (fingerprints(connection) != trusted) is (decision == "confirm")
    assert events(f"connection.idp_metadata_{decision}ed")[-1].actor_user_id == sam.user.pk
    again = sam.post(
        base(connection) + "metadata-decision", {"change_id": str(change.pk), "decision": decision}, page=LIST
    )
    assert again.status_code == 409
