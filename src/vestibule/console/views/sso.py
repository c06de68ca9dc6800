"""SSO authorization screens (seed 002): mapping roles, and Preferences -> Enable Single Sign-On Authorization.

Only the account's sso-admin opens them ("Only the SSO account admin can
disable SSO authorization and manage mapping groups"), as the admin API's
mapping-role and connection endpoints require. Every change goes through the
rules the API uses (``connections.authorization.save_mapping_role``,
``connections.rules.update_connection``) and writes the API's audit events.
"""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from vestibule.accounts.models import Account
from vestibule.audit.events import record
from vestibule.authority.break_glass import is_break_glass
from vestibule.authority.principal import SSO_ADMIN, Principal
from vestibule.connections import rules
from vestibule.connections.authorization import (
    MappingRoleError,
    authorization_preview,
    managed_people,
    people_under_mapping_role,
    save_mapping_role,
)
from vestibule.connections.models import Connection, MappingRole
from vestibule.connections.rules import ConnectionRuleError
from vestibule.console.access import account_page
from vestibule.console.forms.sso import AuthorizationForm, MappingRoleForm, initial_of, posted, rows_wanted
from vestibule.console.pages import console_page, refusal

_MAX_ID = 2**63 - 1


def _mapping_role(account: Account, mapping_role_id: str) -> MappingRole | None:
    # Any text in the URL: only a plain id within a bigint is looked up (no overflow, no 500).
    if (
        not (mapping_role_id.isascii() and mapping_role_id.isdigit())
        or len(mapping_role_id) > 19
        or int(mapping_role_id) > _MAX_ID
    ):
        return None
    return (
        MappingRole.objects.filter(account=account, pk=int(mapping_role_id))
        .prefetch_related("role_grants__project")
        .first()
    )


def _not_found(request: HttpRequest, acting: Principal, account: Account) -> HttpResponse:
    return refusal(
        request,
        acting,
        404,
        "No such mapping role",
        "This account has no such mapping role; it may have been deleted. Pick one from Mapping roles.",
        account=account,
    )


def _list_url(account: Account) -> str:
    return reverse("console:mapping-roles", args=[account.slug])


# Mapping roles ------------------------------------------------------------------


@require_GET
@account_page(SSO_ADMIN)
def mapping_roles(request: HttpRequest, acting: Principal, account: Account) -> HttpResponse:
    rows = MappingRole.objects.filter(account=account).prefetch_related("role_grants__project").order_by("name")
    projects = {p.slug: p.name for p in account.projects.all()}
    listed = [
        {
            "role": m,
            "grants": [
                {
                    "scope": g["scope"],
                    "label": "Account"
                    if g["scope"] == "account"
                    else f"Project {projects.get(g['scope'].removeprefix('project:'), g['scope'])}",
                    "roles": g["roles"],
                }
                for g in m.grants
            ],
        }
        for m in rows[:1000]
    ]
    enabled = Connection.objects.filter(account=account, sso_authorization=True).order_by("name")
    return console_page(
        request,
        "sso/mapping_roles.html",
        acting,
        account=account,
        title="Mapping roles",
        mapping_roles=listed,
        authorizing=list(enabled.values_list("name", flat=True)),
    )


def _form_page(
    request: HttpRequest,
    acting: Principal,
    account: Account,
    form: MappingRoleForm,
    *,
    mapping_role: MappingRole | None,
    status: int = 200,
) -> HttpResponse:
    return console_page(
        request,
        "sso/mapping_role_form.html",
        acting,
        account=account,
        status=status,
        title=f"Edit mapping role {mapping_role.name}" if mapping_role else "Add mapping role",
        form=form,
        mapping_role=mapping_role,
        people=people_under_mapping_role(account, mapping_role.name) if mapping_role else [],
    )


def _save(request: HttpRequest, acting: Principal, account: Account, mapping_role: MappingRole | None) -> HttpResponse:
    existing = len(mapping_role.grants) if mapping_role else 0
    rows = rows_wanted(request.POST, existing)
    if request.POST.get("more"):
        # "Add another scope": what was typed, with one more row; nothing checked or saved yet.
        more = MappingRoleForm(account=account, rows=rows, initial=posted(request.POST, rows))
        return _form_page(request, acting, account, more, mapping_role=mapping_role)
    form = MappingRoleForm(request.POST, account=account, rows=rows)
    if not form.is_valid():
        return _form_page(request, acting, account, form, mapping_role=mapping_role, status=400)
    try:
        saved = save_mapping_role(account, mapping_role, name=form.cleaned_data["name"], grants=form.grants())
    except MappingRoleError as exc:
        form.rule_error(exc.field, exc.detail)
        return _form_page(
            request, acting, account, form, mapping_role=mapping_role, status=409 if exc.conflict else 400
        )
    code = "mapping_role.updated" if mapping_role else "mapping_role.created"
    record(code, request=request, account=account, **acting.actor(), name=saved.name)
    if mapping_role:
        messages.success(
            request, f"Mapping role {saved.name} saved. People under it get the new roles at their next login."
        )
    else:
        messages.success(request, f"Mapping role {saved.name} added.")
    return HttpResponseRedirect(_list_url(account))


@require_http_methods(["GET", "POST"])
@account_page(SSO_ADMIN)
def mapping_role_add(request: HttpRequest, acting: Principal, account: Account) -> HttpResponse:
    if request.method == "POST":
        return _save(request, acting, account, None)
    form = MappingRoleForm(account=account, rows=2)
    return _form_page(request, acting, account, form, mapping_role=None)


@require_http_methods(["GET", "POST"])
@account_page(SSO_ADMIN)
def mapping_role_edit(request: HttpRequest, acting: Principal, account: Account, mapping_role_id: str) -> HttpResponse:
    mapping_role = _mapping_role(account, mapping_role_id)
    if mapping_role is None:
        return _not_found(request, acting, account)
    if request.method == "POST":
        return _save(request, acting, account, mapping_role)
    grants = mapping_role.grants
    form = MappingRoleForm(account=account, rows=len(grants) + 1, initial=initial_of(mapping_role.name, grants))
    return _form_page(request, acting, account, form, mapping_role=mapping_role)


@require_http_methods(["GET", "POST"])
@account_page(SSO_ADMIN)
def mapping_role_delete(
    request: HttpRequest, acting: Principal, account: Account, mapping_role_id: str
) -> HttpResponse:
    """GET: who loses roles at their next login; POST: delete (the page's form is the confirmation)."""
    mapping_role = _mapping_role(account, mapping_role_id)
    if mapping_role is None:
        return _not_found(request, acting, account)
    if request.method == "GET":
        return console_page(
            request,
            "sso/mapping_role_delete.html",
            acting,
            account=account,
            title=f"Delete mapping role {mapping_role.name}",
            mapping_role=mapping_role,
            people=people_under_mapping_role(account, mapping_role.name),
        )
    name = mapping_role.name
    mapping_role.delete()
    record("mapping_role.deleted", request=request, account=account, **acting.actor(), name=name)
    messages.success(request, f"Mapping role {name} deleted. People under it lose its roles at their next login.")
    return HttpResponseRedirect(_list_url(account))


# Preferences: SSO authorization per connection -------------------------------------


def _connections(account: Account) -> list[Connection]:
    return list(Connection.objects.filter(account=account).order_by("name", "created_at")[:200])


def _acting_keeps_a_way_in(acting: Principal) -> bool:
    # The person at the keyboard: a break-glass password (seed 003) survives any provider's mistake.
    return acting.user is not None and is_break_glass(acting.user)


@require_GET
@account_page(SSO_ADMIN)
def preferences(request: HttpRequest, acting: Principal, account: Account) -> HttpResponse:
    return console_page(
        request,
        "sso/preferences.html",
        acting,
        account=account,
        title="Single sign-on preferences",
        connections=_connections(account),
        mapping_role_count=MappingRole.objects.filter(account=account).count(),
    )


@require_POST
@account_page(SSO_ADMIN)
def preferences_change(request: HttpRequest, acting: Principal, account: Account) -> HttpResponse:
    """First POST: the computed warnings and a confirmation form; the POST with ``confirm=1`` applies."""
    form = AuthorizationForm(request.POST)
    connection = None
    if form.is_valid():
        connection = Connection.objects.for_account(account).by_id(form.cleaned_data["connection"])
    if connection is None:
        return refusal(
            request,
            acting,
            404,
            "No such connection",
            "This account has no such connection; it may have been deleted. Pick one under Preferences.",
            account=account,
        )
    turn_on = bool(form.cleaned_data["sso_authorization"])
    if turn_on == connection.sso_authorization:
        state = "on" if turn_on else "off"
        messages.info(request, f"SSO authorization for {connection.name} is already {state}; nothing changed.")
        return HttpResponseRedirect(reverse("console:sso-preferences", args=[account.slug]))
    if not form.cleaned_data["confirm"]:
        return console_page(
            request,
            "sso/preferences_confirm.html",
            acting,
            account=account,
            title=f"{'Enable' if turn_on else 'Disable'} SSO authorization for {connection.name}",
            connection=connection,
            turn_on=turn_on,
            preview=authorization_preview(connection) if turn_on else None,
            keeps_way_in=_acting_keeps_a_way_in(acting),
            managed_people=managed_people(connection),
        )
    try:
        with transaction.atomic():
            warnings = rules.update_connection(connection, {"sso_authorization": turn_on})
    except ConnectionRuleError as exc:
        messages.error(request, f"SSO authorization for {connection.name} was not changed: {exc}")
        return HttpResponseRedirect(reverse("console:sso-preferences", args=[account.slug]))
    record(
        "connection.updated",
        request=request,
        account=account,
        connection=connection,
        **acting.actor(),
        fields=["sso_authorization"],
        warnings=warnings,
    )
    if turn_on:
        messages.success(
            request,
            f"SSO authorization is on for {connection.name}: roles are set by the identity provider at each login.",
        )
    else:
        messages.success(
            request,
            f"SSO authorization is off for {connection.name}: everyone keeps the roles they have, "
            "and administrators can edit them again.",
        )
    return HttpResponseRedirect(reverse("console:sso-preferences", args=[account.slug]))


urlpatterns = [
    path("a/<str:slug>/mapping-roles/", mapping_roles, name="mapping-roles"),
    path("a/<str:slug>/mapping-roles/add/", mapping_role_add, name="mapping-role-add"),
    path("a/<str:slug>/mapping-roles/<str:mapping_role_id>/", mapping_role_edit, name="mapping-role-edit"),
    path("a/<str:slug>/mapping-roles/<str:mapping_role_id>/delete/", mapping_role_delete, name="mapping-role-delete"),
    path("a/<str:slug>/sso/preferences/", preferences, name="sso-preferences"),
    path("a/<str:slug>/sso/preferences/change/", preferences_change, name="sso-preferences-change"),
]
