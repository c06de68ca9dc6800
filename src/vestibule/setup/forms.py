"""The wizard's forms: the provider, the SAML metadata (URL or XML), the OIDC client."""

from __future__ import annotations

from typing import Any, cast

from django import forms

from vestibule.setup.models import SetupLink
from vestibule.setup.services import MAX_METADATA_BYTES


class ProviderForm(forms.Form):
    provider = forms.ChoiceField(label="Your identity provider", widget=forms.RadioSelect)

    def __init__(self, *args: Any, providers: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["provider"]).choices = [(p, SetupLink.Provider(p).label) for p in providers]


class SamlMetadataForm(forms.Form):
    metadata_url = forms.CharField(
        label="Metadata URL",
        required=False,
        max_length=2000,
        help_text="An https:// address your identity provider publishes its SAML metadata at. "
        "It is read now and followed later, so certificate rollovers arrive by themselves.",
        widget=forms.URLInput(attrs={"inputmode": "url", "autocomplete": "off", "spellcheck": "false"}),
    )
    metadata_xml = forms.CharField(
        label="Or the metadata XML",
        required=False,
        # Characters; the byte limit is checked on the encoded text.
        max_length=MAX_METADATA_BYTES,
        help_text="Paste the whole file, from <?xml or <EntityDescriptor to its end.",
        widget=forms.Textarea(attrs={"rows": 8, "class": "code", "spellcheck": "false"}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.errors and not data.get("metadata_url", "").strip() and not data.get("metadata_xml", "").strip():
            self.add_error("metadata_url", "Give the metadata URL, or paste the metadata XML below.")
        return data


class OidcClientForm(forms.Form):
    issuer = forms.CharField(
        label="Issuer",
        max_length=500,
        help_text="The URL your provider serves /.well-known/openid-configuration under.",
        widget=forms.URLInput(attrs={"inputmode": "url", "autocomplete": "off", "spellcheck": "false"}),
    )
    client_id = forms.CharField(
        label="Client ID", max_length=500, widget=forms.TextInput(attrs={"autocomplete": "off"})
    )
    client_secret = forms.CharField(
        label="Client secret",
        required=False,
        max_length=2000,
        help_text="Stored encrypted and never shown again. Leave empty to keep the one saved before.",
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
    )
