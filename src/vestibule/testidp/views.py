"""Test IdP endpoints: metadata, SSO (HTTP-Redirect in, HTTP-POST out) and IdP-initiated sign-in.

Every view is a 404 unless ``settings.VESTIBULE_TEST_IDP`` is on (``vestibule
demo`` turns it on; production leaves it off). The person picks who to be:
there is no password, which is the point of a test IdP and why it must stay
off in production.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django import forms
from django.conf import settings
from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods

from vestibule.connections.models import Connection
from vestibule.saml import SamlError, build_response, parse_authn_request
from vestibule.saml.bindings import decode_redirect
from vestibule.saml.idp import response_form
from vestibule.saml.xml import SAML, parse_xml, q
from vestibule.signin import adapters
from vestibule.testidp import idp

_SALT = "vestibule.testidp.request"
_MAX_AGE = 600


def _enabled(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.VESTIBULE_TEST_IDP:
            raise Http404("the test identity provider is off")
        return view(request, *args, **kwargs)

    return wrapper


class IdentityForm(forms.Form):
    email = forms.EmailField(
        max_length=254, label="Email", widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True})
    )
    # Optional: a sign-in link (/sso/start/<connection>) brings no login_hint to
    # derive it from, and a required empty field was the first thing people met.
    name = forms.CharField(
        max_length=200, required=False, label="Name (optional)",
        help_text="Sent as the name attribute. Left empty, it is made from the email: jane.doe@… becomes Jane Doe.",
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )  # fmt: skip
    role_mapping = forms.CharField(
        max_length=200, required=False, label="role_mapping (optional)",
        help_text="Sent as the role_mapping attribute; compared with the account's mapping roles.",
    )  # fmt: skip
    roles = forms.CharField(
        max_length=1000, required=False, label="roles (optional)",
        help_text="Comma-separated; sent as one multi-valued roles attribute.",
    )  # fmt: skip

    def attributes(self) -> dict[str, list[str]]:
        data = self.cleaned_data
        attributes = {"email": [data["email"]], "name": [data["name"] or name_from_email(data["email"])]}
        if data.get("role_mapping"):
            attributes["role_mapping"] = [data["role_mapping"]]
        roles = [r.strip() for r in (data.get("roles") or "").split(",") if r.strip()]
        if roles:
            attributes["roles"] = roles
        return attributes


def name_from_email(email: str) -> str:
    return email.split("@")[0].replace(".", " ").replace("_", " ").title() if "@" in email else ""


def identity_form(connection: Connection | None, data: Any = None, *, hint: str = "") -> IdentityForm:
    """The "who do you want to be?" form, its email suggesting the connection's own domain."""
    form = IdentityForm(data, initial={"email": hint, "name": name_from_email(hint)})
    domains = connection.domain_list if connection is not None else []
    if domains:
        form.fields["email"].widget.attrs["placeholder"] = f"jane.doe@{domains[0]}"
    return form


def _refuse(request: HttpRequest, text: str, status: int = 400) -> HttpResponse:
    return render(
        request,
        "vestibule/message.html",
        {"title": "Test identity provider", "text": text, "code": "testidp.refused"},
        status=status,
    )


def _issue(
    request: HttpRequest, connection: Connection, form: IdentityForm, *, request_id: str | None, relay_state: str | None
) -> HttpResponse:
    """Sign a Response for the connection's own ACS and hand it to the browser to post."""
    sp = adapters.service_provider(connection)
    saml_settings = adapters.saml_settings(connection)
    xml = build_response(
        idp.identity_provider(),
        sp_entity_id=sp.entity_id,
        acs_url=sp.acs_url,
        name_id=form.cleaned_data["email"],
        attributes=form.attributes(),
        now=datetime.now(UTC),
        in_response_to=request_id,
        sign_assertion=True,
        sign_response=saml_settings.want_response_signed,
        encrypt_to=sp.encryption.certificate_pem if saml_settings.want_assertions_encrypted and sp.encryption else None,
    )
    form_out = response_form(xml, sp.acs_url, relay_state)
    return render(request, "vestibule/testidp/post.html", {"form": form_out, "connection": connection})


@_enabled
@require_GET
def metadata(request: HttpRequest) -> HttpResponse:
    return HttpResponse(idp.metadata_xml(), content_type="application/samlmetadata+xml")


@_enabled
@require_http_methods(["GET", "POST"])
def sso(request: HttpRequest) -> HttpResponse:
    """GET: an AuthnRequest over HTTP-Redirect → the form. POST: the form → a signed Response."""
    if request.method == "POST":
        return _sso_submit(request)
    query = request.META.get("QUERY_STRING", "")
    try:
        message = decode_redirect(query)
        unverified_issuer = parse_xml(message.xml, what="AuthnRequest").findtext(q(SAML, "Issuer")) or ""
        connection = idp.connection_for_sp(unverified_issuer)
        sp = adapters.service_provider(connection)
        saml_settings = adapters.saml_settings(connection)
        authn = parse_authn_request(
            idp.identity_provider(), query,
            sp_certificate=sp.signing.certificate_pem if sp.signing else None,
            require_signature=saml_settings.sign_authn_requests,
        )  # fmt: skip
    except idp.NotAllowed as exc:
        return _refuse(request, str(exc), status=403)
    except SamlError as exc:
        return _refuse(request, f"This is not a usable SAML AuthnRequest: {exc.description}")
    # No open relay: the response only ever goes to the connection's own ACS.
    if authn.acs_url is not None and authn.acs_url != sp.acs_url:
        return _refuse(
            request, f"The requested AssertionConsumerServiceURL is not this connection's ({sp.acs_url}).", status=403
        )
    hint = request.GET.get("login_hint", "")[:254]
    state = signing.dumps({"c": str(connection.pk), "id": authn.request_id, "rs": authn.relay_state}, salt=_SALT)
    return render(
        request, "vestibule/testidp/login.html",
        {"form": identity_form(connection, hint=hint), "state": state, "connection": connection, "action": request.path},
    )  # fmt: skip


def _sso_submit(request: HttpRequest) -> HttpResponse:
    try:
        state = signing.loads(request.POST.get("state", ""), salt=_SALT, max_age=_MAX_AGE)
        connection = idp.trusted_connection(state["c"])
    except (signing.BadSignature, KeyError, TypeError):
        return _refuse(request, "This sign-in request expired or was altered. Start again from the application.")
    except idp.NotAllowed as exc:
        return _refuse(request, str(exc), status=403)
    form = identity_form(connection, request.POST)
    if not form.is_valid():
        context = {
            "form": form,
            "state": request.POST.get("state", ""),
            "connection": connection,
            "action": request.path,
        }
        return render(request, "vestibule/testidp/login.html", context, status=400)
    return _issue(request, connection, form, request_id=state["id"], relay_state=state["rs"])


@_enabled
@require_http_methods(["GET", "POST"])
def idp_initiated(request: HttpRequest) -> HttpResponse:
    """IdP-initiated sign-in: pick a connection, say who you are, land in Vestibule (no AuthnRequest)."""
    connections = idp.trusting_connections()
    chosen = (
        request.POST.get("connection")
        or request.GET.get("connection")
        or (str(connections[0].pk) if len(connections) == 1 else "")
    )
    form = identity_form(next((c for c in connections if str(c.pk) == chosen), None), request.POST or None)
    if request.method == "POST":
        try:
            connection = idp.trusted_connection(chosen)
        except idp.NotAllowed as exc:
            return _refuse(request, str(exc), status=403)
        if form.is_valid():
            return _issue(request, connection, form, request_id=None, relay_state=None)
    context = {"form": form, "connections": connections, "chosen": chosen, "action": request.path}
    return render(request, "vestibule/testidp/start.html", context, status=400 if request.method == "POST" else 200)
