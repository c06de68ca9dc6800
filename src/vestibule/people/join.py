"""Joining another account: the invitee accepts, signed in as themselves.

An account that does not own a person's identity cannot add them; it sends an
invitation (``accounts.internal.members.invite``). The link alone grants
nothing: the person must be signed in as the invited address, or — when the
address has no identity yet and signs in with a password — create it here.
"""

from __future__ import annotations

from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from vestibule.accounts.models import Invitation, User
from vestibule.audit.events import record
from vestibule.authority.principal import session_principal
from vestibule.login.forms import NewPasswordForm
from vestibule.login.routing import route_email
from vestibule.login.sessions import start_session
from vestibule.people import members

GONE = (
    "This invitation no longer works",
    "Invitations work once and expire after 7 days. Ask the account's administrator for a new one.",
)


def _page(request: HttpRequest, invitation: Invitation, status: int = 200, **context: object) -> HttpResponse:
    return render(request, "vestibule/join.html", {"invitation": invitation, **context}, status=status)


def _gone(request: HttpRequest) -> HttpResponse:
    return render(request, "vestibule/message.html", {"title": GONE[0], "text": GONE[1]}, status=410)


@require_http_methods(["GET", "POST"])
def join_account(request: HttpRequest, token: str) -> HttpResponse:
    invitation = members.open_invitation(token)
    if invitation is None:
        return _gone(request)
    sign_in = f"{reverse('login')}?next={reverse('join-account', args=[token])}"
    if request.user.is_authenticated:
        me: User = request.user
        if me.email_key != invitation.email_key:
            return _page(request, invitation, status=403, state="other_person", sign_in=sign_in)
        scope = session_principal(me, request.session).only_account_id
        if scope is not None and scope != invitation.account_id:
            # Signed in through a provider that speaks for another organization only
            # (a sandbox's, a partner's): joining is the person's own act, proved their own way.
            return _page(request, invitation, status=403, state="out_of_scope", sign_in=sign_in)
        if request.method == "GET":
            return _page(request, invitation, state="confirm")
        return _accept(request, invitation, me)
    existing = User.objects.filter(email_key=invitation.email_key).first()
    if existing is not None or route_email(invitation.email).kind != "password":
        # Someone with this address exists, or their organization's provider
        # signs them in: they prove who they are the usual way, then come back.
        return _page(request, invitation, state="sign_in", sign_in=sign_in)
    form = NewPasswordForm(request.POST or None, user=None)
    if request.method == "POST" and form.is_valid():
        try:
            user, _ = members.add_identity(invitation.email, invitation.name, form.cleaned_data["password1"])
        except members.UserConflict:
            return _page(request, invitation, state="sign_in", sign_in=sign_in)
        return _accept(request, invitation, user, start=True)
    return _page(request, invitation, status=400 if request.method == "POST" else 200, state="create", form=form)


def _accept(request: HttpRequest, invitation: Invitation, user: User, *, start: bool = False) -> HttpResponse:
    try:
        members.accept_invitation(invitation, user)
    except members.UserConflict:
        return _gone(request)
    except members.InvitationNotForYou:
        logout(request)
        return _gone(request)
    record(
        "user.invitation_accepted",
        request=request,
        account=invitation.account,
        actor_user=user,
        subject_email=user.email,
    )
    if start:
        return start_session(request, user, method="password", next_url="/")
    return HttpResponseRedirect(reverse("home"))
