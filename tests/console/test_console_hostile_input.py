"""No console page answers 5xx to any input: every URL of the console and of the setup links, every method.

The URL patterns are read from the resolver, so a page added later is covered
without editing this file. Each path argument gets hostile values for its
converter; each page gets GET with hostile query strings and POST with hostile
form bodies, as the operator (who passes every role check, so the view's own
parsing is what is exercised) with a seeded account, connection and person.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from vestibule.accounts.models import Account, Membership, User
from vestibule.connections import rules
from vestibule.connections.models import Connection

pytestmark = pytest.mark.django_db

HOSTILE_TEXT = [
    "",
    "x" * 5000,
    "../../etc/passwd",
    "' OR 1=1 --",
    "<script>alert(1)</script>",
    "\x00",
    "\ud800".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
    "%00%0d%0a",
    "9" * 40,
    "-1",
    "acme",
    '{"a": [1, 2, {"b": null}]}',
]
# Every query parameter a console or setup view reads, each with a value it must survive.
HOSTILE_QUERY = {
    "q": HOSTILE_TEXT[1], "page": "-1", "outcome": "<x>", "slug": "a/b", "since": "yesterday", "until": "\x00",
    "reason": "x" * 300, "connection": "not-a-uuid", "email": "\x00", "code": "%", "actor": "'", "open": "../x",
    "generate": "1", "saved": "\x00", "section": "<script>", "v": "x" * 200,
}  # fmt: skip
FORM_BODIES: list[dict[str, Any]] = [
    {},
    {
        "name": "x" * 10000, "email": "not-an-email", "domains": "\x00", "slug": "../x", "roles": ["nope", "x" * 300],
        "settings": "{" * 5000, "saml": "[]", "metadata": "<x>" * 1000, "metadata_url": "http://127.0.0.1:1/",
    },
    {
        "enabled": "maybe", "auto_provision": ["1", "0"], "confirm": "yes", "id": "-5", "user_id": "9" * 30,
        "ignored_emails": "a@b\n" * 2000, "project": "nope", "scope": "project:../../x", "expires": "9" * 30,
    },
]  # fmt: skip


def _routes(resolvers: list[Any], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in resolvers:
        if isinstance(entry, URLResolver):
            yield from _routes(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry


def console_routes() -> list[str]:
    found = []
    for route, _ in _routes(get_resolver().url_patterns):
        if route.startswith(("console/", "setup/")):
            found.append(route)
    return sorted(set(found))


def _fill(route: str, values: dict[str, str]) -> str:
    path = "/" + route
    for token, value in values.items():
        path = path.replace(token, value)
    return path


def _connection(account: Account) -> Connection:
    existing = Connection.objects.filter(account=account).first()
    if existing is not None:
        return existing
    payload = {"protocol": "saml", "name": "Okta", "domains": ["acme.test"]}
    return rules.create_connection(account, payload, may_claim=True, warnings=[])


@pytest.fixture
def seeded(person, make_account, make_user) -> dict[str, Any]:
    account = make_account("acme")
    member = make_user("mia@acme.test", account="acme", roles=["analyst"])
    operator = person("op@ops.test", account=None, roles=(), operator=True)
    return {"operator": operator, "account": account, "connection": _connection(account), "member": member}


def _restore(seeded: dict[str, Any]) -> None:
    """A POST may have deleted the connection or removed the person: bring them back for the next route."""
    seeded["connection"] = _connection(seeded["account"])
    member = User.objects.filter(email_key="mia@acme.test").first() or User.objects.create_user("mia@acme.test")
    Membership.objects.get_or_create(user=member, account=seeded["account"])
    seeded["member"] = member


def _paths_for(route: str, seeded: dict[str, Any]) -> list[str]:
    """Real ids first (so the view gets past its lookup), then hostile ones."""
    good = {
        "<str:slug>": "acme",
        "<slug:slug>": "acme",
        "<uuid:connection_id>": str(seeded["connection"].pk),
        "<str:connection_id>": str(seeded["connection"].pk),
        "<int:user_id>": str(seeded["member"].pk),
    }
    paths = [_fill(route, good)]
    for text in ("x" * 300, "99999999999999999999999", "²"):
        names = ("<str:slug>", "<str:connection_id>", "<str:token>", "<str:prefix>", "<str:domain>")
        bad = dict.fromkeys(names, text)
        bad |= {"<int:user_id>": "2147483648000", "<uuid:connection_id>": str(uuid.uuid4())}
        paths.append(_fill(route, {**good, **bad}))
    # Any converter this list does not know yet gets a plain value.
    return [p if "<" not in p else _generic(p) for p in paths]


def _generic(path: str) -> str:
    import re

    def value(match: re.Match[str]) -> str:
        kind = match.group(1)
        return {"int": "1", "uuid": str(uuid.uuid4()), "slug": "acme", "path": "x/y"}.get(kind, "x")

    return re.sub(r"<(?:(\w+):)?\w+>", value, path)


def test_no_console_page_answers_5xx(seeded: dict[str, Any]) -> None:
    # One seeded deployment for every route: the setup (keys, sign-in) costs more than the requests.
    browser = seeded["operator"]
    token = browser.csrf("/console/")
    failures = []
    for route in console_routes():
        _restore(seeded)
        for path in _paths_for(route, seeded):
            for query in (
                {},
                HOSTILE_QUERY,
            ):
                response = browser.client.get(path, query)
                if response.status_code >= 500:
                    failures.append((path, "GET", sorted(query), response.status_code))
            for body in FORM_BODIES:
                response = browser.client.post(path, {**body, "csrfmiddlewaretoken": token})
                if response.status_code >= 500:
                    failures.append((path, "POST", sorted(body), response.status_code))
            raw = browser.client.post(path, b"\xff\xfe not a form", content_type="application/x-www-form-urlencoded")
            if raw.status_code >= 500:
                failures.append((path, "raw POST", [], raw.status_code))
    assert failures == []


def test_the_walker_finds_the_console_pages() -> None:
    routes = console_routes()
    assert "console/" in routes and "console/a/<str:slug>/" in routes
