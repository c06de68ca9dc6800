"""``vestibule demo`` registers the examples' applications, and the examples read what it wrote.

The examples under ``examples/`` find their client credentials in
``$VESTIBULE_DATA_DIR/demo-applications.json``. These tests hold the seed to
that contract: both applications registered once however often the demo
starts, the file's secret the one the database accepts (kept across re-runs,
so a running example survives a demo restart, and replaced when the file lost
it), the file readable by its owner only, and the credentials good for a
real code flow. The end-to-end runs of the examples themselves, through a
real SSO login, are in ``tests/e2e/test_example_app_sso.py``; the few tests
here that import the Flask example are marked ``interop`` (they need Flask
and Authlib, which ``make test`` installs).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import importlib.util
import json
import re
import secrets
import stat
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.contrib.auth.hashers import check_password
from django.test import Client

from tests.conftest import password_login
from vestibule.demo import ADMIN_EMAIL, DEMO_APPLICATIONS, demo_applications_path, seed_demo
from vestibule.provider import keys
from vestibule.provider.models import Application

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
KEYS = {"flask-authlib", "django-mozilla-oidc"}


@pytest.fixture
def data_dir(settings: Any, tmp_path: Path) -> Path:
    """The demo's data directory (where demo-applications.json goes), fresh for the test, test IdP on."""
    settings.VESTIBULE_TEST_IDP = True
    settings.CONFIG = dataclasses.replace(settings.CONFIG, data_dir=tmp_path)
    return tmp_path


def written() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(demo_applications_path().read_text())
    return document


def application(key: str) -> Application:
    name = next(e.name for e in DEMO_APPLICATIONS if e.key == key)
    return Application.objects.get(name=name, revoked_at__isnull=True)


@pytest.mark.django_db
def test_demo_registers_both_examples_and_writes_credentials_the_database_accepts(data_dir: Path) -> None:
    lines = seed_demo()
    path = data_dir / "demo-applications.json"
    assert demo_applications_path() == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds client secrets
    document = written()
    assert document["issuer"] == "http://localhost"
    assert document["discovery"] == "http://localhost/.well-known/openid-configuration"
    assert set(document["applications"]) == KEYS
    flask, django_app = document["applications"]["flask-authlib"], document["applications"]["django-mozilla-oidc"]
    assert flask["redirect_uris"] == ["http://127.0.0.1:5001/callback"]
    assert flask["post_logout_redirect_uris"] == ["http://127.0.0.1:5001/"]
    assert django_app["redirect_uris"] == ["http://127.0.0.1:5002/oidc/callback/"]
    assert django_app["post_logout_redirect_uris"] == ["http://127.0.0.1:5002/"]
    for key, entry in document["applications"].items():
        row = application(key)
        assert entry["client_id"] == row.client_id and entry["issuer"] == "http://localhost"
        assert row.client_type == Application.CLIENT_CONFIDENTIAL and row.created_by == "demo"
        # Stored hashed, as every client secret; the file's copy is the one that verifies.
        assert row.client_secret != entry["client_secret"] and check_password(entry["client_secret"], row.client_secret)
        assert row.redirect_uri_list() == entry["redirect_uris"]
        banner = "\n".join(lines)
        assert f"client_id {row.client_id}  client_secret {entry['client_secret']}" in banner
        assert f"make -C examples/{key} run" in banner
    assert str(path) in "\n".join(lines)


@pytest.mark.django_db
def test_demo_rerun_registers_nothing_new_and_keeps_the_secret_the_file_holds(data_dir: Path) -> None:
    seed_demo()
    first = written()["applications"]
    seed_demo()
    seed_demo()
    again = written()["applications"]
    assert Application.objects.count() == 2
    for key in KEYS:
        assert again[key]["client_id"] == first[key]["client_id"]
        assert again[key]["client_secret"] == first[key]["client_secret"]  # a running example keeps working
        assert check_password(again[key]["client_secret"], application(key).client_secret)


@pytest.mark.django_db
def test_demo_rerun_without_the_file_makes_a_new_secret(data_dir: Path) -> None:
    seed_demo()
    old = written()["applications"]["flask-authlib"]
    demo_applications_path().unlink()
    seed_demo()
    new = written()["applications"]["flask-authlib"]
    row = application("flask-authlib")
    assert new["client_id"] == old["client_id"] and new["client_secret"] != old["client_secret"]
    assert check_password(new["client_secret"], row.client_secret)
    assert not check_password(old["client_secret"], row.client_secret)


@pytest.mark.django_db
def test_a_secret_written_into_the_demo_file_does_not_become_the_client_secret(data_dir: Path) -> None:
    """Someone edits demo-applications.json to a secret of their choosing: the re-run replaces it, never adopts it."""
    seed_demo()
    real = written()["applications"]["flask-authlib"]["client_secret"]
    # Positive control: an untouched file keeps its secret (previous test); here it is edited.
    document = written()
    document["applications"]["flask-authlib"]["client_secret"] = "chosen-by-whoever-edits-the-file"
    demo_applications_path().write_text(json.dumps(document))
    seed_demo()
    row = application("flask-authlib")
    now = written()["applications"]["flask-authlib"]["client_secret"]
    assert now not in ("chosen-by-whoever-edits-the-file", real)
    assert not check_password("chosen-by-whoever-edits-the-file", row.client_secret)
    assert check_password(now, row.client_secret)
    # The other application's untouched entry kept its secret.
    assert check_password(
        written()["applications"]["django-mozilla-oidc"]["client_secret"],
        application("django-mozilla-oidc").client_secret,
    )


@pytest.mark.django_db
def test_an_unreadable_demo_file_is_rewritten(data_dir: Path) -> None:
    seed_demo()
    demo_applications_path().write_text("{ not json")
    seed_demo()
    entry = written()["applications"]["django-mozilla-oidc"]
    assert check_password(entry["client_secret"], application("django-mozilla-oidc").client_secret)


@pytest.mark.django_db
def test_examples_on_other_ports_get_their_redirect_uris_and_a_rerun_restores_the_usual_ones(data_dir: Path) -> None:
    seed_demo(example_origins={"flask-authlib": "http://127.0.0.1:6101/"})
    assert application("flask-authlib").redirect_uri_list() == ["http://127.0.0.1:6101/callback"]
    assert written()["applications"]["flask-authlib"]["post_logout_redirect_uris"] == ["http://127.0.0.1:6101/"]
    assert application("django-mozilla-oidc").redirect_uri_list() == ["http://127.0.0.1:5002/oidc/callback/"]
    seed_demo()
    assert application("flask-authlib").redirect_uri_list() == ["http://127.0.0.1:5001/callback"]


@pytest.mark.django_db
def test_a_revoked_demo_application_is_registered_anew(data_dir: Path) -> None:
    from vestibule.provider.applications import revoke

    seed_demo()
    old = application("flask-authlib")
    revoke(old)
    seed_demo()
    new = application("flask-authlib")
    assert new.pk != old.pk and written()["applications"]["flask-authlib"]["client_id"] == new.client_id


@pytest.mark.django_db
def test_the_demo_credentials_complete_a_code_flow_with_the_organization_claims(data_dir: Path) -> None:
    """What the Flask example does, through Django's test client: the file's credentials, PKCE, the organization scope."""
    lines = seed_demo()
    password = re.search(rf"{re.escape(ADMIN_EMAIL)} / (\S+)", "\n".join(lines))
    assert password
    entry = written()["applications"]["flask-authlib"]
    browser = Client()
    assert password_login(browser, ADMIN_EMAIL, password.group(1)).status_code == 302
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    params = {
        "response_type": "code", "client_id": entry["client_id"], "redirect_uri": entry["redirect_uris"][0],
        "scope": "openid email profile organization", "state": "s1", "nonce": "n1",
        "code_challenge": challenge, "code_challenge_method": "S256",
    }  # fmt: skip
    answer = browser.get("/oauth/authorize?" + urlencode(params))
    assert answer.status_code == 302 and answer["Location"].startswith(entry["redirect_uris"][0] + "?"), answer
    code = parse_qs(urlsplit(answer["Location"]).query)["code"][0]
    token = Client().post(
        "/oauth/token",
        {
            "grant_type": "authorization_code", "code": code, "redirect_uri": entry["redirect_uris"][0],
            "client_id": entry["client_id"], "client_secret": entry["client_secret"], "code_verifier": verifier,
        },
    )  # fmt: skip
    assert token.status_code == 200, token.content
    claims = keys.verify(token.json()["id_token"])
    assert claims["aud"] in (entry["client_id"], [entry["client_id"]]) and claims["nonce"] == "n1"
    assert claims["email"] == ADMIN_EMAIL and claims["org"] == {"slug": "acme", "name": "Acme Corporation"}
    assert "administrator" in claims["roles"]
    assert sorted(p["slug"] for p in claims["projects"]) == ["production", "sandbox"]
    # Negative control: the same code flow with a wrong secret is refused.
    wrong = Client().post(
        "/oauth/token",
        {
            "grant_type": "authorization_code", "code": code, "redirect_uri": entry["redirect_uris"][0],
            "client_id": entry["client_id"], "client_secret": "wrong", "code_verifier": verifier,
        },
    )  # fmt: skip
    assert wrong.status_code == 401


# The Flask example itself, without a network: how it finds its settings and what it shows. ------------------


def flask_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("flask_authlib_example", EXAMPLES / "flask-authlib" / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CLIENT = {
    "issuer": "http://127.0.0.1:9",  # never contacted by these tests
    "client_id": "demo-client",
    "client_secret": "demo-secret",
    "redirect_uri": "http://127.0.0.1:5001/callback",
    "post_logout_redirect_uri": "http://127.0.0.1:5001/",
}


@pytest.mark.interop
def test_flask_example_reads_the_file_the_demo_wrote(data_dir: Path, db: None) -> None:
    seed_demo()
    app = flask_example()
    settings = app.load_client_settings({"VESTIBULE_DEMO_APPLICATIONS": str(demo_applications_path())})
    entry = written()["applications"]["flask-authlib"]
    assert settings == {
        "issuer": "http://localhost",
        "client_id": entry["client_id"],
        "client_secret": entry["client_secret"],
        "redirect_uri": "http://127.0.0.1:5001/callback",
        "post_logout_redirect_uri": "http://127.0.0.1:5001/",
    }


@pytest.mark.interop
def test_flask_example_without_the_demo_file_says_what_to_start(tmp_path: Path) -> None:
    app = flask_example()
    with pytest.raises(SystemExit) as stopped:
        app.load_client_settings({"VESTIBULE_DEMO_APPLICATIONS": str(tmp_path / "missing.json")})
    assert "start `vestibule demo`" in str(stopped.value)
    (tmp_path / "other.json").write_text(json.dumps({"applications": {}}))
    with pytest.raises(SystemExit) as stopped:
        app.load_client_settings({"VESTIBULE_DEMO_APPLICATIONS": str(tmp_path / "other.json")})
    assert "no usable 'flask-authlib' entry" in str(stopped.value)


@pytest.mark.interop
def test_flask_example_shows_a_refused_sign_in_as_an_error_page_and_keeps_nobody_signed_in() -> None:
    app = flask_example().create_app(CLIENT)
    browser = app.test_client()
    home = browser.get("/")
    assert home.status_code == 200 and b"Sign in with Vestibule" in home.data
    refused = browser.get("/callback?error=access_denied&error_description=not+a+member&state=x")
    assert refused.status_code == 400
    assert b"access_denied" in refused.data and b"not a member" in refused.data
    assert b"You are not signed in" in browser.get("/").data
    # Sign-out without a sign-in goes home, not to the provider.
    out = browser.post("/logout")
    assert out.status_code == 302 and out.headers["Location"] == "/"


@pytest.mark.interop
def test_flask_example_escapes_what_the_provider_sends() -> None:
    """A name like ``<script>`` in the ID token is shown as text, not run (Jinja autoescaping on its templates)."""
    app = flask_example().create_app(CLIENT)
    browser = app.test_client()
    with browser.session_transaction() as session:
        session["user"] = {"sub": "s", "email": "e@x.test", "name": "<script>alert(1)</script>", "roles": ["<b>r</b>"]}
    page = browser.get("/").data.decode()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>r</b>" not in page
    # Positive control: a plain name is shown as it is.
    with browser.session_transaction() as session:
        session["user"] = {"sub": "s", "email": "e@x.test", "name": "Jane Doe", "roles": ["member"]}
    assert "Signed in as Jane Doe" in browser.get("/").data.decode()
