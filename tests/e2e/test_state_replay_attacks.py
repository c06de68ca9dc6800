"""A state lifted from the victim's browser and replayed from the attacker's must not burn the victim's login.

The binding cookie already kept the attacker out; the bug was the order:
the state was spent first and the binding compared afterwards, so the
attacker's refused replay still consumed the victim's login in flight.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from tests.e2e.oidc_support import claims_of, oidc, oidc_connection, session
from vestibule.accounts.models import User
from vestibule.connections.models import PendingLogin

__all__ = ["oidc", "oidc_connection"]

pytestmark = pytest.mark.django_db


def test_state_replayed_from_a_foreign_browser_does_not_burn_the_victims_login(oidc, oidc_connection):
    connection = oidc_connection(oidc)
    victim = Client()
    redirect = victim.get(urlsplit(connection["sign_in_url"]).path)
    assert redirect.status_code == 302
    state = parse_qs(urlsplit(redirect["Location"]).query)["state"][0]
    callback = oidc.authorize(redirect, connection, subject="u-victim", claims=claims_of("victim@acme.com", "Victim"))

    attacker = Client()
    stolen = attacker.get(callback)
    assert stolen.status_code == 400 and b"sso.state_invalid" in stolen.content
    assert session(attacker) is None
    assert PendingLogin.objects.get(key=state).consumed_at is None, "the foreign replay spent the victim's state"
    assert not User.objects.filter(email="victim@acme.com").exists()

    # Positive control: the victim's own callback, same state and code, still completes.
    done = victim.get(callback)
    assert done.status_code == 302, done.content.decode()[:800]
    assert session(victim)["email"] == "victim@acme.com"
    assert PendingLogin.objects.get(key=state).consumed_at is not None
    # And only once.
    victim.logout()
    again = victim.get(callback)
    assert again.status_code == 400 and b"sso.state_invalid" in again.content
    assert session(victim) is None
