"""``--suite=database`` or ``--suite=servers``: one half of the test suite, for ``make test``.

``make test`` runs the suite in two pytest invocations. The database suite is
CPU-bound Python against the test database; pytest-xdist spreads it over the
cores (each worker gets its own test database from pytest-django). The suites
that start servers (third-party interop peers, several ``vestibule serve``
processes, Chromium, the locust load and fault tests) run one test at a time
afterwards: they bind ports, flush Redis db 15 and bound their waits and
throughput in seconds, which a second worker sharing two cores would eat into.

The split is a filter on top of ``-m``, so ``make test PYTEST_ARGS='-m browser'``
still means "the browser tests": the database half then selects nothing.
Without ``--suite``, pytest runs everything as before.
"""

from __future__ import annotations

import pytest

#: Markers of the tests that start servers of their own and run serially.
SERVER_MARKERS = ("interop", "multiprocess", "browser", "load")
SUITES = ("database", "servers")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--suite",
        choices=SUITES,
        default=None,
        help="run only the database suite (parallel-safe) or only the suites that start servers "
        f"(markers {', '.join(SERVER_MARKERS)}); default: both",
    )


def starts_servers(item: pytest.Item) -> bool:
    return any(item.get_closest_marker(name) is not None for name in SERVER_MARKERS)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # trylast: tests/browser/conftest.py adds the browser marker in this same hook.
    suite = config.getoption("suite")
    if suite is None:
        return
    keep, drop = [], []
    for item in items:
        (keep if starts_servers(item) == (suite == "servers") else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
