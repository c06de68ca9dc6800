"""Starting and describing signed-in sessions."""

from __future__ import annotations

import time
from collections.abc import Iterable
from importlib import import_module
from typing import Any, Literal, cast

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.base import VALID_KEY_CHARS, CreateError, SessionBase
from django.dispatch import Signal
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.middleware.csrf import rotate_token
from django.utils import timezone
from django.utils.crypto import constant_time_compare, get_random_string
from django.utils.http import http_date

from vestibule.accounts.models import User
from vestibule.accounts.roles import accounts_payload
from vestibule.audit.events import record
from vestibule.authority.ownership import is_home
from vestibule.authority.principal import session_principal, session_scope
from vestibule.login.models import SignInSession
from vestibule.login.redirects import safe_next

BACKEND = "vestibule.login.backends.PasswordBackend"
PRE_AUTH_KEYS = ("pre_auth_user", "pre_auth_next", "pre_auth_method", "pw_expired_user", "pw_expired_next")
# Sign-ins whose own step already wrote the person's ``last_login`` (in its one User
# UPDATE) and their success event (the SSO login trace's ``sso.login_succeeded``).
_RECORDED_BY_CALLER = frozenset({"sso"})


def start_session(
    request: HttpRequest, user: User, *, method: str, next_url: str | None, account: Any = None, **detail: Any
) -> HttpResponseRedirect:
    """Sign ``user`` in with a fresh session ID and go to a validated target.

    The session row is written once, with everything in it: the session's
    scope is set before the key is cycled (defeating session fixation), and
    the cookie is set here rather than by a second save in the middleware.
    """
    for key in PRE_AUTH_KEYS:
        request.session.pop(key, None)
    home = account is not None and is_home(account, user)
    scope = {
        **session_scope(method=method, account=account, home=home),
        "login_method": method,
        "login_at": timezone.now().isoformat(),
        # How the sign-in was proven, for the OpenID Provider's ``amr`` ("totp" or "").
        "second_factor": detail.get("second_factor", ""),
    }
    written = _login(request, user, scope)
    if method not in _RECORDED_BY_CALLER:
        user.last_login = timezone.now()
        User.objects.filter(pk=user.pk).update(last_login=user.last_login)
    session_key = request.session.session_key
    assert session_key is not None  # written above, or the person's own signed-in session
    SignInSession.objects.create(
        session_key=session_key, user=user, connection_id=detail.get("connection_id"), method=method
    )
    if method not in _RECORDED_BY_CALLER:
        record(
            f"login.{method}.succeeded",
            request=request,
            account=account,
            actor_user=user,
            subject_email=user.email,
            **detail,
        )
    response = HttpResponseRedirect(safe_next(next_url))
    if written:
        _set_session_cookie(request, response)
    return response


def _login(request: HttpRequest, user: User, scope: dict[str, Any]) -> bool:
    """``django.contrib.auth.login`` with the data in place before the session is written; True once it is.

    Same rules: another person's (or a stale) authenticated session is
    flushed, an anonymous one gets a new key, the CSRF token rotates. The
    ``user_logged_in`` signal is not sent: its one receiver is Django's
    ``last_login`` update, which :func:`start_session` does itself.
    """
    session = request.session
    auth_hash = user.get_session_auth_hash()
    fresh = SESSION_KEY not in session
    if not fresh and (
        User._meta.pk.to_python(session[SESSION_KEY]) != user.pk
        or not constant_time_compare(session.get(HASH_SESSION_KEY, ""), auth_hash)
    ):
        session.flush()
    session[SESSION_KEY] = user._meta.pk.value_to_string(user)
    session[BACKEND_SESSION_KEY] = BACKEND
    session[HASH_SESSION_KEY] = auth_hash
    session.update(scope)
    written = False
    if fresh or session.session_key is None:
        # An anonymous session gets a new key (session fixation), a flushed one
        # its first: the row is written once, with everything above in it.
        old_key = session.session_key
        _store_under_new_key(session)
        if old_key is not None:
            session.delete(old_key)
        written = True
    request.user = user
    rotate_token(request)
    return written


def _store_under_new_key(session: SessionBase) -> None:
    """``SessionBase.create`` without its lookup of the new key first.

    The INSERT (``must_create``) refuses a key already in use, which is all
    that lookup guards against, so a collision is retried the same way.
    """
    while True:
        session._session_key = get_random_string(32, VALID_KEY_CHARS)
        try:
            session.save(must_create=True)
        except CreateError:
            continue
        return


def _set_session_cookie(request: HttpRequest, response: HttpResponse) -> None:
    """The cookie SessionMiddleware would set after saving; the row is already written, so it need not save again."""
    session = request.session
    assert session.session_key is not None
    if session.get_expire_at_browser_close():
        max_age, expires = None, None
    else:
        max_age = session.get_expiry_age()
        expires = http_date(time.time() + max_age)
    response.set_cookie(
        settings.SESSION_COOKIE_NAME,
        session.session_key,
        max_age=max_age,
        expires=expires,
        domain=settings.SESSION_COOKIE_DOMAIN,
        path=settings.SESSION_COOKIE_PATH,
        secure=bool(settings.SESSION_COOKIE_SECURE),
        httponly=bool(settings.SESSION_COOKIE_HTTPONLY),
        samesite=cast("Literal['Lax', 'Strict', 'None'] | None", settings.SESSION_COOKIE_SAMESITE),
    )
    # A later change to the session in this request still marks it modified, and the middleware saves that.
    session.modified = False


def session_payload(user: User, session: Any = None) -> dict[str, Any]:
    """The signed-in person as ``GET /api/v1/session`` shows them, within their session's scope."""
    acting = session_principal(user, session if session is not None else {})
    accounts = accounts_payload(user, only_account_id=acting.only_account_id)
    return {**user.profile(), "is_operator": acting.is_operator, "accounts": accounts}


# Sent with ``session_keys`` whenever Vestibule ends browser sessions itself (not by the person's own
# logout, which Django's ``user_logged_out`` announces): layers above end what hangs off them.
sessions_ended = Signal()


def end_sessions(*, user_ids: Iterable[int], connection_ids: Iterable[object]) -> int:
    """End the browser sessions these users started through these connections; returns how many."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    rows = SignInSession.objects.filter(user_id__in=list(user_ids), connection_id__in=list(connection_ids))
    keys = list(rows.values_list("session_key", flat=True))
    for key in keys:
        # Deletes the database row and its cached copy (Redis), so every process sees it gone.
        store(session_key=key).delete()
    rows.delete()
    sessions_ended.send(sender=SignInSession, session_keys=keys)
    return len(keys)


# The login announcement (seed 002): what an SSO login just changed in the person's roles -------------

ANNOUNCEMENT_KEY = "login_announcement"
ANNOUNCEMENT_PATH = "/login/announcement"
_CHANGES_STEP = "role_changes"


def _tokens(value: object) -> list[str]:
    # A trace value longer than the trace keeps ends in "…": its last token is cut, so it is left out.
    return [t for t in str(value or "").split(",") if t and not t.endswith("…")][:200]


def announce_role_changes(
    request: HttpRequest, response: HttpResponseRedirect, *, account: Any, steps: Iterable[dict[str, Any]]
) -> HttpResponseRedirect:
    """After an SSO login whose roles step changed the person's roles, show the announcement once on the way.

    The change is the login plan's ``role_changes`` note (the trace's step),
    so asking costs no query. The target the login was going to, already
    validated by :func:`start_session`, is kept with it for the Continue
    button: the announcement never redirects anywhere else.
    """
    changes = next((s for s in steps if s.get("step") == _CHANGES_STEP), None)
    if changes is None:
        return response
    request.session[ANNOUNCEMENT_KEY] = {
        "account_id": getattr(account, "pk", None),
        "granted": _tokens(changes.get("granted")),
        "removed": _tokens(changes.get("removed")),
        "mapping_roles": _tokens(changes.get("mapping_roles")),
        "next": safe_next(response["Location"]),
    }
    response["Location"] = ANNOUNCEMENT_PATH
    return response


def take_announcement(session: Any) -> dict[str, Any] | None:
    """The pending announcement, removed from the session: it is shown once."""
    data = session.pop(ANNOUNCEMENT_KEY, None)
    return data if isinstance(data, dict) else None
