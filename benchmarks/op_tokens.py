"""The OpenID Provider's token endpoint: code exchanges and refreshes per CPU-second, beside the signing floor.

    .venv/bin/python benchmarks/op_tokens.py [--rounds 3] [--count 200] [--no-postgres]

For each database (an SQLite file, and PostgreSQL when reachable at
VESTIBULE_BENCH_POSTGRES_URL or postgres://postgres@127.0.0.1:5432/postgres,
in a fresh database dropped afterwards; each in a child process, since
Django binds one database per process) it migrates, registers a
confidential application, signs a person in with a password once, and then,
in interleaved rounds:

* **floor**: ``provider.keys.sign`` of an ID token's claims with the active
  RS256 key: the one signature every exchange and refresh must make;
* **authorize**: ``GET /oauth/authorize`` with a signed-in session → a code
  (the Authorization and Grant rows), not timed against a floor;
* **exchange**: ``POST /oauth/token`` (authorization_code, client_secret_basic,
  PKCE S256) → access, refresh and ID token;
* **refresh**: ``POST /oauth/token`` (refresh_token) with rotation and
  reuse detection, the person judged again → new tokens and a new ID token.

Requests go through Django's whole stack (middleware, django-oauth-toolkit,
the ORM and the database) in this process; HTTP parsing and the server's
thread pool are left out. Time is the process's CPU time
(``time.process_time``), so the figures are operations per CPU-second of
one core and stay comparable on a busy machine; on PostgreSQL the
database server's own CPU is not in it (the wall-clock rate is printed too).
Keycloak's published sizing, about 120 refreshes per second per vCPU, is
the anchor.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/postgres"
REDIRECT_URI = "https://app.example/callback"
PASSWORD = "benchmark password 1234567"
FORM = "application/x-www-form-urlencoded"


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


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def _timed(fn: Any, count: int) -> tuple[float, float]:
    """(operations per CPU-second, operations per wall-second) of ``count`` calls of ``fn``."""
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(count):
        fn()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return count / cpu, count / wall


def _round(authorize: Any, exchange: Any, refresh: Any, count: int, results: dict[str, Any]) -> dict[str, Any]:
    """One round of authorize → exchange → refresh, each ``count`` times, each on the previous one's output."""
    codes: list[tuple[str, str]] = []
    results["authorize"].append(_timed(lambda: codes.append(authorize()), count))
    pending = iter(codes)
    tokens: list[dict[str, Any]] = []
    results["exchange"].append(_timed(lambda: tokens.append(exchange(*next(pending))), count))
    chain = iter(tokens)
    results["refresh"].append(_timed(lambda: refresh(next(chain)["refresh_token"]), count))
    return results


def _run(database_url: str, rounds: int, count: int) -> dict[str, Any]:
    _setup(database_url)
    from django.test import Client

    from vestibule.accounts.models import Account, Membership, User
    from vestibule.accounts.roles import replace_manual_roles
    from vestibule.provider import keys
    from vestibule.provider.applications import register

    account = Account.objects.create(slug="acme", name="Acme")
    user = User.objects.create_user("alice@example.com", name="Alice", password=PASSWORD)
    Membership.objects.create(user=user, account=account)
    replace_manual_roles(user, account, ["administrator"])
    done = register(name="Bench", redirect_uris=[REDIRECT_URI])
    app, secret = done.application, done.client_secret
    assert secret is not None
    basic = "Basic " + base64.b64encode(f"{app.client_id}:{secret}".encode()).decode()

    browser = Client()
    browser.post("/login", {"email": user.email, "next": "/"})
    signed_in = browser.post("/login", {"email": user.email, "password": PASSWORD, "next": "/"})
    assert signed_in.status_code == 302, signed_in.status_code
    api = Client()
    keys.active_key()

    def authorize() -> tuple[str, str]:
        verifier, challenge = _pkce()
        query = urlencode(
            {
                "response_type": "code",
                "client_id": app.client_id,
                "redirect_uri": REDIRECT_URI,
                "scope": "openid email profile organization",
                "state": secrets.token_hex(4),
                "nonce": secrets.token_hex(4),
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        response = browser.get(f"/oauth/authorize?{query}")
        assert response.status_code == 302, (response.status_code, response.content[:300])
        return parse_qs(urlsplit(response["Location"]).query)["code"][0], verifier

    def token_request(form: dict[str, str]) -> dict[str, Any]:
        # Form-encoded, as every OAuth client sends it (the test client would default to multipart).
        response = api.post("/oauth/token", urlencode(form), content_type=FORM, HTTP_AUTHORIZATION=basic)
        assert response.status_code == 200, (response.status_code, response.content[:300])
        return dict(response.json())

    def exchange(code: str, verifier: str) -> dict[str, Any]:
        return token_request(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier}
        )

    def refresh(token: str) -> dict[str, Any]:
        return token_request({"grant_type": "refresh_token", "refresh_token": token})

    claims = {
        "iss": "https://vestibule.example",
        "sub": str(uuid.uuid4()),
        "aud": app.client_id,
        "iat": int(time.time()),
        "exp": int(time.time()) + 3600,
        "email": user.email,
        "org": {"slug": "acme", "name": "Acme"},
        "roles": ["administrator"],
    }
    results: dict[str, list[tuple[float, float]]] = {"floor": [], "authorize": [], "exchange": [], "refresh": []}
    for _ in range(rounds):
        results["floor"].append(_timed(lambda: keys.sign(claims), count))
        results.update(_round(authorize, exchange, refresh, count, results))
    return {
        name: {
            "cpu_per_s": statistics.median(r[0] for r in rows),
            "wall_per_s": statistics.median(r[1] for r in rows),
        }
        for name, rows in results.items()
    }


def _child(database_url: str, rounds: int, count: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", database_url, "--rounds", str(rounds), "--count", str(count)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"benchmark child failed for {database_url}:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _fresh_postgres() -> tuple[str, str] | None:
    try:
        import psycopg
    except ImportError:
        return None
    admin = os.environ.get("VESTIBULE_BENCH_POSTGRES_URL", DEFAULT_PG)
    name = f"vestibule_bench_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error:
        return None
    return admin, urlunsplit(urlsplit(admin)._replace(path=f"/{name}"))


def _drop(admin: str, url: str) -> None:
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--count", type=int, default=200, help="operations per round and kind")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--child", metavar="DATABASE_URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_run(args.child, args.rounds, args.count)))
        return
    runs: list[tuple[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        runs.append(("SQLite", _child(f"sqlite:///{tmp}/bench.sqlite3", args.rounds, args.count)))
    pg = None if args.no_postgres else _fresh_postgres()
    if pg is not None:
        admin, url = pg
        try:
            runs.append(("PostgreSQL", _child(url, args.rounds, args.count)))
        finally:
            _drop(admin, url)
    print(f"{args.rounds} rounds × {args.count} operations; medians; per CPU-second of this process (one core)")
    print(f"{'database':<11} {'operation':<10} {'ops/CPU-s':>10} {'ops/wall-s':>11} {'÷ floor':>8}")
    for name, figures in runs:
        floor = figures["floor"]["cpu_per_s"]
        for op in ("floor", "authorize", "exchange", "refresh"):
            row = figures[op]
            print(
                f"{name:<11} {op:<10} {row['cpu_per_s']:>10.0f} {row['wall_per_s']:>11.0f} {row['cpu_per_s'] / floor:>8.3f}"
            )


if __name__ == "__main__":
    main()
