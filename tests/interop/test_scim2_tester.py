"""Interop: scim2-tester, the SCIM 2.0 compliance checker, against a live ``vestibule serve`` with a real token.

scim2-tester (PyPI ``scim2-tester``, driving ``scim2-client``) reads
``/ServiceProviderConfig``, ``/ResourceTypes`` and ``/Schemas``, builds the
resource models from what Vestibule publishes, then creates, reads, lists,
searches, replaces, patches (add, remove, replace) and deletes Users and
Groups, and probes an unknown URL. Every check it runs is counted; a check
whose result is ERROR or CRITICAL (a MUST of RFC 7643/7644 broken) fails this
test. Checks the server's own description makes inapplicable (a feature
``/ServiceProviderConfig`` says is unsupported) are skipped by scim2-tester
itself, never filtered here. The report is printed in the test output.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import overload

import httpx
import pytest
from scim2_client import SCIMClientException
from scim2_models import SCIMException
from scim2_tester import CheckResult, Status, check_server

from tests.interop.scim_server import DOMAIN, HttpxSCIMClient, live_scim_server

pytestmark = pytest.mark.interop

FAILED = (Status.ERROR, Status.CRITICAL)
BUDGET_SECONDS = 60.0


def summary(results: list[CheckResult], elapsed: float) -> str:
    """The report: totals by status, then every check that did not plainly succeed, with its reason."""
    counts = Counter(r.status.name for r in results)
    lines = [
        f"scim2-tester: {len(results)} checks in {elapsed:.1f}s: "
        + ", ".join(f"{name.lower()} {count}" for name, count in sorted(counts.items())),
    ]
    for result in results:
        if result.status is Status.SUCCESS:
            continue
        where = f"{result.resource_type} " if result.resource_type else ""
        lines.append(f"  {result.status.name:<10} {where}{result.title or ''}: {result.reason or ''}".rstrip())
    return "\n".join(lines)


def run_bounded(client: HttpxSCIMClient) -> tuple[list[CheckResult], float]:
    """Run every check within the budget; a server that hangs fails the test instead of stalling the run."""
    started = time.monotonic()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scim2-tester")
    try:
        results = pool.submit(check_server, client).result(timeout=BUDGET_SECONDS)
    except FutureTimeout:
        pytest.fail(f"scim2-tester did not finish within {BUDGET_SECONDS:.0f}s")
    finally:
        # A hung check is not waited for: stopping the server ends its request.
        pool.shutdown(wait=False)
    return results, time.monotonic() - started


class OwnedAddresses(Sequence[str]):
    """Distinct addresses at the account's domain, drawn by index as scim2-tester draws an attribute's examples."""

    def __init__(self, domain: str) -> None:
        self.domain = domain

    def __len__(self) -> int:
        return 2**62

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        if isinstance(index, slice):
            raise TypeError("an endless sequence is not sliced")
        return f"scim2-tester-{index:016x}@{self.domain}"


def described_client(http: httpx.Client) -> HttpxSCIMClient:
    """The client with the server's own description (its /Schemas, /ResourceTypes, /ServiceProviderConfig).

    One thing is added to it: where userName values come from. Vestibule's
    userName is the person's email at a domain the account owns; RFC 7643
    leaves userName's format to the service provider and a schema has no way
    to say so, so scim2-tester, which otherwise sends random UUIDs, is given
    such addresses as the attribute's examples (its source of values).
    """
    client = HttpxSCIMClient(http)
    try:
        client.discover()
    except (SCIMClientException, SCIMException, ValueError):
        # A description that does not hold together: scim2-tester's own discovery checks say what is wrong.
        return HttpxSCIMClient(http)
    user = client.get_resource_model("User")
    if user is not None:
        user.model_fields["user_name"].examples = OwnedAddresses(DOMAIN)  # type: ignore[assignment]
    return client


def test_scim2_tester_finds_no_failure(capsys: pytest.CaptureFixture[str]) -> None:
    with live_scim_server() as server, server.http() as http:
        results, elapsed = run_bounded(described_client(http))
        report = summary(results, elapsed)
        with capsys.disabled():
            print(f"\n{report}\n(server {server.url}, SCIM base {server.base_url})")
        failed = [r for r in results if r.status in FAILED]
        ran = [r for r in results if r.status is not Status.SKIPPED]
        assert not failed, f"{len(failed)} scim2-tester checks failed:\n{report}\n--- server log ---\n{server.log()}"
        # The whole protocol surface was reached: discovery, and both resource types end to end.
        assert {r.resource_type for r in ran} >= {"User", "Group"}, report
