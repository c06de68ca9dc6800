"""``vestibule demo --port N`` works end to end on port N.

v0.1's ``PORT=8422 make demo`` listened on 8422 but printed, and signed SAML
requests for, http://127.0.0.1:8000: on a machine where something else
listened on 8000, the demo's SAML login landed in the other program. Here the
installed command runs as a subprocess on a free port and a fresh data
directory, and a real HTTP client (httpx, with cookies) signs in through the
built-in test IdP the way a browser does, following each redirect and form.
"""

from __future__ import annotations

import html
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from vestibule import cli

VESTIBULE = Path(sys.executable).parent / "vestibule"
READY = re.compile(r"Vestibule demo is ready at (\S+)/login")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Process:
    """A server started as a user starts it; its output is collected as it comes."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, url: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"exited with {self.proc.returncode}:\n{self.output}")
            try:
                if httpx.get(url, timeout=2).status_code < 500:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{url} did not answer within {timeout}s:\n{self.output}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # gunicorn stops its workers on SIGTERM
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._reader.join(timeout=5)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[Process, int]]:
    port = free_port()
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith("VESTIBULE_") and k != "DJANGO_SETTINGS_MODULE"
    }
    env = {**inherited, "VESTIBULE_DATA_DIR": str(tmp_path / "data")}
    process = Process([str(VESTIBULE), "demo", "--port", str(port), "--threads", "4"], env)
    try:
        process.wait_for(f"http://127.0.0.1:{port}/login")
        yield process, port
    finally:
        process.stop()
    assert process.proc.returncode is not None


def hidden_fields(page: str) -> dict[str, str]:
    return {
        html.unescape(name): html.unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)
    }


def form_action(page: str) -> str:
    match = re.search(r'<form method="post" action="([^"]+)"', page)
    assert match, page
    return html.unescape(match.group(1))


@pytest.mark.multiprocess  # a real server process; CI runs it once, in the multi-process pass
def test_demo_on_another_port_signs_in_through_the_test_idp_on_that_port(demo: tuple[Process, int]) -> None:
    process, port = demo
    base = f"http://127.0.0.1:{port}"
    ready = READY.search(process.output)
    assert ready and ready.group(1) == base, process.output
    assert f"(public URL {base})" in process.output
    assert ":8000" not in process.output.split("Vestibule listening")[0], process.output

    with httpx.Client(base_url=base, timeout=20) as browser:
        # 1. The sign-in page, then the email step routes acme.test to its SSO connection.
        page = browser.get("/login")
        assert page.status_code == 200
        routed = browser.post("/login", data={**hidden_fields(page.text), "email": "jane.doe@acme.test"})
        assert routed.status_code == 302 and routed.headers["location"].startswith("/sso/start/"), routed.text[:500]

        # 2. Vestibule sends the browser to the test IdP, on this port, not 8000.
        to_idp = browser.get(routed.headers["location"])
        assert to_idp.status_code == 302, to_idp.text[:500]
        idp_url = to_idp.headers["location"]
        assert idp_url.startswith(f"{base}/test-idp/sso?SAMLRequest="), idp_url

        # 3. The test IdP's page: who do you want to be? Its form posts back to the IdP.
        idp_page = browser.get(idp_url)
        assert idp_page.status_code == 200 and "Test identity provider" in idp_page.text
        assert 'value="jane.doe@acme.test"' in idp_page.text  # login_hint carried over
        fields = {**hidden_fields(idp_page.text), "email": "jane.doe@acme.test", "name": "Jane Doe"}
        posted = browser.post(form_action(idp_page.text), data=fields)
        assert posted.status_code == 200, posted.text[:800]

        # 4. The auto-posting page carries a signed Response to the ACS, on this port.
        acs = form_action(posted.text)
        assert urlsplit(acs)[:2] == ("http", f"127.0.0.1:{port}") and acs.endswith("/acs"), acs
        landed = browser.post(acs, data=hidden_fields(posted.text))
        assert landed.status_code == 302, landed.text[:800]
        assert "vestibule_session" in browser.cookies

        # 5. Signed in, through SAML.
        me = browser.get("/api/v1/session")
        assert me.status_code == 200, me.text
        session: dict[str, Any] = me.json()
        assert (session["email"], session["name"], session["login_method"]) == ("jane.doe@acme.test", "Jane Doe", "sso")
        assert [a["slug"] for a in session["accounts"]] == ["acme"]


# How the public URL follows --port (in-process, no server) ---------------------------------


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("127.0.0.1", 8422, "http://127.0.0.1:8422"),
        ("0.0.0.0", 9000, "http://127.0.0.1:9000"),
        ("::", 9000, "http://127.0.0.1:9000"),
        ("::1", 8000, "http://[::1]:8000"),
        ("sso.internal", 8080, "http://sso.internal:8080"),
    ],
)
def test_without_a_base_url_the_public_url_follows_host_and_port(
    monkeypatch: pytest.MonkeyPatch, host: str, port: int, expected: str
) -> None:
    monkeypatch.delenv("VESTIBULE_BASE_URL", raising=False)
    cli._base_url_for(host, port)
    assert os.environ["VESTIBULE_BASE_URL"] == expected


def test_an_explicit_base_url_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VESTIBULE_BASE_URL", "https://sso.example.com")
    cli._base_url_for("0.0.0.0", 8422)
    assert os.environ["VESTIBULE_BASE_URL"] == "https://sso.example.com"


def test_a_loopback_base_url_on_another_port_is_pointed_out(settings: Any, capsys: pytest.CaptureFixture[str]) -> None:
    settings.VESTIBULE_BASE_URL = "http://127.0.0.1:8000"
    cli._warn_port_mismatch(8422)
    assert "VESTIBULE_BASE_URL is http://127.0.0.1:8000 but this server listens on port 8422" in capsys.readouterr().err
    cli._warn_port_mismatch(8000)
    settings.VESTIBULE_BASE_URL = "https://sso.example.com"  # behind a proxy: nothing to say
    cli._warn_port_mismatch(8422)
    assert capsys.readouterr().err == ""
