"""End-to-end fixtures: the admin API, and SSO drivers that log a browser in through a real IdP.

A driver speaks one protocol with a third-party peer and goes through
Vestibule's real views: ``/sso/start/<id>`` -> the IdP -> ACS / callback.
Tests written against the ``sso_driver`` fixture run once per protocol, so
every pipeline rule is shown through SAML and through OIDC.

Driver interface::

    driver.protocol                      # "saml" | "oidc"
    driver.connection_settings()         # {"saml": {...}} / {"oidc": {...}} for the create payload
    driver.login(browser, connection, subject=..., claims={...}, next=None)
        -> the HttpResponse of Vestibule's ACS / callback (302 on success, 4xx page on refusal)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client

from vestibule.authority.models import ApiKey


class Api:
    """The admin REST API through Django's test client, with an API key."""

    def __init__(self, key: str) -> None:
        self.client = Client(headers={"Authorization": f"Bearer {key}"})

    def _call(self, method: str, path: str, body: Any = None, expect: int | None = None) -> Any:
        fn = getattr(self.client, method)
        response = (
            fn(f"/api/v1{path}", body, content_type="application/json") if body is not None else fn(f"/api/v1{path}")
        )
        if expect is not None:
            assert response.status_code == expect, (response.status_code, response.content[:2000])
        return response

    def get(self, path: str, expect: int | None = 200) -> Any:
        return self._call("get", path, expect=expect).json()

    def post(self, path: str, body: Any, expect: int | None = 201) -> Any:
        return self._call("post", path, body, expect=expect)

    def patch(self, path: str, body: Any, expect: int | None = 200) -> Any:
        return self._call("patch", path, body, expect=expect)

    def put(self, path: str, body: Any, expect: int | None = 200) -> Any:
        return self._call("put", path, body, expect=expect)

    def delete(self, path: str, expect: int | None = 204) -> Any:
        return self._call("delete", path, expect=expect)


@pytest.fixture
def api(db: None) -> Api:
    _, key = ApiKey.issue(name="e2e operator")
    return Api(key)


@pytest.fixture
def make_account(api: Api) -> Callable[..., dict[str, Any]]:
    def make(slug: str = "acme", *, projects: tuple[str, ...] = ("production", "sandbox")) -> dict[str, Any]:
        account = api.post("/accounts", {"slug": slug, "name": slug.title()}).json()
        for project in projects:
            api.post(f"/accounts/{slug}/projects", {"slug": project, "name": project.title()})
        return account

    return make


@pytest.fixture(params=["saml", "oidc"])
def sso_driver(request: pytest.FixtureRequest) -> Iterator[Any]:
    from tests.e2e import drivers

    yield drivers.make_driver(request.param, request)


@pytest.fixture
def make_connection(api: Api, sso_driver: Any) -> Callable[..., dict[str, Any]]:
    """Create and enable a connection of the driver's protocol; extra fields go in the payload."""

    def make(
        account: str = "acme", domains: tuple[str, ...] = ("acme.com",), *, enabled: bool = True, **fields: Any
    ) -> dict[str, Any]:
        payload = {"protocol": sso_driver.protocol, "name": f"{sso_driver.protocol} IdP", "domains": list(domains)}
        payload.update(sso_driver.connection_settings())
        payload.update(fields)
        connection = api.post(f"/accounts/{account}/connections", payload).json()
        if enabled:
            connection = api.patch(f"/connections/{connection['id']}", {"enabled": True})
            connection = connection.json()
        return connection

    return make
