"""Forms of the user-management screens: search, add or invite, profile sections, role editors, projects."""

from __future__ import annotations

import re
from typing import Any

from django import forms

from vestibule.accounts.roles import get_catalog
from vestibule.domain.emails import InvalidEmail, normalize_email

SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?")
MAX_EXTERNAL_ID = 512


def role_choices() -> list[tuple[str, str]]:
    catalog = get_catalog()
    return [(name, name) for name in sorted(catalog.roles)]


def _choices(form: forms.Form, name: str, choices: list[tuple[str, str]]) -> None:
    field = form.fields[name]
    assert isinstance(field, forms.ChoiceField)
    field.choices = choices


class SearchForm(forms.Form):
    q = forms.CharField(label="Search by email or name", required=False, max_length=254)


class EmailField(forms.CharField):
    def clean(self, value: Any) -> str:
        text = super().clean(value)
        try:
            return normalize_email(text)
        except InvalidEmail as exc:
            raise forms.ValidationError(f"This is not an email address ({exc.reason}).") from None


class AddUserForm(forms.Form):
    email = EmailField(label="Email", max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "off"}))
    name = forms.CharField(label="Name", required=False, max_length=200)
    roles = forms.MultipleChoiceField(
        label="Account roles",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Roles in the whole account, including every project.",
    )
    projects = forms.MultipleChoiceField(
        label="Projects",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Projects the person may enter.",
    )
    login_method = forms.ChoiceField(
        label="Sign-in",
        required=False,
        choices=[("password", "Log in with Password"), ("sso", "Log in with SSO")],
        initial="password",
        widget=forms.RadioSelect,
        help_text="Only the account that owns the person's email domain chooses this; others send an invitation.",
    )
    send_invitation = forms.BooleanField(label="Email them a link to choose a password", required=False, initial=True)

    def __init__(self, *args: Any, projects: list[tuple[str, str]], connections: list[tuple[str, str]], **kw: Any):
        super().__init__(*args, **kw)
        _choices(self, "roles", role_choices())
        _choices(self, "projects", projects)
        self.connection_fields: list[tuple[str, str]] = []
        for pk, name in connections:
            key = f"external_id_{pk}"
            self.fields[key] = forms.CharField(
                label=f"External user ID at {name}",
                required=False,
                max_length=MAX_EXTERNAL_ID,
                strip=False,
                help_text="Leave empty to use the email: the first sign-in through this connection links it. "
                "Type the SAML NameID or OIDC sub the provider sends if it is not the email.",
            )
            self.connection_fields.append((key, pk))

    def external_ids(self) -> list[tuple[str, str | None]]:
        return [(pk, self.cleaned_data[key]) for key, pk in self.connection_fields if self.cleaned_data.get(key)]


class NameForm(forms.Form):
    name = forms.CharField(label="Name", required=False, max_length=200)


class AuthenticationForm(forms.Form):
    login_method = forms.ChoiceField(
        label="Authentication",
        choices=[("sso", "Log in with SSO"), ("password", "Log in with Password")],
        widget=forms.RadioSelect,
    )


class ExternalIdForm(forms.Form):
    connection = forms.CharField(max_length=64, widget=forms.HiddenInput)
    external_id = forms.CharField(
        label="External user ID",
        required=False,
        max_length=MAX_EXTERNAL_ID,
        strip=False,
        help_text="The exact SAML NameID or OIDC sub; empty removes the link (the next sign-in links by email).",
    )


class ActiveForm(forms.Form):
    active = forms.ChoiceField(choices=[("on", "on"), ("off", "off")])


class RolesForm(forms.Form):
    project = forms.CharField(required=False, max_length=50, widget=forms.HiddenInput)
    roles = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        _choices(self, "roles", role_choices())

    def clean_project(self) -> str:
        value: str = self.cleaned_data.get("project") or ""
        if value and not SLUG.fullmatch(value):
            raise forms.ValidationError("This is not a project of this account.")
        return value


class ProjectForm(forms.Form):
    slug = forms.CharField(
        label="Slug",
        max_length=50,
        help_text="1-50 lowercase letters, digits and inner hyphens, e.g. production or sandbox.",
    )
    name = forms.CharField(label="Name", max_length=200)

    def clean_slug(self) -> str:
        value: str = self.cleaned_data["slug"]
        if not SLUG.fullmatch(value):
            raise forms.ValidationError("Use 1-50 lowercase letters, digits and inner hyphens.")
        return value
