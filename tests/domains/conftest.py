"""A small authoritative DNS server on 127.0.0.1 (dnslib), whose TXT records a test sets.

It answers on UDP and TCP on one free port, and Vestibule is pointed at it
through ``VESTIBULE_DNS_RESOLVER``. UDP answers over 512 bytes are truncated,
as a classic resolver's would be, so a large record set makes the client
retry over TCP.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from dnslib import QTYPE, RCODE, RR, TXT
from dnslib.server import BaseResolver, DNSLogger, DNSServer

UDP_LIMIT = 512


class Zone(BaseResolver):  # type: ignore[misc]
    """TXT records by name; a name not set is NXDOMAIN, a name in ``failing`` is SERVFAIL."""

    def __init__(self) -> None:
        self.records: dict[str, list[str | list[str]]] = {}
        self.failing: set[str] = set()
        self.queries: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def publish(self, name: str, *values: str | list[str]) -> None:
        """Set the TXT records of ``name``; a list value is one record of several strings."""
        with self._lock:
            self.records[name.lower().rstrip(".")] = list(values)

    def clear(self) -> None:
        with self._lock:
            self.records.clear()
            self.failing.clear()
            self.queries.clear()

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        with self._lock:
            self.queries.append((name, handler.protocol))
            values = self.records.get(name)
            failing = name in self.failing
        if failing:
            reply.header.rcode = RCODE.SERVFAIL
        elif values is None:
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype == QTYPE.TXT:
            for value in values:
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(value), ttl=0))
        if handler.protocol == "udp" and len(reply.pack()) > UDP_LIMIT:
            # Truncated the way servers do it (dnslib's own truncation drops the question,
            # which a client rightly rejects): question kept, TC set, no answers.
            reply = request.reply()
            reply.header.tc = 1
        return reply


def _free_port() -> int:
    # A port free for both UDP and TCP on 127.0.0.1.
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free port")


@pytest.fixture(scope="session")
def _dns_server() -> Iterator[tuple[Zone, int]]:
    zone = Zone()
    quiet = DNSLogger(log="-request,-reply,-truncated,-error", prefix=False)
    port = _free_port()
    servers = [
        DNSServer(zone, address="127.0.0.1", port=port, logger=quiet),
        DNSServer(zone, address="127.0.0.1", port=port, tcp=True, logger=quiet),
    ]
    for server in servers:
        server.start_thread()
    yield zone, port
    for server in servers:
        server.stop()
        server.server.server_close()


@pytest.fixture
def dns_zone(_dns_server: tuple[Zone, int], settings: Any) -> Iterator[Zone]:
    """The test DNS server, empty, and Vestibule asking it."""
    zone, port = _dns_server
    zone.clear()
    settings.VESTIBULE_DNS_RESOLVER = ("127.0.0.1", port)
    yield zone
    zone.clear()


@pytest.fixture
def silent_dns(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A DNS server that never answers (a black-holed resolver), with short timeouts."""
    from vestibule.connections import verification

    monkeypatch.setattr(verification, "DNS_TIMEOUT", 0.2)
    monkeypatch.setattr(verification, "DNS_LIFETIME", 0.4)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        settings.VESTIBULE_DNS_RESOLVER = ("127.0.0.1", sink.getsockname()[1])
        yield
