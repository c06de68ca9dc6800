"""Finding 3: the per-email lockout was check-then-act; 40 concurrent wrong guesses got 12 passwords checked.

The lockout slot is now reserved atomically before the password is checked.
The ``password_checks`` fixture counts calls to the real argon2 hasher's
``verify``: the number of passwords actually checked.
"""

from __future__ import annotations

import functools
import threading
import time
from typing import Any

import pytest
from django.db import connections
from django.test import Client, RequestFactory

from tests.login.support import EMAIL, PASSWORD, count_password_checks, password_login, signed_in
from vestibule.conf.testing import FastArgon2PasswordHasher
from vestibule.login import passwords, ratelimit

LIMIT = ratelimit.PASSWORD_FAILURES_PER_EMAIL.attempts

pytestmark = pytest.mark.django_db


@pytest.fixture
def make_user(make_user: Any) -> Any:
    return functools.partial(make_user, password=PASSWORD)


@pytest.fixture
def password_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    return count_password_checks(monkeypatch)


def _guess_concurrently(count: int, email: str, *, via_view: bool) -> list[Any]:
    """``count`` wrong guesses released at once, each in its own thread (and database connection)."""
    barrier = threading.Barrier(count)
    results: list[Any] = []
    lock = threading.Lock()

    def guess(i: int) -> None:
        try:
            barrier.wait(10)
            if via_view:
                outcome: Any = Client().post("/login", {"email": email, "password": f"wrong guess {i}"}).status_code
            else:
                request = RequestFactory().post("/login", REMOTE_ADDR="192.0.2.10")
                outcome = passwords.check_password_login(request, email, f"wrong guess {i}").error
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            outcome = exc
        finally:
            connections.close_all()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """The audit events of the password check, kept in memory.

    The in-memory SQLite test database refuses concurrent writers outright
    ("database table is locked"); with the events out of the database, the
    racing threads only read, and the test runs on SQLite and PostgreSQL alike.
    """
    events: list[tuple[str, dict[str, Any]]] = []
    lock = threading.Lock()

    def remember(code: str, **fields: Any) -> None:
        with lock:
            events.append((code, fields))

    monkeypatch.setattr(passwords, "record", remember)
    return events


@pytest.fixture
def slow_hasher(password_checks: list[str], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Hold each check a moment, so every concurrent guess is in flight before any failure is counted."""
    counting = FastArgon2PasswordHasher.verify

    def slow_verify(self: FastArgon2PasswordHasher, password: str, encoded: str) -> bool:
        time.sleep(0.05)
        return counting(self, password, encoded)

    monkeypatch.setattr(FastArgon2PasswordHasher, "verify", slow_verify)
    return password_checks


@pytest.mark.django_db(transaction=True)
def test_concurrent_wrong_passwords_get_at_most_the_limit_checked(
    make_user: Any, slow_hasher: list[str], recorded: list[tuple[str, dict[str, Any]]]
) -> None:
    """40 wrong guesses at once against the function: only the reserved slots reach the hasher."""
    make_user(EMAIL)
    results = _guess_concurrently(40, EMAIL, via_view=False)

    assert not [r for r in results if isinstance(r, BaseException)], results
    assert 1 <= len(slow_hasher) <= LIMIT, len(slow_hasher)
    assert PASSWORD not in slow_hasher
    assert set(results) <= {"invalid", "locked"} and results.count("invalid") <= LIMIT - 1, results
    failed = [fields["failures"] for code, fields in recorded if code == "login.password.failed"]
    assert len(failed) == len(slow_hasher) and sorted(failed) == list(range(1, len(failed) + 1))
    assert len([code for code, _ in recorded if code == "login.password.locked"]) == 40 - len(failed)
    # The victim is locked, even with the right password, which is not checked either.
    checked = len(slow_hasher)
    assert passwords.check_password_login(RequestFactory().post("/login"), EMAIL, PASSWORD).error == "locked"
    assert len(slow_hasher) == checked


@pytest.mark.django_db(transaction=True)
def test_concurrent_wrong_passwords_through_the_view_get_at_most_the_limit_checked(
    make_user: Any, slow_hasher: list[str], recorded: list[tuple[str, dict[str, Any]]]
) -> None:
    """The same burst through the real sign-in view and its middleware."""
    make_user(EMAIL)
    results = _guess_concurrently(25, EMAIL, via_view=True)

    assert not [r for r in results if isinstance(r, BaseException)], results
    assert 1 <= len(slow_hasher) <= LIMIT, len(slow_hasher)
    assert set(results) <= {401, 429} and results.count(401) <= LIMIT - 1, results
    assert len([code for code, _ in recorded if code == "login.password.failed"]) == len(slow_hasher)
    browser = Client()
    assert password_login(browser, EMAIL, PASSWORD).status_code == 429
    assert not signed_in(browser)


def test_sequential_lockout_checks_exactly_the_limit_and_success_resets(
    make_user: Any, password_checks: list[str]
) -> None:
    """Positive control: one guess at a time, the right password before the limit still signs in and forgives."""
    make_user(EMAIL)
    for i in range(LIMIT - 1):
        assert password_login(Client(), EMAIL, f"wrong {i}").status_code == 401
    browser = Client()
    assert password_login(browser, EMAIL, PASSWORD).status_code == 302 and signed_in(browser)
    assert len(password_checks) == LIMIT
    assert ratelimit.count(ratelimit.PASSWORD_FAILURES_PER_EMAIL, EMAIL) == 0

    statuses = [password_login(Client(), EMAIL, f"again {i}").status_code for i in range(LIMIT + 3)]
    assert statuses == [401] * (LIMIT - 1) + [429] * 4
    # LIMIT more checks for the new window's guesses; none for the ones refused as locked.
    assert len(password_checks) == 2 * LIMIT


def test_reserve_hands_out_exactly_the_limit_of_slots() -> None:
    limit = ratelimit.Limit("test-reserve", attempts=3, window_seconds=60)
    assert [ratelimit.reserve(limit, "subject") for _ in range(5)] == [1, 2, 3, None, None]
    ratelimit.reset(limit, "subject")
    assert ratelimit.reserve(limit, "subject") == 1
