"""Browser sign-in views. Each parses the request, calls one module of this app, renders."""

from __future__ import annotations

from typing import Any

import segno
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from vestibule.accounts.models import User
from vestibule.audit.events import record
from vestibule.audit.models import AuditEvent
from vestibule.authority.principal import session_principal
from vestibule.login import passwords, recovery, totp
from vestibule.login.credentials import (
    AlreadyHasCredentials,
    PasswordNotAllowed,
    credentials_changed,
    has_credentials,
    replace_password,
    set_first_password,
)
from vestibule.login.forms import EmailForm, NewPasswordForm, PasswordForm, TotpForm
from vestibule.login.mail import product_name
from vestibule.login.models import OneTimeLink
from vestibule.login.redirects import safe_next
from vestibule.login.routing import route_email
from vestibule.login.sessions import session_payload, start_session

PASSWORD_ERRORS = {
    "invalid": "The email or password is not correct.",
    "locked": "Too many failed attempts for this email. Wait 15 minutes or reset your password.",
    "rate_limited": "Too many sign-in attempts from your network. Wait a few minutes and try again.",
}

# Which second factor the sign-in waiting on the expired-password page passed
# ("" for none), so a factor turned on since cannot be skipped.
PW_EXPIRED_FACTOR = "pw_expired_factor"

TOTP_ERRORS = {
    totp.CodeCheck.WRONG: "That code is not valid. Use the current code from your authenticator app.",
    totp.CodeCheck.LOCKED: "Too many wrong codes. Wait 15 minutes and try again.",
}


def page(request: HttpRequest, template: str, status: int = 200, **context: Any) -> HttpResponse:
    return render(request, f"vestibule/{template}", context, status=status)


def message(
    request: HttpRequest, title: str, text: str, *, status: int = 200, code: str = "", hint: str = ""
) -> HttpResponse:
    return page(request, "message.html", status=status, title=title, text=text, code=code, hint=hint)


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return HttpResponseRedirect(reverse("login"))
    me = session_payload(request.user, request.session)
    principal = session_principal(request.user, request.session)
    console = principal.is_operator or principal.administered_accounts().exists()
    return page(request, "home.html", me=me, console=console)


@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        # ``email`` pre-fills the form (an application's ``login_hint`` arrives here for a password route).
        form = EmailForm(
            initial={"next": safe_next(request.GET.get("next")), "email": request.GET.get("email", "")[:254]}
        )
        return page(request, "login_email.html", form=form)
    if "password" in request.POST:
        return _password_step(request)
    form = EmailForm(request.POST)
    if not form.is_valid():
        return page(request, "login_email.html", status=400, form=form)
    email, next_url = form.cleaned_data["email"], safe_next(form.cleaned_data["next"])
    route = route_email(email)
    if route.kind == "sso":
        target = reverse("sso-start", args=[route.connections[0].pk])
        return HttpResponseRedirect(f"{target}?{_query(next=next_url, login_hint=email)}")
    if route.kind == "choose":
        return page(request, "login_choose.html", connections=route.connections, next=next_url, email=email)
    return page(request, "login_password.html", form=PasswordForm(initial={"email": email, "next": next_url}))


def _query(**params: str) -> str:
    from urllib.parse import urlencode

    return urlencode(params)


def _password_step(request: HttpRequest) -> HttpResponse:
    form = PasswordForm(request.POST)
    if not form.is_valid():
        return page(request, "login_password.html", status=400, form=form)
    email, next_url = form.cleaned_data["email"], safe_next(form.cleaned_data["next"])
    outcome = passwords.check_password_login(request, email, form.cleaned_data["password"])
    if outcome.user is None:
        status = 429 if outcome.error in {"locked", "rate_limited"} else 401
        form.add_error(None, PASSWORD_ERRORS[outcome.error])
        return page(
            request,
            "login_password.html",
            status=status,
            form=PasswordForm(initial={"email": email, "next": next_url}),
            error=PASSWORD_ERRORS[outcome.error],
        )
    user = outcome.user
    request.session.cycle_key()
    if user.has_totp:
        request.session["pre_auth_user"] = user.pk
        request.session["pre_auth_next"] = next_url
        request.session.pop("pre_auth_method", None)
        return HttpResponseRedirect(reverse("login-totp"))
    return _all_factors_passed(request, user, method="password", next_url=next_url)


def _all_factors_passed(
    request: HttpRequest, user: User, *, method: str, next_url: str | None, account: Any = None, second_factor: str = ""
) -> HttpResponse:
    """Start the session, unless an expired password must be changed first.

    The expired-password page comes only now, after the second factor: it
    changes the password, and the old password alone must never be enough to
    do that.
    """
    detail = {"second_factor": second_factor} if second_factor else {}
    if method != "password" or not passwords.password_expired(user):
        request.session.pop(PW_EXPIRED_FACTOR, None)
        return start_session(request, user, method=method, next_url=next_url, account=account, **detail)
    for key in ("pre_auth_user", "pre_auth_next", "pre_auth_method"):
        request.session.pop(key, None)
    request.session["pw_expired_user"] = user.pk
    request.session["pw_expired_next"] = next_url
    request.session[PW_EXPIRED_FACTOR] = second_factor
    record("login.password.expired", request=request, actor_user=user, subject_email=user.email)
    return HttpResponseRedirect(reverse("password-expired"))


def _user_waiting_in_session(request: HttpRequest, session_key: str, **conditions: Any) -> User | None:
    """The active user a half-finished sign-in left under ``session_key``, if any."""
    pk = request.session.get(session_key)
    if pk is None:
        return None
    return User.objects.filter(pk=pk, is_active=True, **conditions).first()


@require_http_methods(["GET", "POST"])
def totp_view(request: HttpRequest) -> HttpResponse:
    user = _user_waiting_in_session(request, "pre_auth_user")
    if user is None:
        return HttpResponseRedirect(reverse("login"))
    form = TotpForm(request.POST or None)
    if request.method != "POST" or not form.is_valid():
        return page(request, "login_totp.html", status=400 if request.method == "POST" else 200, form=form)
    result = totp.check_code(user, form.cleaned_data["code"])
    if result is totp.CodeCheck.ACCEPTED:
        method = "recovery" if request.session.get("pre_auth_method") == "recovery" else "password"
        account = recovery.recovery_account(user) if method == "recovery" else None
        return _all_factors_passed(
            request,
            user,
            method=method,
            next_url=request.session.get("pre_auth_next"),
            account=account,
            second_factor="totp",
        )
    if result is totp.CodeCheck.LOCKED:
        form.add_error("code", "Too many wrong codes. Wait 15 minutes and sign in again.")
        return page(request, "login_totp.html", status=429, form=form)
    record("login.totp.failed", request=request, outcome=AuditEvent.Outcome.FAILURE, subject_email=user.email)
    form.add_error("code", TOTP_ERRORS[result])
    return page(request, "login_totp.html", status=401, form=form)


@require_http_methods(["GET", "POST"])
def totp_setup(request: HttpRequest) -> HttpResponse:
    """Turn the second factor on, or move it to a new authenticator app.

    Moving it asks first for a current code of the factor in force, which
    stays in force until a code of the new one confirms it: a signed-in
    session alone (a borrowed laptop, a stolen cookie) cannot switch it off.
    """
    if not request.user.is_authenticated:
        return HttpResponseRedirect(f"{reverse('login')}?next={reverse('totp-setup')}")
    user: User = request.user
    if user.login_method != User.LoginMethod.PASSWORD:
        return message(request, "Not available", "Your second factor is managed by your identity provider.", status=403)
    if session_principal(user, request.session).only_account_id is not None:
        # Signed in through another organization's provider (a sandbox's, a partner's): that session
        # speaks for that organization only, and credentials are the identity's home's business.
        return message(
            request, "Not available from this sign-in",
            "You signed in through an identity provider that serves another organization. To change your second factor, sign out and sign in with your password.",
            status=403, code="authority.credentials_not_in_scope",
        )  # fmt: skip
    if request.method == "GET" and user.has_totp:
        # A GET must not touch a confirmed factor: any link or prefetch could.
        return page(request, "totp_setup.html", factor_on=True, form=TotpForm())
    if request.method == "GET" or "start" in request.POST:
        return _totp_start(request, user)
    return _totp_confirm(request, user)


def _totp_start(request: HttpRequest, user: User) -> HttpResponse:
    replacing = user.has_totp
    if replacing:
        form = TotpForm(request.POST)
        if not form.is_valid():
            return page(request, "totp_setup.html", status=400, factor_on=True, form=form)
        result = totp.check_code(user, form.cleaned_data["code"])
        if result is not totp.CodeCheck.ACCEPTED:
            record(
                "user.totp_change_refused",
                request=request,
                outcome=AuditEvent.Outcome.FAILURE,
                subject_email=user.email,
                reason=result.value,
            )
            form.add_error("code", TOTP_ERRORS[result] + " Your current app keeps working; nothing was changed.")
            return page(
                request,
                "totp_setup.html",
                status=429 if result is totp.CodeCheck.LOCKED else 403,
                factor_on=True,
                form=form,
            )
    try:
        secret = totp.begin_enrollment(user)
    except totp.FactorChanged:
        return message(
            request,
            "Two-factor sign-in changed meanwhile",
            "It was turned on or changed in another window. Reload this page to see how it stands now.",
            status=409,
            hint=reverse("totp-setup"),
        )
    uri = totp.provisioning_uri(user, secret, issuer=product_name())
    return page(
        request, "totp_setup.html", replacing=replacing, secret=secret, uri=uri, qr=_qr_svg(uri), form=TotpForm()
    )


def _qr_svg(uri: str) -> SafeString:
    """The otpauth:// URI as an inline SVG QR code: drawn on the server, nothing fetched, no script."""
    svg = segno.make(uri, error="m").svg_inline(
        scale=4, dark="#1b1f24", light="#ffffff", title="QR code for your authenticator app"
    )
    return mark_safe(svg)  # segno's own markup; the URI is encoded as modules, never embedded as text


def _totp_confirm(request: HttpRequest, user: User) -> HttpResponse:
    replacing = user.has_totp
    form = TotpForm(request.POST)
    if form.is_valid():
        result = totp.check_code(user, form.cleaned_data["code"], enrolling=True)
        if result is totp.CodeCheck.ACCEPTED:
            credentials_changed(user)
            if replacing:
                record("user.totp_replaced", request=request, subject_email=user.email)
                return message(
                    request,
                    "New authenticator app set up",
                    "From now on, sign in with codes from the new app; the old one no longer works.",
                    hint="/",
                )
            record("user.totp_enabled", request=request, subject_email=user.email)
            return message(
                request,
                "Two-factor sign-in is on",
                "From now on you will be asked for a code from your authenticator app.",
                hint="/",
            )
        if result is totp.CodeCheck.LOCKED:
            form.add_error("code", TOTP_ERRORS[result])
            return page(request, "totp_setup.html", status=429, replacing=replacing, form=form)
    if not (user.totp_pending_encrypted if replacing else user.totp_secret_encrypted):
        form.add_error("code", "There is no new authenticator app waiting to be confirmed. Start again from this page.")
    else:
        form.add_error("code", "That code is not valid; check your app's clock and try the current code.")
    # The secret is not shown again: whoever holds this session but did not
    # start the enrolment must not learn it.
    return page(request, "totp_setup.html", status=400, replacing=replacing, form=form, secret=None)


@require_http_methods(["GET", "POST"])
def password_expired(request: HttpRequest) -> HttpResponse:
    user = _user_waiting_in_session(request, "pw_expired_user", login_method=User.LoginMethod.PASSWORD)
    if user is None:
        return HttpResponseRedirect(reverse("login"))
    second_factor = request.session.get(PW_EXPIRED_FACTOR, "")
    if user.has_totp and second_factor != "totp":
        # A second factor turned on after this sign-in passed its factors:
        # sign in again, with it.
        for key in ("pw_expired_user", "pw_expired_next", PW_EXPIRED_FACTOR):
            request.session.pop(key, None)
        return HttpResponseRedirect(reverse("login"))
    form = NewPasswordForm(request.POST or None, user=user)
    if request.method == "POST" and form.is_valid():
        replace_password(user, form.cleaned_data["password1"])
        record("password.changed", request=request, actor_user=user, subject_email=user.email, reason="expired")
        request.session.pop(PW_EXPIRED_FACTOR, None)
        detail = {"second_factor": second_factor} if second_factor else {}
        return start_session(
            request, user, method="password", next_url=request.session.get("pw_expired_next"), **detail
        )
    status = 400 if request.method == "POST" else 200
    return page(
        request,
        "password_set.html",
        status=status,
        form=form,
        title="Your password has expired",
        intro="Your organization requires a new password every so often. Choose a new one to continue.",
    )


@require_http_methods(["GET", "POST"])
def password_reset(request: HttpRequest) -> HttpResponse:
    form = EmailForm(request.POST or None)
    if request.method == "POST":
        if not form.is_valid():
            return page(request, "password_reset.html", status=400, form=form)
        passwords.send_reset_link(request, form.cleaned_data["email"])
        # The same answer whether or not the address has an account.
        return message(
            request,
            "Check your email",
            "If that address belongs to a password account, a reset link is on its way. It works once and expires in one hour.",
        )
    return page(request, "password_reset.html", form=form)


@require_http_methods(["GET", "POST"])
def password_reset_confirm(request: HttpRequest, token: str) -> HttpResponse:
    link = OneTimeLink.peek(OneTimeLink.Purpose.PASSWORD_RESET, token)
    # A link minted before the user became SSO-only is dead, like any other stale link.
    if link is None or link.user.login_method != User.LoginMethod.PASSWORD:
        return message(
            request,
            "This link no longer works",
            "Reset links work once and expire after an hour. Ask for a new one.",
            status=410,
            hint=reverse("password-reset"),
        )
    form = NewPasswordForm(request.POST or None, user=link.user)
    if request.method == "POST" and form.is_valid():
        used = OneTimeLink.consume(OneTimeLink.Purpose.PASSWORD_RESET, token)
        if used is None:
            return message(
                request, "This link no longer works", "It was used a moment ago. Ask for a new one.", status=410
            )
        user = used.user
        if user.login_method != User.LoginMethod.PASSWORD:
            # An SSO user gets no password until an admin switches them back.
            return message(
                request, "Password not changed", "This account signs in through your identity provider.", status=409
            )
        replace_password(user, form.cleaned_data["password1"])
        record("password.reset", request=request, actor_user=user, subject_email=user.email)
        return message(
            request, "Password changed", "Your new password is set. Sign in with it now.", hint=reverse("login")
        )
    status = 400 if request.method == "POST" else 200
    return page(
        request,
        "password_set.html",
        status=status,
        form=form,
        title="Choose a new password",
        intro=f"For {link.user.email}.",
    )


RECOVERY_SENT = (
    "Check your email",
    "If that address belongs to an SSO administrator, a sign-in link is on its way. "
    "It works once and expires in 15 minutes.",
)


@require_http_methods(["GET", "POST"])
def recovery_access(request: HttpRequest) -> HttpResponse:
    """Seed 002: an sso-admin asks for an emailed link that signs them in without SSO."""
    form = EmailForm(request.POST or None)
    if request.method == "POST":
        if not form.is_valid():
            return page(request, "recovery_access.html", status=400, form=form)
        recovery.request_link(request, form.cleaned_data["email"])
        # The same page and status whatever the address (see login.recovery).
        return message(request, *RECOVERY_SENT)
    return page(request, "recovery_access.html", form=form)


@require_http_methods(["GET", "POST"])
def recovery_access_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button; only the POST uses the link, so mail scanners that fetch links cannot spend it."""
    gone = ("This link no longer works", "Recovery links work once and expire after 15 minutes. Ask for a new one.")
    link = OneTimeLink.peek(OneTimeLink.Purpose.RECOVERY, token)
    if link is None or not recovery.is_still_eligible(link):
        return message(request, *gone, status=410, hint=reverse("recovery-access"))
    if request.method == "GET":
        return page(request, "recovery_confirm.html", email=link.user.email)
    used = OneTimeLink.consume(OneTimeLink.Purpose.RECOVERY, token)
    if used is None:
        return message(request, *gone, status=410, hint=reverse("recovery-access"))
    user = used.user
    record("login.recovery.link_used", request=request, account=used.account, subject_email=user.email)
    if user.has_totp:
        # A break-glass password user with a second factor still needs it.
        request.session.cycle_key()
        request.session["pre_auth_user"] = user.pk
        request.session["pre_auth_next"] = reverse("sso-admin")
        request.session["pre_auth_method"] = "recovery"
        return HttpResponseRedirect(reverse("login-totp"))
    # Recovery is for acting while the provider is broken: land where an sso-admin can.
    return start_session(request, user, method="recovery", next_url=reverse("sso-admin"), account=used.account)


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        record("logout", request=request, subject_email=request.user.email)
    logout(request)
    return HttpResponseRedirect(reverse("login"))


@require_GET
def session_api(request: HttpRequest) -> JsonResponse:
    if not request.user.is_authenticated:
        return JsonResponse({"detail": "not signed in"}, status=401)
    payload = session_payload(request.user, request.session)
    payload["login_at"] = request.session.get("login_at")
    payload["session_method"] = request.session.get("login_method")
    return JsonResponse(payload)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    record("security.csrf_rejected", request=request, outcome=AuditEvent.Outcome.FAILURE, path=request.path[:200])
    return message(
        request,
        "Your form expired",
        "The page was open too long or cookies are blocked, so we could not confirm the request came from you. Go back, reload the page and try again.",
        status=403,
        code="security.csrf_failed",
    )


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "not found"}, status=404)
    return message(request, "Page not found", "There is nothing at this address.", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    return message(
        request,
        "Something went wrong",
        "An unexpected error happened on our side. It has been logged; try again in a moment.",
        status=500,
    )


INVITATION_GONE = (
    "This invitation no longer works",
    "Invitations work once and expire after 7 days. Ask your administrator for a new one.",
)
INVITATION_SUPERSEDED = (
    "This invitation no longer works",
    "You can already sign in: this address has a password or a second factor, so the invitation cannot set a new one. "
    "Sign in as usual; if you forgot your password, use 'Forgot your password?' on the sign-in page.",
)


@require_http_methods(["GET", "POST"])
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    """Accepting an invitation: SSO users go to their provider, people without credentials set a password.

    The link sets a *first* password only. Once the person has a password or
    a confirmed second factor, a leftover invitation (a second account's, an
    old email) would otherwise replace the password and sign in around the
    second factor; it points to the normal sign-in instead.
    """
    link = OneTimeLink.peek(OneTimeLink.Purpose.INVITATION, token)
    if link is None or not link.user.is_active:
        return message(request, *INVITATION_GONE, status=410)
    route = route_email(link.user.email)
    if route.kind != "password" or link.user.login_method == User.LoginMethod.SSO:
        return _invitation_through_sso(request, token, link, route)
    if has_credentials(link.user):
        return _invitation_superseded(request, link)
    form = NewPasswordForm(request.POST or None, user=link.user)
    if request.method == "POST" and form.is_valid():
        used = OneTimeLink.consume(OneTimeLink.Purpose.INVITATION, token)
        if used is None:
            return message(request, INVITATION_GONE[0], "It was used a moment ago.", status=410)
        try:
            user = set_first_password(used.user_id, form.cleaned_data["password1"])
        except AlreadyHasCredentials:
            return _invitation_superseded(request, used)
        except PasswordNotAllowed:
            return message(
                request,
                "Password not set",
                "This account signs in through your identity provider. Sign in from the sign-in page.",
                status=409,
                hint=reverse("login"),
            )
        record("invitation.accepted", request=request, account=used.account, subject_email=user.email, via="password")
        return start_session(request, user, method="password", next_url="/")
    status = 400 if request.method == "POST" else 200
    account_name = link.account.name if link.account else product_name()
    return page(
        request,
        "password_set.html",
        status=status,
        form=form,
        title=f"Join {account_name}",
        intro=f"Choose a password for {link.user.email}.",
    )


def _invitation_through_sso(request: HttpRequest, token: str, link: OneTimeLink, route: Any) -> HttpResponse:
    """The invitee's organization signs them in through its identity provider: say so, then go there.

    A bare sign-in form left people wondering where to type a password they
    never had. The GET only explains, and spends nothing (mail scanners open
    links); the button's POST spends the link and continues to the provider,
    where the login accepts the invitation.
    """
    email = link.user.email
    account_name = link.account.name if link.account else product_name()
    if request.method == "GET":
        connection = route.connections[0] if route.kind == "sso" else None
        return page(
            request,
            "invitation_sso.html",
            account_name=account_name,
            brand_account=link.account,
            email=email,
            connection=connection,
            several=route.kind == "choose",
        )
    if OneTimeLink.consume(OneTimeLink.Purpose.INVITATION, token) is None:
        return message(request, INVITATION_GONE[0], "It was used a moment ago.", status=410)
    record("invitation.accepted", request=request, account=link.account, subject_email=email, via="sso")
    if route.kind == "sso":
        target = reverse("sso-start", args=[route.connections[0].pk])
        return HttpResponseRedirect(f"{target}?{_query(next='/', login_hint=email)}")
    if route.kind == "choose":
        return page(request, "login_choose.html", connections=route.connections, next="/", email=email)
    return HttpResponseRedirect(f"{reverse('login')}?next=/")


def _invitation_superseded(request: HttpRequest, link: OneTimeLink) -> HttpResponse:
    record(
        "invitation.refused",
        request=request,
        outcome=AuditEvent.Outcome.FAILURE,
        account=link.account,
        subject_email=link.user.email,
        reason="has_credentials",
    )
    return message(request, *INVITATION_SUPERSEDED, status=410, hint=reverse("login"))
