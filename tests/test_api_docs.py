"""``/api/v1/docs`` works without the internet and within Vestibule's own CSP.

v0.1 rendered django-ninja's CDN page: the CSP (``default-src 'none'``,
scripts by nonce only) blocked Swagger UI from the CDN, and the page stayed
blank; an air-gapped deployment could not have loaded it anyway. Swagger UI
now comes from the installed django-ninja package, served by Vestibule.
(Checked by hand in headless Chromium: the operations render, and the
console shows no CSP violation.)
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css"}


@pytest.fixture
def docs(client: Client) -> Any:
    response = client.get("/api/v1/docs")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    return response


def referenced_urls(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]*)"', page)


def csp_directives(response: Any) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {d.split()[0]: d.split()[1:] for d in (part.strip() for part in policy.split(";")) if d}


def test_the_page_references_only_same_origin_assets(docs: Any) -> None:
    page = docs.content.decode()
    urls = referenced_urls(page)
    assert len(urls) >= 3, page
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
    assert "cdn" not in page.lower() and "https://" not in page and "http://" not in page


def test_every_referenced_asset_is_served_with_its_content_type(client: Client, docs: Any) -> None:
    urls = referenced_urls(docs.content.decode())
    kinds = set()
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        extension = re.search(r"(\.[a-z]+)(?:\?|$)", url).group(1)  # type: ignore[union-attr]
        assert response["Content-Type"].split(";")[0] == CONTENT_TYPES[extension], url
        assert len(response.content) > 1000 or b"SwaggerUIBundle" in response.content, url
        kinds.add(extension)
    assert kinds == {".js", ".css"}
    bundle = next(u for u in urls if "swagger-ui-bundle.js" in u)
    assert b"SwaggerUIBundle" in client.get(bundle).content


def test_every_script_carries_the_requests_nonce_and_the_policy_allows_nothing_else(docs: Any) -> None:
    page = docs.content.decode()
    directives = csp_directives(docs)
    [nonce_source] = directives["script-src"]
    nonce = re.fullmatch(r"'nonce-([A-Za-z0-9_-]+)'", nonce_source).group(1)  # type: ignore[union-attr]
    scripts = re.findall(r"<script\b([^>]*)>", page)
    executable = [attrs for attrs in scripts if 'type="application/json"' not in attrs]
    assert len(executable) >= 2
    for attrs in executable:
        assert f'nonce="{nonce}"' in attrs, attrs
    # The stylesheet is same-origin; no other origin appears anywhere in the policy.
    assert directives["style-src"] == ["'self'", "'unsafe-inline'"]
    assert directives["default-src"] == ["'none'"] and directives["connect-src"] == ["'self'"]
    assert "http" not in docs["Content-Security-Policy"]


def test_each_request_gets_a_new_nonce(client: Client) -> None:
    first, second = (csp_directives(client.get("/api/v1/docs"))["script-src"] for _ in range(2))
    assert first != second


def test_the_settings_point_at_the_openapi_document_and_turn_off_the_external_validator(
    client: Client, docs: Any
) -> None:
    block = re.search(
        r'<script id="swagger-settings" type="application/json">(.*?)</script>', docs.content.decode(), re.S
    )
    assert block
    settings = json.loads(block.group(1))
    assert settings["url"] == "/api/v1/openapi.json" and settings["validatorUrl"] is None
    spec = client.get(settings["url"])
    assert spec.status_code == 200 and spec.json()["info"]["title"] == "Vestibule admin API"
    assert "/api/v1/docs/assets/{name}" not in spec.json()["paths"]


@pytest.mark.parametrize(
    "name", ["redoc.standalone.js", "favicon.png", "..%2F..%2Fmain.py", "swagger-ui-bundle.js.map"]
)
def test_only_the_listed_assets_are_served(client: Client, name: str) -> None:
    assert client.get(f"/api/v1/docs/assets/{name}").status_code == 404
