"""``/healthz`` and ``/readyz``: what a load balancer probes, answered before the Host check."""

from __future__ import annotations

import socket
import time

import pytest
from django.conf import settings
from django.test import Client, override_settings

from vestibule.conf import health

UNREACHABLE_REDIS = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
}


def test_healthz_answers_without_the_database(client: Client) -> None:
    # No ``db`` fixture: a database access here would fail the test.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_readyz_is_green_on_a_migrated_database(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "_migrated", False)  # the real migration check runs
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "migrations": "ok", "cache": "ok"}}
    assert response["Cache-Control"] == "no-store"
    assert health._migrated is True


@pytest.mark.django_db
def test_the_migration_check_runs_once_per_process(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "_migrated", False)
    calls = []
    monkeypatch.setattr(health, "_pending_migrations", lambda: calls.append(1) or 0)
    assert client.get("/readyz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert calls == [1]


@pytest.mark.django_db
def test_readyz_is_red_while_migrations_are_missing(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "_migrated", False)
    monkeypatch.setattr(health, "_pending_migrations", lambda: 3)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert body["checks"]["migrations"].startswith("pending: 3")
    assert body["checks"]["database"] == "ok"
    assert health._migrated is False  # a failure is not remembered: the next probe checks again


@pytest.mark.django_db
def test_readyz_is_red_when_the_cache_is_unreachable(client: Client) -> None:
    with override_settings(CACHES=UNREACHABLE_REDIS):
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert body["checks"]["cache"].startswith("error: ")
    assert "127.0.0.1" not in body["checks"]["cache"]  # the class only, never the message
    assert body["checks"]["database"] == "ok"
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_readyz_is_red_in_seconds_when_redis_accepts_but_never_answers(client: Client) -> None:
    """A black-holed Redis: the TCP handshake succeeds, no reply ever comes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    silent = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": settings.REDIS_CACHE_OPTIONS,
        }
    }
    try:
        started = time.monotonic()
        with override_settings(CACHES=silent):
            response = client.get("/readyz")
        elapsed = time.monotonic() - started
    finally:
        listener.close()
    assert response.status_code == 503
    assert response.json()["checks"]["cache"].startswith("error: ")
    # 2 s with our timeouts; redis-py 8's own defaults take about 8 s, older releases forever.
    assert elapsed < 5, f"the probe hung {elapsed:.1f} s on a silent Redis"


@pytest.mark.django_db
def test_readyz_is_red_when_the_database_fails(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused() -> str:
        try:
            raise ConnectionRefusedError("password=hunter2 host=db.internal")
        except ConnectionRefusedError as exc:
            return health._failed(exc)

    monkeypatch.setattr(health, "_database", refused)
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == "error: ConnectionRefusedError"
    assert checks["migrations"].startswith("skipped")
    assert b"hunter2" not in response.content


@pytest.mark.django_db
def test_probes_answer_any_host_header_but_other_pages_do_not(client: Client) -> None:
    assert client.get("/healthz", HTTP_HOST="10.0.0.7:8000").status_code == 200
    assert client.get("/readyz", HTTP_HOST="10.0.0.7:8000").status_code == 200
    assert client.get("/login", HTTP_HOST="10.0.0.7:8000").status_code == 400
    assert client.get("/metrics", HTTP_HOST="10.0.0.7:8000").status_code == 400
