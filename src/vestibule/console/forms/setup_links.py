"""The form creating a setup link: which connection, which provider's wizard, how long."""

from __future__ import annotations

from typing import Any, cast

from django import forms

from vestibule.accounts.models import Account
from vestibule.connections.models import Connection
from vestibule.setup.models import SetupLink
from vestibule.setup.services import DEFAULT_LIFETIME, LIFETIMES


def _hours_label(hours: int) -> str:
    return (
        f"{hours // 24} days"
        if hours >= 48
        else ("1 day" if hours == 24 else f"{hours} hour{'s' if hours > 1 else ''}")
    )


class SetupLinkForm(forms.Form):
    connection = forms.ChoiceField(
        label="Connection", help_text="The link configures this connection only; it stays disabled until you enable it."
    )
    provider = forms.ChoiceField(
        label="Identity provider",
        choices=SetupLink.Provider.choices,
        help_text="The wizard the IT admin follows. ADFS is SAML only; Generic OIDC is for OpenID Connect connections.",
    )
    hours = forms.TypedChoiceField(
        label="Valid for",
        coerce=int,
        choices=[(h, _hours_label(h)) for h in LIFETIMES],
        initial=DEFAULT_LIFETIME,
        help_text="The link works once, in the first browser that opens it, until it is finished, revoked or expired.",
    )

    def __init__(self, *args: Any, account: Account, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        connections = Connection.objects.for_account(account).order_by("name")[:500]
        self.connections = {str(c.pk): c for c in connections}
        cast(forms.ChoiceField, self.fields["connection"]).choices = [
            (pk, f"{c.name} ({c.protocol.upper()}, {'enabled' if c.enabled else 'disabled'})")
            for pk, c in self.connections.items()
        ]

    def clean_connection(self) -> Connection:
        value = self.cleaned_data["connection"]
        connection = self.connections.get(value)
        if connection is None:
            raise forms.ValidationError("Pick one of this account's connections.")
        return connection
