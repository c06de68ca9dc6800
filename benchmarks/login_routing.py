"""Email-first routing on /login with 100,000 claimed domains (issue 5).

    .venv/bin/python benchmarks/login_routing.py [--domains 100000] [--lookups 400]

For each database (an SQLite file, and PostgreSQL when reachable at
VESTIBULE_BENCH_POSTGRES_URL or postgres://postgres@127.0.0.1:5432/postgres,
in a fresh database that is dropped afterwards) it migrates, inserts
``--domains`` claimed domains served by one connection each (accounts of 5
domains each; every 100th domain is shared with a second account that serves
it too), runs ANALYZE, and then measures:

* ``route_email`` alone, and the full ``POST /login`` through Django's test
  client (middleware, form, routing, redirect or page rendering);
* for a routed domain (one connection), a shared domain (chooser with two
  connections) and an unknown domain (password step);
* median and p95 latency, and the SQL queries each lookup issues.

On PostgreSQL it also prints the plan of the routing query, which must use
the index on ``connections_connectiondomain.domain``. Each database runs in
a child process because Django binds one database configuration per process.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/postgres"
DOMAINS_PER_ACCOUNT = 5
SHARE_EVERY = 100


def _setup(database_url: str) -> None:
    os.environ["VESTIBULE_DATABASE_URL"] = database_url
    os.environ.setdefault("VESTIBULE_SECRET_KEY", "benchmark-secret-key-" + "x" * 32)
    os.environ["VESTIBULE_DATA_DIR"] = tempfile.mkdtemp(prefix="vestibule-bench-")
    os.environ["VESTIBULE_ALLOWED_HOSTS"] = "testserver"
    os.environ["VESTIBULE_LOG_LEVEL"] = "ERROR"
    os.environ["DJANGO_SETTINGS_MODULE"] = "vestibule.conf.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def _populate(count: int) -> None:
    from django.db import connection, transaction

    from vestibule.accounts.models import Account
    from vestibule.connections.models import Connection, ConnectionDomain, DomainClaim, DomainShare

    batch = 5000
    accounts = count // DOMAINS_PER_ACCOUNT
    with transaction.atomic():
        Account.objects.bulk_create(
            (Account(slug=f"acct-{i}", name=f"Account {i}") for i in range(accounts)), batch_size=batch
        )
        account_ids = list(Account.objects.order_by("pk").values_list("pk", flat=True))
        sandbox = Account.objects.create(slug="shared-sandbox", name="Shared sandbox")
        connections = [
            Connection(id=uuid.uuid4(), account_id=aid, protocol="saml", name="IdP", enabled=True)
            for aid in account_ids
        ]
        Connection.objects.bulk_create(connections, batch_size=batch)
        claims = [
            DomainClaim(domain=f"d{i}.example", account_id=account_ids[i // DOMAINS_PER_ACCOUNT]) for i in range(count)
        ]
        DomainClaim.objects.bulk_create(claims, batch_size=batch)
        claim_ids = dict(DomainClaim.objects.values_list("domain", "pk"))
        ConnectionDomain.objects.bulk_create(
            (
                ConnectionDomain(
                    connection_id=connections[i // DOMAINS_PER_ACCOUNT].id,
                    domain=f"d{i}.example",
                    claim_id=claim_ids[f"d{i}.example"],
                )
                for i in range(count)
            ),
            batch_size=batch,
        )
        shared = [f"d{i}.example" for i in range(0, count, SHARE_EVERY)]
        DomainShare.objects.bulk_create(
            (DomainShare(claim_id=claim_ids[d], account=sandbox) for d in shared), batch_size=batch
        )
        sandbox_connection = Connection.objects.create(
            account=sandbox, protocol="saml", name="Sandbox IdP", enabled=True
        )
        # A connection serves at most 50 domains through the API; the benchmark
        # only needs the rows to exist, so this one serves all shared domains.
        ConnectionDomain.objects.bulk_create(
            (ConnectionDomain(connection=sandbox_connection, domain=d, claim_id=claim_ids[d]) for d in shared),
            batch_size=batch,
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


def _measure(label: str, fn, emails: list[str]) -> dict[str, object]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for email in emails[:20]:
        fn(email)  # warm caches and connections
    times, queries = [], []
    for email in emails:
        with CaptureQueriesContext(connection) as captured:
            start = time.perf_counter()
            fn(email)
            times.append(time.perf_counter() - start)
        queries.append(len(captured.captured_queries))
    return {
        "case": label,
        "median_ms": statistics.median(times) * 1000,
        "p95_ms": _percentile(times, 0.95) * 1000,
        "queries": sorted(set(queries)),
    }


def child(database_url: str, count: int, lookups: int) -> None:
    _setup(database_url)
    from django.db import connection
    from django.test import Client

    from vestibule.login.routing import route_email

    start = time.perf_counter()
    _populate(count)
    populate_s = time.perf_counter() - start

    rng = random.Random(5)
    routed = [f"user{n}@d{rng.randrange(count)}.example" for n in range(lookups)]
    routed = [e for e in routed if int(e.split("@d")[1].split(".")[0]) % SHARE_EVERY]  # exclude shared ones
    shared = [f"user{n}@d{rng.randrange(count // SHARE_EVERY) * SHARE_EVERY}.example" for n in range(lookups)]
    unknown = [f"user{n}@unknown{n}.example" for n in range(lookups)]
    assert route_email(routed[0]).kind == "sso"
    assert route_email(shared[0]).kind == "choose" and len(route_email(shared[0]).connections) == 2
    assert route_email(unknown[0]).kind == "password"

    browser = Client()

    def post_login(email: str) -> None:
        response = browser.post("/login", {"email": email})
        assert response.status_code in (200, 302), response.status_code

    rows = [
        _measure("route_email: one connection", route_email, routed),
        _measure("route_email: shared (chooser)", route_email, shared),
        _measure("route_email: unknown domain", route_email, unknown),
        _measure("POST /login: one connection", post_login, routed),
        _measure("POST /login: shared (chooser)", post_login, shared),
        _measure("POST /login: unknown domain", post_login, unknown),
    ]
    plan = ""
    if connection.vendor == "postgresql":
        from vestibule.connections.models import Connection

        # The same queryset as routing.connections_for_domain.
        qs = (
            Connection.objects.filter(domains__domain="d4242.example", enabled=True)
            .select_related("account")
            .order_by("account__slug", "name")
        )
        plan = qs.explain()
        assert "Seq Scan on connections_connectiondomain" not in plan, plan
    print(json.dumps({"vendor": connection.vendor, "populate_s": populate_s, "rows": rows, "plan": plan}))


def _pg_admin() -> str | None:
    url = os.environ.get("VESTIBULE_BENCH_POSTGRES_URL", DEFAULT_PG)
    try:
        import psycopg

        psycopg.connect(url, connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        print(f"PostgreSQL not reachable at {url} ({exc.__class__.__name__}); SQLite only", file=sys.stderr)
        return None
    return url


def _run_child(database_url: str, args: argparse.Namespace) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", database_url, "--domains", str(args.domains), "--lookups", str(args.lookups)],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"benchmark child failed for {database_url}:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=400)
    parser.add_argument("--child", metavar="DATABASE_URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.domains, args.lookups)
        return

    results = []
    with tempfile.TemporaryDirectory(prefix="vestibule-bench-") as tmp:
        results.append(_run_child(f"sqlite:///{tmp}/routing.sqlite3", args))
    admin = _pg_admin()
    if admin:
        import psycopg

        name = f"vestibule_bench_{secrets.token_hex(4)}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
            try:
                results.append(_run_child(urlunsplit(urlsplit(admin)._replace(path=f"/{name}")), args))
            finally:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    print(f"/login routing with {args.domains:,} claimed domains, {args.lookups} lookups per case\n")
    print(f"{'database':<11} {'case':<31} {'median ms':>9} {'p95 ms':>8} {'queries':>8}")
    for result in results:
        for row in result["rows"]:
            queries = ",".join(map(str, row["queries"]))
            print(
                f"{result['vendor']:<11} {row['case']:<31} {row['median_ms']:>9.2f} {row['p95_ms']:>8.2f} {queries:>8}"
            )
        print(f"{result['vendor']:<11} (insert + index + ANALYZE took {result['populate_s']:.1f} s)")
    for result in results:
        if result["plan"]:
            print(f"\nPostgreSQL plan of the routing query:\n{result['plan']}")


if __name__ == "__main__":
    main()
