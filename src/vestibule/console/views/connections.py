"""The sso-admin's connection screens (seed 001 "Managing SSO", seed 003 "OIDC connections").

One page lists the account's connections, each a box with its forms; every
form posts to its own URL and, on success, comes back to the list at that
box (PRG). A refused form re-renders the whole page with what was typed and
the error on its field. The decisions are ``connections.rules``' (the same
functions the admin API calls), and every change is audited as the API
audits it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from vestibule.accounts.models import Account
from vestibule.audit.events import record
from vestibule.authority.principal import SSO_ADMIN, Principal
from vestibule.connections import metadata_refresh, rules
from vestibule.connections.certificates import connection_certificates
from vestibule.connections.keys import read_secrets
from vestibule.connections.metadata_refresh import MetadataFetchError
from vestibule.connections.models import Connection, IdpMetadataSource, MetadataChange
from vestibule.connections.rules import ConnectionRuleError
from vestibule.console.access import account_page
from vestibule.console.forms.connections import (
    AllowLoginForm,
    AutoProvisionForm,
    ConnectionSettingsForm,
    IgnoredEmailsForm,
    MetadataForm,
    MetadataUrlForm,
    NewConnectionForm,
    OidcSettingsForm,
    SamlSettingsForm,
    tie_error,
)
from vestibule.console.pages import console_page, refusal
from vestibule.domain.claims import ClaimMapping
from vestibule.oidc import OidcError
from vestibule.outbound import NETWORK_REASONS
from vestibule.saml import node_saml
from vestibule.signin import adapters, idp_lifecycle

AUTO_PROVISION_ON = (
    "Turn on auto-provisioning? Someone signing in through this provider with an address of its domains that "
    "is not registered yet will get a new user account."
)
AUTO_PROVISION_OFF = (
    "Turn off auto-provisioning? Unknown addresses will be refused at sign-in. Disabling the auto-provision "
    "will not remove the users that were automatically created before."
)
ALLOW_LOGIN_ON = (
    "Allow Login? People created by auto-provisioning will be able to sign in at once, without an approval."
)
ALLOW_LOGIN_OFF = (
    "Stop Allow Login? People created by auto-provisioning from now on wait until an administrator approves them."
)


def _sso_preferences_url(account: Account) -> str | None:
    try:
        return reverse("console:sso-preferences", args=[account.slug])
    except NoReverseMatch:
        return None


@dataclass
class Card:
    """One connection's box: its forms (bound ones when a post was refused) and what the box shows."""

    connection: Connection
    forms: dict[str, forms.Form]
    errors: list[str] = field(default_factory=list)
    generated: bool = False
    metadata_open: bool = False
    settings_open: bool = False

    @property
    def key(self) -> str:
        return self.connection.pk.hex[:12]

    @property
    def is_saml(self) -> bool:
        return self.connection.protocol == Connection.Protocol.SAML

    @property
    def sp(self) -> dict[str, str]:
        return adapters.sp_urls(self.connection)

    @property
    def connect_url(self) -> str:
        return reverse("oidc-connect", args=[self.connection.pk])

    @property
    def redirect_uri(self) -> str:
        return adapters.redirect_uri(self.connection)

    @property
    def client_secret_set(self) -> bool:
        return bool(read_secrets(self.connection).get("client_secret"))

    @property
    def certificates(self) -> list[Any]:
        return connection_certificates(self.connection, timezone.now()) if self.is_saml else []

    @property
    def metadata_source(self) -> IdpMetadataSource | None:
        return IdpMetadataSource.objects.filter(connection=self.connection).first() if self.is_saml else None

    @property
    def pending_change(self) -> MetadataChange | None:
        if not self.is_saml:
            return None
        pending = self.connection.metadata_changes.filter(status=MetadataChange.Status.PENDING)
        return pending.order_by("-pk").first()

    @property
    def show_allow_login(self) -> bool:
        return self.connection.auto_provision or bool(self.forms["allow_login"].errors)

    @property
    def urls(self) -> dict[str, str]:
        args = [self.connection.account.slug, self.connection.pk]
        return {name.replace("-", "_"): reverse(f"console:connection-{name}", args=args) for name in ACTIONS}


def _projects(account: Account) -> list[tuple[str, str]]:
    return [(p.slug, p.name) for p in account.projects.order_by("name")]


def _initial_forms(connection: Connection, key: str) -> dict[str, forms.Form]:
    auto = f"c{key}-%s"
    claims = ClaimMapping.from_dict(connection.claims)
    found: dict[str, forms.Form] = {
        "auto_provision": AutoProvisionForm(initial={"auto_provision": connection.auto_provision}, auto_id=auto),
        "allow_login": AllowLoginForm(
            initial={"provisioned_users_can_login": connection.provisioned_users_can_login}, auto_id=auto
        ),
        "ignored": IgnoredEmailsForm(initial={"ignored_emails": "\n".join(connection.ignored_emails)}, auto_id=auto),
        "settings": ConnectionSettingsForm(
            initial={
                "name": connection.name,
                "linked_projects": list(connection.linked_projects.values_list("slug", flat=True)),
                "claim_email": claims.email,
                "claim_name": claims.name,
                "claim_external_id": claims.external_id,
                "claim_roles": claims.roles,
                "claim_role_mapping": claims.role_mapping,
            },
            projects=_projects(connection.account),
            auto_id=f"s{key}-%s",
        ),
    }
    if connection.protocol == Connection.Protocol.SAML:
        found["saml"] = SamlSettingsForm(
            initial={"settings": json.dumps(connection.saml_settings, indent=2, sort_keys=True)}, auto_id=auto
        )
        found["metadata"] = MetadataForm(auto_id=f"m{key}-%s")
        source = IdpMetadataSource.objects.filter(connection=connection).first()
        found["metadata_url"] = MetadataUrlForm(
            initial={"idp_metadata_url": source.url if source else ""}, auto_id=f"u{key}-%s"
        )
    else:
        oidc = connection.oidc_settings
        found["oidc"] = OidcSettingsForm(
            initial={
                "issuer": oidc.get("issuer", ""),
                "client_id": oidc.get("client_id", ""),
                "scopes": " ".join(oidc.get("scopes") or ["openid", "email", "profile"]),
                "use_userinfo": bool(oidc.get("use_userinfo")),
            },
            auto_id=f"o{key}-%s",
        )
    return found


def _cards(account: Account, focus: Card | None = None, open_dialog: str = "", open_settings: str = "") -> list[Card]:
    connections = (
        Connection.objects.for_account(account)
        .select_related("account")
        .prefetch_related("domains", "linked_projects")
        .order_by("created_at")
    )
    cards = []
    for connection in connections:
        if focus is not None and focus.connection.pk == connection.pk:
            cards.append(focus)
            continue
        card = Card(connection, {})
        card.forms = _initial_forms(connection, card.key)
        # Without script, "Generate from metadata" is a link that opens the dialog here.
        card.metadata_open = card.is_saml and open_dialog == card.key
        card.settings_open = open_settings == card.key
        cards.append(card)
    return cards


def _list_page(
    request: HttpRequest, acting: Principal, account: Account, *, focus: Card | None = None, status: int = 200
) -> HttpResponse:
    return console_page(
        request,
        "connections/list.html",
        acting,
        account=account,
        status=status,
        title="Connections",
        cards=_cards(
            account,
            focus,
            request.GET.get("generate", "")[:12] if request.method == "GET" else "",
            request.GET.get("open", "")[:12] if request.method == "GET" else "",
        ),
        auto_provision_on=AUTO_PROVISION_ON,
        auto_provision_off=AUTO_PROVISION_OFF,
        allow_login_on=ALLOW_LOGIN_ON,
        allow_login_off=ALLOW_LOGIN_OFF,
        sso_preferences_url=_sso_preferences_url(account),
    )


def _back_to(card_or_connection: Card | Connection) -> HttpResponse:
    connection = card_or_connection.connection if isinstance(card_or_connection, Card) else card_or_connection
    url = reverse("console:connections", args=[connection.account.slug])
    return HttpResponseRedirect(f"{url}#c-{connection.pk.hex[:12]}")


def _not_found(request: HttpRequest, acting: Principal, account: Account) -> HttpResponse:
    return refusal(
        request,
        acting,
        404,
        "No such connection",
        f"Account {account.name} has no such connection. Pick one from the list of connections.",
        account=account,
    )


def _connection(account: Account, connection_id: str) -> Connection | None:
    # IDOR check: only this account's connections; an ID of another tenant's is "not found" like a made-up one.
    return Connection.objects.for_account(account).by_id(connection_id)


def _focus(connection: Connection) -> Card:
    card = Card(connection, {})
    card.forms = _initial_forms(connection, card.key)
    return card


def _update(request: HttpRequest, acting: Principal, connection: Connection, changes: dict[str, Any]) -> list[str]:
    """``rules.update_connection`` and its audit event, exactly as ``PATCH /connections/<id>`` does them."""
    warnings = rules.update_connection(connection, changes)
    record(
        "connection.updated",
        account=connection.account,
        connection=connection,
        **acting.actor(),
        fields=sorted(changes),
        warnings=warnings,
    )
    for warning in warnings:
        messages.warning(request, warning)
    return warnings


def _refused_update(
    request: HttpRequest,
    acting: Principal,
    account: Account,
    connection: Connection,
    kind: str,
    form: forms.Form,
    error: ConnectionRuleError,
    fields: dict[str, str],
    default: str | None,
) -> HttpResponse:
    # The rules refused inside their transaction: the row in memory may hold half a change.
    connection.refresh_from_db()
    card = _focus(connection)
    tie_error(form, error, fields, default)
    card.forms[kind] = form
    card.metadata_open = kind == "metadata"
    status = error.status if error.status < 500 else 409
    return _list_page(request, acting, account, focus=card, status=_for_htmx(request, kind, status))


def _for_htmx(request: HttpRequest, kind: str, status: int) -> int:
    """The status of a refused form; 200 for the metadata dialog's htmx request.

    htmx swaps only 2xx answers: the refused dialog (open, errors on its
    fields) must replace the one on the page, as the full page does without script.
    """
    return 200 if kind == "metadata" and request.headers.get("HX-Request") == "true" else status


def _invalid(
    request: HttpRequest, acting: Principal, account: Account, connection: Connection, kind: str, form: forms.Form
) -> HttpResponse:
    card = _focus(connection)
    card.forms[kind] = form
    card.metadata_open = kind == "metadata"
    return _list_page(request, acting, account, focus=card, status=_for_htmx(request, kind, 400))


# Pages ------------------------------------------------------------------------------


@require_GET
@account_page(SSO_ADMIN)
def connection_list(request: HttpRequest, acting: Principal, account: Account) -> HttpResponse:
    return _list_page(request, acting, account)


@require_GET
@account_page(SSO_ADMIN)
def connection_detail(request: HttpRequest, acting: Principal, account: Account, connection_id: str) -> HttpResponse:
    """The connection's box in the list; ``?section=claims`` opens its claim mapping (linked from Preferences)."""
    connection = _connection(account, connection_id)
    if connection is None:
        return _not_found(request, acting, account)
    if request.GET.get("section") == "claims":
        key = connection.pk.hex[:12]
        url = reverse("console:connections", args=[account.slug])
        return HttpResponseRedirect(f"{url}?open={key}#c-{key}-claims")
    return _back_to(connection)


@require_http_methods(["GET", "POST"])
@account_page(SSO_ADMIN)
def connection_new(request: HttpRequest, acting: Principal, account: Account) -> HttpResponse:
    form = NewConnectionForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            warnings: list[str] = []
            try:
                connection = rules.create_connection(
                    account, form.payload(), may_claim=acting.is_operator, warnings=warnings
                )
            except ConnectionRuleError as exc:
                # The rules speak the API's language; here the way to prove a domain is a console page.
                exc.detail = re.sub(r"prove it \(POST [^)]*\)", "prove it under Domains", exc.detail)
                tie_error(form, exc, NewConnectionForm.FIELDS, None)
                status = exc.status
            else:
                record(
                    "connection.created",
                    account=account,
                    connection=connection,
                    **acting.actor(),
                    protocol=connection.protocol,
                    domains=connection.domain_list,
                    warnings=warnings,
                )
                messages.success(request, f"Connection {connection.name} created. It is disabled until you enable it.")
                for warning in warnings:
                    messages.warning(request, warning)
                return _back_to(connection)
    return console_page(
        request,
        "connections/new.html",
        acting,
        account=account,
        status=status,
        title="New connection",
        form=form,
        is_operator=acting.is_operator,
    )


# Actions on one connection ------------------------------------------------------------------


def _post_on_connection(view: Any) -> Any:
    """An sso-admin's POST about one of the account's connections; others get the 404/403 pages."""

    @require_POST
    @account_page(SSO_ADMIN)
    def wrapper(request: HttpRequest, acting: Principal, account: Account, connection_id: str) -> HttpResponse:
        connection = _connection(account, connection_id)
        if connection is None:
            return _not_found(request, acting, account)
        response: HttpResponse = view(request, acting, account, connection)
        return response

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


@_post_on_connection
def set_enabled(request: HttpRequest, acting: Principal, account: Account, connection: Connection) -> HttpResponse:
    enable = request.POST.get("enabled") == "on"
    try:
        _update(request, acting, connection, {"enabled": enable})
    except ConnectionRuleError as exc:
        connection.refresh_from_db()
        card = _focus(connection)
        detail = exc.detail.replace(
            "set them or PUT the IdP metadata first", "fill them in or generate them from metadata, then Save"
        )
        card.errors.append(f"{connection.name} was not enabled: {detail}.")
        return _list_page(request, acting, account, focus=card, status=exc.status)
    messages.success(request, f"{connection.name} is {'enabled' if enable else 'disabled'}.")
    return _back_to(connection)


@_post_on_connection
def save_saml(request: HttpRequest, acting: Principal, account: Account, connection: Connection) -> HttpResponse:
    if connection.protocol != Connection.Protocol.SAML:
        return _wrong_protocol(request, acting, account, connection)
    form = SamlSettingsForm(request.POST, auto_id=f"c{connection.pk.hex[:12]}-%s")
    if not form.is_valid():
        return _invalid(request, acting, account, connection, "saml", form)
    doc = form.cleaned_data["settings"]
    if not node_saml.is_node_saml(doc):
        # The text area is the whole document: a key the admin deleted goes back to its default.
        doc = {**{key: None for key in connection.saml_settings if key not in doc}, **doc}
    try:
        _update(request, acting, connection, {"saml": doc})
    except ConnectionRuleError as exc:
        return _refused_update(
            request, acting, account, connection, "saml", form, exc, SamlSettingsForm.FIELDS, "settings"
        )
    messages.success(request, f"SAML settings of {connection.name} saved.")
    return _back_to(connection)


@_post_on_connection
def generate_metadata(
    request: HttpRequest, acting: Principal, account: Account, connection: Connection
) -> HttpResponse:
    """Seed 001 "Generating SAML settings from metadata": the result replaces the text area, unsaved."""
    if connection.protocol != Connection.Protocol.SAML:
        return _wrong_protocol(request, acting, account, connection)
    form = MetadataForm(request.POST, auto_id=f"m{connection.pk.hex[:12]}-%s")
    if not form.is_valid():
        return _invalid(request, acting, account, connection, "metadata", form)
    by_url = not form.cleaned_data["metadata"]
    # A document fetched from the URL that is not usable metadata is the URL's problem, shown there.
    fields = {**MetadataForm.FIELDS, "metadata": "metadata_url"} if by_url else MetadataForm.FIELDS
    try:
        if not by_url:
            settings = rules.import_idp_metadata(connection, form.cleaned_data["metadata"].encode(), save=False)
        else:
            settings = metadata_refresh.generate_from_url(
                connection, adapters.http_client(), form.cleaned_data["metadata_url"]
            )
    except ConnectionRuleError as exc:
        return _refused_update(request, acting, account, connection, "metadata", form, exc, fields, "metadata")
    except MetadataFetchError as exc:
        error = ConnectionRuleError(422, f"The metadata URL gave no usable metadata ({exc.summary}).", "metadata_url")
        return _refused_update(request, acting, account, connection, "metadata", form, error, fields, "metadata_url")
    card = _focus(connection)
    card.forms["saml"] = SamlSettingsForm(
        initial={"settings": json.dumps(settings, indent=2, sort_keys=True)}, auto_id=f"c{card.key}-%s"
    )
    card.generated = True
    return _list_page(request, acting, account, focus=card)


@_post_on_connection
def save_metadata_url(
    request: HttpRequest, acting: Principal, account: Account, connection: Connection
) -> HttpResponse:
    if connection.protocol != Connection.Protocol.SAML:
        return _wrong_protocol(request, acting, account, connection)
    form = MetadataUrlForm(request.POST, auto_id=f"u{connection.pk.hex[:12]}-%s")
    if not form.is_valid():
        return _invalid(request, acting, account, connection, "metadata_url", form)
    url = form.cleaned_data["idp_metadata_url"].strip() or None
    try:
        _update(request, acting, connection, {"idp_metadata_url": url})
    except ConnectionRuleError as exc:
        return _refused_update(
            request, acting, account, connection, "metadata_url", form, exc, MetadataUrlForm.FIELDS, "idp_metadata_url"
        )
    messages.success(
        request,
        f"{connection.name} reads its IdP metadata from {url} (use “Read it now” to read it at once)."
        if url
        else f"{connection.name} no longer re-reads IdP metadata from a URL.",
    )
    return _back_to(connection)


@_post_on_connection
def refresh_metadata_now(
    request: HttpRequest, acting: Principal, account: Account, connection: Connection
) -> HttpResponse:
    """As ``POST .../saml/idp-metadata/refresh``: read the URL now, through the guarded client; audited there."""
    if connection.protocol != Connection.Protocol.SAML:
        return _wrong_protocol(request, acting, account, connection)
    try:
        result = idp_lifecycle.refresh(connection, trigger="console", actor=acting.actor(), request=request)
    except (MetadataFetchError, ConnectionRuleError) as exc:
        connection.refresh_from_db()
        card = _focus(connection)
        if isinstance(exc, MetadataFetchError):
            card.errors.append(
                f"The IdP metadata URL gave no usable metadata ({exc.summary}); the settings are unchanged."
            )
            return _list_page(request, acting, account, focus=card, status=422)
        card.errors.append(f"Nothing was read: {exc.detail}.")
        return _list_page(request, acting, account, focus=card, status=exc.status)
    outcome = {
        "unchanged": "The IdP metadata has not changed.",
        "adopted": "The IdP metadata changed and was adopted; see the certificates below.",
        "pending": "The IdP metadata would drop every trusted certificate: the change waits for your decision below.",
    }[result.outcome]
    (messages.warning if result.outcome == "pending" else messages.success)(request, outcome)
    return _back_to(connection)


@_post_on_connection
def decide_metadata_change(
    request: HttpRequest, acting: Principal, account: Account, connection: Connection
) -> HttpResponse:
    """Confirm or discard a held metadata change, as the API's confirm/discard endpoints do; audited."""
    if connection.protocol != Connection.Protocol.SAML:
        return _wrong_protocol(request, acting, account, connection)
    decision = request.POST.get("decision")
    change_id = request.POST.get("change_id", "")[:20]
    decided_by = idp_lifecycle.actor_label(acting.actor())
    try:
        if decision == "confirm":
            change = metadata_refresh.confirm(connection, change_id, decided_by=decided_by, now=timezone.now())
            record(
                "connection.idp_metadata_confirmed", account=connection.account, connection=connection,
                **acting.actor(), change_id=change.pk, added_certificates=change.added_certificates,
                removed_certificates=change.removed_certificates,
            )  # fmt: skip
            messages.success(request, f"{connection.name} now trusts the certificates of the new metadata.")
        elif decision == "discard":
            change = metadata_refresh.discard(connection, change_id, decided_by=decided_by, now=timezone.now())
            record(
                "connection.idp_metadata_discarded", account=connection.account, connection=connection,
                **acting.actor(), change_id=change.pk,
            )  # fmt: skip
            messages.success(request, f"The metadata change was discarded; {connection.name} keeps its certificates.")
        else:
            raise ConnectionRuleError(422, "decide with Confirm or Discard", "decision")
    except ConnectionRuleError as exc:
        connection.refresh_from_db()
        card = _focus(connection)
        card.errors.append(f"Nothing was changed: {exc.detail}.")
        return _list_page(request, acting, account, focus=card, status=exc.status)
    return _back_to(connection)


@_post_on_connection
def set_auto_provision(
    request: HttpRequest, acting: Principal, account: Account, connection: Connection
) -> HttpResponse:
    form = AutoProvisionForm(request.POST)
    form.is_valid()  # a checkbox: absent is off, anything sent is on
    on = bool(form.cleaned_data.get("auto_provision"))
    _update(request, acting, connection, {"auto_provision": on})
    messages.success(request, f"Auto-provisioning of {connection.name} is {'on' if on else 'off'}.")
    return _back_to(connection)


@_post_on_connection
def set_allow_login(request: HttpRequest, acting: Principal, account: Account, connection: Connection) -> HttpResponse:
    form = AllowLoginForm(request.POST, auto_id=f"c{connection.pk.hex[:12]}-%s")
    form.is_valid()
    on = bool(form.cleaned_data.get("provisioned_users_can_login"))
    try:
        _update(request, acting, connection, {"provisioned_users_can_login": on})
    except ConnectionRuleError as exc:
        exc.detail = (
            "Allow Login applies to people created by auto-provisioning, which is off for this connection: "
            "turn “Automatically provision new users” on first. Nothing was saved."
        )
        return _refused_update(
            request,
            acting,
            account,
            connection,
            "allow_login",
            form,
            exc,
            AllowLoginForm.FIELDS,
            "provisioned_users_can_login",
        )
    messages.success(request, f"Allow Login of {connection.name} is {'on' if on else 'off'}.")
    return _back_to(connection)


@_post_on_connection
def save_ignored(request: HttpRequest, acting: Principal, account: Account, connection: Connection) -> HttpResponse:
    form = IgnoredEmailsForm(request.POST, auto_id=f"c{connection.pk.hex[:12]}-%s")
    if not form.is_valid():
        return _invalid(request, acting, account, connection, "ignored", form)
    try:
        _update(request, acting, connection, {"ignored_emails": form.cleaned_data["ignored_emails"]})
    except ConnectionRuleError as exc:
        exc.detail += ". Nothing was saved: remove or correct that address and save again."
        return _refused_update(
            request, acting, account, connection, "ignored", form, exc, IgnoredEmailsForm.FIELDS, "ignored_emails"
        )
    messages.success(request, f"Ignored emails of {connection.name} saved.")
    return _back_to(connection)


@_post_on_connection
def save_settings(request: HttpRequest, acting: Principal, account: Account, connection: Connection) -> HttpResponse:
    form = ConnectionSettingsForm(request.POST, projects=_projects(account), auto_id=f"s{connection.pk.hex[:12]}-%s")
    if not form.is_valid():
        return _invalid(request, acting, account, connection, "settings", form)
    try:
        _update(request, acting, connection, form.changes(connection.claims))
    except ConnectionRuleError as exc:
        return _refused_update(
            request, acting, account, connection, "settings", form, exc, ConnectionSettingsForm.FIELDS, None
        )
    messages.success(request, f"Settings of {connection.name} saved.")
    return _back_to(connection)


@_post_on_connection
def save_oidc(request: HttpRequest, acting: Principal, account: Account, connection: Connection) -> HttpResponse:
    if connection.protocol != Connection.Protocol.OIDC:
        return _wrong_protocol(request, acting, account, connection)
    form = OidcSettingsForm(request.POST, auto_id=f"o{connection.pk.hex[:12]}-%s")
    if not form.is_valid():
        return _invalid(request, acting, account, connection, "oidc", form)
    try:
        _update(request, acting, connection, form.changes())
    except ConnectionRuleError as exc:
        return _refused_update(request, acting, account, connection, "oidc", form, exc, OidcSettingsForm.FIELDS, None)
    messages.success(request, f"OpenID Connect settings of {connection.name} saved.")
    return _back_to(connection)


@_post_on_connection
def unbind(request: HttpRequest, acting: Principal, account: Account, connection: Connection) -> HttpResponse:
    if connection.protocol != Connection.Protocol.OIDC:
        return _wrong_protocol(request, acting, account, connection)
    _update(request, acting, connection, {"external_tenant_id": None})
    messages.success(
        request,
        f"{connection.name} is no longer bound to an external organization: nobody can sign in through it until "
        "an sso-admin uses Connect organization again.",
    )
    return _back_to(connection)


@_post_on_connection
def delete(request: HttpRequest, acting: Principal, account: Account, connection: Connection) -> HttpResponse:
    record(
        "connection.deleted", account=connection.account, connection=connection, **acting.actor(), name=connection.name
    )
    name = connection.name
    connection.delete()
    messages.success(request, f"Connection {name} deleted.")
    return HttpResponseRedirect(reverse("console:connections", args=[account.slug]))


def _wrong_protocol(request: HttpRequest, acting: Principal, account: Account, connection: Connection) -> HttpResponse:
    return refusal(
        request,
        acting,
        422,
        "Not for this kind of connection",
        f"{connection.name} is a{'n OIDC' if connection.protocol == 'oidc' else ' SAML'} connection; this action "
        "belongs to the other protocol. Go back to the list of connections.",
        account=account,
    )


@require_GET
@account_page(SSO_ADMIN)
def setup_url(request: HttpRequest, acting: Principal, account: Account, connection_id: str) -> HttpResponse:
    """Seed 003 "Setup URL": what the external organization's administrator visits (admin consent)."""
    connection = _connection(account, connection_id)
    if connection is None:
        return _not_found(request, acting, account)
    if connection.protocol != Connection.Protocol.OIDC:
        return _wrong_protocol(request, acting, account, connection)
    url, problem = None, None
    try:
        url = adapters.relying_party(connection).setup_url(adapters.redirect_uri(connection))
    except OidcError as exc:
        # As GET /connections/<id>/oidc/setup-url: only our reason text, never the provider's.
        refused = exc.outbound_reason is not None and exc.outbound_reason not in NETWORK_REASONS
        problem = (
            f"The provider could not be used: {exc.code}"
            + (f" ({exc.received})" if exc.received else "")
            + ". "
            + (
                "Check the issuer URL in the settings."
                if refused
                else "The provider did not answer as expected; try again in a moment, or check its status."
            )
        )
    return console_page(
        request,
        "connections/setup_url.html",
        acting,
        account=account,
        title=f"Setup URL of {connection.name}",
        card=_focus(connection),
        setup_url=url,
        problem=problem,
    )


ACTIONS = (
    "enabled", "saml", "metadata", "metadata-url", "metadata-refresh", "metadata-decision", "auto-provision",
    "allow-login", "ignored", "settings", "oidc", "setup-url", "unbind", "delete",
)  # fmt: skip


def _connection_path(suffix: str, view: Any, name: str) -> URLPattern:
    pattern: URLPattern = path(
        f"a/<str:slug>/connections/<str:connection_id>/{suffix}", view, name=f"connection-{name}"
    )
    return pattern


urlpatterns: list[URLPattern] = [
    path("a/<str:slug>/connections/", connection_list, name="connections"),
    path("a/<str:slug>/connections/new", connection_new, name="connection-new"),
    path("a/<str:slug>/connections/<str:connection_id>/", connection_detail, name="connection"),
    _connection_path("enabled", set_enabled, "enabled"),
    _connection_path("saml", save_saml, "saml"),
    _connection_path("metadata", generate_metadata, "metadata"),
    _connection_path("metadata-url", save_metadata_url, "metadata-url"),
    _connection_path("metadata-refresh", refresh_metadata_now, "metadata-refresh"),
    _connection_path("metadata-decision", decide_metadata_change, "metadata-decision"),
    _connection_path("auto-provision", set_auto_provision, "auto-provision"),
    _connection_path("allow-login", set_allow_login, "allow-login"),
    _connection_path("ignored-emails", save_ignored, "ignored"),
    _connection_path("settings", save_settings, "settings"),
    _connection_path("oidc", save_oidc, "oidc"),
    _connection_path("setup-url", setup_url, "setup-url"),
    _connection_path("unbind", unbind, "unbind"),
    _connection_path("delete", delete, "delete"),
]
