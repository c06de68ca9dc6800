"""Forms of the connection screens (seeds 001 and 003): input shape only; the rules live in ``connections.rules``.

Each form turns what the sso-admin typed into the change the admin API's
PATCH would take, so one service function (``rules.update_connection``)
decides for both. A rule's refusal names a field in the API's terms
(``saml.sso_url``, ``ignored_emails[2]``, ``oidc.issuer``); :func:`tie_error`
puts it on the form field that holds that value.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms

from vestibule.connections.rules import MAX_DOMAINS, MAX_IGNORED, ConnectionRuleError

MAX_SETTINGS_CHARS = 64 * 1024
MAX_METADATA_CHARS = 512 * 1024
MAX_LINES_CHARS = 300 * 1024


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def tie_error(form: forms.Form, error: ConnectionRuleError, fields: dict[str, str], default: str | None) -> None:
    """Put a rule's refusal on the form field holding the value it names (else ``default``, else the form)."""
    name = (error.field or "").split("[", 1)[0]
    target = fields.get(name)
    if target is None:
        target = next((f for prefix, f in fields.items() if name.startswith(prefix + ".")), default)
    form.add_error(target, error.detail)


class NewConnectionForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="How the sso-admins will recognise it, e.g. “Okta”.")
    protocol = forms.ChoiceField(choices=[("saml", "SAML 2.0"), ("oidc", "OpenID Connect")], initial="saml")
    domains = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        max_length=MAX_DOMAINS * 260,
        help_text=(
            "One email domain per line. The domains are fixed once the connection exists: to serve "
            "another domain later, create a new connection."
        ),
    )
    issuer = forms.CharField(
        required=False,
        max_length=2000,
        label="OIDC issuer",
        help_text="OpenID Connect only: the provider's issuer URL.",
    )
    client_id = forms.CharField(required=False, max_length=500, label="OIDC client ID")
    client_secret = forms.CharField(
        required=False,
        max_length=2000,
        label="OIDC client secret",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Stored encrypted; it is never shown again.",
    )

    def clean_domains(self) -> list[str]:
        domains = _lines(self.cleaned_data["domains"])
        if not domains:
            raise forms.ValidationError("Give at least one email domain, e.g. example.com.")
        if len(domains) > MAX_DOMAINS:
            raise forms.ValidationError(f"A connection serves at most {MAX_DOMAINS} domains.")
        return domains

    def payload(self) -> dict[str, Any]:
        data = self.cleaned_data
        payload: dict[str, Any] = {"protocol": data["protocol"], "name": data["name"], "domains": data["domains"]}
        if data["protocol"] == "oidc":
            oidc = {"issuer": data["issuer"], "client_id": data["client_id"]}
            if data["client_secret"]:
                oidc["client_secret"] = data["client_secret"]
            payload["oidc"] = oidc
        return payload

    FIELDS = {
        "domains": "domains",
        "domain": "domains",
        "name": "name",
        "oidc.issuer": "issuer",
        "oidc.client_id": "client_id",
        "oidc.client_secret": "client_secret",
        "oidc": "issuer",
    }


class SamlSettingsForm(forms.Form):
    settings = forms.CharField(
        label="SAML settings",
        max_length=MAX_SETTINGS_CHARS,
        widget=forms.Textarea(attrs={"class": "code", "rows": 16, "spellcheck": "false"}),
        help_text=(
            "JSON. The native keys (idp_entity_id, sso_url, certificates, name_id_format, …) or a node-saml "
            'options object ("entryPoint", "idpIssuer", "cert", "identifierFormat": '
            '"urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress").'
        ),
    )

    def clean_settings(self) -> dict[str, Any]:
        text = self.cleaned_data["settings"]
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"This is not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}. "
                "Fix it there and save again."
            ) from None
        except RecursionError:
            raise forms.ValidationError("This JSON is nested too deeply to be SAML settings.") from None
        if not isinstance(doc, dict):
            raise forms.ValidationError('The SAML settings are one JSON object: { "key": value, … }.')
        return doc

    FIELDS = {"saml": "settings"}


class MetadataForm(forms.Form):
    metadata = forms.CharField(
        required=False,
        label="IdP metadata XML",
        max_length=MAX_METADATA_CHARS,
        widget=forms.Textarea(attrs={"class": "code", "rows": 10, "spellcheck": "false"}),
        help_text="Paste the identity provider's SAML metadata document (<EntityDescriptor …>).",
    )
    metadata_url = forms.CharField(
        required=False,
        max_length=2000,
        label="Or the IdP metadata URL",
        widget=forms.URLInput(),
        help_text="An https URL, read once now through the guarded outbound client (no private addresses, no redirects).",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        xml, url = (data.get("metadata") or "").strip(), (data.get("metadata_url") or "").strip()
        if not self.errors:
            if xml and url:
                self.add_error("metadata_url", "Give the metadata XML or its URL, not both.")
            elif not xml and not url:
                self.add_error("metadata", "Paste the metadata XML, or give its URL below.")
        data["metadata"], data["metadata_url"] = xml, url
        return data

    FIELDS = {"metadata": "metadata", "idp_metadata_url": "metadata_url", "metadata_url": "metadata_url"}


class MetadataUrlForm(forms.Form):
    idp_metadata_url = forms.CharField(
        required=False,
        max_length=2000,
        label="IdP metadata URL",
        widget=forms.URLInput(),
        help_text=(
            "Optional. Re-read every 12 hours, so a key rollover the identity provider announces there is followed; "
            "a change that would drop every trusted certificate waits for your confirmation. Empty: not re-read."
        ),
    )

    FIELDS = {"idp_metadata_url": "idp_metadata_url"}


class AutoProvisionForm(forms.Form):
    auto_provision = forms.BooleanField(required=False, label="Automatically provision new users")


class AllowLoginForm(forms.Form):
    provisioned_users_can_login = forms.BooleanField(
        required=False,
        label="Allow Login",
        help_text=(
            "On: people created by auto-provisioning can sign in at once. Off: they wait under Pending "
            "approval until an administrator approves them."
        ),
    )

    FIELDS = {"provisioned_users_can_login": "provisioned_users_can_login"}


class IgnoredEmailsForm(forms.Form):
    ignored_emails = forms.CharField(
        required=False,
        label="Ignored emails",
        max_length=MAX_LINES_CHARS,
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false"}),
        help_text=(
            "One address per line. These addresses of the connection's domains keep signing in with their "
            "password instead of being sent to the identity provider."
        ),
    )

    def clean_ignored_emails(self) -> list[str]:
        emails = _lines(self.cleaned_data["ignored_emails"])
        if len(emails) > MAX_IGNORED:
            raise forms.ValidationError(f"At most {MAX_IGNORED} ignored emails.")
        return emails

    FIELDS = {"ignored_emails": "ignored_emails"}


class ConnectionSettingsForm(forms.Form):
    """Name, linked projects and the claim names (DESIGN "Connection": claim mapping)."""

    name = forms.CharField(max_length=200)
    linked_projects = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Projects the people signing in through this connection get access to.",
    )
    claim_email = forms.CharField(max_length=300, label="Email claim")
    claim_name = forms.CharField(max_length=300, label="Name claim")
    claim_external_id = forms.CharField(
        required=False, max_length=300, label="External ID claim", help_text="Empty: the NameID (SAML) or sub (OIDC)."
    )
    claim_roles = forms.CharField(required=False, max_length=300, label="Roles claim")
    claim_role_mapping = forms.CharField(max_length=300, label="Role mapping claim")

    def __init__(self, *args: Any, projects: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        linked = self.fields["linked_projects"]
        assert isinstance(linked, forms.MultipleChoiceField)
        linked.choices = projects

    def changes(self, current_claims: dict[str, Any]) -> dict[str, Any]:
        data = self.cleaned_data
        claims = dict(current_claims)
        for key in ("email", "name", "external_id", "roles", "role_mapping"):
            claims[key] = data[f"claim_{key}"]
        return {"name": data["name"], "linked_projects": list(data["linked_projects"]), "claims": claims}

    FIELDS = {
        "name": "name",
        "linked_projects": "linked_projects",
        "claims.email": "claim_email",
        "claims.name": "claim_name",
        "claims.external_id": "claim_external_id",
        "claims.roles": "claim_roles",
        "claims.role_mapping": "claim_role_mapping",
    }


class OidcSettingsForm(forms.Form):
    issuer = forms.CharField(max_length=2000, help_text="The provider's exact issuer URL (https).")
    client_id = forms.CharField(max_length=500, label="Client ID")
    client_secret = forms.CharField(
        required=False,
        max_length=2000,
        label="Client secret",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )
    scopes = forms.CharField(max_length=1000, help_text="Separated by spaces; openid is required.")
    use_userinfo = forms.BooleanField(required=False, label="Also read the UserInfo endpoint")

    def changes(self) -> dict[str, Any]:
        data = self.cleaned_data
        oidc: dict[str, Any] = {
            "issuer": data["issuer"].strip(),
            "client_id": data["client_id"].strip(),
            "scopes": data["scopes"].split(),
            "use_userinfo": data["use_userinfo"],
        }
        # Empty keeps the stored secret: it is never sent back to the page to be re-submitted.
        if data["client_secret"]:
            oidc["client_secret"] = data["client_secret"]
        return {"oidc": oidc}

    FIELDS = {
        "oidc.issuer": "issuer",
        "oidc.client_id": "client_id",
        "oidc.client_secret": "client_secret",
        "oidc.scopes": "scopes",
        "oidc.use_userinfo": "use_userinfo",
    }
