"""Test sign-ins: a login validated as usual whose end is handed to whoever started it, never a session.

A setup link's wizard (``vestibule.setup``, a later layer that signin must
not import) starts a sign-in with :func:`vestibule.signin.views.start_test_login`,
naming a handler it registered here at start-up. The pending login carries
that name; the SAML ACS and the OIDC callback then validate the message
completely (signature, audience, lifetime, replay cache: the assertion or
code is spent as for any login), run the pipeline's plan without applying
it (:func:`vestibule.signin.pipeline.rehearse_pipeline`), and give the
:class:`DryRun` to the handler, whose response the browser gets. A refusal
at any step is part of the result instead of the failure page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse

from vestibule.connections.models import Connection, PendingLogin
from vestibule.domain.pipeline import AssertedIdentity, LoginFailure
from vestibule.domain.rehearsal import Rehearsal

__all__ = ["DATA_KEY", "DryRun", "Handler", "handler_for", "register"]

#: The key of ``PendingLogin.data`` naming the handler of a test sign-in.
DATA_KEY = "dry_run"
MAX_CLAIMS = 50
MAX_VALUES = 20
MAX_TEXT = 300


@dataclass(frozen=True)
class DryRun:
    """What a test sign-in received and what the pipeline would decide (``failure`` set when refused before a plan)."""

    subject: str | None = None
    claims: Mapping[str, tuple[str, ...]] | None = None
    identity: AssertedIdentity | None = None
    rehearsal: Rehearsal | None = None
    failure: LoginFailure | None = None


Handler = Callable[[HttpRequest, Connection, PendingLogin, DryRun], HttpResponse]
_HANDLERS: dict[str, Handler] = {}


def register(name: str, handler: Handler) -> None:
    _HANDLERS[name] = handler


def handler_for(pending: PendingLogin | None) -> Handler | None:
    if pending is None:
        return None
    name = pending.data.get(DATA_KEY)
    return _HANDLERS.get(name) if isinstance(name, str) else None


def shown_claims(claims: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """The claims as text, bounded: a hostile provider's response must not make the result page huge."""
    shown: dict[str, tuple[str, ...]] = {}
    for key in sorted(claims)[:MAX_CLAIMS]:
        value = claims[key]
        items = value if isinstance(value, (list, tuple)) else [value]
        shown[str(key)[:MAX_TEXT]] = tuple(str(v)[:MAX_TEXT] for v in list(items)[:MAX_VALUES])
    return shown
