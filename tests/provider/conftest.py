"""Fixtures shared by the provider's tests: Alice, an application, her signed-in browser, a receiver."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from tests.provider.receiver import Receiver
from tests.provider.support import LOGOUT_URI, register_app, sign_in
from vestibule.accounts.models import User


@pytest.fixture
def alice(make_user: Any) -> User:
    user: User = make_user("alice@example.com", roles=("analyst",))
    return user


@pytest.fixture
def app() -> tuple[Any, str]:
    """A confidential application with a post-logout URI."""
    application, secret = register_app(post_logout_redirect_uris=[LOGOUT_URI])
    assert secret is not None
    return application, secret


@pytest.fixture
def browser(client: Client, alice: User) -> Client:
    """Alice's browser, signed in to Vestibule with her password."""
    sign_in(client, alice.email)
    return client


@pytest.fixture
def receiver(settings: Any) -> Iterator[Receiver]:
    """An HTTP server on 127.0.0.1 that records what applications are sent (deliveries sent inline)."""
    settings.VESTIBULE_DELIVERIES_INLINE = True
    settings.VESTIBULE_OUTBOUND_ALLOW = ("127.0.0.1",)
    server = Receiver().start()
    yield server
    server.stop()
