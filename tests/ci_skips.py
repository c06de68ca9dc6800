"""In CI a skipped test fails the run, unless the skip is on the allow-list below.

A missing xmlsec1, node, Redis or PostgreSQL, or an end-to-end driver that does
not import, must turn the run red instead of quietly shrinking it. This holds
for every test (interop, multi-process, end-to-end and the rest) as soon as
``CI=true`` (set by the CI runner) or ``VESTIBULE_REQUIRE_PEERS=1`` (set by
``.ci/run``) is in the environment; a developer's plain ``make test`` still
skips what the machine cannot run.

Skips are caught where pytest reports them: while a test runs (``pytest.skip``,
``importorskip`` inside a fixture, ``skipif`` markers) and while a module is
collected (a module-level ``importorskip`` or ``skip(allow_module_level=True)``).
``tests/conftest.py`` loads this module; ``tests/test_quality_gates.py`` runs it
on throwaway tests.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import pytest


def _on_sqlite() -> bool:
    from django.db import connection

    return bool(connection.vendor == "sqlite")


@dataclass(frozen=True)
class AllowedSkip:
    """A skip CI accepts: its message starts with ``reason``, and only while ``holds()`` is true."""

    reason: str
    holds: Callable[[], bool]
    why: str


ALLOWED_SKIPS: tuple[AllowedSkip, ...] = (
    AllowedSkip(
        reason="needs concurrent transactions with row locks",
        holds=_on_sqlite,
        why="SQLite has no row locks to race on; .ci/run runs these tests again on PostgreSQL, "
        "where the same skip is not allowed",
    ),
)


def skips_fail() -> bool:
    """Whether this run turns a skip into a failure."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"} or (
        os.environ.get("VESTIBULE_REQUIRE_PEERS") == "1"
    )


def skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    reason = str(longrepr[-1]) if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


def allowed(reason: str) -> AllowedSkip | None:
    return next((entry for entry in ALLOWED_SKIPS if reason.startswith(entry.reason) and entry.holds()), None)


def fail_if_not_allowed(report: pytest.TestReport | pytest.CollectReport) -> None:
    if not report.skipped or hasattr(report, "wasxfail") or not skips_fail():
        return
    reason = skip_reason(report)
    if allowed(reason) is None:
        report.outcome = "failed"
        report.longrepr = (
            f"skipped in CI, where a skip fails the run (CI=true or VESTIBULE_REQUIRE_PEERS=1): {reason}\n"
            "Install what the test needs (see `make peers`), or, for a skip that is right on this setup, "
            "add it to ALLOWED_SKIPS in tests/ci_skips.py with the reason."
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[Any]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    fail_if_not_allowed(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    fail_if_not_allowed(report)
    return report
