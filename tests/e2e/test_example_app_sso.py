"""The example applications under ``examples/`` sign a person in through a real SSO login.

A live Vestibule (``vestibule serve`` with the built-in test IdP on, seeded
like ``vestibule demo``: account acme, its SAML connection to the test IdP,
the examples' applications and ``demo-applications.json``) and the example
itself, each a process of its own on 127.0.0.1, exactly as a developer starts
them; the example reads its client credentials from the file the seed wrote.
A browser-like httpx client (one cookie jar, redirects followed one at a
time, forms filled in and posted) goes example → Vestibule's authorization
endpoint → SSO start → the test IdP → the ACS → the authorization endpoint
again → the example's callback, and the example's page shows the person, the
organization and the roles from the ID token. Sign-out goes back through
Vestibule's end_session_endpoint and ends the Vestibule session too.

The database is PostgreSQL when the run is (``VESTIBULE_TEST_DATABASE_URL``,
a fresh database for these processes), else an SQLite file.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest

from tests.multiprocess.servers import Server, free_port, fresh_postgres_database, run_cli, server_env

pytestmark = pytest.mark.interop

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SEED = """
import json, os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "vestibule.conf.settings"
import django
django.setup()
from vestibule.demo import seed_demo
print("\\n".join(seed_demo(example_origins=json.loads(sys.argv[1]))))
"""


@dataclass
class Live:
    base: str  # Vestibule's public URL, its issuer
    applications: Path  # the demo-applications.json the seed wrote
    origins: dict[str, str]  # example key -> http://127.0.0.1:<free port>
    seed_output: str


@contextlib.contextmanager
def _database(directory: str) -> Iterator[str]:
    if os.environ.get("VESTIBULE_TEST_DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        with fresh_postgres_database() as url:
            yield url
    else:
        yield f"sqlite:///{directory}/examples.sqlite3"


class Process:
    """A program started as a developer starts it, its output in a file shown when something goes wrong."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path | None = None) -> None:
        self.log = tempfile.NamedTemporaryFile(prefix="vestibule-example-", suffix=".log", delete=False)  # noqa: SIM115
        self.process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-6000:]

    def wait_for(self, url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"exited with {self.process.returncode}:\n{self.output()}")
            try:
                if httpx.get(url, timeout=2).status_code < 500:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{url} did not answer within {timeout}s:\n{self.output()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.log.close()


@pytest.fixture(scope="module")
def vestibule(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    directory = tmp_path_factory.mktemp("vestibule")
    with _database(str(directory)) as database_url:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = server_env(database_url, base_url=base)
        env["VESTIBULE_TEST_IDP"] = "true"
        run_cli(["migrate"], env)
        origins = {key: f"http://127.0.0.1:{free_port()}" for key in ("flask-authlib", "django-mozilla-oidc")}
        seeded = subprocess.run(
            [sys.executable, "-c", SEED, json.dumps(origins)], env=env, capture_output=True, text=True, timeout=120
        )
        assert seeded.returncode == 0, seeded.stderr[-3000:]
        with tempfile.NamedTemporaryFile(prefix=f"vestibule-serve-{port}-", suffix=".log", delete=False) as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "vestibule.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                 "--workers", "1", "--threads", "4"],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        server = Server(process, port, log.name)
        try:
            server.wait_ready()
            yield Live(base, Path(env["VESTIBULE_DATA_DIR"]) / "demo-applications.json", origins, seeded.stdout)
        finally:
            server.stop()


def _example_env(live: Live, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VESTIBULE_", "OIDC_")) and k != "DJANGO_SETTINGS_MODULE"
    }
    return {**env, "VESTIBULE_DEMO_APPLICATIONS": str(live.applications), **extra}


@pytest.fixture(scope="module")
def flask_example(vestibule: Live) -> Iterator[str]:
    origin = vestibule.origins["flask-authlib"]
    app = Process([sys.executable, str(EXAMPLES / "flask-authlib" / "app.py")], _example_env(vestibule))
    try:
        app.wait_for(f"{origin}/")
        yield origin
    finally:
        app.stop()


@pytest.fixture(scope="module")
def django_example(vestibule: Live, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    origin = vestibule.origins["django-mozilla-oidc"]
    database = tmp_path_factory.mktemp("django-example") / "db.sqlite3"
    folder = EXAMPLES / "django-mozilla-oidc"
    app = Process([sys.executable, "run.py"], _example_env(vestibule, EXAMPLE_DATABASE=str(database)), cwd=folder)
    try:
        app.wait_for(f"{origin}/")
        yield origin
    finally:
        app.stop()


class Browser:
    """One cookie jar for every site on 127.0.0.1 (as in a browser, cookies ignore the port); redirects one by one."""

    def __init__(self) -> None:
        self.client = httpx.Client(timeout=20, follow_redirects=False)
        self.visited: list[str] = []

    def close(self) -> None:
        self.client.close()

    def get(self, url: str) -> httpx.Response:
        self.visited.append(url)
        return self.client.get(url)

    def post(self, url: str, data: dict[str, str]) -> httpx.Response:
        self.visited.append(url)
        return self.client.post(url, data=data)

    def follow(self, response: httpx.Response, *, limit: int = 10) -> httpx.Response:
        """Follow redirects until a page (what a browser shows)."""
        for _ in range(limit):
            if response.status_code not in (301, 302, 303, 307):
                return response
            response = self.get(urljoin(str(response.url), response.headers["location"]))
        raise AssertionError(f"more than {limit} redirects: {self.visited[-limit:]}")


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    yield b
    b.close()


def hidden_fields(page: str) -> dict[str, str]:
    return {
        html.unescape(name): html.unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)
    }


def form_action(page: str) -> str:
    match = re.search(r'<form method="post" action="([^"]+)"', page)
    assert match, page[:2000]
    return html.unescape(match.group(1))


def text_of(page: str, element_id: str) -> str:
    """The text inside the element with this id, tags dropped and spaces folded."""
    match = re.search(rf'id="{element_id}">(.*?)</dd>', page, re.S)
    assert match, f"no #{element_id} in {page[:3000]}"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split())


def where(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}", parts.path


def sign_in_at_test_idp(browser: Browser, idp_page: httpx.Response, email: str, name: str) -> httpx.Response:
    """Fill in the test IdP's "who do you want to be?" form and let the auto-posting page reach the ACS."""
    assert idp_page.status_code == 200 and "Test identity provider" in idp_page.text, idp_page.text[:800]
    fields = {**hidden_fields(idp_page.text), "email": email, "name": name}
    posted = browser.post(urljoin(str(idp_page.url), form_action(idp_page.text)), fields)
    assert posted.status_code == 200, posted.text[:800]
    return browser.post(form_action(posted.text), hidden_fields(posted.text))


def vestibule_session(browser: Browser, base: str) -> httpx.Response:
    return browser.get(f"{base}/api/v1/session")


def test_flask_example_signs_in_through_saml_sso_and_shows_the_person_organization_and_roles(
    vestibule: Live, flask_example: str, browser: Browser
) -> None:
    base, app = vestibule.base, flask_example
    credentials = json.loads(vestibule.applications.read_text())["applications"]["flask-authlib"]
    assert credentials["client_secret"] in vestibule.seed_output  # the banner shows what the file holds

    home = browser.get(f"{app}/")
    assert home.status_code == 200 and "Sign in with Vestibule" in home.text

    # 1. The example sends the browser to Vestibule's authorization endpoint: code flow, PKCE S256, nonce.
    to_vestibule = browser.get(f"{app}/login?login_hint=jane.doe%40acme.test")
    assert to_vestibule.status_code == 302, to_vestibule.text[:500]
    authorize = to_vestibule.headers["location"]
    assert where(authorize) == (base, "/oauth/authorize"), authorize
    query = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    assert query["response_type"] == "code" and query["client_id"] == credentials["client_id"]
    assert query["redirect_uri"] == f"{app}/callback" and query["code_challenge_method"] == "S256"
    assert query["code_challenge"] and query["nonce"] and query["state"]
    assert query["scope"].split() == ["openid", "email", "profile", "organization"]

    # 2. Vestibule routes the email straight to acme's SSO connection, which sends the browser to the test IdP.
    to_sso = browser.get(authorize)
    assert to_sso.status_code == 302 and to_sso.headers["location"].startswith("/sso/start/"), to_sso.text[:500]
    to_idp = browser.get(urljoin(base, to_sso.headers["location"]))
    assert to_idp.status_code == 302 and to_idp.headers["location"].startswith(f"{base}/test-idp/sso?SAMLRequest=")
    idp_page = browser.get(to_idp.headers["location"])
    assert 'value="jane.doe@acme.test"' in idp_page.text  # login_hint carried through to the IdP

    # 3. The signed SAML Response reaches the ACS; Vestibule goes back to the authorization request,
    #    which now issues a code to the example's callback, which shows the signed-in page.
    landed = sign_in_at_test_idp(browser, idp_page, "jane.doe@acme.test", "Jane Doe")
    assert landed.status_code == 302, landed.text[:800]
    assert where(urljoin(base, landed.headers["location"])) == (base, "/oauth/authorize")
    page = browser.follow(landed)
    assert page.status_code == 200, page.text[:2000]
    callback = next(url for url in browser.visited if url.startswith(f"{app}/callback?"))
    back = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
    assert back["state"] == query["state"] and back["code"] and back.get("iss") == base
    assert where(str(page.url)) == (app, "/")

    # 4. The example's page: the person, their organization and roles, as Vestibule knows them.
    assert "Signed in as Jane Doe" in page.text
    assert text_of(page.text, "name") == "Jane Doe"
    assert text_of(page.text, "email").startswith("jane.doe@acme.test")
    me = vestibule_session(browser, base)
    assert me.status_code == 200, me.text
    session: dict[str, Any] = me.json()
    acme = next(a for a in session["accounts"] if a["slug"] == "acme")
    assert acme["roles"], session  # the connection's default role at least
    sub = text_of(page.text, "sub")
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", sub), (
        sub
    )  # opaque, not the email
    assert text_of(page.text, "organization") == "Acme Corporation ( acme )"
    assert set(text_of(page.text, "roles").split()) == set(acme["roles"])
    assert text_of(page.text, "amr").startswith("sso")

    # 5. Sign out goes through Vestibule's end_session_endpoint and comes back to the example's home page.
    out = browser.post(f"{app}/logout", {})
    assert out.status_code == 302 and where(out.headers["location"]) == (base, "/oauth/logout"), out.headers
    assert "id_token_hint=" in out.headers["location"]
    home_again = browser.follow(out)
    assert where(str(home_again.url)) == (app, "/"), browser.visited[-3:]
    assert "You are not signed in" in home_again.text
    # ...and the Vestibule session ended with it.
    assert vestibule_session(browser, base).status_code in (401, 403)


def test_a_forged_callback_is_refused_by_the_flask_example(
    vestibule: Live, flask_example: str, browser: Browser
) -> None:
    """An attacker's code and state, not from this browser's sign-in: the example refuses, nobody is signed in."""
    # Positive control: the example starts a sign-in for this browser (it remembers the state it sent).
    started = browser.get(f"{flask_example}/login")
    assert started.status_code == 302 and where(started.headers["location"]) == (vestibule.base, "/oauth/authorize")
    forged = browser.get(f"{flask_example}/callback?code=attacker-code&state=attacker-state&iss={vestibule.base}")
    assert forged.status_code == 400 and "Sign-in failed" in forged.text, forged.text[:800]
    home = browser.get(f"{flask_example}/")
    assert "You are not signed in" in home.text


def test_django_example_signs_in_through_saml_sso_and_shows_the_person_organization_and_roles(
    vestibule: Live, django_example: str, browser: Browser
) -> None:
    base, app = vestibule.base, django_example
    home = browser.get(f"{app}/")
    assert home.status_code == 200 and "Sign in with Vestibule" in home.text

    to_vestibule = browser.follow(browser.get(f"{app}/oidc/authenticate/"))
    # No hint from this example: Vestibule asks for the email, which routes to acme's SSO connection.
    assert where(str(to_vestibule.url)) == (base, "/login"), browser.visited
    authorize = next(url for url in browser.visited if url.startswith(f"{base}/oauth/authorize?"))
    query = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    assert query["code_challenge_method"] == "S256" and query["redirect_uri"] == f"{app}/oidc/callback/"
    routed = browser.post(f"{base}/login", {**hidden_fields(to_vestibule.text), "email": "sam.lee@acme.test"})
    idp_page = browser.follow(routed)
    landed = sign_in_at_test_idp(browser, idp_page, "sam.lee@acme.test", "Sam Lee")
    page = browser.follow(landed)
    assert page.status_code == 200 and where(str(page.url)) == (app, "/"), (browser.visited[-4:], page.text[:2000])
    assert any(url.startswith(f"{app}/oidc/callback/?") for url in browser.visited)

    assert "Signed in as Sam Lee" in page.text
    assert text_of(page.text, "email") == "sam.lee@acme.test"
    assert text_of(page.text, "organization") == "Acme Corporation ( acme )"
    acme = next(a for a in vestibule_session(browser, base).json()["accounts"] if a["slug"] == "acme")
    assert set(text_of(page.text, "roles").split()) == set(acme["roles"]) and acme["roles"]

    # Sign out: a POST with the site's CSRF token, through Vestibule's end_session_endpoint, back home.
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token
    out = browser.post(f"{app}/oidc/logout/", {"csrfmiddlewaretoken": token.group(1)})
    assert out.status_code == 302 and where(out.headers["location"]) == (base, "/oauth/logout"), out.text[:500]
    home_again = browser.follow(out)
    assert where(str(home_again.url)) == (app, "/") and "You are not signed in" in home_again.text
    assert vestibule_session(browser, base).status_code in (401, 403)
