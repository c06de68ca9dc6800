"""One guarded outbound HTTP client for everything Vestibule fetches.

Connection settings are written by account admins, so every server-side fetch
(OIDC discovery, token, JWKS, UserInfo; metadata URLs) is a request whose
destination someone else chose. Without a guard that is server-side request
forgery: an issuer of ``http://127.0.0.1:6379/`` or a discovered
``token_endpoint`` in a private range would make Vestibule talk to services
only it can reach. :func:`guarded_client` builds the ``httpx.Client`` that
refuses this:

* https only; plain http only to a host the operator allow-listed (by name, or
  when every address it resolves to is in an allow-listed network);
* every address a name resolves to must be public (not loopback, private,
  link-local, CGNAT, multicast, reserved, unspecified, site-local, nor an IPv6
  form embedding such an IPv4 address), and the connection goes to the very
  address that was checked, so a second DNS answer (rebinding) cannot swap it;
  the connected peer is checked once more;
* no redirects (a 3xx is an error, even if a caller asks to follow it);
* bounded body (``Content-Length`` up front, then counted while reading; no
  compressed bodies, which could expand past the bound) and bounded time
  (connect, each read, and the whole exchange).

Failures are :class:`OutboundError` subclasses of ``httpx.TransportError``, so
code that catches ``httpx.HTTPError`` keeps working; each carries a stable
``reason`` (``outbound.blocked_address`` …) and a short ``detail`` written
here, never text from the remote side.

Plain Python, no Django: the operator's allow list arrives as strings
(``VESTIBULE_OUTBOUND_ALLOW``, parsed by ``vestibule.conf.env`` with
:func:`parse_allow_entry`).
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import httpcore
import httpx

from vestibule.protocol_errors import clip

__all__ = [
    "DEFAULT_MAX_BYTES",
    "NETWORK_REASONS",
    "BlockedAddress",
    "EncodingRefused",
    "GuardedBackend",
    "GuardedTransport",
    "OutboundError",
    "OutboundPolicy",
    "OutboundTimeout",
    "RedirectRefused",
    "SchemeNotAllowed",
    "TooLarge",
    "Unreachable",
    "address_problem",
    "guarded_client",
    "parse_allow_entry",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_MAX_BYTES = 1024 * 1024
_MAX_DETAIL = 120
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
# IETF protocol assignments (RFC 6890): not a web server's home; Python's tables for it vary by patch release.
_IETF_PROTOCOL = ipaddress.IPv4Network("192.0.0.0/24")
# RFC 6052 well-known and RFC 8215 local-use NAT64 prefixes: the last 32 bits are an IPv4 address.
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")
_LIMITS = httpx.Limits(max_connections=50, max_keepalive_connections=10)


# Errors ----------------------------------------------------------------------


class OutboundError(httpx.TransportError):
    """A fetch the guard refused or could not complete; ``reason`` is stable, ``detail`` ours."""

    reason: ClassVar[str] = "outbound.refused"

    def __init__(self, detail: str) -> None:
        self.detail = clip(detail, _MAX_DETAIL)
        super().__init__(self.summary)

    @property
    def summary(self) -> str:
        """``reason: detail``, safe to show an account admin."""
        return f"{self.reason}: {self.detail}"


class BlockedAddress(OutboundError):
    reason = "outbound.blocked_address"


class SchemeNotAllowed(OutboundError):
    reason = "outbound.scheme_not_allowed"


class RedirectRefused(OutboundError):
    reason = "outbound.redirect_refused"


class TooLarge(OutboundError):
    reason = "outbound.too_large"


class EncodingRefused(OutboundError):
    reason = "outbound.encoding_refused"


class Unreachable(OutboundError, httpx.ConnectError):
    reason = "outbound.unreachable"


class OutboundTimeout(OutboundError, httpx.TimeoutException):
    reason = "outbound.timeout"


#: Reasons that say the remote side could not be reached, rather than that the guard refused it.
NETWORK_REASONS = frozenset({Unreachable.reason, OutboundTimeout.reason})


# Addresses -------------------------------------------------------------------


def _embedded_ipv4(ip: IPAddress) -> tuple[ipaddress.IPv4Address, ...]:
    """IPv4 addresses an IPv6 address stands for or tunnels to (mapped, NAT64, 6to4, Teredo)."""
    if isinstance(ip, ipaddress.IPv4Address):
        return ()
    if ip.ipv4_mapped is not None:
        return (ip.ipv4_mapped,)
    if any(ip in net for net in _NAT64):
        return (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF),)
    if ip.sixtofour is not None:
        return (ip.sixtofour,)
    if ip.teredo is not None:
        return ip.teredo
    return ()


def _translated(ip: IPAddress) -> bool:
    # A mapped or NAT64 address *is* its IPv4 address on the wire, so a public
    # one is as good as that IPv4 address (IPv6-only hosts behind DNS64 need it).
    return isinstance(ip, ipaddress.IPv6Address) and (ip.ipv4_mapped is not None or any(ip in n for n in _NAT64))


def address_problem(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a destination for a server-side fetch ("a loopback address"); ``None`` if public."""
    for inner in _embedded_ipv4(ip):
        problem = address_problem(inner)
        if problem is not None:
            return problem
    if _translated(ip):
        return None
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "a carrier-grade NAT (CGNAT) address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "a site-local address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved or (isinstance(ip, ipaddress.IPv4Address) and ip in _IETF_PROTOCOL):
        return "a reserved address"
    if not ip.is_global:
        return "not a public address"
    return None


def _literal_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _normal_host(host: str) -> str:
    # "[::1]" as written in URLs; a trailing dot names the same DNS host.
    text = host.strip().lower()
    if text.startswith("[") and "]" in text:
        text = text[1:].replace("]", "", 1)
    return text.rstrip(".")


# Policy ----------------------------------------------------------------------


def parse_allow_entry(entry: str) -> str | IPNetwork:
    """One ``VESTIBULE_OUTBOUND_ALLOW`` item: an IP address, a CIDR network or an ASCII host name.

    Raises ``ValueError`` with a short message naming the entry.
    """
    text = _normal_host(entry)
    shown = repr(entry.strip())
    if "://" in text:
        raise ValueError(f"{shown} is a URL; give its host name")
    if "/" in text or _literal_ip(text) is not None:
        try:
            return ipaddress.ip_network(text, strict=True)
        except ValueError:
            pass
        try:
            ipaddress.ip_network(text, strict=False)
            hint = " (the address has bits set past the prefix length)"
        except ValueError:
            hint = ""
        raise ValueError(f"{shown} is not an IP address or CIDR network{hint}")
    if not _HOSTNAME.match(text):
        raise ValueError(f"{shown} is not a host name, IP address or CIDR network (write IDN names as xn--)")
    return text


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """Where the guarded client may go, and how much it may read and wait.

    ``hosts`` are host names the operator trusts, with whatever they resolve
    to; ``networks`` are address ranges that are fine even if not public. Both
    also allow plain http. Times are seconds.
    """

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()
    max_bytes: int = DEFAULT_MAX_BYTES
    connect_timeout: float = 3.0
    read_timeout: float = 5.0
    total_timeout: float = 8.0

    @classmethod
    def from_allow(cls, entries: Iterable[str]) -> OutboundPolicy:
        """Build from allow-list strings (see :func:`parse_allow_entry`); raises ``ValueError``."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in entries:
            parsed = parse_allow_entry(entry)
            if isinstance(parsed, str):
                hosts.add(parsed)
            else:
                networks.append(parsed)
        return cls(hosts=frozenset(hosts), networks=tuple(networks))

    def allows_name(self, host: str) -> bool:
        return _normal_host(host) in self.hosts

    def allows_address(self, ip: IPAddress) -> bool:
        candidates = (ip, *([ip.ipv4_mapped] if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else []))
        return any(c.version == net.version and c in net for c in candidates for net in self.networks)

    def allows_host(self, host: str) -> bool:
        """The host is allow-listed by name, or is a literal address in an allowed network."""
        ip = _literal_ip(_normal_host(host))
        return self.allows_name(host) or (ip is not None and self.allows_address(ip))


# Transport -------------------------------------------------------------------


class _Scope(threading.local):
    """The current request's limits, per thread; the backend reads them when it connects or reads."""

    deadline: float | None = None
    plain_http: bool = False


def _bounded(timeout: float | None, deadline: float | None) -> float | None:
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise OutboundTimeout("the exchange took longer than allowed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """Caps every socket wait at what is left of the request's total time (slow-drip servers)."""

    def __init__(self, inner: httpcore.NetworkStream, scope: _Scope) -> None:
        self._inner = inner
        self._scope = scope

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout, self._scope.deadline))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout, self._scope.deadline))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        # server_hostname is the URL's host (httpcore passes the origin), so
        # SNI and certificate checks are against the name, not the checked IP.
        inner = self._inner.start_tls(ssl_context, server_hostname, _bounded(timeout, self._scope.deadline))
        return _DeadlineStream(inner, self._scope)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class GuardedBackend(httpcore.SyncBackend):
    """Resolves the host itself, vets every address, and connects only to a vetted one."""

    def __init__(self, policy: OutboundPolicy, scope: _Scope | None = None) -> None:
        self._policy = policy
        self._scope = scope if scope is not None else _Scope()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self._resolve(host, port)
        for ip in addresses:
            self._vet(host, ip)
        stream = self._connect_first(addresses, port, timeout, local_address, socket_options)
        try:
            self._vet_peer(host, stream)
        except BaseException:
            stream.close()
            raise
        return _DeadlineStream(stream, self._scope)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise SchemeNotAllowed("unix sockets are not fetched")

    def _resolve(self, host: str, port: int) -> list[IPAddress]:
        try:
            infos = socket.getaddrinfo(_normal_host(host), port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise Unreachable(f"{host} could not be resolved") from None
        addresses: list[IPAddress] = []
        for info in infos:
            ip = _literal_ip(str(info[4][0]))
            if ip is not None and ip not in addresses:
                addresses.append(ip)
        if not addresses:
            raise Unreachable(f"{host} has no address")
        return addresses

    def _vet(self, host: str, ip: IPAddress) -> None:
        """Refuse ``ip`` unless allow-listed or public (and, for plain http, allow-listed)."""
        if self._policy.allows_name(host) or self._policy.allows_address(ip):
            return
        if self._scope.plain_http:
            raise SchemeNotAllowed(f"plain http to {host} is allowed only for allow-listed hosts; use https")
        problem = address_problem(ip)
        if problem is None:
            return
        # Name the address only when it is the URL's own host: the address a
        # name resolves to is not ours to reveal (it would map internal DNS).
        subject = f"{ip} is" if _literal_ip(_normal_host(host)) is not None else f"{host} resolves to"
        raise BlockedAddress(f"{subject} {problem}")

    def _connect_first(
        self,
        addresses: list[IPAddress],
        port: int,
        timeout: float | None,
        local_address: str | None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None,
    ) -> httpcore.NetworkStream:
        options = list(socket_options or ())
        for index, ip in enumerate(addresses):
            try:
                return self._open(ip, port, _bounded(timeout, self._scope.deadline), local_address, options)
            except httpcore.ConnectTimeout:
                raise OutboundTimeout("connecting took longer than allowed") from None
            except httpcore.ConnectError:
                if index == len(addresses) - 1:
                    raise Unreachable("the connection was refused or failed") from None
        raise Unreachable("no address to connect to")  # pragma: no cover - _resolve never returns []

    def _open(
        self,
        ip: IPAddress,
        port: int,
        timeout: float | None,
        local_address: str | None,
        socket_options: list[httpcore.SOCKET_OPTION],
    ) -> httpcore.NetworkStream:
        # A literal address: the stock backend does no DNS lookup of its own.
        return super().connect_tcp(str(ip), port, timeout, local_address, socket_options)

    def _vet_peer(self, host: str, stream: httpcore.NetworkStream) -> None:
        peer = stream.get_extra_info("server_addr")
        ip = _literal_ip(str(peer[0])) if isinstance(peer, tuple) and peer else None
        if ip is None:
            raise BlockedAddress("the connected address could not be checked")
        self._vet(host, ip)


class _CappedStream(httpx.SyncByteStream):
    """Counts the body while it is read and keeps the total deadline over it."""

    def __init__(self, inner: httpx.SyncByteStream, scope: _Scope, deadline: float, max_bytes: int) -> None:
        self._inner = inner
        self._scope = scope
        self._deadline = deadline
        self._max = max_bytes

    def __iter__(self) -> Iterator[bytes]:
        seen = 0
        chunks = iter(self._inner)
        while True:
            # The body may be read after other requests on this thread moved the scope on.
            self._scope.deadline = self._deadline
            _bounded(None, self._deadline)
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            seen += len(chunk)
            if seen > self._max:
                raise TooLarge(f"the response is larger than {self._max} bytes")
            yield chunk

    def close(self) -> None:
        self._inner.close()


class GuardedTransport(httpx.HTTPTransport):
    """``httpx.HTTPTransport`` whose connection pool connects only through :class:`GuardedBackend`."""

    def __init__(self, policy: OutboundPolicy, *, limits: httpx.Limits = _LIMITS) -> None:
        ssl_context = httpx.create_ssl_context()
        super().__init__(verify=ssl_context, limits=limits)
        self._policy = policy
        self._scope = _Scope()
        # Replaces the pool the parent built, which would resolve and connect unguarded.
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(policy, self._scope),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        plain_http = self._vet_url(request.url)
        deadline = time.monotonic() + self._policy.total_timeout
        self._scope.deadline, self._scope.plain_http = deadline, plain_http
        try:
            response = super().handle_request(request)
        finally:
            self._scope.plain_http = False
        try:
            self._vet_response(response)
        except BaseException:
            response.close()
            raise
        assert isinstance(response.stream, httpx.SyncByteStream)
        response.stream = _CappedStream(response.stream, self._scope, deadline, self._policy.max_bytes)
        return response

    def _vet_url(self, url: httpx.URL) -> bool:
        """Refuse what may not be fetched; True when plain http needs allow-listed addresses."""
        host = url.raw_host.decode("ascii", "replace")
        if url.scheme == "https":
            return False
        if url.scheme != "http":
            raise SchemeNotAllowed(f"{url.scheme or 'scheme-less'} URLs are not fetched; use https")
        if self._policy.allows_host(host):
            return False
        if _literal_ip(_normal_host(host)) is not None or not self._policy.networks:
            # No allowed network could vouch for what the name resolves to: refuse before any lookup.
            raise SchemeNotAllowed(f"plain http to {host} is allowed only for allow-listed hosts; use https")
        return True

    def _vet_response(self, response: httpx.Response) -> None:
        if response.status_code in _REDIRECTS:
            raise RedirectRefused(f"the server answered HTTP {response.status_code}; redirects are not followed")
        length = response.headers.get("content-length", "")
        if length.isascii() and length.isdigit() and int(length) > self._policy.max_bytes:
            raise TooLarge(f"the response is larger than {self._policy.max_bytes} bytes")
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise EncodingRefused("the server sent a compressed body although none was accepted")


def guarded_client(
    policy: OutboundPolicy,
    *,
    user_agent: str = "Vestibule",
    wrap: Callable[[httpx.BaseTransport], httpx.BaseTransport] | None = None,
) -> httpx.Client:
    """The ``httpx.Client`` for every server-side fetch, enforcing ``policy``.

    ``wrap`` may put a transport around the guarded one (the Django side counts failed fetches).
    """
    transport: httpx.BaseTransport = GuardedTransport(policy)
    return httpx.Client(
        transport=wrap(transport) if wrap is not None else transport,
        timeout=httpx.Timeout(policy.read_timeout, connect=policy.connect_timeout),
        follow_redirects=False,
        # Environment proxies would carry the request past the guard; netrc would add credentials.
        trust_env=False,
        # Compressed bodies could expand past max_bytes after the count.
        headers={"User-Agent": user_agent, "Accept-Encoding": "identity"},
    )
