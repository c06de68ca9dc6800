"""Forms of the operator's screens: new accounts and domain claims."""

from __future__ import annotations

from django import forms

from vestibule.console.forms.diagnostics import SLUG


def _slug(value: str) -> str:
    value = value.strip()
    if not SLUG.fullmatch(value):
        raise forms.ValidationError("Lowercase letters, digits and inner hyphens only, at most 50 characters.")
    return value


class AccountForm(forms.Form):
    slug = forms.CharField(
        label="Slug", max_length=50, help_text="Lowercase letters, digits and inner hyphens; it appears in URLs."
    )
    name = forms.CharField(label="Name", max_length=200)

    def clean_slug(self) -> str:
        return _slug(self.cleaned_data["slug"])


class ClaimForm(forms.Form):
    account = forms.CharField(label="Account", max_length=50, help_text="The slug of the account that owns the domain.")
    domain = forms.CharField(label="Domain", max_length=253, help_text="For example example.com.")

    def clean_account(self) -> str:
        return _slug(self.cleaned_data["account"])
