"""Server-side request forgery through connection settings: the outbound guard (vestibule.outbound).

An account admin chooses an OIDC connection's issuer, and through its
discovery document the token, JWKS and UserInfo endpoints Vestibule calls.
Each test below points those at a place Vestibule must not go and shows the
request refused AND the victim untouched: a real local HTTP server started by
the test records every request that reaches it, and must have recorded none.
Positive controls show an allow-listed local server is reachable. The login
trace and API errors must carry our reason (``outbound.*``, an HTTP status),
never what the remote side sent.
"""

from __future__ import annotations

import dataclasses
import gzip
import http.server
import ipaddress
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.test import Client
from django.urls import reverse

from vestibule.audit.models import AuditEvent, LoginTrace
from vestibule.conf.env import ConfigError, load_config
from vestibule.outbound import (
    BlockedAddress,
    EncodingRefused,
    GuardedBackend,
    OutboundPolicy,
    OutboundTimeout,
    RedirectRefused,
    SchemeNotAllowed,
    TooLarge,
    address_problem,
    guarded_client,
)

pytestmark = pytest.mark.django_db

MARKER = "UPSTREAM-MARKER-7f3a9c"
LOOPBACK_ONLY = OutboundPolicy.from_allow(["127.0.0.1", "::1", "localhost"])

# A local server -------------------------------------------------------------

Handler = Callable[[http.server.BaseHTTPRequestHandler], None]


class LocalServer:
    """A real HTTP server on a loopback address that records every request it receives."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.requests: list[tuple[str, str]] = []
        self.headers: list[dict[str, str]] = []
        self.routes: dict[str, Handler] = {}
        server = self

        class _Handler(http.server.BaseHTTPRequestHandler):
            def _serve(self) -> None:
                server.requests.append((self.command, self.path))
                server.headers.append({k.lower(): v for k, v in self.headers.items()})
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                route = server.routes.get(self.path.split("?")[0])
                if route is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    route(self)

            do_GET = do_POST = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer((host, port), _Handler)
        self._httpd.daemon_threads = True
        self.host, self.port = host, self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def json(self, path: str, doc: Any, status: int = 200) -> None:
        body = json.dumps(doc).encode()
        self.raw(path, status, {"Content-Type": "application/json", "Content-Length": str(len(body))}, body)

    def raw(self, path: str, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        def route(handler: http.server.BaseHTTPRequestHandler) -> None:
            handler.send_response(status)
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(body)

        self.routes[path] = route

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def servers() -> Iterator[Callable[..., LocalServer]]:
    started: list[LocalServer] = []

    def start(host: str = "127.0.0.1", port: int = 0) -> LocalServer:
        started.append(LocalServer(host, port))
        return started[-1]

    yield start
    for server in started:
        server.close()


def discovery(issuer: str, base: str, **overrides: str) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{base}/authorize",
        "token_endpoint": f"{base}/token",
        "jwks_uri": f"{base}/jwks",
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        **overrides,
    }


class FakeDns:
    """Answers for names the test resolves itself; every lookup through ``socket.getaddrinfo`` is recorded."""

    def __init__(self) -> None:
        self.answers: dict[str, list[str]] = {}
        self.calls: list[str] = []
        self._real = socket.getaddrinfo

    def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        self.calls.append(name)
        if name not in self.answers:
            return self._real(host, port, *args, **kwargs)
        out = []
        for address in self.answers[name]:
            ip = ipaddress.ip_address(address)
            family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
            sockaddr = (address, int(port or 0)) if ip.version == 4 else (address, int(port or 0), 0, 0)
            out.append((family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))
        return out


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    dns = FakeDns()
    monkeypatch.setattr(socket, "getaddrinfo", dns.getaddrinfo)
    return dns


# Through the real path: admin API, SSO start, setup URL ----------------------


def make_connection(api: Any, make_account: Callable[..., Any], issuer: str) -> str:
    make_account("acme")
    payload = {
        "protocol": "oidc",
        "name": "OP",
        "domains": ["acme.com"],
        "oidc": {"issuer": issuer, "client_id": "vestibule", "client_secret": "s3cret"},
    }
    response = api.post("/api/v1/accounts/acme/connections", payload)
    assert response.status_code == 201, response.content
    connection_id = response.json()["id"]
    enabled = api.patch(f"/api/v1/connections/{connection_id}", {"enabled": True})
    assert enabled.status_code == 200, enabled.content
    return str(connection_id)


def failed_step(api: Any) -> dict[str, Any]:
    """The failed step of the newest login trace, as an account admin reads it through the API."""
    traces = api.get("/api/v1/accounts/acme/login-traces").json()
    assert traces, "no login trace was written"
    return next(step for step in traces[0]["steps"] if step["status"] == "failed")


def admin_visible_text(api: Any) -> str:
    traces = api.get("/api/v1/accounts/acme/login-traces").json()
    events = api.get("/api/v1/accounts/acme/audit-events").json()
    stored = [t.steps for t in LoginTrace.objects.all()] + [e.detail for e in AuditEvent.objects.all()]
    return json.dumps([traces, events]) + json.dumps(stored, default=str)


@pytest.mark.parametrize(
    ("scheme", "reason"),
    [("https", "outbound.blocked_address: 127.0.0.1 is a loopback address"), ("http", "outbound.scheme_not_allowed")],
)
def test_issuer_on_loopback_is_refused_at_sso_start_and_setup_url(
    api: Any,
    make_account: Callable[..., Any],
    servers: Callable[..., LocalServer],
    settings: Any,
    scheme: str,
    reason: str,
) -> None:
    """The reported attack: issuer = a loopback service; nothing may reach it, and the admin learns only our reason."""
    settings.VESTIBULE_OUTBOUND_ALLOW = ()
    victim = servers()
    issuer = f"{scheme}://127.0.0.1:{victim.port}/internal"
    victim.json("/internal/.well-known/openid-configuration", discovery(issuer, victim.url))
    connection_id = make_connection(api, make_account, issuer)

    start = Client().get(f"/sso/start/{connection_id}")
    assert start.status_code == 403 and b"sso.connection_misconfigured" in start.content
    step = failed_step(api)
    assert step["detail_code"] == "oidc.discovery_failed" and step["received"].startswith(reason)

    setup = api.get(f"/api/v1/connections/{connection_id}/oidc/setup-url")
    assert setup.status_code == 422 and setup.json()["field"] == "oidc"
    assert reason in setup.json()["detail"]

    assert victim.requests == []


def test_allow_listed_loopback_provider_is_reachable(
    api: Any, make_account: Callable[..., Any], servers: Callable[..., LocalServer]
) -> None:
    """Positive control: the test settings allow 127.0.0.1, so the same setup signs in as far as the provider."""
    provider = servers()
    provider.json("/.well-known/openid-configuration", discovery(provider.url, provider.url))
    connection_id = make_connection(api, make_account, provider.url)

    start = Client().get(f"/sso/start/{connection_id}")
    assert start.status_code == 302 and start["Location"].startswith(f"{provider.url}/authorize?")
    setup = api.get(f"/api/v1/connections/{connection_id}/oidc/setup-url")
    assert setup.status_code == 200 and setup.json()["setup_url"] is None
    assert ("GET", "/.well-known/openid-configuration") in provider.requests


def test_hostname_resolving_to_loopback_is_refused(
    api: Any,
    make_account: Callable[..., Any],
    servers: Callable[..., LocalServer],
    settings: Any,
    fake_dns: FakeDns,
) -> None:
    """DNS rebinding: a public-looking name whose DNS answer is 127.0.0.1 is refused, and the address is not revealed."""
    settings.VESTIBULE_OUTBOUND_ALLOW = ()
    victim = servers()
    fake_dns.answers["idp.rebind.example"] = ["127.0.0.1"]
    connection_id = make_connection(api, make_account, f"https://idp.rebind.example:{victim.port}")

    assert Client().get(f"/sso/start/{connection_id}").status_code == 403
    received = failed_step(api)["received"]
    assert received == "outbound.blocked_address: idp.rebind.example resolves to a loopback address"
    setup = api.get(f"/api/v1/connections/{connection_id}/oidc/setup-url")
    assert setup.status_code == 422 and "127.0.0.1" not in setup.json()["detail"]
    assert victim.requests == []


def test_discovered_token_endpoint_on_loopback_is_never_posted_to(
    api: Any, make_account: Callable[..., Any], servers: Callable[..., LocalServer], settings: Any
) -> None:
    """The second half of the report: a permitted issuer whose document names an internal token_endpoint."""
    settings.VESTIBULE_OUTBOUND_ALLOW = ("localhost",)
    provider, victim = servers(), servers()
    issuer = f"http://localhost:{provider.port}"
    provider.json(
        "/.well-known/openid-configuration",
        discovery(issuer, issuer, token_endpoint=f"https://127.0.0.1:{victim.port}/admin/flush"),
    )
    connection_id = make_connection(api, make_account, issuer)

    browser = Client()
    start = browser.get(f"/sso/start/{connection_id}")
    assert start.status_code == 302
    state = parse_qs(urlsplit(start["Location"]).query)["state"][0]
    callback = browser.get(reverse("oidc-callback", args=[connection_id]), {"state": state, "code": "c"})
    assert callback.status_code == 400 and b"sso.provider_error" in callback.content
    step = failed_step(api)
    assert step["detail_code"] == "oidc.token_endpoint_error"
    assert step["received"] == "outbound.blocked_address: 127.0.0.1 is a loopback address"
    assert victim.requests == []


def test_trace_never_echoes_the_discovery_document(
    api: Any, make_account: Callable[..., Any], servers: Callable[..., LocalServer]
) -> None:
    """An issuer mismatch says so in our words; the document's issuer value never reaches an admin."""
    provider = servers()
    provider.json("/.well-known/openid-configuration", discovery(MARKER, provider.url))
    connection_id = make_connection(api, make_account, provider.url)

    start = Client().get(f"/sso/start/{connection_id}")
    assert start.status_code == 403 and MARKER.encode() not in start.content
    assert failed_step(api)["received"] == "issuer differs from the configured one"
    setup = api.get(f"/api/v1/connections/{connection_id}/oidc/setup-url")
    assert setup.status_code == 502 and MARKER not in setup.content.decode()
    assert provider.requests  # it was fetched; only its content stays out
    assert MARKER not in admin_visible_text(api)


def test_trace_never_echoes_the_token_endpoint_response(
    api: Any, make_account: Callable[..., Any], servers: Callable[..., LocalServer]
) -> None:
    """A token endpoint's error body (free text or a made-up error code) is reduced to its HTTP status."""
    provider = servers()
    provider.json("/.well-known/openid-configuration", discovery(provider.url, provider.url))
    provider.json("/token", {"error": MARKER, "error_description": f"{MARKER} internal details"}, status=400)
    connection_id = make_connection(api, make_account, provider.url)

    browser = Client()
    state = parse_qs(urlsplit(browser.get(f"/sso/start/{connection_id}")["Location"]).query)["state"][0]
    callback = browser.get(reverse("oidc-callback", args=[connection_id]), {"state": state, "code": "c"})
    assert callback.status_code == 400 and MARKER.encode() not in callback.content
    assert failed_step(api)["received"] == "400"
    assert ("POST", "/token") in provider.requests
    assert MARKER not in admin_visible_text(api)


def test_redirect_to_another_host_is_not_followed(
    api: Any, make_account: Callable[..., Any], servers: Callable[..., LocalServer]
) -> None:
    provider, elsewhere = servers(), servers()
    provider.raw(
        "/.well-known/openid-configuration",
        302,
        {"Location": f"{elsewhere.url}/.well-known/openid-configuration", "Content-Length": "0"},
    )
    elsewhere.json("/.well-known/openid-configuration", discovery(provider.url, provider.url))
    connection_id = make_connection(api, make_account, provider.url)

    assert Client().get(f"/sso/start/{connection_id}").status_code == 403
    assert failed_step(api)["received"].startswith("outbound.redirect_refused")
    assert elsewhere.requests == []


# The client itself -------------------------------------------------------------


def test_redirects_are_refused_even_when_a_caller_asks_to_follow(servers: Callable[..., LocalServer]) -> None:
    first, second = servers(), servers()
    first.raw("/", 307, {"Location": f"{second.url}/", "Content-Length": "0"})
    second.json("/", {"ok": True})
    with pytest.raises(RedirectRefused):
        guarded_client(LOOPBACK_ONLY).get(f"{first.url}/", follow_redirects=True)
    assert second.requests == []


def test_plain_http_to_a_public_name_is_refused_before_any_lookup_or_connection(fake_dns: FakeDns) -> None:
    fake_dns.answers["idp.example.com"] = ["93.184.215.14"]
    with pytest.raises(SchemeNotAllowed):
        guarded_client(OutboundPolicy()).get("http://idp.example.com/.well-known/openid-configuration")
    assert "idp.example.com" not in fake_dns.calls


def test_plain_http_to_a_name_outside_the_allowed_networks_is_refused_before_connecting(
    fake_dns: FakeDns, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With allowed networks, a name may use http only if it resolves into them; a public answer does not."""
    opened: list[str] = []
    monkeypatch.setattr(GuardedBackend, "_open", lambda self, ip, *a: opened.append(str(ip)))
    fake_dns.answers["idp.example.com"] = ["93.184.215.14"]
    with pytest.raises(SchemeNotAllowed):
        guarded_client(OutboundPolicy.from_allow(["10.20.0.0/16"])).get("http://idp.example.com/")
    assert opened == []


def test_a_name_with_any_forbidden_address_is_refused(fake_dns: FakeDns, monkeypatch: pytest.MonkeyPatch) -> None:
    """One public answer does not launder a private one next to it (the connection could pick either)."""
    opened: list[str] = []
    monkeypatch.setattr(GuardedBackend, "_open", lambda self, ip, *a: opened.append(str(ip)))
    fake_dns.answers["idp.example.com"] = ["93.184.215.14", "169.254.169.254"]
    with pytest.raises(BlockedAddress, match=r"idp\.example\.com resolves to a link-local address"):
        guarded_client(OutboundPolicy()).get("https://idp.example.com/")
    assert opened == []


def test_connects_to_the_address_it_checked_not_a_second_dns_answer(
    servers: Callable[..., LocalServer], fake_dns: FakeDns, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the answer that was checked is the one connected to; a later answer (the victim) is never used."""
    victim = servers("127.0.0.1")
    try:
        allowed = servers("127.0.0.2", victim.port)
    except OSError:
        pytest.skip("127.0.0.2 is not usable here")
    allowed.json("/", {"ok": True})
    answers = iter([["127.0.0.2"], ["127.0.0.1"], ["127.0.0.1"]])

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "idp.rebind.example":
            fake_dns.answers[host] = next(answers)
        return fake_dns.getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    response = guarded_client(OutboundPolicy.from_allow(["127.0.0.2/32"])).get(
        f"http://idp.rebind.example:{victim.port}/"
    )
    assert response.json() == {"ok": True} and allowed.requests == [("GET", "/")]
    assert fake_dns.calls.count("idp.rebind.example") == 1
    assert victim.requests == []


def test_peer_address_is_checked_after_connecting(servers: Callable[..., LocalServer], fake_dns: FakeDns) -> None:
    """Whatever route the socket takes, the address it actually reached must pass too."""
    victim = servers()

    class Misrouted(GuardedBackend):
        def _open(self, ip: Any, port: int, *args: Any) -> Any:
            return super()._open(ipaddress.ip_address("127.0.0.1"), port, *args)

    fake_dns.answers["idp.example.com"] = ["93.184.215.14"]
    with pytest.raises(BlockedAddress, match="resolves to a loopback address"):
        Misrouted(OutboundPolicy()).connect_tcp("idp.example.com", victim.port, timeout=2.0)
    time.sleep(0.1)
    assert victim.requests == []


def test_oversized_bodies_are_refused(servers: Callable[..., LocalServer]) -> None:
    server = servers()
    server.raw("/declared", 200, {"Content-Length": str(2 * 1024 * 1024)}, b"x" * (2 * 1024 * 1024))
    # HTTP/1.0-style: no length, the body runs until the server closes.
    server.raw("/streamed", 200, {"Connection": "close"}, b"x" * (64 * 1024))
    with pytest.raises(TooLarge):
        guarded_client(LOOPBACK_ONLY).get(f"{server.url}/declared")
    small = dataclasses.replace(LOOPBACK_ONLY, max_bytes=16 * 1024)
    with pytest.raises(TooLarge):
        guarded_client(small).get(f"{server.url}/streamed")


def test_compressed_bodies_are_refused(servers: Callable[..., LocalServer]) -> None:
    """A gzip body could expand past the size bound after it was counted, so none is accepted."""
    bomb = gzip.compress(b"0" * (8 * 1024 * 1024))
    server = servers()
    server.raw("/", 200, {"Content-Encoding": "gzip", "Content-Length": str(len(bomb))}, bomb)
    with pytest.raises(EncodingRefused):
        guarded_client(LOOPBACK_ONLY).get(f"{server.url}/")
    assert server.headers[0]["accept-encoding"] == "identity"


def test_a_slow_drip_response_is_cut_at_the_total_deadline(servers: Callable[..., LocalServer]) -> None:
    server = servers()

    def drip(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        try:
            for _ in range(1000):
                handler.wfile.write(b"x")
                handler.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass

    server.routes["/"] = drip
    policy = dataclasses.replace(LOOPBACK_ONLY, read_timeout=5.0, total_timeout=1.0)
    began = time.monotonic()
    with pytest.raises((OutboundTimeout, httpx.TimeoutException)):
        guarded_client(policy).get(f"{server.url}/")
    assert time.monotonic() - began < 3.0


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "100.127.255.254",
        "0.0.0.0",
        "224.0.0.251",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.0.8",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "fec0::1",
        "ff02::1",
        "2001:db8::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:10.0.0.1",
        "::ffff:100.64.0.1",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b::7f00:1",
        "2002:7f00:1::",
        "2002:a00:1::",
        "::127.0.0.1",
    ],
)
def test_private_link_local_cgnat_and_mapped_addresses_are_refused(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
)
def test_public_addresses_are_destinations(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is None


def test_allow_list_entries_are_checked_at_startup() -> None:
    base = {"VESTIBULE_SECRET_KEY": "k" * 40, "VESTIBULE_DATA_DIR": "/tmp/vestibule-outbound-test"}
    config = load_config({**base, "VESTIBULE_OUTBOUND_ALLOW": " idp.corp.internal , 10.20.0.0/16,[::1]"})
    assert config.outbound_allow == ("idp.corp.internal", "10.20.0.0/16", "::1/128")
    for bad in ("http://idp.corp", "10.0.0.1/8", "under_score", "1.2.3.4/40"):
        with pytest.raises(ConfigError, match=r"^VESTIBULE_OUTBOUND_ALLOW: "):
            load_config({**base, "VESTIBULE_OUTBOUND_ALLOW": bad})
