"""Hostile input to /scim/v2: a 4xx SCIM error naming the problem, never a 5xx, and nothing stored.

A table of the classic cases (malformed JSON, wrong types, NUL and lone
surrogates, oversized and over-nested bodies, wrong media types), then a
hypothesis fuzz that sends junk and near-valid documents to every endpoint
and method. Each fuzz example runs in a savepoint that is rolled back.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ApiClient
from tests.directory.conftest import ERROR_URN, GROUP_URN, PATCH_URN, ScimClient, scim_error, user_payload
from tests.directory.support import claim, provision
from vestibule.accounts.models import User
from vestibule.directory.documents import MAX_BODY
from vestibule.directory.models import ScimGroup

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(api: ApiClient, make_account: Any, scim: ScimClient) -> dict[str, Any]:
    make_account("acme")
    claim(api, "acme", "example.com")
    return provision(scim, "ada@example.com")


def people() -> list[tuple[str, str]]:
    return sorted(User.objects.values_list("email", "name"))


@pytest.mark.parametrize(
    ("raw", "status", "scim_type"),
    [
        ("{", 400, "invalidSyntax"),
        ("", 400, "invalidSyntax"),
        ("[]", 400, "invalidSyntax"),
        ('"a string"', 400, "invalidSyntax"),
        ('{"userName": NaN}', 400, "invalidSyntax"),
        ('{"userName": Infinity}', 400, "invalidSyntax"),
        ('{"userName": "a\\u0000@example.com"}', 400, "invalidValue"),
        ('{"userName": "\\ud800@example.com"}', 400, "invalidValue"),
        ('{"userName": "b@example.com", "displayName": "x\\u001bx"}', 400, "invalidValue"),
        ('{"userName": "b@example.com", "\\u0000": 1}', 400, "invalidValue"),
        ('{"userName": 5}', 400, "invalidValue"),
        ('{"userName": ["b@example.com"]}', 400, "invalidValue"),
        ('{"userName": "b@example.com", "active": "maybe"}', 400, "invalidValue"),
        ('{"userName": "b@example.com", "active": 0}', 400, "invalidValue"),
        ('{"userName": "b@example.com", "name": "Bob"}', 400, "invalidSyntax"),
        ('{"userName": "b@example.com", "name": {"givenName": 7}}', 400, "invalidValue"),
        ('{"userName": "b@example.com", "externalId": 7}', 400, "invalidValue"),
        ('{"userName": "b@example.com", "externalId": " padded "}', 400, "invalidValue"),
        ('{"userName": "b@example.com", "displayName": "' + "d" * 300 + '"}', 400, "invalidValue"),
        ("[" * 5000 + "]" * 5000, 400, "invalidSyntax"),
        ('{"a":' * 40 + "1" + "}" * 40, 400, "invalidSyntax"),
    ],
    ids=lambda v: repr(v)[:40] if isinstance(v, str) else str(v),
)
def test_malformed_user_bodies_are_4xx(
    ada: dict[str, Any], scim: ScimClient, raw: str, status: int, scim_type: str
) -> None:
    before = people()
    scim_error(scim.request("POST", "/Users", raw=raw), status, scim_type)
    scim_error(scim.request("PUT", f"/Users/{ada['id']}", raw=raw), status, scim_type)
    assert people() == before


def test_invalid_utf8_is_invalid_syntax(ada: dict[str, Any], scim: ScimClient) -> None:
    response = scim.client.post(
        "/scim/v2/Users",
        data=b'{"userName": "\xff\xfe@example.com"}',
        content_type="application/scim+json",
        headers={"Authorization": f"Bearer {scim.token}"},
    )
    scim_error(response, 400, "invalidSyntax")


def test_a_huge_body_is_413(ada: dict[str, Any], scim: ScimClient) -> None:
    raw = json.dumps({**user_payload("big@example.com"), "padding": "p" * (MAX_BODY + 1)})
    scim_error(scim.request("POST", "/Users", raw=raw), 413)
    assert not User.objects.filter(email_key="big@example.com").exists()


def test_another_media_type_is_415(ada: dict[str, Any], scim: ScimClient) -> None:
    response = scim.client.post(
        "/scim/v2/Users",
        data="userName=x@example.com",
        content_type="application/x-www-form-urlencoded",
        headers={"Authorization": f"Bearer {scim.token}"},
    )
    scim_error(response, 415)
    plain_json = scim.client.post(
        "/scim/v2/Users",
        data=json.dumps(user_payload("json@example.com")),
        content_type="application/json",
        headers={"Authorization": f"Bearer {scim.token}"},
    )
    assert plain_json.status_code == 201, plain_json.content


def test_no_csrf_token_is_needed_and_no_cookie_authenticates(ada: dict[str, Any], scim: ScimClient) -> None:
    from django.test import Client

    strict = ScimClient(scim.token, Client(enforce_csrf_checks=True))
    assert strict.post("/Users", user_payload("csrf@example.com")).status_code == 201
    scim_error(ScimClient(None, Client(enforce_csrf_checks=True)).get("/Users"), 401)


@pytest.mark.parametrize(
    "message",
    [
        {"schemas": [PATCH_URN]},
        {"schemas": [PATCH_URN], "Operations": []},
        {"schemas": [PATCH_URN], "Operations": "replace"},
        {"schemas": [PATCH_URN], "Operations": [{"op": "explode", "path": "active", "value": False}]},
        {"schemas": [PATCH_URN], "Operations": [{"op": "replace", "path": "active", "value": "sometimes"}]},
        {"schemas": [PATCH_URN], "Operations": [{"op": "replace", "path": "userName", "value": 12}]},
        {"schemas": [PATCH_URN], "Operations": [{"op": "replace", "path": "meta.created", "value": "x"}]},
        {"schemas": [PATCH_URN], "Operations": [{"op": "remove"}]},
        {"schemas": [PATCH_URN], "Operations": [{"op": "replace", "path": "emails[type eq", "value": "x"}]},
        {"schemas": [PATCH_URN], "Operations": [{"op": "replace", "path": "nosuch", "value": "x"}]},
        {"schemas": [PATCH_URN], "Operations": [{"op": "replace", "value": "not an object"}]},
        {"schemas": [PATCH_URN], "Operations": [{"op": "replace", "path": "userName", "value": "not-an-email"}]},
        {"schemas": [PATCH_URN], "Operations": [{"op": "add", "path": "name", "value": {"givenName": ["x"]}}]},
        {"schemas": [PATCH_URN], "Operations": [{"op": "replace", "path": "active", "value": False}] * 5000},
    ],
)
def test_malformed_patches_are_4xx_and_change_nothing(
    ada: dict[str, Any], scim: ScimClient, message: dict[str, Any]
) -> None:
    before = people()
    response = scim.request("PATCH", f"/Users/{ada['id']}", message)
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:500])
    assert json.loads(response.content)["schemas"] == [ERROR_URN]
    assert people() == before and User.objects.get(email_key="ada@example.com").is_active


JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(["\x00", "\ud800", "False", "TRUE", "ada@example.com", "x@example.com", "' OR 1=1 --", "%_"]),
)
JSON = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
USER_KEYS = ["schemas", "userName", "name", "displayName", "emails", "active", "externalId", "id", "meta", "members"]


@st.composite
def documents(draw: Any) -> Any:
    """Junk, or a near-valid User/Group/PatchOp with hostile values in known attributes."""
    kind = draw(st.sampled_from(["junk", "user", "group", "patch"]))
    if kind == "junk":
        return draw(JSON)
    if kind == "patch":
        operations = draw(
            st.lists(
                st.fixed_dictionaries(
                    {"op": st.sampled_from(["add", "replace", "remove", "Replace", "bogus"])},
                    optional={
                        "path": st.sampled_from(
                            [
                                "active",
                                "userName",
                                "name.givenName",
                                "members",
                                'members[value eq "x"]',
                                "displayName",
                                'emails[type eq "work"].value',
                                "externalId",
                                "[",
                                "id",
                            ]
                        ),
                        "value": JSON,
                    },
                ),
                min_size=1,
                max_size=3,
            )
        )
        return {"schemas": [PATCH_URN], "Operations": operations}
    base: dict[str, Any] = (
        user_payload("fuzz@example.com") if kind == "user" else {"schemas": [GROUP_URN], "displayName": "Fuzz"}
    )
    for key in draw(st.lists(st.sampled_from(USER_KEYS), max_size=3)):
        base[key] = draw(JSON)
    return base


ENDPOINTS = [
    ("POST", "/Users"),
    ("PUT", "/Users/{user}"),
    ("PATCH", "/Users/{user}"),
    ("POST", "/Groups"),
    ("PUT", "/Groups/{group}"),
    ("PATCH", "/Groups/{group}"),
    ("GET", "/Users?filter={text}&startIndex={text}&count={text}&attributes={text}"),
    ("GET", "/Groups?filter={text}"),
    ("GET", "/Users/{text}"),
    ("DELETE", "/Groups/{text}"),
]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(endpoint=st.sampled_from(ENDPOINTS), document=documents(), text=st.text(max_size=30))
def test_fuzz_never_5xx(
    ada: dict[str, Any], scim: ScimClient, endpoint: tuple[str, str], document: Any, text: str
) -> None:
    from urllib.parse import quote

    group = ScimGroup.objects.filter(display_name="Base").first()
    if group is None:
        group = ScimGroup.objects.create(account=User.objects.get(email_key="ada@example.com").memberships.get().account,
                                         display_name="Base")  # fmt: skip
    method, template = endpoint
    path = template.format(user=ada["id"], group=group.pk, text=quote(text, safe=""))
    try:
        raw = json.dumps(document)
    except ValueError:
        raw = "{}"
    with transaction.atomic():
        response = scim.request(method, path, raw=raw if method in ("POST", "PUT", "PATCH") else None)
        assert response.status_code < 500, (method, path, raw[:300], response.content[:500])
        if response.status_code >= 400:
            parsed = json.loads(response.content)
            assert parsed["schemas"] == [ERROR_URN] and parsed["detail"], parsed
        transaction.set_rollback(True)


def test_a_write_that_loses_a_race_is_409_not_500(
    ada: dict[str, Any], scim: ScimClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite has no row locks: a PATCH whose membership a concurrent DELETE removed fails in the database.

    (On PostgreSQL the writes take turns on the locked row; the race over HTTP is not deterministic, so the
    database's refusal is provoked here at the seam.)
    """
    from django.db import DatabaseError

    from vestibule.directory import provisioning

    def vanished(*args: Any, **kwargs: Any) -> Any:
        raise DatabaseError("Save with update_fields did not affect any rows.")

    monkeypatch.setattr(provisioning, "patch_user", vanished)
    response = scim.patch(f"/Users/{ada['id']}", {"op": "replace", "path": "active", "value": False})
    assert "retry" in scim_error(response, 409)["detail"]
    assert User.objects.get(email_key="ada@example.com").is_active


def test_a_database_outage_is_503_with_retry_after_not_a_false_conflict(
    scim: ScimClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import OperationalError

    from vestibule.directory import provisioning

    def down(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(provisioning, "user_members", down)
    response = scim.get("/Users")
    assert response["Retry-After"] == "30"
    assert "retry" in scim_error(response, 503)["detail"]
