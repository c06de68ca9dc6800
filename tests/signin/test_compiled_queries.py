"""signin.compiled: a queryset compiled once returns exactly what the ORM returns, values stay bound parameters."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from vestibule.accounts.models import Account, Membership, Project, ProjectAccess, RoleGrant, Source, User
from vestibule.connections.models import Connection, ConnectionDomain, DomainClaim
from vestibule.signin import pipeline
from vestibule.signin.compiled import CompiledQuery

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_accounts() -> dict[str, Any]:
    made: dict[str, Any] = {}
    for slug in ("acme", "globex"):
        account = Account.objects.create(slug=slug, name=slug.title())
        project = Project.objects.create(account=account, slug="prod", name="Prod")
        conn = Connection.objects.create(account=account, protocol="saml", name=f"{slug} IdP", enabled=True)
        conn.linked_projects.add(project)
        claim = DomainClaim.objects.create(domain=f"{slug}.example", account=account)
        ConnectionDomain.objects.create(connection=conn, domain=claim.domain, claim=claim)
        user = User.objects.create_user(f"ann@{slug}.example", name="Ann")
        Membership.objects.create(user=user, account=account, source=Source.SSO, is_active=(slug == "acme"))
        RoleGrant.objects.create(user=user, account=account, role="analyst", source=Source.SSO, connection=conn)
        RoleGrant.objects.create(user=user, account=account, project=project, role="viewer", source=Source.MANUAL)
        ProjectAccess.objects.create(user=user, project=project, source=Source.SSO, connection=conn)
        made[slug] = (account, conn, user)
    return made


def _orm(conn: Connection, user: User | None) -> list[list[Any]]:
    query = pipeline._facts_query(
        connection_id=conn.pk, account_id=conn.account_id, user_id=user.pk if user is not None else None
    )
    return sorted([list(row) for row in query], key=repr)


def test_the_compiled_facts_query_returns_what_the_orm_returns_for_every_set_of_values(
    two_accounts: dict[str, Any],
) -> None:
    for slug in ("acme", "globex", "acme"):  # The second acme run uses the cached SQL with other values in between.
        _, conn, user = two_accounts[slug]
        with_user = pipeline._FACTS_WITH_USER.rows(connection_id=conn.pk, account_id=conn.account_id, user_id=user.pk)
        without = pipeline._FACTS_WITHOUT_USER.rows(connection_id=conn.pk)
        assert sorted(with_user, key=repr) == _orm(conn, user)
        assert sorted(without, key=repr) == _orm(conn, None)
        # Converted as the ORM converts: booleans are bool, the grant's connection a UUID, on SQLite too.
        flags = {row[0]: row[6] for row in with_user}
        assert flags["membership"] is (slug == "acme")
        assert {type(row[5]) for row in with_user if row[0] == "grant"} == {uuid.UUID, type(None)}


def test_the_other_account_s_rows_never_answer_for_this_one(two_accounts: dict[str, Any]) -> None:
    """Positive control beside the isolation check: acme's values give acme's rows, globex's give globex's."""
    _, acme_conn, acme_user = two_accounts["acme"]
    _, globex_conn, _ = two_accounts["globex"]
    rows = pipeline._FACTS_WITH_USER.rows(
        connection_id=globex_conn.pk, account_id=globex_conn.account_id, user_id=acme_user.pk
    )
    assert {row[0] for row in rows} == {"domain", "linked"}  # acme's person has nothing at globex
    assert [row[2] for row in rows if row[0] == "domain"] == ["globex.example"]
    mine = pipeline._FACTS_WITH_USER.rows(
        connection_id=acme_conn.pk, account_id=acme_conn.account_id, user_id=acme_user.pk
    )
    assert {row[0] for row in mine} == {"domain", "linked", "membership", "grant", "access"}


def test_values_are_bound_parameters_not_sql_text(two_accounts: dict[str, Any]) -> None:
    query = CompiledQuery(
        lambda domain: ConnectionDomain.objects.filter(domain=domain).values_list("domain"), domain=str
    )
    hostile = "x' OR '1'='1"
    with CaptureQueriesContext(connection) as captured:
        assert query.rows(domain=hostile) == []
        assert query.rows(domain="acme.example") == [["acme.example"]]
    assert len(captured) == 2
    assert "OR '1'='1" not in captured.captured_queries[0]["sql"].replace(repr(hostile), "")


def test_a_value_the_sql_does_not_bind_is_refused_rather_than_cached(db: None) -> None:
    # The value decides the query's shape in Python: the compiled SQL would ignore later values.
    query = CompiledQuery(
        lambda user_id: (
            ConnectionDomain.objects.all().values_list("domain") if user_id else ConnectionDomain.objects.none()
        ),
        user_id=int,
    )
    with pytest.raises(ValueError, match="not bound"):
        query.rows(user_id=1)
