"""Browser-facing hardening: CSP with nonces, no caching of sign-in pages, SSO start rate limit."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from vestibule.login import ratelimit

pytestmark = pytest.mark.django_db


def test_pages_carry_a_strict_content_security_policy() -> None:
    response = Client().get("/login")
    csp = response["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "base-uri 'none'" in csp
    assert re.search(r"script-src 'nonce-[A-Za-z0-9_-]{16,}'", csp)
    assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    assert response["Cache-Control"] == "no-store" and response["X-Frame-Options"] == "DENY"


def test_each_response_gets_a_fresh_nonce() -> None:
    first = Client().get("/login")["Content-Security-Policy"]
    second = Client().get("/login")["Content-Security-Policy"]
    assert first != second


def test_rejects_sso_start_floods_from_one_address(settings) -> None:
    """Every SSO start stores a pending login; one client cannot create them without bound."""
    browser = Client()
    for _ in range(ratelimit.SSO_STARTS_PER_IP.attempts):
        ratelimit.hit(ratelimit.SSO_STARTS_PER_IP, "127.0.0.1")
    response = browser.get("/sso/start/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 429 and b"sso.rate_limited" in response.content
