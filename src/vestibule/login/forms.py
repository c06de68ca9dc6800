"""Browser forms of the sign-in pages."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib.auth import password_validation

from vestibule.domain.emails import InvalidEmail, normalize_email

if TYPE_CHECKING:
    from vestibule.accounts.models import User


class EmailForm(forms.Form):
    email = forms.CharField(
        max_length=254,
        label="Work email",
        widget=forms.EmailInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    next = forms.CharField(required=False, widget=forms.HiddenInput, max_length=2000)

    def clean_email(self) -> str:
        try:
            return normalize_email(self.cleaned_data["email"])
        except InvalidEmail as exc:
            raise forms.ValidationError(f"That does not look like an email address: {exc.reason}.") from None


class PasswordForm(EmailForm):
    password = forms.CharField(
        max_length=1024, widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True})
    )


class TotpForm(forms.Form):
    code = forms.CharField(
        max_length=6,
        min_length=6,
        label="6-digit code",
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "autofocus": True, "pattern": "[0-9]{6}"}
        ),
    )


class NewPasswordForm(forms.Form):
    password1 = forms.CharField(
        label="New password", max_length=1024, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    password2 = forms.CharField(
        label="Repeat it", max_length=1024, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def __init__(self, *args: Any, user: User | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        if data.get("password1") and data.get("password1") != data.get("password2"):
            raise forms.ValidationError("The two passwords differ.")
        if data.get("password1"):
            password_validation.validate_password(str(data["password1"]), self.user)
        return data
