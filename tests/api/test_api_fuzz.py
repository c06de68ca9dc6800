"""Schema-driven fuzzing of the admin API: no input, however hostile, gets a 5xx.

The operations and their schemas come from the served ``/api/v1/openapi.json``,
so a new endpoint is fuzzed as soon as it exists. For each operation hypothesis
draws path parameters, query parameters and a JSON body: valid-ish values
built from the schema, the same with one field swapped for something hostile
(wrong type, null, huge or odd Unicode, nested junk) or extra keys, and bodies
that are junk outright. Each example runs in a savepoint that is rolled back,
so every example starts from the same seeded account.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import pytest
from django.db import transaction
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vestibule.domain.roles import DEFAULT_CATALOG

pytestmark = pytest.mark.django_db


def _load_openapi() -> dict[str, Any]:
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


DOC = _load_openapi()
OPERATIONS = [
    (method.upper(), path, op)
    for path, ops in DOC["paths"].items()
    for method, op in ops.items()
    if method in {"get", "post", "put", "patch", "delete"}
]

# Hostile material -----------------------------------------------------------------

ODD_STRINGS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\u202eevil",
    "\u200b",
    "\ufeff",
    "e\u0301",
    "\U0001f600" * 30,
    "\ud800",
    "x" * 300,
    "y" * 20_000,
    "../../etc/passwd",
    "'; DROP TABLE accounts_user; --",
    "%00",
    "<script>alert(1)</script>",
    "acme",
    "null",
    "１２３",
    "\u0130",
    "stra\u00dfe@x.com",
    "a@" + ".".join(["\u00fc"] * 100) + ".de",
]
odd_text = st.one_of(
    st.sampled_from(ODD_STRINGS),
    st.text(max_size=40),
    st.text(st.characters(codec="utf-8"), max_size=40),
    st.text(st.characters(categories=["Cc", "Cf", "Zs", "Mn", "Co", "Cs"]), max_size=20),
)
hostile_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 2**31, 2**63, 2**64, -(2**63) - 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    odd_text,
)
hostile = st.recursive(
    hostile_scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)

# Values that lead into the seeded data, so requests get past the 404s.
EMAILS = st.one_of(
    st.sampled_from(["new@acme.example", "seed@acme.example", "SEED@ACME.EXAMPLE", " seed@acme.example "]),
    st.emails().map(str),
)
ROLE_NAMES = st.sampled_from(sorted(DEFAULT_CATALOG.names))
HINTS: dict[str, st.SearchStrategy[Any]] = {
    "email": EMAILS,
    "roles": st.lists(ROLE_NAMES | odd_text, max_size=4),
    "project": st.sampled_from(["production", "sandbox", "nope"]) | st.none(),
}

# Strategies from the JSON schema ----------------------------------------------------


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = DOC["components"]["schemas"][name]
    return schema


def from_schema(schema: dict[str, Any], name: str = "") -> st.SearchStrategy[Any]:
    schema = _resolve(schema)
    if name in HINTS:
        return HINTS[name] | _from_schema(schema)
    return _from_schema(schema)


def _from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([from_schema(s) for s in schema[key]])
    kind = schema.get("type")
    if kind == "string":
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True)
        if schema.get("format") == "date-time":
            return st.datetimes().map(lambda d: d.isoformat())
        low = schema.get("minLength", 0)
        return st.text(min_size=low, max_size=min(schema.get("maxLength", 60), max(low, 60)))
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "number":
        return st.floats(schema.get("minimum"), schema.get("maximum"), allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        items = from_schema(schema.get("items", {}))
        return st.lists(items, min_size=schema.get("minItems", 0), max_size=min(schema.get("maxItems", 4), 4))
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        required = set(schema.get("required", ()))
        return st.fixed_dictionaries(
            {k: from_schema(v, k) for k, v in props.items() if k in required},
            optional={k: from_schema(v, k) for k, v in props.items() if k not in required},
        )
    return hostile


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[Any]) -> Any:
    """A valid-ish body with one hostile twist."""
    body = draw(valid)
    if not isinstance(body, dict):
        return draw(hostile)
    body = dict(body)
    twist = draw(st.sampled_from(["swap", "extra", "drop", "nest"]))
    if twist == "swap" and body:
        body[draw(st.sampled_from(sorted(body)))] = draw(hostile)
    elif twist == "extra":
        body[draw(st.text(max_size=12) | st.sampled_from(["is_operator", "id", "__proto__", "password"]))] = draw(
            hostile
        )
    elif twist == "drop" and body:
        body.pop(draw(st.sampled_from(sorted(body))))
    else:
        key = draw(st.sampled_from(sorted(body))) if body else "x"
        body[key] = draw(st.lists(hostile, max_size=3) | st.dictionaries(st.text(max_size=5), hostile, max_size=3))
    return body


def body_strategy(op: dict[str, Any]) -> st.SearchStrategy[Any]:
    content = op.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return st.one_of(st.just(None), st.just(None), hostile)
    valid = from_schema(content["schema"])
    return st.one_of(valid, valid, mutated(valid), mutated(valid), hostile)


# Paths can only carry what a URL can: no lone surrogates.
path_text = st.one_of(
    st.sampled_from([s for s in ODD_STRINGS if s and not re.search("[\ud800-\udfff]", s)]),
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=30),
)


def path_value(name: str, seed: dict[str, Any]) -> st.SearchStrategy[str]:
    known = {
        "slug": ["acme", "acme", "globex", "ACME"],
        "user_id": [str(seed["user_id"]), str(seed["user_id"]), "0", "99999999999999999999"],
        "project": ["production", "sandbox"],
        "prefix": [seed["prefix"]],
        "trace_id": ["00000000-0000-0000-0000-000000000000"],
        "client_id": [seed["client_id"], seed["client_id"], seed["revoked_client_id"]],
    }.get(name, [])
    values = st.sampled_from(known) if known else path_text
    if name == "user_id":
        return values | st.integers(min_value=-(2**70), max_value=2**70).map(str) | path_text
    return values | path_text


def query_strategy(op: dict[str, Any]) -> st.SearchStrategy[dict[str, str]]:
    params = [p for p in op.get("parameters", []) if p["in"] == "query"]
    if not params:
        return st.just({})
    scalar = st.one_of(
        st.integers(min_value=-(2**70), max_value=2**70).map(str),
        st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30),
        st.sampled_from(["success", "failure", "login.", "2024-01-01T00:00:00Z", "0", "1001", "", "null"]),
    )
    return st.fixed_dictionaries(
        {},
        optional={
            p["name"]: (_from_schema(_resolve(p["schema"])).filter(lambda v: v is not None).map(str) | scalar)
            for p in params
        },
    )


@pytest.fixture
def seed(db: None, operator_key: str) -> dict[str, Any]:
    from vestibule.accounts.models import Account, Membership, Project, User
    from vestibule.accounts.roles import replace_manual_roles
    from vestibule.authority.models import ApiKey
    from vestibule.provider.applications import register, revoke

    acme = Account.objects.create(slug="acme", name="Acme")
    Account.objects.create(slug="globex", name="Globex")
    production = Project.objects.create(account=acme, slug="production", name="Production")
    Project.objects.create(account=acme, slug="sandbox", name="Sandbox")
    user = User.objects.create_user("seed@acme.example", name="Seed", password="a long enough password 1")
    Membership.objects.create(user=user, account=acme)
    replace_manual_roles(user, acme, ["analyst"])
    replace_manual_roles(user, acme, ["pii-viewer"], production)
    key, _ = ApiKey.issue(account=acme, name="fuzz target")
    app = register(name="Fuzzed", redirect_uris=["https://app.example/cb"], webhook_url="https://app.example/hook")
    revoked = register(name="Revoked", redirect_uris=["https://old.example/cb"]).application
    revoke(revoked)
    return {
        "user_id": user.pk,
        "prefix": key.prefix,
        "client_id": app.application.client_id,
        "revoked_client_id": revoked.client_id,
        "auth": {"Authorization": f"Bearer {operator_key}"},
    }


def encode(body: Any) -> str:
    # allow_nan leaves NaN/Infinity in: not JSON, which is the point.
    return json.dumps(body, allow_nan=True)


def test_every_operation_is_fuzzed() -> None:
    assert len(OPERATIONS) >= 20
    assert {m for m, _, _ in OPERATIONS} == {"GET", "POST", "PUT", "PATCH", "DELETE"}


@pytest.mark.parametrize("method, path, op", OPERATIONS, ids=[f"{m} {p}" for m, p, _ in OPERATIONS])
def test_no_input_gets_a_server_error(client: Client, seed: dict[str, Any], method: str, path: str, op: Any) -> None:
    names = re.findall(r"{(\w+)}", path)

    @settings(
        max_examples=45,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        params=st.fixed_dictionaries({n: path_value(n, seed) for n in names}),
        query=query_strategy(op),
        body=body_strategy(op),
        raw=st.none() | st.none() | st.none() | st.binary(max_size=200),
    )
    def run(params: dict[str, str], query: dict[str, str], body: Any, raw: bytes | None) -> None:
        url = path
        for name, value in params.items():
            url = url.replace("{" + name + "}", quote(value, safe=""))
        if query:
            url += "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in query.items())
        kwargs: dict[str, Any] = {"headers": seed["auth"]}
        if raw is not None:
            kwargs.update(data=raw, content_type="application/json")
        elif body is not None:
            kwargs.update(data=encode(body), content_type="application/json")
        with transaction.atomic():
            response = client.generic(method, url, **kwargs)
            transaction.set_rollback(True)
        assert response.status_code < 500, (method, url, body, response.content[:500])
        if response.status_code >= 400:
            assert response["Content-Type"].startswith("application/json"), (url, response.content[:200])
            assert response.json().get("detail"), response.content[:200]

    run()
