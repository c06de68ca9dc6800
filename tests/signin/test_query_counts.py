"""Query budgets of a complete SP-initiated SAML login through the Django views.

The login runs through the real start and ACS views with Vestibule's own SAML
IdP (vestibule.saml.idp) signing a genuine response, and counts every SQL
statement of each request with ``CaptureQueriesContext``. The budgets are
the issue's: a repeat login (ACS) at most 12 statements, a first login (ACS)
at most 18. The start request has a budget of its own (2: the connection,
one INSERT of the pending login with its request ID). Commits are budgeted
too: the trace, its audit event and the session rows are written in one
transaction (issue 14: each was a commit of its own).

Set ``VESTIBULE_PRINT_SQL=1`` to print the captured statements.
"""

from __future__ import annotations

import os
import types
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.saml_support import KEYS, answer_authn_request
from vestibule.authority.models import ApiKey
from vestibule.saml import IdentityProvider, KeyPair
from vestibule.signin import pending, replay

pytestmark = pytest.mark.django_db

IDP = IdentityProvider(
    "https://idp.example.test/metadata",
    "https://idp.example.test/sso",
    KeyPair((KEYS / "idp.key").read_text(), (KEYS / "idp.crt").read_text()),
)

# Budgets in statements that read or write rows. Transaction control is not
# counted: inside the test's own transaction every transaction.atomic() is a
# SAVEPOINT/RELEASE pair, where a production request has a BEGIN/COMMIT
# that PostgreSQL's backend does not even log.
START_BUDGET = 2
REPEAT_ACS_BUDGET = 12
FIRST_ACS_BUDGET = 18
_CONTROL = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT", "BEGIN", "COMMIT")


def _statements(label: str, captured: CaptureQueriesContext) -> list[str]:
    statements = [q["sql"] for q in captured.captured_queries if not q["sql"].startswith(_CONTROL)]
    if os.environ.get("VESTIBULE_PRINT_SQL"):
        print(f"\n--- {label}: {len(statements)} statements ({len(captured)} with transaction control)")
        for sql in statements:
            print("  ", sql[:300])
    return statements


def _count(statements: list[str], prefix: str) -> int:
    return sum(1 for sql in statements if sql.startswith(prefix))


@pytest.fixture(autouse=True)
def _no_lazy_purges(monkeypatch: pytest.MonkeyPatch) -> None:
    """One start in a hundred also purges expired pending logins, one ACS in a hundred expired replay keys.

    That housekeeping is not what a login costs, and left to chance it made
    these budgets fail a few runs in a hundred.
    """
    monkeypatch.setattr(pending, "purge_expired", lambda: 0)
    monkeypatch.setattr(replay, "random", types.SimpleNamespace(random=lambda: 0.5))


@pytest.fixture
def saml_connection() -> dict[str, Any]:
    _, key = ApiKey.issue()
    api = Client(headers={"Authorization": f"Bearer {key}"})
    assert (
        api.post("/api/v1/accounts", {"slug": "acme", "name": "Acme"}, content_type="application/json").status_code
        == 201
    )
    assert (
        api.post(
            "/api/v1/accounts/acme/projects",
            {"slug": "production", "name": "Production"},
            content_type="application/json",
        ).status_code
        == 201
    )
    r = api.post(
        "/api/v1/accounts/acme/connections",
        {
            "protocol": "saml", "name": "Okta", "domains": ["acme.com"],
            "auto_provision": True, "provisioned_users_can_login": True,
            "saml": {"idp_entity_id": IDP.entity_id, "sso_url": IDP.sso_url, "certificates": [IDP.signing.certificate_pem]},
        },
        content_type="application/json",
    )  # fmt: skip
    assert r.status_code == 201, r.json()
    conn = r.json()
    r = api.patch(
        f"/api/v1/connections/{conn['id']}",
        {"enabled": True, "linked_projects": ["production"]},
        content_type="application/json",
    )
    assert r.status_code == 200, r.json()
    return conn


def _transactions(captured: CaptureQueriesContext) -> list[list[str]]:
    """The statements of each outermost atomic block (a SAVEPOINT inside the test's own transaction)."""
    blocks: list[list[str]] = []
    depth = 0
    for sql in (q["sql"] for q in captured.captured_queries):
        if sql.startswith("SAVEPOINT"):
            depth += 1
            if depth == 1:
                blocks.append([])
        elif sql.startswith(("RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")):
            depth -= 1
        elif depth:
            blocks[-1].append(sql)
    return blocks


# The last ACS's transactions, read at once (the next request empties the connection's query log).
_LAST_ACS: list[list[list[str]]] = []


def _login(conn: dict[str, Any], label: str) -> tuple[list[str], list[str]]:
    """One complete SP-initiated login in a fresh browser; returns the (start, ACS) statements."""
    browser = Client()
    with CaptureQueriesContext(connection) as start:
        r = browser.get(f"/sso/start/{conn['id']}")
    # Read now: the next request's request_started signal empties the connection's query log.
    start_count = _statements(f"{label} start", start)
    assert r.status_code == 302, r.content
    form = answer_authn_request(IDP, r["Location"], conn)
    with CaptureQueriesContext(connection) as acs:
        r = browser.post(urlsplit(conn["acs_url"]).path, form)
    acs_count = _statements(f"{label} ACS", acs)
    _LAST_ACS[:] = [_transactions(acs)]
    assert r.status_code == 302, r.content.decode()
    me = browser.get("/api/v1/session").json()
    assert me["email"] == "alice@acme.com" and me["login_method"] == "sso"
    return start_count, acs_count


def test_first_and_repeat_saml_login_stay_within_their_query_budgets(saml_connection: dict[str, Any]) -> None:
    first_start, first_acs = _login(saml_connection, "first")
    repeat_start, repeat_acs = _login(saml_connection, "repeat")
    # Measured: first ACS 18, repeat ACS 12, start 2 (before the plan/apply pipeline: 32, 24 and 3; the start
    # was 3 until its pending login was inserted with its request ID instead of updated with it).
    assert len(first_acs) <= FIRST_ACS_BUDGET, first_acs
    assert len(repeat_acs) <= REPEAT_ACS_BUDGET, repeat_acs
    assert max(len(first_start), len(repeat_start)) <= START_BUDGET, (first_start, repeat_start)


def test_a_repeat_login_writes_one_user_update_one_audit_event_and_no_grant_or_access(
    saml_connection: dict[str, Any],
) -> None:
    _login(saml_connection, "first")
    _, acs = _login(saml_connection, "repeat")
    assert _count(acs, 'UPDATE "accounts_user"') == 1, acs
    # sso.login_succeeded alone: no second success event, nothing else changed.
    assert _count(acs, 'INSERT INTO "audit_auditevent"') == 1, acs
    for table in ("accounts_rolegrant", "accounts_projectaccess", "accounts_membership"):
        assert not [
            sql
            for sql in acs
            if sql.startswith(("INSERT", "UPDATE", "DELETE")) and f'"{table}"' in sql.split(" WHERE ")[0]
        ], acs
    # The session row is written once.
    assert _count(acs, 'INSERT INTO "django_session"') == 1 and _count(acs, 'UPDATE "django_session"') == 0, acs


def test_a_login_s_records_and_session_are_one_transaction_and_the_start_one_insert(
    saml_connection: dict[str, Any],
) -> None:
    start, _ = _login(saml_connection, "first")
    assert _count(start, 'INSERT INTO "connections_pendinglogin"') == 1 and not _count(start, "UPDATE"), start
    _login(saml_connection, "repeat")
    blocks = _LAST_ACS[0]
    # Two transactions: the pipeline's (locks, facts, the plan's writes), then the attempt's records.
    assert len(blocks) == 2, blocks
    tail = [sql.split(" (")[0] for sql in blocks[1]]
    assert tail == [
        'INSERT INTO "audit_logintrace"',
        'INSERT INTO "audit_auditevent"',
        'INSERT INTO "django_session"',
        'INSERT INTO "login_signinsession"',
    ], blocks[1]
