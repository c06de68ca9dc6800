"""People of an account: users, add or invite, profiles with their roles, the approval queue, invitations, projects.

Each action goes through ``people.administration``, the functions the admin
API's users, roles, invitations and projects endpoints call: the same role
checks, identity-ownership rules and audit events, so the console is no back
door around the API. A refusal comes back as the API's status with its
message tied to the form field it is about.
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from vestibule.accounts.models import Account, Approval, Membership, Project, RoleGrant, User
from vestibule.authority.ownership import is_home
from vestibule.authority.principal import ADMINISTRATOR, USER_MANAGER, Principal
from vestibule.connections.models import Connection, ExternalIdentity
from vestibule.console.access import account_page
from vestibule.console.forms.users import (
    SLUG,
    ActiveForm,
    AddUserForm,
    AuthenticationForm,
    ExternalIdForm,
    NameForm,
    ProjectForm,
    RolesForm,
    SearchForm,
)
from vestibule.console.pages import console_page, refusal
from vestibule.people import administration, members
from vestibule.people.administration import Refused

PAGE_SIZE = 50
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
PEOPLE = (ADMINISTRATOR, USER_MANAGER)


def _users_url(account: Account) -> str:
    return reverse("console:users", args=[account.slug])


def _user_url(account: Account, user: User) -> str:
    return reverse("console:user", args=[account.slug, user.pk])


def _no_member(request: HttpRequest, acting: Principal, account: Account) -> HttpResponse:
    return refusal(
        request,
        acting,
        404,
        "No such user",
        "This account has no member with that ID. They may have been removed; search the list of users.",
        account=account,
    )


def _refused_page(request: HttpRequest, acting: Principal, account: Account, exc: Refused) -> HttpResponse:
    titles = {403: "Not allowed", 404: "Not found", 409: "Not possible now", 422: "Not accepted"}
    return refusal(
        request,
        acting,
        exc.status,
        titles.get(exc.status, "Refused"),
        f"{exc.detail[:1].upper()}{exc.detail[1:]}.",
        account=account,
    )


# Larger IDs than the database's integers would be an overflow error there, not a "not found".
MAX_ID = 2**31 - 1


def _member(account: Account, user_id: int) -> User | None:
    if user_id > MAX_ID:
        return None
    return administration.member_or_none(account, user_id)


def _status(membership: Membership) -> str:
    if membership.approval == Approval.PENDING:
        return "pending"
    return "active" if membership.is_active and membership.user.is_active else "deactivated"


def _sso_connection(account: Account) -> Connection | None:
    found = members.sso_authorization_connection(account)
    return found if isinstance(found, Connection) else None


def _invite_blocked(account: Account) -> str:
    connection = _sso_connection(account)
    if connection is None:
        return ""
    return (
        f"Users arrive through {connection.name}: its SSO authorization is on, so people are created and given "
        "their roles when they first sign in there, and invitations are disabled. To add someone, assign them the "
        "application in the identity provider."
    )


# Users list ----------------------------------------------------------------------


@require_GET
@account_page(*PEOPLE)
def users(request: HttpRequest, acting: Principal, account: Account) -> HttpResponse:
    form = SearchForm(request.GET or None)
    rows = Membership.objects.filter(account=account).select_related("user")
    status = 200
    if form.is_bound:
        if form.is_valid():
            q = form.cleaned_data["q"].strip()
            if q:
                rows = rows.filter(Q(user__email_key__icontains=q.casefold()) | Q(user__name__icontains=q))
        else:
            status = 400
            rows = rows.none()
    page = Paginator(rows.order_by("user__email_key"), PAGE_SIZE).get_page(request.GET.get("page", "")[:10])
    listed = list(page.object_list)
    roles: dict[int, set[str]] = {}
    for user_id, role in RoleGrant.objects.filter(
        account=account, project__isnull=True, user_id__in=[m.user_id for m in listed]
    ).values_list("user_id", "role"):
        roles.setdefault(user_id, set()).add(role)
    shown = [{"m": m, "user": m.user, "status": _status(m), "roles": sorted(roles.get(m.user_id, ()))} for m in listed]
    return console_page(
        request,
        "users/list.html",
        acting,
        account=account,
        status=status,
        title="Users",
        form=form,
        page=page,
        rows=shown,
        invite_blocked=_invite_blocked(account),
        pending=Membership.objects.filter(account=account, approval=Approval.PENDING).count(),
    )


# Add or invite -------------------------------------------------------------------


def _add_form(account: Account, data: Any = None) -> AddUserForm:
    projects = [(p.slug, p.name) for p in Project.objects.filter(account=account).order_by("slug")[:200]]
    connections = [(str(c.pk), c.name) for c in Connection.objects.filter(account=account).order_by("name")[:50]]
    return AddUserForm(data, projects=projects, connections=connections)


def _tie(form: Any, exc: Refused, fields: dict[str, str] | None = None) -> None:
    """Show a refusal at the field it is about (``projects[0].roles`` → ``projects``), else above the form."""
    where = (exc.field or "").split("[", 1)[0].split(".", 1)[0]
    mapped = (fields or {}).get(exc.field or "", where)
    message = f"{exc.detail[:1].upper()}{exc.detail[1:]}."
    if mapped in form.fields:
        form.add_error(mapped, message)
    else:
        form.add_error(None, message)


@require_http_methods(["GET", "POST"])
@account_page(*PEOPLE)
def add_user(request: HttpRequest, acting: Principal, account: Account) -> HttpResponse:
    blocked = _invite_blocked(account)
    form = _add_form(account, request.POST if request.method == "POST" else None)

    def page(status: int = 200) -> HttpResponse:
        return console_page(
            request, "users/add.html", acting, account=account, status=status, title="Add user", form=form,
            blocked=blocked,
        )  # fmt: skip

    if request.method == "GET":
        return page()
    if blocked:
        form.add_error(None, blocked)
        return page(409)
    if not form.is_valid():
        return page(400)
    data = form.cleaned_data
    new = administration.NewMember(
        email=data["email"],
        name=data["name"],
        roles=list(data["roles"]),
        projects=[administration.ProjectRoles(slug) for slug in data["projects"]],
        login_method=data["login_method"] or None,
        send_invitation=bool(data["send_invitation"]),
        external_ids=form.external_ids(),
    )
    try:
        added = administration.add_or_invite(acting, account, new)
    except Refused as exc:
        fields = {f"external_ids[{i}].external_id": key for i, (key, _) in enumerate(_typed_ids(form))}
        fields |= {f"external_ids[{i}].connection": key for i, (key, _) in enumerate(_typed_ids(form))}
        _tie(form, exc, fields)
        return page(exc.status)
    if added.invitation is not None:
        messages.success(
            request,
            f"Invitation sent to {added.invitation.email}. This account does not own their email domain, so they "
            "join when they accept it, signed in as themselves (the link works once, for 7 days). "
            "It is listed under Invitations until then.",
        )
        return HttpResponseRedirect(reverse("console:invitations", args=[account.slug]))
    assert added.user is not None
    how = (
        "They got an email with a link to choose a password."
        if added.invitation_sent
        else (
            "They sign in with SSO."
            if added.user.login_method == User.LoginMethod.SSO
            else "No email was sent: they sign in with the password they already have."
        )
    )
    messages.success(request, f"{added.user.email} was added to {account.name}. {how}")
    return HttpResponseRedirect(_user_url(account, added.user))


def _typed_ids(form: AddUserForm) -> list[tuple[str, str]]:
    """The external-ID fields in the order they were sent to the service (the filled ones)."""
    return [(key, pk) for key, pk in form.connection_fields if form.cleaned_data.get(key)]


# Profile ---------------------------------------------------------------------------


def _profile(
    request: HttpRequest,
    acting: Principal,
    account: Account,
    user: User,
    *,
    status: int = 200,
    **forms: Any,
) -> HttpResponse:
    membership = Membership.objects.select_related("user").get(user=user, account=account)
    managed_here = administration.manages_identity(acting, account, user)
    identity_reason = "" if managed_here else administration.identity_owner_detail(account, user)
    sso_on = _sso_connection(account)
    name_reason = identity_reason
    if not name_reason and user.login_method == User.LoginMethod.SSO and sso_on is not None:
        name_reason = f"the name of an SSO user comes from the identity provider ({sso_on.name})"
    editor = administration.role_editor(user, account)
    role_forms = forms.get("role_forms", {})
    for scope in editor.scopes:
        scope.form = role_forms.get(scope.key)
    connections = list(Connection.objects.filter(account=account).order_by("name")[:50])
    ids = {
        str(i.connection_id): i.external_id
        for i in ExternalIdentity.objects.filter(user=user, connection__account=account)
    }
    ext_forms = forms.get("ext_forms", {})
    external = [
        {
            "connection": c,
            "value": ids.get(str(c.pk), ""),
            "form": ext_forms.get(str(c.pk))
            or ExternalIdForm(
                initial={"connection": str(c.pk), "external_id": ids.get(str(c.pk), "")}, auto_id=f"c{c.pk}-%s"
            ),
        }
        for c in connections
    ]
    return console_page(
        request,
        "users/profile.html",
        acting,
        account=account,
        status=status,
        title=user.name or user.email,
        person=user,
        membership=membership,
        member_status=_status(membership),
        managed_here=managed_here,
        home_here=is_home(account, user),
        identity_reason=identity_reason,
        name_reason=name_reason,
        name_form=forms.get("name_form") or NameForm(initial={"name": user.name}),
        auth_form=forms.get("auth_form") or AuthenticationForm(initial={"login_method": user.login_method}),
        editor=editor,
        sso_on=sso_on,
        external=external,
        mapping_roles_url=_mapping_roles_url(account),
        is_administrator=ADMINISTRATOR in acting.roles_in(account),
        myself=acting.user is not None and acting.user.pk == user.pk,
    )


def _mapping_roles_url(account: Account) -> str:
    try:
        return reverse("console:mapping-roles", args=[account.slug])
    except Exception:  # noqa: BLE001 - the Mapping roles page is another helper's; without it the text alone
        return ""


@require_GET
@account_page(*PEOPLE)
def user_profile(request: HttpRequest, acting: Principal, account: Account, user_id: int) -> HttpResponse:
    user = _member(account, user_id)
    if user is None:
        return _no_member(request, acting, account)
    return _profile(request, acting, account, user)


def _back(request: HttpRequest, account: Account, user: User, text: str) -> HttpResponse:
    messages.success(request, text)
    return HttpResponseRedirect(_user_url(account, user))


@require_POST
@account_page(*PEOPLE)
def user_name(request: HttpRequest, acting: Principal, account: Account, user_id: int) -> HttpResponse:
    user = _member(account, user_id)
    if user is None:
        return _no_member(request, acting, account)
    form = NameForm(request.POST)
    if not form.is_valid():
        return _profile(request, acting, account, user, status=400, name_form=form)
    try:
        administration.update_member(acting, account, user, fields=["name"], name=form.cleaned_data["name"])
    except Refused as exc:
        _tie(form, exc)
        return _profile(request, acting, account, user, status=exc.status, name_form=form)
    return _back(request, account, user, f"The name of {user.email} is saved.")


@require_POST
@account_page(*PEOPLE)
def user_authentication(request: HttpRequest, acting: Principal, account: Account, user_id: int) -> HttpResponse:
    user = _member(account, user_id)
    if user is None:
        return _no_member(request, acting, account)
    form = AuthenticationForm(request.POST)
    if not form.is_valid():
        return _profile(request, acting, account, user, status=400, auth_form=form)
    method = form.cleaned_data["login_method"]
    before = user.login_method
    try:
        administration.update_member(acting, account, user, fields=["login_method"], login_method=method)
    except Refused as exc:
        _tie(form, exc)
        return _profile(request, acting, account, user, status=exc.status, auth_form=form)
    if method == before:
        text = f"{user.email} keeps signing in with {'SSO' if method == 'sso' else 'a password'}."
    elif method == User.LoginMethod.SSO:
        text = f"{user.email} now signs in with SSO. Their password was deleted."
    else:
        text = (
            f"{user.email} now signs in with a password. They were emailed a link to choose one (nothing old was "
            "restored); use Reset password to send a new link."
        )
    return _back(request, account, user, text)


@require_POST
@account_page(*PEOPLE)
def user_reset_password(request: HttpRequest, acting: Principal, account: Account, user_id: int) -> HttpResponse:
    user = _member(account, user_id)
    if user is None:
        return _no_member(request, acting, account)
    try:
        administration.send_password_reset(acting, account, user)
    except Refused as exc:
        return _refused_page(request, acting, account, exc)
    return _back(request, account, user, f"A password reset link was emailed to {user.email}. It works once.")


@require_POST
@account_page(*PEOPLE)
def user_external_id(request: HttpRequest, acting: Principal, account: Account, user_id: int) -> HttpResponse:
    user = _member(account, user_id)
    if user is None:
        return _no_member(request, acting, account)
    connection_id = str(request.POST.get("connection", ""))[:64]
    form = ExternalIdForm(request.POST, auto_id=f"c{connection_id}-%s" if _UUID.fullmatch(connection_id) else "id_%s")
    if not form.is_valid():
        return _profile(request, acting, account, user, status=400, ext_forms={connection_id: form})
    value = form.cleaned_data["external_id"] or None
    try:
        administration.update_member(
            acting, account, user, fields=["external_ids"], external_ids=[(form.cleaned_data["connection"], value)]
        )
    except Refused as exc:
        _tie(form, exc, {"external_ids[0].external_id": "external_id"})
        return _profile(request, acting, account, user, status=exc.status, ext_forms={connection_id: form})
    return _back(
        request,
        account,
        user,
        f"The external user ID of {user.email} is saved."
        if value
        else f"The external user ID of {user.email} is removed.",
    )


@require_POST
@account_page(*PEOPLE)
def user_active(request: HttpRequest, acting: Principal, account: Account, user_id: int) -> HttpResponse:
    user = _member(account, user_id)
    if user is None:
        return _no_member(request, acting, account)
    form = ActiveForm(request.POST)
    if not form.is_valid():
        return _profile(request, acting, account, user, status=400)
    active = form.cleaned_data["active"] == "on"
    try:
        administration.update_member(acting, account, user, fields=["is_active"], is_active=active)
    except Refused as exc:
        return _refused_page(request, acting, account, exc)
    if active:
        return _back(request, account, user, f"{user.email} is active again in {account.name}.")
    everywhere = " and everywhere else (this account owns their identity)" if is_home(account, user) else ""
    return _back(
        request,
        account,
        user,
        f"{user.email} is deactivated in {account.name}{everywhere}: their sign-ins to applications are ended.",
    )


@require_POST
@account_page(*PEOPLE)
def user_delete(request: HttpRequest, acting: Principal, account: Account, user_id: int) -> HttpResponse:
    user = _member(account, user_id)
    if user is None:
        return _no_member(request, acting, account)
    email = user.email
    try:
        administration.remove(acting, account, user)
    except Refused as exc:
        return _refused_page(request, acting, account, exc)
    messages.success(request, f"{email} was removed from {account.name}, with their roles and projects here.")
    return HttpResponseRedirect(_users_url(account))


@require_POST
@account_page(*PEOPLE)
def user_roles(request: HttpRequest, acting: Principal, account: Account, user_id: int) -> HttpResponse:
    user = _member(account, user_id)
    if user is None:
        return _no_member(request, acting, account)
    form = RolesForm(request.POST)
    scope = str(request.POST.get("project", ""))[:50]
    if not form.is_valid():
        return _profile(request, acting, account, user, status=400, role_forms={scope: form})
    project = form.cleaned_data["project"] or None
    try:
        granted = administration.replace_roles(acting, account, user, form.cleaned_data["roles"], project)
    except Refused as exc:
        _tie(form, exc, {"project": "roles"})
        return _profile(request, acting, account, user, status=exc.status, role_forms={scope: form})
    where = f"project {project}" if project else "the account"
    held = ", ".join(sorted(granted)) or "none"
    return _back(request, account, user, f"Roles of {user.email} in {where} saved: {held}.")


# Pending approval ------------------------------------------------------------------


@require_GET
@account_page(*PEOPLE)
def pending(request: HttpRequest, acting: Principal, account: Account) -> HttpResponse:
    rows = list(
        Membership.objects.filter(account=account, approval=Approval.PENDING)
        .select_related("user")
        .order_by("created_at", "pk")[:500]
    )
    return console_page(request, "users/pending.html", acting, account=account, title="Pending approval", rows=rows)


def _pending_member(account: Account, user_id: int) -> User | None:
    user = _member(account, user_id)
    if user is None or not Membership.objects.filter(user=user, account=account, approval=Approval.PENDING).exists():
        return None
    return user


def _not_waiting(request: HttpRequest, acting: Principal, account: Account) -> HttpResponse:
    return refusal(
        request,
        acting,
        404,
        "Nobody waiting with that ID",
        "This person is not waiting for approval here: someone may have approved or rejected them already. "
        "See the pending approval queue.",
        account=account,
    )


@require_POST
@account_page(*PEOPLE)
def approve(request: HttpRequest, acting: Principal, account: Account, user_id: int) -> HttpResponse:
    user = _pending_member(account, user_id)
    if user is None:
        return _not_waiting(request, acting, account)
    administration.update_member(acting, account, user, fields=["approval"], approval="approved")
    messages.success(request, f"{user.email} is approved: they can sign in to {account.name} now.")
    return HttpResponseRedirect(reverse("console:pending", args=[account.slug]))


@require_POST
@account_page(*PEOPLE)
def reject(request: HttpRequest, acting: Principal, account: Account, user_id: int) -> HttpResponse:
    user = _pending_member(account, user_id)
    if user is None:
        return _not_waiting(request, acting, account)
    email = user.email
    try:
        administration.reject_pending(acting, account, user)
    except Refused as exc:
        return _refused_page(request, acting, account, exc)
    messages.success(
        request,
        f"{email} was rejected and removed from {account.name}. A later sign-in through the provider puts them "
        "back in this queue while auto-provisioning is on.",
    )
    return HttpResponseRedirect(reverse("console:pending", args=[account.slug]))


# Invitations ----------------------------------------------------------------------


@require_GET
@account_page(*PEOPLE)
def invitations(request: HttpRequest, acting: Principal, account: Account) -> HttpResponse:
    return console_page(
        request,
        "users/invitations.html",
        acting,
        account=account,
        title="Invitations",
        rows=administration.open_invitations(account)[:500],
        invite_blocked=_invite_blocked(account),
    )


@require_POST
@account_page(*PEOPLE)
def revoke_invitation(request: HttpRequest, acting: Principal, account: Account, invitation_id: int) -> HttpResponse:
    try:
        if invitation_id > MAX_ID:
            raise Refused(404, "no such invitation")
        administration.revoke_invitation(acting, account, invitation_id)
    except Refused:
        return refusal(
            request,
            acting,
            404,
            "No such open invitation",
            "This account has no open invitation with that ID: it may have been accepted or revoked already.",
            account=account,
        )
    messages.success(request, "The invitation is revoked: its link no longer works.")
    return HttpResponseRedirect(reverse("console:invitations", args=[account.slug]))


# Projects -------------------------------------------------------------------------


def _projects_page(
    request: HttpRequest, acting: Principal, account: Account, form: ProjectForm, status: int = 200
) -> HttpResponse:
    rows = [
        {"project": p, "people": p.access.values("user").distinct().count()}
        for p in Project.objects.filter(account=account).order_by("slug")[:500]
    ]
    return console_page(
        request,
        "users/projects.html",
        acting,
        account=account,
        status=status,
        title="Projects",
        rows=rows,
        form=form,
        is_administrator=ADMINISTRATOR in acting.roles_in(account),
    )


@require_GET
@account_page(*PEOPLE)
def projects(request: HttpRequest, acting: Principal, account: Account) -> HttpResponse:
    return _projects_page(request, acting, account, ProjectForm())


@require_POST
@account_page(ADMINISTRATOR)
def create_project(request: HttpRequest, acting: Principal, account: Account) -> HttpResponse:
    form = ProjectForm(request.POST)
    if not form.is_valid():
        return _projects_page(request, acting, account, form, 400)
    try:
        project = administration.create_project(acting, account, form.cleaned_data["slug"], form.cleaned_data["name"])
    except Refused as exc:
        _tie(form, exc)
        return _projects_page(request, acting, account, form, exc.status)
    messages.success(request, f"Project {project.name} ({project.slug}) is created.")
    return HttpResponseRedirect(reverse("console:projects", args=[account.slug]))


@require_POST
@account_page(ADMINISTRATOR)
def delete_project(request: HttpRequest, acting: Principal, account: Account, project: str) -> HttpResponse:
    try:
        # Checked before the database sees it: a NUL in a query is PostgreSQL's error, not a "not found".
        if not SLUG.fullmatch(project):
            raise Refused(404, "no such project")
        administration.delete_project(acting, account, project)
    except Refused:
        return refusal(
            request,
            acting,
            404,
            "No such project",
            "This account has no project with that slug: it may have been deleted already.",
            account=account,
        )
    messages.success(request, f"Project {project} is deleted, with every role and access granted in it.")
    return HttpResponseRedirect(reverse("console:projects", args=[account.slug]))


U = "a/<str:slug>/users/<int:user_id>/"

urlpatterns = [
    path("a/<str:slug>/users/", users, name="users"),
    path("a/<str:slug>/users/add/", add_user, name="user-add"),
    path("a/<str:slug>/users/pending/", pending, name="pending"),
    path(U, user_profile, name="user"),
    path(f"{U}name", user_name, name="user-name"),
    path(f"{U}authentication", user_authentication, name="user-authentication"),
    path(f"{U}reset-password", user_reset_password, name="user-reset-password"),
    path(f"{U}external-id", user_external_id, name="user-external-id"),
    path(f"{U}active", user_active, name="user-active"),
    path(f"{U}delete", user_delete, name="user-delete"),
    path(f"{U}roles", user_roles, name="user-roles"),
    path(f"{U}approve", approve, name="user-approve"),
    path(f"{U}reject", reject, name="user-reject"),
    path("a/<str:slug>/invitations/", invitations, name="invitations"),
    path("a/<str:slug>/invitations/<int:invitation_id>/revoke", revoke_invitation, name="invitation-revoke"),
    path("a/<str:slug>/projects/", projects, name="projects"),
    path("a/<str:slug>/projects/new", create_project, name="project-create"),
    path("a/<str:slug>/projects/<str:project>/delete", delete_project, name="project-delete"),
]
