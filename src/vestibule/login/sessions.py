"""Starting and describing signed-in sessions."""

from __future__ import annotations

from collections.abc import Iterable
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import login as django_login
from django.http import HttpRequest, HttpResponseRedirect
from django.utils import timezone

from vestibule.accounts.models import User
from vestibule.accounts.roles import accounts_payload
from vestibule.audit.events import record
from vestibule.authority.ownership import is_home
from vestibule.authority.principal import session_principal, session_scope
from vestibule.login.models import SignInSession
from vestibule.login.redirects import safe_next

BACKEND = "vestibule.login.backends.PasswordBackend"
PRE_AUTH_KEYS = ("pre_auth_user", "pre_auth_next", "pre_auth_method", "pw_expired_user", "pw_expired_next")


def start_session(
    request: HttpRequest, user: User, *, method: str, next_url: str | None, account: Any = None, **detail: Any
) -> HttpResponseRedirect:
    """Sign ``user`` in with a fresh session ID and go to a validated target.

    ``django.contrib.auth.login`` cycles the session key (defeating session
    fixation) and rotates the CSRF token.
    """
    for key in PRE_AUTH_KEYS:
        request.session.pop(key, None)
    django_login(request, user, backend=BACKEND)
    home = account is not None and is_home(account, user)
    request.session.update(session_scope(method=method, account=account, home=home))
    request.session["login_method"] = method
    request.session["login_at"] = timezone.now().isoformat()
    if request.session.session_key is None:
        request.session.save()
    SignInSession.objects.create(
        session_key=request.session.session_key, user=user, connection_id=detail.get("connection_id"), method=method
    )
    record(f"login.{method}.succeeded", request=request, account=account, actor_user=user, subject_email=user.email, **detail)
    return HttpResponseRedirect(safe_next(next_url))


def session_payload(user: User, session: Any = None) -> dict[str, Any]:
    """The signed-in person as ``GET /api/v1/session`` shows them, within their session's scope."""
    acting = session_principal(user, session if session is not None else {})
    accounts = accounts_payload(user, only_account_id=acting.only_account_id)
    return {**user.profile(), "is_operator": acting.is_operator, "accounts": accounts}


def end_sessions(*, user_ids: Iterable[int], connection_ids: Iterable[object]) -> int:
    """End the browser sessions these users started through these connections; returns how many."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    rows = SignInSession.objects.filter(user_id__in=list(user_ids), connection_id__in=list(connection_ids))
    keys = list(rows.values_list("session_key", flat=True))
    for key in keys:
        # Deletes the database row and its cached copy (Redis), so every process sees it gone.
        store(session_key=key).delete()
    rows.delete()
    return len(keys)
