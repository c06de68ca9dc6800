"""Sign-ins given to applications: made at the authorization endpoint, judged again at every refresh, ended as one.

An :class:`~vestibule.provider.models.Authorization` is what every grant and
token of one application's sign-in points to. It records how the person
signed in (``auth_time``, ``amr``), which organization the tokens speak for,
and the Vestibule session it came from, so ending that session, deactivating
the person or removing their membership ends the application's tokens too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q
from django.utils import timezone

from vestibule.accounts.models import Account, Membership, User
from vestibule.accounts.roles import accounts_payload
from vestibule.authority.principal import SCOPE_ACCOUNT
from vestibule.provider import deliveries
from vestibule.provider.models import AccessToken, Application, Authorization, Grant, IDToken, RefreshToken
from vestibule.provider.scopes import requested_organization

# How each way of signing in is named in ``amr`` (RFC 8176 values, and "sso" for a federated login).
AMR = {"password": ["pwd"], "sso": ["sso"], "recovery": ["pwd"]}
# ``acr``: a password with a second factor, or a federated login, is more than a password alone.
ACR_MFA = "urn:vestibule:acr:mfa"
ACR_PASSWORD = "urn:vestibule:acr:password"
ACR_SSO = "urn:vestibule:acr:sso"


def session_login(session: Any) -> tuple[datetime, list[str], str]:
    """When and how the browser session signed in: ``auth_time``, ``amr`` and ``acr``."""
    method = str(session.get("login_method") or "password")
    raw = session.get("login_at")
    auth_time = datetime.fromisoformat(raw) if isinstance(raw, str) else timezone.now()
    amr = list(AMR.get(method, ["pwd"]))
    if session.get("second_factor") == "totp":
        amr += ["otp", "mfa"]
    acr = ACR_SSO if method == "sso" else ACR_MFA if "otp" in amr else ACR_PASSWORD
    return auth_time, amr, acr


def begin(*, user: User, application: Application, session: Any, account: Account | None) -> Authorization:
    """The sign-in an application is about to receive, from the browser session that asked."""
    auth_time, amr, acr = session_login(session)
    return Authorization.objects.create(
        user=user,
        application=application,
        account=account,
        only_account_id=session.get(SCOPE_ACCOUNT),
        session_key=session.session_key or "",
        auth_time=auth_time,
        amr=amr,
        acr=acr,
    )


@dataclass(frozen=True)
class Judgement:
    """A sign-in judged as things are now: why it no longer holds (or None), and its organization claims."""

    refusal: str | None
    organization: dict[str, Any]


def judge(authorization: Authorization) -> Judgement:
    """Judge the sign-in afresh (at the code exchange, every refresh and userinfo).

    The person and the application as they are now, not as they were at
    sign-in; the organization's claims are read in the same pass, and an
    organization that no longer counts the person in force refuses it.
    """
    if authorization.ended_at is not None:
        return Judgement(authorization.ended_reason or "ended", {})
    if not authorization.user.is_active:
        return Judgement("person_deactivated", {})
    if authorization.application.revoked_at is not None:
        return Judgement("application_revoked", {})
    scoped = authorization.only_account_id
    if (
        scoped is not None
        and scoped != authorization.account_id
        and not Membership.objects.in_force().filter(user_id=authorization.user_id, account_id=scoped).exists()
    ):
        return Judgement("membership_ended", {})
    organization = organization_claims(authorization)
    if authorization.account_id is not None and not organization:
        return Judgement("membership_ended", {})
    return Judgement(None, organization)


def organization_claims(authorization: Authorization) -> dict[str, Any]:
    """``org``, ``roles`` and ``projects`` of the organization the sign-in speaks for, as they are now."""
    if authorization.account_id is None:
        return {}
    rows = accounts_payload(authorization.user, only_account_id=authorization.account_id)
    if not rows:
        return {}
    row = rows[0]
    return {
        "org": {"slug": row["slug"], "name": row["name"]},
        "roles": row["roles"],
        "projects": [{"slug": p["slug"], "roles": p["roles"]} for p in row["projects"]],
    }


def claims(
    authorization: Authorization, scopes: Iterable[str], organization: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The person's claims for these scopes (``sub`` always); ``organization`` if :func:`judge` read it already."""
    scopes = set(scopes)
    user = authorization.user
    result: dict[str, Any] = {"sub": str(user.subject)}
    if "email" in scopes:
        result["email"] = user.email
        # Vestibule holds proof of the address: the identity provider of the account that
        # owns its domain asserted it, or the person received the one-time link that set
        # their password.
        result["email_verified"] = user.login_method == User.LoginMethod.SSO or user.has_usable_password()
    if "profile" in scopes:
        result["name"] = user.name
    if requested_organization(scopes)[0]:
        result.update(organization_claims(authorization) if organization is None else organization)
    return result


def end(authorizations: Iterable[Authorization], reason: str) -> int:
    """End these sign-ins: their tokens stop working now, and each application with a back-channel URI is told."""
    rows = [a for a in authorizations if a.ended_at is None]
    if not rows:
        return 0
    ids = [a.pk for a in rows]
    now = timezone.now()
    Authorization.objects.filter(pk__in=ids, ended_at__isnull=True).update(ended_at=now, ended_reason=reason)
    RefreshToken.objects.filter(authorization_id__in=ids, revoked__isnull=True).update(revoked=now)
    AccessToken.objects.filter(authorization_id__in=ids).delete()
    IDToken.objects.filter(authorization_id__in=ids).delete()
    Grant.objects.filter(authorization_id__in=ids).delete()
    for row in rows:
        row.ended_at, row.ended_reason = now, reason
    deliveries.queue_backchannel_logout(rows)
    return len(rows)


def open_authorizations() -> Any:
    return Authorization.objects.filter(ended_at__isnull=True).select_related("application", "user")


def end_for_sessions(session_keys: Iterable[str], reason: str = "session_ended") -> int:
    keys = [k for k in session_keys if k]
    if not keys:
        return 0
    return end(open_authorizations().filter(session_key__in=keys), reason)


def end_for_user(user_id: int, reason: str) -> int:
    return end(open_authorizations().filter(user_id=user_id), reason)


def end_for_membership(user_id: int, account_id: int, reason: str = "membership_ended") -> int:
    return end(
        open_authorizations().filter(Q(account_id=account_id) | Q(only_account_id=account_id), user_id=user_id),
        reason,
    )


def end_for_application(application: Application, reason: str = "application_revoked") -> int:
    return end(open_authorizations().filter(application=application), reason)
